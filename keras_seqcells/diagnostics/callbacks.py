"""A Keras callback that logs the loss's gradient per gate and per step to TensorBoard."""

import keras
import numpy as np
from keras import ops

from keras_seqcells._checks import check_path, check_positive_int
from keras_seqcells.stepping import layer_names, recurrent_layers

_WEIGHTS = ("kernel", "recurrent_kernel", "bias")


def _norm(gradient):
    # No gradient at all (the weight is not on the loss's path) is not a zero
    # gradient: it stays None so that it cannot be read as one.
    if gradient is None:
        return None
    value = np.asarray(ops.convert_to_numpy(gradient), dtype="float64")
    return float(np.sqrt(np.sum(value**2)))


def _single(tensors):
    return tensors[0] if isinstance(tensors, (list, tuple)) and len(tensors) == 1 else tensors


def _structure_shapes(probe):
    return [np.shape(item) for item in keras.tree.flatten(probe)]


class GradientNormLogger(keras.callbacks.Callback):
    """Logs the norm of the loss's gradient, per gate and per step, to TensorBoard.

    At the end of every `every_n_epochs`-th epoch of `model.fit`, the callback
    runs the model on a fixed probe batch (with `training=False`, so dropout is
    off), computes the model's compiled loss (`model.compute_loss`: the
    compiled loss plus any regularization losses) under a `tf.GradientTape`
    and writes to `tf.summary.create_file_writer(log_dir)`, at step `epoch`:

    - for every keras_seqcells recurrent layer (each direction of a
      `keras.layers.Bidirectional` one, labelled `"<name>/forward"` and
      `"<name>/backward"`) and every gate `g` of its cell (LSTM: `"i"`, `"f"`,
      `"c"`, `"o"`; GRU: `"z"`, `"r"`, `"h"`; SimpleRNN: `"h"`), the
      Euclidean norm of `dL/dW` restricted to gate `g`'s column block of the
      fused `kernel` (`W_x<g>`), `recurrent_kernel` (`W_h<g>`) and `bias`
      (`b_<g>`, when `use_bias=True`), as the scalars
      `gradients/<label>/<g>/kernel`, `gradients/<label>/<g>/recurrent_kernel`
      and `gradients/<label>/<g>/bias`;
    - for every model layer that holds a recurrent layer (the `Bidirectional`
      layer itself, whose two directions share one input) and every step t
      of its input sequence `x`, `||dL/dx_t||`, the Euclidean norm over the
      batch and the features of the loss's gradient with respect to the
      layer's input at step t (steps in input order, even for
      `go_backwards=True`), as the scalars `gradients/<name>/step_<t>` (t
      from 0), and the whole series as one text summary
      `gradients/<name>/steps`.

    The input gradient is computed with two functional sub-models: one from
    the model's inputs to the recurrent layer's input, whose output is
    watched, and one from that input to the model's outputs, through which
    the loss is differentiated. This needs a functional or Sequential model
    in which each recurrent layer is called once
    and everything after it depends on the model's inputs only through that
    layer's input (no skip connection around it); other models are refused
    at the start of training. A mask made by an earlier layer (such as
    `Embedding(mask_zero=True)`) is not carried into the second sub-model, so
    the per-step values of masked models ignore the mask; the per-gate values
    always use the whole model.

    The values of every logged epoch are kept in `history`, a dict
    mapping the epoch (from 0) to `{"loss": float, "gates": {label: {gate:
    {weight: float or None}}}, "steps": {name: np.ndarray of shape
    (timesteps,) or None}}`.

    A weight that receives no gradient at all, because it is not on the
    loss's path (for example behind a `keras.ops.stop_gradient`), is
    reported as missing, not as a zero norm: its entry is `None` in
    `history` and no scalar is written for it to TensorBoard. A gradient that
    exists and is zero (for example the forget gate's at the first step,
    where `C_0 = 0`) is reported as `0.0`. The same holds for the per-step
    input gradients of a layer whose input receives none.

    Args:
        log_dir: directory for the TensorBoard event files (for instance the
            `log_dir` of a `keras.callbacks.TensorBoard`, or a subdirectory).
        probe_inputs: a fixed batch of model inputs, as `model` takes them
            (one array of shape `(batch, ...)`, or a list or dict of them).
        probe_targets: the matching targets, as the compiled loss takes them
            (the same batch size).
        every_n_epochs: positive integer; the callback logs after epochs
            `every_n_epochs - 1`, `2 * every_n_epochs - 1`, and so on.
            Default: 1 (every epoch).

    Raises:
        ValueError: at construction, for probe inputs and targets of
            different batch sizes or an empty batch; at the start of
            training (for a Sequential model without an `Input`, at the end
            of the first logged epoch, once the model is built), for a model
            without a keras_seqcells recurrent layer, probe inputs that do
            not match the model's input shapes, or a recurrent layer whose
            input cannot be reached as described above.

    Example:

    >>> model = keras.Sequential(
    ...     [keras.Input((6, 2)), keras_seqcells.LSTM(3, name="lstm"), keras.layers.Dense(1)]
    ... )
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x, y = np.random.random((4, 6, 2)), np.random.random((4, 1))
    >>> import tempfile
    >>> logger = keras_seqcells.GradientNormLogger(tempfile.mkdtemp(), x, y)
    >>> _ = model.fit(x, y, epochs=1, verbose=0, callbacks=[logger])
    >>> sorted(logger.history[0]["gates"]["lstm"])
    ['c', 'f', 'i', 'o']
    >>> logger.history[0]["steps"]["lstm"].shape
    (6,)
    """

    def __init__(self, log_dir, probe_inputs, probe_targets, every_n_epochs=1):
        super().__init__()
        self.log_dir = check_path("log_dir", log_dir)
        self.every_n_epochs = check_positive_int("every_n_epochs", every_n_epochs)
        self.probe_inputs = keras.tree.map_structure(np.asarray, probe_inputs)
        self.probe_targets = keras.tree.map_structure(np.asarray, probe_targets)
        sizes = {
            name: {shape[0] if shape else None for shape in _structure_shapes(probe)}
            for name, probe in (
                ("probe_inputs", self.probe_inputs),
                ("probe_targets", self.probe_targets),
            )
        }
        batch = sizes["probe_inputs"] | sizes["probe_targets"]
        if len(batch) != 1 or None in batch or 0 in batch:
            raise ValueError(
                "Expected `probe_inputs` and `probe_targets` with one non-empty batch "
                "dimension shared by all their arrays. Received: "
                f"probe_inputs shapes={_structure_shapes(self.probe_inputs)}, "
                f"probe_targets shapes={_structure_shapes(self.probe_targets)}"
            )
        self.history = {}
        self._writer = None
        self._layers = None
        self._splits = None

    def on_train_begin(self, logs=None):
        self._layers = None
        # A Sequential model without an `Input` is built by its first batch;
        # its checks then wait for the first logged epoch.
        if self.model.built:
            self._setup()

    def _setup(self):
        model = self.model
        layers = recurrent_layers(model)
        if not layers:
            raise ValueError(
                "Expected a model with at least one keras_seqcells recurrent layer "
                "(such as keras_seqcells.LSTM, possibly inside keras.layers.Bidirectional). "
                f"Received: model={model.name!r} with layers "
                f"{layer_names(model)}"
            )
        self._check_probe_shapes(model)
        self._splits = self._build_splits(model, layers)
        self._layers = layers
        if self._writer is None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs != 0:
            return
        values = self.compute()
        self.history[epoch] = values
        self._write(epoch, values)

    def _check_probe_shapes(self, model):
        try:
            expected = [tuple(tensor.shape) for tensor in keras.tree.flatten(model.inputs)]
        except (AttributeError, ValueError):
            expected = None
        if not expected:
            raise ValueError(
                "Expected a built functional or Sequential model with known inputs. "
                f"Received: model={model.name!r}"
            )
        received = _structure_shapes(self.probe_inputs)
        matches = len(expected) == len(received) and all(
            len(want) == len(got)
            and all(w is None or w == g for w, g in zip(want[1:], got[1:], strict=True))
            for want, got in zip(expected, received, strict=True)
        )
        if not matches:
            raise ValueError(
                f"Expected `probe_inputs` of the model's input shapes {expected}. "
                f"Received: probe_inputs shapes={received}"
            )

    def _build_splits(self, model, layers):
        """Per model layer holding a recurrent layer: (name, head, tail) sub-models."""
        splits = []
        seen = set()
        for _, _, outer in layers:
            if id(outer) in seen:
                continue
            seen.add(id(outer))
            try:
                layer_input = outer.input
                head = keras.Model(_single(model.inputs), layer_input)
                tail = keras.Model(layer_input, _single(model.outputs))
            except (AttributeError, ValueError) as error:
                raise ValueError(
                    "Expected each recurrent layer to be called once in a functional or "
                    "Sequential model, with the model's outputs reachable from its input "
                    f"alone. Received: layer={outer.name!r} ({error})"
                ) from error
            splits.append((outer.name, head, tail))
        return splits

    def _loss(self, y_pred):
        loss = self.model.compute_loss(
            x=self.probe_inputs, y=self.probe_targets, y_pred=y_pred, training=False
        )
        return ops.cast(loss, "float32")

    def compute(self):
        """Computes the gradient norms on the probe batch, without logging them.

        Returns:
            A dict `{"loss": float, "gates": {label: {gate: {weight: float}}},
            "steps": {name: np.ndarray}}`, as stored in `history`.
        """
        import tensorflow as tf

        if self._layers is None:
            self._setup()
        model = self.model
        variables = []
        for _, rnn, _ in self._layers:
            cell = rnn.cell
            variables += [cell.kernel, cell.recurrent_kernel]
            if cell.use_bias:
                variables.append(cell.bias)
        with tf.GradientTape() as tape:
            loss = self._loss(model(self.probe_inputs, training=False))
        gradients = tape.gradient(loss, variables)
        by_variable = {id(v): g for v, g in zip(variables, gradients, strict=True)}

        gates = {}
        for label, rnn, _ in self._layers:
            cell = rnn.cell
            per_gate = {}
            for block, gate in enumerate(cell.gate_names):
                columns = slice(block * cell.units, (block + 1) * cell.units)
                per_gate[gate] = {}
                for weight in _WEIGHTS:
                    variable = getattr(cell, weight, None)
                    if variable is None or (weight == "bias" and not cell.use_bias):
                        continue
                    gradient = by_variable[id(variable)]
                    per_gate[gate][weight] = _norm(
                        None if gradient is None else gradient[..., columns]
                    )
            gates[label] = per_gate

        steps = {}
        for name, head, tail in self._splits:
            layer_input = tf.convert_to_tensor(head(self.probe_inputs, training=False))
            with tf.GradientTape() as tape:
                tape.watch(layer_input)
                layer_loss = self._loss(tail(layer_input, training=False))
            gradient = tape.gradient(layer_loss, layer_input)
            if gradient is None:
                steps[name] = None
                continue
            value = np.asarray(ops.convert_to_numpy(gradient), dtype="float64")
            steps[name] = np.sqrt(np.sum(value**2, axis=(0, *range(2, value.ndim))))
        return {"loss": float(ops.convert_to_numpy(loss)), "gates": gates, "steps": steps}

    def _write(self, epoch, values):
        import tensorflow as tf

        with self._writer.as_default():
            tf.summary.scalar("gradients/loss", values["loss"], step=epoch)
            for label, per_gate in values["gates"].items():
                for gate, per_weight in per_gate.items():
                    for weight, norm in per_weight.items():
                        if norm is None:
                            continue
                        tf.summary.scalar(f"gradients/{label}/{gate}/{weight}", norm, step=epoch)
            for name, norms in values["steps"].items():
                if norms is None:
                    continue
                for t, norm in enumerate(norms):
                    tf.summary.scalar(f"gradients/{name}/step_{t}", norm, step=epoch)
                series = ", ".join(f"{norm:.6g}" for norm in norms)
                tf.summary.text(f"gradients/{name}/steps", series, step=epoch)
        self._writer.flush()
