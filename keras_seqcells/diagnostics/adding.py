"""The adding problem, a long-range task, and the models that learn it.

The adding problem (Hochreiter & Schmidhuber, 1997) feeds a sequence of
pairs `(value, marker)`: the values are uniform in [0, 1), and exactly two
markers are 1, one in the first half of the sequence and one in the second.
The target is the sum of the two marked values, so the loss depends on
inputs up to `timesteps` steps before the output.
"""

import keras
import numpy as np

from keras_seqcells._checks import check_int_at_least, check_positive_int, check_positive_number
from keras_seqcells.layers import GRU, LSTM, SimpleRNN

#: The models compared by `compare_gradient_flow`: label -> (layer class, chrono).
CELLS = {
    "simple_rnn": (SimpleRNN, False),
    "lstm": (LSTM, False),
    "gru": (GRU, False),
    "lstm_chrono": (LSTM, True),
    "gru_chrono": (GRU, True),
}


def adding_problem(examples, timesteps, seed=0):
    """Returns `(inputs, targets)` of the adding problem.

    Args:
        examples: Number of sequences.
        timesteps: Length of each sequence (at least 2).
        seed: Seed of the draw.

    Returns:
        `inputs`, float32 of shape `(examples, timesteps, 2)` (value, marker),
        and `targets`, float32 of shape `(examples, 1)`.
    """
    check_int_at_least("timesteps", timesteps, 2)
    check_positive_int("examples", examples)
    rng = np.random.default_rng(seed)
    values = rng.uniform(size=(examples, timesteps))
    markers = np.zeros((examples, timesteps))
    rows = np.arange(examples)
    markers[rows, rng.integers(0, timesteps // 2, examples)] = 1.0
    markers[rows, rng.integers(timesteps // 2, timesteps, examples)] = 1.0
    inputs = np.stack([values, markers], axis=-1).astype("float32")
    targets = np.sum(values * markers, axis=1, keepdims=True).astype("float32")
    return inputs, targets


def adding_model(cell, timesteps, units=16, seed=0, recurrent_scale=None, layer_options=None):
    """A recurrent layer and a `Dense(1)` head for the adding problem.

    Args:
        cell: a key of `CELLS`: `"simple_rnn"`, `"lstm"`, `"gru"`, or
            `"lstm_chrono"` / `"gru_chrono"`, with `chrono_init=timesteps`.
        timesteps: Sequence length.
        units: Units of the recurrent layer.
        seed: Seed of the weights.
        recurrent_scale: None for the default (orthogonal) recurrent
            initialisation, or a gain: the recurrent kernel is then a scaled
            orthogonal matrix (`keras.initializers.Orthogonal(gain=...)`).
        layer_options: optional dict of further arguments of the recurrent
            layer, such as `{"unit_forget_bias": False}`.

    Returns:
        An uncompiled `keras.Sequential` whose recurrent layer is named
        `cell`.
    """
    if cell not in CELLS:
        raise ValueError(f"Expected `cell` to be one of {sorted(CELLS)}. Received: cell={cell!r}")
    layer_class, chrono = CELLS[cell]
    options = {"chrono_init": timesteps} if chrono else {}
    options.update(layer_options or {})
    if recurrent_scale is not None:
        check_positive_number("recurrent_scale", recurrent_scale)
        options["recurrent_initializer"] = keras.initializers.Orthogonal(
            gain=recurrent_scale, seed=seed
        )
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((timesteps, 2)),
            layer_class(units, seed=seed, name=cell, **options),
            keras.layers.Dense(1, name="sum"),
        ],
        name=f"adding_{cell}",
    )


#: An adding-problem prediction within this distance of the target counts as
#: solved (Hochreiter & Schmidhuber, 1997).
SOLVED_TOLERANCE = 0.04

#: The mean squared error of always predicting 1, the mean of the target.
BASELINE_MSE = 1.0 / 6.0
