"""How large the loss's gradient is at every step of a recurrent layer (BPTT)."""

import keras
import numpy as np
from keras import ops

from keras_seqcells.cells import LSTMCell, RecurrentCell, SimpleRNNCell


def _is_seqcell_rnn(layer):
    return isinstance(layer, keras.layers.RNN) and isinstance(
        getattr(layer, "cell", None), RecurrentCell
    )


def _split_model(layer):
    """Returns `(layers before, the recurrent layer, layers after)`."""
    if _is_seqcell_rnn(layer):
        return [], layer, []
    if isinstance(layer, keras.Sequential):
        found = [i for i, sub in enumerate(layer.layers) if _is_seqcell_rnn(sub)]
        if len(found) == 1:
            (index,) = found
            return layer.layers[:index], layer.layers[index], layer.layers[index + 1 :]
        received = f"a keras.Sequential with {len(found)} such layers"
    else:
        received = f"layer={layer!r}"
    raise TypeError(
        "Expected `layer` to be a keras.layers.RNN on a keras_seqcells cell (such as "
        "keras_seqcells.LSTM), or a keras.Sequential with exactly one such layer "
        "(pass a Bidirectional layer's `forward_layer` or `backward_layer` itself). "
        f"Received: {received}"
    )


def _state_names(cell):
    return ["h", "c"] if isinstance(cell, LSTMCell) else ["h"]


def _per_example_norms(gradient, step_axis):
    """Euclidean norm over the feature axis, per example and step: `(batch, steps)`."""
    gradient = np.asarray(ops.convert_to_numpy(gradient), dtype="float64")
    norms = np.sqrt(np.sum(gradient**2, axis=-1))
    return norms if step_axis == 1 else norms.T


def gradient_flow(layer, inputs, targets=None, loss="mse", initial_state=None):
    """Measures the loss's gradient with respect to every step's state and input.

    The layer is run step by step (its cell's own step function) under a
    `tf.GradientTape`. A zero perturbation `e_t` is added to each new state
    `h_t` (and `C_t` for an LSTM) before it is used, both by the next step and
    by the output, and the loss is differentiated with respect to the
    perturbations. So `dL/dh_t` is the total derivative through the
    recurrence (backpropagation through time: the direct path to the output
    at step t plus every later step), the quantity whose decay or growth over
    t is the vanishing or exploding gradient. `dL/dx_t` is the derivative
    with respect to the layer's input at step t.

    Averaging: each example b has its own loss `L_b`; the function reports,
    for every step t, the mean over the batch of the Euclidean norm (over
    the units, or the input features) of `dL_b/dh_t[b]`. The examples do not
    interact, so this is also the per-example slice of the gradient of the
    summed loss `sum_b L_b`.

    Args:
        layer: a `keras.layers.RNN` on a keras_seqcells cell (such as
            `keras_seqcells.LSTM(8)`), or a `keras.Sequential` containing
            exactly one such layer: the layers before it compute its inputs,
            the layers after it (such as a `Dense` head) compute the output
            that enters the loss. Dropout is off and masks are not applied.
            An unbuilt layer is built on the inputs.
        inputs: array of shape `(batch, timesteps, input_dim)` (for a
            Sequential model, whatever the model takes).
        targets: optional array of the shape of the (layer's or model's)
            output. With targets, `L_b` is `loss(targets, output)` for example
            b, averaged over its non-batch axes. Without targets,
            `L_b` is the sum of example b's output entries (a fixed linear
            readout), and `loss` is not used.
        loss: a Keras loss name or function of `(y_true, y_pred)`, such as
            `"mse"` or `"binary_crossentropy"`. Default: `"mse"`.
        initial_state: optional list of initial states, as for the layer;
            zeros by default.

    Returns:
        A dict of NumPy float64 arrays of shape `(timesteps,)`, indexed by
        the step in the order the layer processes the sequence (reversed
        with `go_backwards=True`, as in `trace`): `"h"`, the mean of
        `||dL/dh_t||`; `"c"` (LSTM only), the mean of `||dL/dC_t||`; `"x"`,
        the mean of `||dL/dx_t||`. Also `"loss"`, the mean of `L_b` (a
        float).

    Raises:
        TypeError: if `layer` is neither kind of layer or model above.
        ValueError: for inputs that do not reach the recurrent layer with
            rank 3 and at least one step, or an unknown `loss`.

    Example:

    >>> layer = keras_seqcells.SimpleRNN(4)
    >>> flow = keras_seqcells.gradient_flow(layer, np.random.random((2, 30, 3)))
    >>> flow["h"].shape, flow["x"].shape
    ((30,), (30,))
    >>> bool(flow["h"][0] < flow["h"][-1])  # the gradient shrinks going back in time
    True
    """
    import tensorflow as tf

    before, rnn, after = _split_model(layer)
    cell = rnn.cell
    x = inputs
    for sublayer in before:
        x = sublayer(x, training=False)
    x = ops.convert_to_tensor(x, dtype=rnn.compute_dtype)
    if len(x.shape) != 3 or x.shape[1] in (None, 0):
        raise ValueError(
            "Expected the recurrent layer's inputs of rank 3 (batch, timesteps, input_dim) "
            f"with at least one step. Received: inputs.shape={tuple(x.shape)}"
        )
    if not rnn.built:
        rnn.build(x.shape)
    loss_fn = None if targets is None else keras.losses.get(loss)
    if targets is not None and loss_fn is None:
        raise ValueError(f"Expected `loss` to be a Keras loss. Received: loss={loss!r}")

    batch, timesteps = x.shape[0], x.shape[1]
    if initial_state is None:
        states = cell.get_initial_state(batch)
    else:
        states = cell._check_states(initial_state, argument="initial_state")
    names = _state_names(cell)
    perturbations = [
        tf.zeros((timesteps, batch, size), dtype=cell.state_dtype) for size in cell._state_sizes()
    ]
    order = list(range(timesteps))
    if rnn.go_backwards:
        order.reverse()

    with tf.GradientTape() as tape:
        tape.watch(x)
        for perturbation in perturbations:
            tape.watch(perturbation)
        outputs = []
        for step, t in enumerate(order):
            _, states, _ = cell._run_step(x[:, t, :], states, training=False)
            states = [s + e[step] for s, e in zip(states, perturbations, strict=True)]
            h = states[0]
            if isinstance(cell, SimpleRNNCell) and cell.output_units is not None:
                outputs.append(cell._output_head(h))
            else:
                outputs.append(h)
        output = ops.stack(outputs, axis=1) if rnn.return_sequences else outputs[-1]
        output = ops.cast(output, rnn.compute_dtype)
        for sublayer in after:
            output = sublayer(output, training=False)
        if loss_fn is None:
            per_example = ops.sum(ops.reshape(output, (batch, -1)), axis=-1)
        else:
            values = loss_fn(ops.convert_to_tensor(targets, dtype=output.dtype), output)
            per_example = ops.mean(ops.reshape(values, (batch, -1)), axis=-1)
        if keras.backend.standardize_dtype(per_example.dtype) in ("float16", "bfloat16"):
            per_example = ops.cast(per_example, "float32")
        total = ops.sum(per_example)
    gradients = tape.gradient(total, [x, *perturbations])

    result = {}
    for name, gradient in zip(names, gradients[1:], strict=True):
        result[name] = _per_example_norms(gradient, step_axis=0).mean(axis=0)
    x_norms = _per_example_norms(gradients[0], step_axis=1).mean(axis=0)
    result["x"] = x_norms[order]
    result["loss"] = float(np.mean(ops.convert_to_numpy(per_example)))
    return result
