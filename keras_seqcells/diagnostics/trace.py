"""Per-step gate values of a recurrent layer."""

import keras
import numpy as np
from keras import ops

from keras_seqcells.cells import RecurrentCell


def trace(layer, inputs, initial_state=None):
    """Runs an RNN layer step by step and returns every step's gate values.

    Args:
        layer: a `keras.layers.RNN` (such as `keras_seqcells.LSTM`, or
            `keras.layers.RNN(keras_seqcells.GRUCell(...))`) whose cell is a
            keras_seqcells cell. An unbuilt layer is built on `inputs`.
        inputs: array of shape `(batch, timesteps, input_dim)`.
        initial_state: optional list of initial states, as for the layer;
            zeros by default.

    Returns:
        A dict mapping the cell's gate names (LSTM: `"i"`, `"f"`,
        `"c_tilde"`, `"c"`, `"o"`, `"h"`; GRU: `"z"`, `"r"`, `"h_tilde"`,
        `"h"`; SimpleRNN: `"h"`, and `"y"` with an output head) to NumPy
        arrays of shape `(batch, timesteps, units)` (`output_units` for
        `"y"`), in the order the layer processes the steps (reversed when
        `go_backwards=True`, like the layer's own sequence output). Dropout is
        not applied.

    Example:

    >>> layer = keras_seqcells.LSTM(4)
    >>> gates = keras_seqcells.trace(layer, np.random.random((2, 7, 3)))
    >>> gates["f"].shape
    (2, 7, 4)
    """
    cell = getattr(layer, "cell", None)
    if not isinstance(layer, keras.layers.RNN) or not isinstance(cell, RecurrentCell):
        raise TypeError(
            "Expected `layer` to be a keras.layers.RNN on a keras_seqcells cell. "
            f"Received: layer={layer!r}"
        )
    inputs = ops.convert_to_tensor(inputs, dtype=layer.compute_dtype)
    if len(inputs.shape) != 3:
        raise ValueError(
            "Expected `inputs` of rank 3 (batch, timesteps, input_dim). "
            f"Received: inputs.shape={tuple(inputs.shape)}"
        )
    if not layer.built:
        layer.build(inputs.shape)
    if initial_state is None:
        states = cell.get_initial_state(ops.shape(inputs)[0])
    else:
        states = (
            list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        )
    steps = range(inputs.shape[1])
    if layer.go_backwards:
        steps = reversed(steps)
    per_gate = {}
    for t in steps:
        _, states, gates = cell._run_step(inputs[:, t, :], states, training=False)
        for name, value in gates.items():
            per_gate.setdefault(name, []).append(ops.convert_to_numpy(value))
    return {name: np.stack(values, axis=1) for name, values in per_gate.items()}
