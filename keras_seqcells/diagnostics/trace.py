"""Per-step gate values of a recurrent layer."""

import numpy as np
from keras import ops

from keras_seqcells.stepping import is_recurrent, run_steps


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
        A dict mapping the names of the intermediate values the cell's
        `step` reports (LSTM: `"i"`, `"f"`, `"c_tilde"`, `"c"`, `"o"`, `"h"`;
        GRU: `"z"`, `"r"`, `"h_tilde"`, `"h"`; SimpleRNN: `"h"`, and `"y"`
        with an output head; see each cell's docstring) to NumPy
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
    if not is_recurrent(layer):
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
    cell = layer.cell
    if initial_state is None:
        states = cell.get_initial_state(ops.shape(inputs)[0])
    else:
        states = cell._check_states(initial_state, argument="initial_state")
    *_, intermediates = run_steps(layer, inputs, states)
    return {
        name: np.stack([ops.convert_to_numpy(value) for value in values], axis=1)
        for name, values in intermediates.items()
    }
