"""Vanishing and exploding gradients on the adding problem: the training-run comparisons.

`compare_gradient_flow` measures the gradient flow of each cell at
initialisation, `short_training_run` the effect of gradient clipping on plain
SGD, and `train_adding` / `compare_initialisations` the effect of the
initialisation on training (see `keras_seqcells.diagnostics.adding` for the
problem and its models).
"""

import dataclasses

import keras
import numpy as np

from keras_seqcells.diagnostics.adding import (
    CELLS,
    SOLVED_TOLERANCE,
    adding_model,
    adding_problem,
)
from keras_seqcells.diagnostics.gradients import gradient_flow


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


#: The initialisations compared by `compare_initialisations`: label -> (model
#: of `CELLS`, further layer options). Keras's LSTM adds 1 to the forget-gate
#: bias by default (`unit_forget_bias=True`); its GRU starts every bias at 0.
INITIALISATIONS = {
    "lstm_forget_bias_0": ("lstm", {"unit_forget_bias": False}),
    "lstm": ("lstm", {}),
    "lstm_chrono": ("lstm_chrono", {}),
    "gru": ("gru", {}),
    "gru_chrono": ("gru_chrono", {}),
}


def _flow_ratio(flow):
    return float(flow["h"][0] / flow["h"][-1]) if flow["h"][-1] > 0 else float("nan")


@dataclasses.dataclass
class InitialisationRun:
    """What `train_adding` measured for one initialisation.

    Args:
        label: The initialisation's name.
        losses: The training batch's loss at each step (before the update).
        test_loss: Mean squared error on held-out sequences after training.
        test_accuracy: Fraction of held-out sequences predicted within
            `SOLVED_TOLERANCE` of the target after training.
        flow_before: `||dL/dh_t||` over t (`gradient_flow`'s `"h"`) on
            held-out sequences at initialisation.
        flow_after: The same after training.
        seconds: Training time.
    """

    label: str
    losses: list
    test_loss: float
    test_accuracy: float
    flow_before: np.ndarray
    flow_after: np.ndarray
    seconds: float

    @property
    def ratio_before(self):
        """`||dL/dh_1|| / ||dL/dh_T||` at initialisation."""
        return _flow_ratio({"h": self.flow_before})

    @property
    def ratio_after(self):
        """`||dL/dh_1|| / ||dL/dh_T||` after training."""
        return _flow_ratio({"h": self.flow_after})

    def summary(self):
        """The run's numbers as a JSON-friendly dict (without the curves)."""
        return {
            "label": self.label,
            "first_loss": self.losses[0],
            "last_loss": self.losses[-1],
            "test_loss": self.test_loss,
            "test_accuracy": self.test_accuracy,
            "ratio_before": self.ratio_before,
            "ratio_after": self.ratio_after,
            "seconds": self.seconds,
        }


def train_adding(
    label="lstm",
    timesteps=200,
    units=32,
    steps=1500,
    batch_size=64,
    learning_rate=3e-3,
    clipnorm=1.0,
    seed=0,
    test_examples=512,
    flow_examples=64,
):
    """Trains an adding-problem model from one initialisation, and measures it.

    The model (see `adding_model`) is trained with Adam (gradients clipped
    to `clipnorm`) on the mean squared error, one fresh batch per step.
    Every initialisation gets the same seed, hence the same batches and the
    same draw of the weights the initialisation does not set. The gradient
    flow is measured on held-out sequences, with the mean squared error,
    before and after training.

    Args:
        label: a key of `INITIALISATIONS`.
        timesteps: Sequence length (also `chrono_init`'s `T_max`).
        units: Units of the recurrent layer.
        steps: Number of updates.
        batch_size: Sequences per update.
        learning_rate: Adam's learning rate.
        clipnorm: Clipping by global norm (None: no clipping).
        seed: Seed of the weights and the data.
        test_examples: Held-out sequences for the final loss and accuracy.
        flow_examples: Held-out sequences the gradient flow is averaged over.

    Returns:
        An `InitialisationRun`.
    """
    import time

    if label not in INITIALISATIONS:
        raise ValueError(
            f"Expected `label` to be one of {sorted(INITIALISATIONS)}. Received: label={label!r}"
        )
    cell, options = INITIALISATIONS[label]
    model = adding_model(cell, timesteps, units, seed, layer_options=options)
    test_x, test_y = adding_problem(max(test_examples, flow_examples), timesteps, seed=seed + 2)

    def flow():
        flows = gradient_flow(model, test_x[:flow_examples], test_y[:flow_examples], "mse")
        return flows[cell]["h"]

    flow_before = flow()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm), loss="mse")
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        x, y = adding_problem(batch_size, timesteps, seed=seed + 3 + step)
        losses.append(float(model.train_on_batch(x, y)))
    seconds = time.perf_counter() - start
    errors = keras.ops.convert_to_numpy(model.predict(test_x, verbose=0)) - test_y
    return InitialisationRun(
        label=label,
        losses=losses,
        test_loss=float(np.mean(errors**2)),
        test_accuracy=float(np.mean(np.abs(errors) < SOLVED_TOLERANCE)),
        flow_before=flow_before,
        flow_after=flow(),
        seconds=seconds,
    )


def compare_initialisations(labels=tuple(INITIALISATIONS), **options):
    """Runs `train_adding` for each initialisation with the same settings.

    Args:
        labels: Keys of `INITIALISATIONS`.
        **options: Arguments of `train_adding`.

    Returns:
        A dict mapping each label to its `InitialisationRun`.
    """
    return {label: train_adding(label, **options) for label in labels}
