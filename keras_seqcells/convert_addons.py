"""Exact loading of TensorFlow Addons' recurrent cells' weights into ours.

TensorFlow Addons (0.23, the last release; no Keras 3 version) had
`LayerNormLSTMCell`, `LayerNormSimpleRNNCell` and `PeepholeLSTMCell`.
`LayerNormLSTMCell`, `LayerNormSimpleRNNCell` and `PeepholeLSTMCell` here
compute Addons' equations with Addons' fused weight layout (Keras's, gate
order i, f, c, o), so a checkpoint's arrays load unchanged: only their names
differ. Addons' names are those of its variables, read from a checkpoint
(`tf.train.load_checkpoint(path).get_tensor(name)`) or from `cell.weights`
in TensorFlow 2.15 with Addons installed:

- every cell: `kernel`, `recurrent_kernel` and `bias`, as here;
- `LayerNormLSTMCell`: `kernel_norm/gamma`, `kernel_norm/beta`, and likewise
  `recurrent_norm/...` and `state_norm/...` (here `kernel_norm_gamma`, ...);
- `LayerNormSimpleRNNCell`: `layernorm/gamma` (its layer norm has no `beta`;
  here `layernorm_gamma`);
- `PeepholeLSTMCell`: `input_gate_peephole_weights`,
  `forget_gate_peephole_weights` and `output_gate_peephole_weights`, as here.
"""

import re

import keras
import numpy as np

from keras_seqcells.cells import LayerNormLSTMCell, LayerNormSimpleRNNCell, PeepholeLSTMCell

# For each cell class: Addons' variable name (the part after the cell's scope)
# -> the attribute of our cell holding it.
_ADDONS_NAMES = {
    LayerNormLSTMCell: {
        "kernel": "kernel",
        "recurrent_kernel": "recurrent_kernel",
        "bias": "bias",
        "kernel_norm/gamma": "kernel_norm_gamma",
        "kernel_norm/beta": "kernel_norm_beta",
        "recurrent_norm/gamma": "recurrent_norm_gamma",
        "recurrent_norm/beta": "recurrent_norm_beta",
        "state_norm/gamma": "state_norm_gamma",
        "state_norm/beta": "state_norm_beta",
    },
    LayerNormSimpleRNNCell: {
        "kernel": "kernel",
        "recurrent_kernel": "recurrent_kernel",
        "bias": "bias",
        "layernorm/gamma": "layernorm_gamma",
    },
    PeepholeLSTMCell: {
        "kernel": "kernel",
        "recurrent_kernel": "recurrent_kernel",
        "bias": "bias",
        "input_gate_peephole_weights": "input_gate_peephole_weights",
        "forget_gate_peephole_weights": "forget_gate_peephole_weights",
        "output_gate_peephole_weights": "output_gate_peephole_weights",
    },
}


def _short_name(name):
    """`"rnn/layer_norm_lstm_cell/kernel_norm/gamma:0"` -> `"kernel_norm/gamma"`."""
    name = re.sub(r":\d+$", "", str(name))
    name = name.removesuffix("/.ATTRIBUTES/VARIABLE_VALUE")
    parts = name.split("/")
    if len(parts) >= 2 and parts[-1] in ("gamma", "beta"):
        return "/".join(parts[-2:])
    return parts[-1]


def from_addons(weights, target):
    """Sets a cell's weights from a TensorFlow Addons cell's named arrays, exactly.

    Args:
        weights: A mapping from Addons' variable names to arrays. Full names
            (`"rnn/layer_norm_lstm_cell/kernel_norm/gamma:0"`) or short ones
            (`"kernel_norm/gamma"`) both work; see the module docstring for
            each cell's names.
        target: A built `keras_seqcells.LayerNormLSTMCell`,
            `LayerNormSimpleRNNCell` or `PeepholeLSTMCell`, or a layer around
            one (such as `keras_seqcells.LayerNormLSTM`), with the Addons
            cell's `units`, input size, `use_bias` and (for the layer norm
            cells) epsilon.

    Returns:
        The cell whose weights were set.

    Raises:
        TypeError: for another cell, an unbuilt one, or `weights` that is
            not a mapping.
        ValueError: for a missing or unknown name, or an array of another
            shape, naming it.

    Example:

    >>> cell = keras_seqcells.PeepholeLSTMCell(2)
    >>> cell.build((None, 3))
    >>> rng = np.random.default_rng(0)
    >>> arrays = {
    ...     "kernel:0": rng.normal(size=(3, 8)),
    ...     "recurrent_kernel:0": rng.normal(size=(2, 8)),
    ...     "bias:0": rng.normal(size=(8,)),
    ...     "input_gate_peephole_weights:0": rng.normal(size=(2,)),
    ...     "forget_gate_peephole_weights:0": rng.normal(size=(2,)),
    ...     "output_gate_peephole_weights:0": rng.normal(size=(2,)),
    ... }
    >>> cell = keras_seqcells.from_addons(arrays, cell)
    >>> cell.named_weights()["p_i"].shape
    (2,)
    """
    cell = getattr(target, "cell", target)
    names = _ADDONS_NAMES.get(type(cell))
    if names is None:
        raise TypeError(
            "Expected `target` to be a keras_seqcells LayerNormLSTMCell, LayerNormSimpleRNNCell "
            "or PeepholeLSTMCell, or a layer around one. "
            f"Received: target={type(target).__name__}"
        )
    if not cell.built:
        raise TypeError(
            f"Expected a built {type(cell).__name__} (call it, or its layer, on an input "
            "first). Received: an unbuilt cell"
        )
    if not hasattr(weights, "items"):
        raise TypeError(
            "Expected `weights` to be a mapping of Addons variable names to arrays. "
            f"Received: weights of type {type(weights).__name__}"
        )
    if not cell.use_bias:
        names = {key: value for key, value in names.items() if key != "bias"}
    arrays = {}
    for name, value in weights.items():
        short = _short_name(name)
        if short not in names:
            raise ValueError(
                f"Expected Addons {type(cell).__name__} variable names among {sorted(names)}. "
                f"Received: unknown name {name!r}"
            )
        if short in arrays:
            raise ValueError(
                f"Expected each Addons variable once. Received: {short!r} twice (from {name!r})"
            )
        arrays[short] = np.asarray(value)
    missing = sorted(set(names) - set(arrays))
    if missing:
        raise ValueError(
            f"Expected every variable of Addons' {type(cell).__name__}. Received: weights "
            f"without {missing}"
        )
    for short, attribute in names.items():
        variable = getattr(cell, attribute)
        if arrays[short].shape != tuple(variable.shape):
            raise ValueError(
                f"Expected `{short}` of shape {tuple(variable.shape)} (the cell's units and "
                f"input size). Received: {short}.shape={arrays[short].shape}"
            )
    for short, attribute in names.items():
        variable = getattr(cell, attribute)
        variable.assign(keras.ops.cast(arrays[short], variable.dtype))
    return cell
