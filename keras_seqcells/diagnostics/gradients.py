"""How large the loss's gradient is at every step of a recurrent layer (BPTT)."""

import contextlib

import keras
import numpy as np
from keras import ops

from keras_seqcells.stepping import StateHook, is_recurrent, recurrent_layers, state_hooks


def _per_example_norms(gradient):
    """Euclidean norm over the feature axis: `(batch, steps)`."""
    gradient = np.asarray(ops.convert_to_numpy(gradient), dtype="float64")
    return np.sqrt(np.sum(gradient**2, axis=-1))


class _Probe(StateHook):
    """Adds a zero perturbation `e_t` to each new state of one recurrent layer.

    The layer runs its own cell step by step (`run_steps`, inside
    `state_hooks`), so it computes what it always computes, wherever it sits
    in a model; the loss's gradient with respect to `e_t` is `dL/dh_t`.
    """

    def __init__(self, label, rnn, tape):
        self.label = label
        self.rnn = rnn
        self.tape = tape
        self.inputs = None
        self.perturbations = None

    def sequences(self, layer, sequences):
        import tensorflow as tf

        if self.inputs is not None:
            raise ValueError(
                "Expected each recurrent layer to be called once in the model. "
                f"Received: layer {self.label!r}, called twice"
            )
        timesteps = sequences.shape[1]
        if timesteps in (None, 0):
            raise ValueError(
                "Expected the recurrent layer's inputs of rank 3 (batch, timesteps, input_dim) "
                f"with at least one step. Received: inputs.shape={tuple(sequences.shape)} "
                f"at layer {self.label!r}"
            )
        # A copy of the input of this layer alone: a Bidirectional layer feeds
        # one tensor to both directions.
        self.inputs = tf.identity(sequences)
        batch = ops.shape(sequences)[0]
        self.perturbations = [
            tf.zeros((batch, timesteps, size), dtype=layer.cell.state_dtype)
            for size in layer.cell._state_sizes()
        ]
        self.tape.watch(self.inputs)
        self.tape.watch(self.perturbations)
        return self.inputs

    def states(self, layer, step, states):
        # Perturbations are indexed by the input's time axis.
        t = self.inputs.shape[1] - 1 - step if layer.go_backwards else step
        return [s + e[:, t, :] for s, e in zip(states, self.perturbations, strict=True)]

    def norms(self, gradients):
        """Per state name and `"x"`: mean over the batch of the per-step norms, input order."""
        x_gradient, *state_gradients = gradients
        result = {}
        for name, gradient, perturbation in zip(
            self.rnn.cell.state_names, state_gradients, self.perturbations, strict=True
        ):
            if gradient is None:
                gradient = ops.zeros_like(perturbation)
            result[name] = _per_example_norms(gradient).mean(axis=0)
        if x_gradient is None:
            x_gradient = ops.zeros_like(self.inputs)
        result["x"] = _per_example_norms(x_gradient).mean(axis=0)
        return result


@contextlib.contextmanager
def _probed(layers, tape):
    """Hooks a `_Probe` on each layer while the model runs; restores stateful states."""
    probes = [_Probe(label, rnn, tape) for label, rnn, _ in layers]
    saved_states = [
        (rnn, [ops.convert_to_numpy(s) for s in rnn.states])
        for _, rnn, _ in layers
        if rnn.stateful and getattr(rnn, "states", None) is not None
    ]
    try:
        with state_hooks({probe.rnn: probe for probe in probes}):
            yield probes
    finally:
        for rnn, values in saved_states:
            for variable, value in zip(rnn.states, values, strict=True):
                variable.assign(value)


def _per_example_loss(outputs, targets, loss_fn):
    """`L_b` for every example: a `(batch,)` tensor."""
    outputs = keras.tree.flatten(outputs)
    batch = ops.shape(outputs[0])[0]
    if loss_fn is None:
        parts = [ops.sum(ops.reshape(output, (batch, -1)), axis=-1) for output in outputs]
    else:
        targets = keras.tree.flatten(targets)
        if len(targets) != len(outputs):
            raise ValueError(
                f"Expected one target per model output ({len(outputs)}). "
                f"Received: {len(targets)} targets"
            )
        parts = []
        for target, output in zip(targets, outputs, strict=True):
            values = loss_fn(ops.convert_to_tensor(target, dtype=output.dtype), output)
            parts.append(ops.mean(ops.reshape(values, (batch, -1)), axis=-1))
    parts = [
        ops.cast(part, "float32")
        if keras.backend.standardize_dtype(part.dtype) in ("float16", "bfloat16")
        else part
        for part in parts
    ]
    total = parts[0]
    for part in parts[1:]:
        total = total + ops.cast(part, total.dtype)
    return total


def gradient_flow(model, inputs, targets=None, loss="mse", initial_state=None):
    """Measures the loss's gradient with respect to every step's state and input.

    Every keras_seqcells recurrent layer of `model` is run step by step (its
    cell's own step function, with the layer's masking, `go_backwards` and
    initial state) under a `tf.GradientTape`. A zero perturbation `e_t` is
    added to each new state `h_t` (and `C_t` for an LSTM) before it is used,
    both by the next step and by the layer's output, and the loss is
    differentiated with respect to the perturbations. So `dL/dh_t` is the
    total derivative through the recurrence and the rest of the model
    (backpropagation through time: the direct path to the output at step t
    plus every later step, and every later layer of a stack), the quantity
    whose decay or growth over t is the vanishing or exploding gradient.
    `dL/dx_t` is the derivative with respect to the layer's own input at
    step t. At a masked step the layer carries its state over unchanged, and
    `h_t` is that carried state (zero gradient where nothing reads it, as
    on the trailing padding of a sequence).

    Averaging: each example b has its own loss `L_b`; the function reports,
    for every step t, the mean over the batch of the Euclidean norm (over
    the units, or the input features) of `dL_b/dh_t[b]`. The examples do not
    interact (the model runs with `training=False`), so this is also the
    per-example slice of the gradient of the summed loss `sum_b L_b`.

    Args:
        model: a `keras.layers.RNN` on a keras_seqcells cell (such as
            `keras_seqcells.LSTM(8)`); or a `keras.Model` (functional or
            Sequential) containing such layers, stacked, side by side or
            wrapped in `keras.layers.Bidirectional` (each direction is
            measured on its own); or a `keras.layers.Bidirectional` layer.
            Each recurrent layer must be called once in the forward pass.
            The model runs with `training=False` (no dropout). An unbuilt
            layer or Sequential model is built on the inputs. A stateful
            layer starts from its current states, which are restored after.
        inputs: what the model (or layer) takes, for a layer an array of
            shape `(batch, timesteps, input_dim)`.
        targets: optional array (or, for a model with several outputs, list
            of arrays) of the shape of the output. With targets, `L_b` is
            `loss(targets, output)` for example b, averaged over its
            non-batch axes (summed over outputs). Without targets, `L_b` is
            the sum of example b's output entries (a fixed linear readout),
            and `loss` is not used. Of a layer with `return_state=True` only
            the first output (the sequence or last output) enters the loss.
        loss: a Keras loss name or function of `(y_true, y_pred)`, such as
            `"mse"` or `"binary_crossentropy"`. Default: `"mse"`.
        initial_state: optional list of initial states, as for the layer;
            zeros by default. Only for a single recurrent layer.

    Returns:
        For a single recurrent layer, a dict of NumPy float64 arrays of
        shape `(timesteps,)`, indexed by the step in the order the layer
        processes the sequence (reversed with `go_backwards=True`, as in
        `trace`): `"h"`, the mean of `||dL/dh_t||`; `"c"` (LSTM only), the
        mean of `||dL/dC_t||`; `"x"`, the mean of `||dL/dx_t||`. Also
        `"loss"`, the mean of `L_b` (a float).

        For a model (or a Bidirectional layer), a dict mapping each
        recurrent layer's label, in the model's order, to such a dict, but
        with the steps in input order for every layer, so that both
        directions of a bidirectional layer line up with the input: the
        layer's name, or `"<name>/forward"` and `"<name>/backward"` for the
        two directions of a `Bidirectional` layer (as in `trace_model` and
        `GradientNormLogger`). Every entry has the same `"loss"`.

    Raises:
        TypeError: if `model` is none of the layers or models above, or has
            no keras_seqcells recurrent layer.
        ValueError: for inputs that do not reach a recurrent layer with
            rank 3 and at least one step, a recurrent layer called more than
            once or not at all, an unknown `loss`, or `initial_state` with a
            model.

    Example:

    >>> layer = keras_seqcells.SimpleRNN(4)
    >>> flow = keras_seqcells.gradient_flow(layer, np.random.random((2, 30, 3)))
    >>> flow["h"].shape, flow["x"].shape
    ((30,), (30,))
    >>> bool(flow["h"][0] < flow["h"][-1])  # the gradient shrinks going back in time
    True
    >>> model = keras.Sequential(
    ...     [
    ...         keras.Input((30, 3)),
    ...         keras.layers.Bidirectional(keras_seqcells.GRU(4, return_sequences=True), name="bi"),
    ...         keras_seqcells.LSTM(4, name="top"),
    ...         keras.layers.Dense(1),
    ...     ]
    ... )
    >>> flows = keras_seqcells.gradient_flow(model, np.random.random((2, 30, 3)), np.ones((2, 1)))
    >>> list(flows), flows["top"]["c"].shape
    (['bi/forward', 'bi/backward', 'top'], (30,))
    """
    import tensorflow as tf

    single = is_recurrent(model)
    layers = recurrent_layers(model)
    if not single:
        if not layers:
            received = (
                f"{type(model).__name__} {model.name!r} without one"
                if isinstance(model, keras.layers.Layer)
                else f"model={model!r}"
            )
            raise TypeError(
                "Expected `model` to be a keras.layers.RNN on a keras_seqcells cell (such as "
                "keras_seqcells.LSTM), or a keras.Model or keras.layers.Bidirectional "
                f"containing such layers. Received: {received}"
            )
        if initial_state is not None:
            raise ValueError(
                "Expected `initial_state` only with a single recurrent layer. Received: "
                f"initial_state with {type(model).__name__} {model.name!r}"
            )
    loss_fn = None if targets is None else keras.losses.get(loss)
    if targets is not None and loss_fn is None:
        raise ValueError(f"Expected `loss` to be a Keras loss. Received: loss={loss!r}")
    if single:
        x = ops.convert_to_tensor(inputs, dtype=model.compute_dtype)
        if len(x.shape) != 3 or x.shape[1] in (None, 0):
            raise ValueError(
                "Expected the recurrent layer's inputs of rank 3 (batch, timesteps, "
                f"input_dim) with at least one step. Received: inputs.shape={tuple(x.shape)}"
            )
        inputs = x

    with tf.GradientTape() as tape, _probed(layers, tape) as probes:
        if single:
            kwargs = {} if initial_state is None else {"initial_state": initial_state}
            output = model(inputs, training=False, **kwargs)
            if model.return_state:
                output = output[0]
        else:
            output = model(inputs, training=False)
        per_example = _per_example_loss(output, targets, loss_fn)
        total = ops.sum(per_example)
    for probe in probes:
        if probe.inputs is None:
            raise ValueError(
                "Expected every recurrent layer to run its step loop (`inner_loop`) in the "
                f"model's forward pass. Received: layer {probe.label!r}, whose loop did not run"
            )
    sources = [[probe.inputs, *probe.perturbations] for probe in probes]
    gradients = tape.gradient(total, sources)
    mean_loss = float(np.mean(ops.convert_to_numpy(per_example)))

    flows = {}
    for probe, probe_gradients in zip(probes, gradients, strict=True):
        flow = probe.norms(probe_gradients)
        if single and probe.rnn.go_backwards:
            flow = {name: values[::-1] for name, values in flow.items()}
        flow["loss"] = mean_loss
        flows[probe.label] = flow
    return flows[model.name] if single else flows
