"""Vanishing and exploding gradients on a long-range task: the adding problem.

The adding problem (Hochreiter & Schmidhuber, 1997) feeds a sequence of
pairs `(value, marker)`: the values are uniform in [0, 1), and exactly two
markers are 1, one in the first half of the sequence and one in the second.
The target is the sum of the two marked values, so the loss depends on
inputs up to `timesteps` steps before the output.
"""

import dataclasses

import keras
import numpy as np

from keras_seqcells.diagnostics.gradients import gradient_flow
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
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 2:
        raise ValueError(f"Expected `timesteps` to be an integer >= 2. Received: {timesteps=}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(size=(examples, timesteps))
    markers = np.zeros((examples, timesteps))
    rows = np.arange(examples)
    markers[rows, rng.integers(0, timesteps // 2, examples)] = 1.0
    markers[rows, rng.integers(timesteps // 2, timesteps, examples)] = 1.0
    inputs = np.stack([values, markers], axis=-1).astype("float32")
    targets = np.sum(values * markers, axis=1, keepdims=True).astype("float32")
    return inputs, targets


def adding_model(cell, timesteps, units=16, seed=0, recurrent_scale=None):
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

    Returns:
        An uncompiled `keras.Sequential`.
    """
    if cell not in CELLS:
        raise ValueError(f"Expected `cell` to be one of {sorted(CELLS)}. Received: cell={cell!r}")
    layer_class, chrono = CELLS[cell]
    options = {"chrono_init": timesteps} if chrono else {}
    if recurrent_scale is not None:
        if not recurrent_scale > 0:
            raise ValueError(
                f"Expected `recurrent_scale` to be positive. Received: {recurrent_scale=}"
            )
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


def compare_gradient_flow(
    timesteps=100, units=16, examples=32, seed=0, recurrent_scale=None, cells=tuple(CELLS)
):
    """`gradient_flow` of each cell's adding-problem model at initialisation.

    Args:
        timesteps, units, seed, recurrent_scale: as for `adding_model`.
        examples: Number of sequences the norms are averaged over.
        cells: Which models of `CELLS` to compare.

    Returns:
        A dict mapping each cell label to what `gradient_flow` returns for
        its model's recurrent layer on the same adding-problem batch, with
        the mean squared error as the loss.
    """
    inputs, targets = adding_problem(examples, timesteps, seed=seed)
    return {
        cell: gradient_flow(
            adding_model(cell, timesteps, units, seed, recurrent_scale), inputs, targets, "mse"
        )[cell]
        for cell in cells
    }


@dataclasses.dataclass
class TrainingRun:
    """What `short_training_run` measured, one entry per training step.

    Args:
        losses: The batch loss before each update.
        gradient_norms: The global norm of the gradients before clipping.
        max_abs_weight: The largest weight magnitude after the run.
    """

    losses: list
    gradient_norms: list
    max_abs_weight: float

    @property
    def diverged(self):
        """Whether the loss became NaN/infinite or grew 100-fold over its start."""
        losses = np.asarray(self.losses, dtype="float64")
        return bool(not np.all(np.isfinite(losses)) or losses[-1] > 100 * losses[0])


def short_training_run(
    cell="simple_rnn",
    timesteps=100,
    units=16,
    recurrent_scale=None,
    clipnorm=None,
    clipvalue=None,
    steps=20,
    learning_rate=0.1,
    batch_size=32,
    seed=0,
):
    """Trains an adding-problem model with plain SGD for a few steps.

    Plain SGD takes steps proportional to the gradient, so an exploding
    gradient throws the weights far away unless the gradients are clipped
    (`clipnorm`: by global norm; `clipvalue`: elementwise).

    Args:
        cell, timesteps, units, recurrent_scale, seed: as for `adding_model`.
        clipnorm: None or the optimizer's `clipnorm`.
        clipvalue: None or the optimizer's `clipvalue`.
        steps: Number of updates, each on a fresh batch.
        learning_rate: SGD's learning rate.
        batch_size: Sequences per update.

    Returns:
        A `TrainingRun`.
    """
    import tensorflow as tf

    model = adding_model(cell, timesteps, units, seed, recurrent_scale)
    optimizer = keras.optimizers.SGD(learning_rate, clipnorm=clipnorm, clipvalue=clipvalue)
    inputs, targets = adding_problem(steps * batch_size, timesteps, seed=seed + 1)
    variables = model.trainable_variables

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        gradients = tape.gradient(loss, variables)
        norm = tf.linalg.global_norm(gradients)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss, norm

    losses, norms = [], []
    for step in range(steps):
        batch = slice(step * batch_size, (step + 1) * batch_size)
        loss, norm = train_step(inputs[batch], targets[batch])
        losses.append(float(loss))
        norms.append(float(norm))
    max_abs = max(float(np.max(np.abs(keras.ops.convert_to_numpy(v)))) for v in variables)
    return TrainingRun(losses, norms, max_abs)
