"""What every task shares: cell choice, training settings and the training run.

A task (one module per task) subclasses `Task` and says how to load its data,
build its model, evaluate it and compute its baselines; `Task.train` does the
rest the same way for all of them: gradient clipping, a progress bar, a stop
on a NaN loss, TensorBoard logs, resumable training
(`keras.callbacks.BackupAndRestore`), a learning-curve PNG, held-out metrics
beside the baselines and an atomically written `.keras` model, all under the
dtype policy of the settings (float32, or a mixed precision policy whose
model still answers in float32).
"""

import contextlib
import dataclasses
import pathlib
import time

import keras
import numpy as np

from keras_seqcells._checks import (
    check_choice,
    check_optional_int,
    check_optional_positive_number,
    check_path,
    check_positive_int,
    check_positive_number,
)
from keras_seqcells.layers import layer_for_cell
from keras_seqcells.tasks.checkpoints import CheckpointError, ResumableTraining
from keras_seqcells.tasks.data import DataError
from keras_seqcells.tasks.files import plot_learning_curve, save_atomically, write_json_atomically

#: The Keras dtype policies a task's model can be trained under.
DTYPE_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


@contextlib.contextmanager
def dtype_policy_scope(policy):
    """Sets Keras's global dtype policy to `policy` inside the block, then restores it.

    The previous policy comes back however the block ends (an error included),
    so that layers built after it are not built under `policy` by accident.

    Args:
        policy: A name of `DTYPE_POLICIES`, or None to leave the policy as it is.

    Example:

    >>> with dtype_policy_scope("mixed_bfloat16"):
    ...     keras.layers.Dense(2).compute_dtype
    'bfloat16'
    >>> keras.config.dtype_policy().name
    'float32'
    """
    if policy is not None:
        check_choice("dtype_policy", policy, DTYPE_POLICIES)
    previous = keras.config.dtype_policy()
    try:
        if policy is not None:
            keras.config.set_dtype_policy(policy)
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def recurrent_layer(cell, units, **kwargs):
    """The keras_seqcells layer for a cell name (a key of `CELL_LAYERS`, such as `"lstm"`)."""
    return layer_for_cell(cell)(units, **kwargs)


@dataclasses.dataclass
class TrainSettings:
    """How to train a task's model.

    Args:
        cell: A key of `keras_seqcells.layers.CELL_LAYERS`: `"simple_rnn"`,
            `"lstm"`, `"gru"`, or one of the further cells (`"layer_norm_lstm"`,
            `"peephole_lstm"`, `"min_gru"`, ...).
        units: Units of each recurrent layer.
        epochs: Maximum number of epochs (early stopping on the validation
            split may end training sooner).
        batch_size: Examples per training step.
        learning_rate: Adam's learning rate.
        clipnorm: Gradient clipping by global norm (None turns it off).
        clipvalue: Gradient clipping by value (None turns it off).
        seed: Seed of the data split, the weights and dropout.
        output_dir: Where the model, logs, learning curve and metrics go.
        patience: Epochs without validation improvement before stopping.
        verbose: Keras's verbosity (1: progress bar, 2: a line per epoch).
        dtype_policy: The Keras dtype policy the model is built and trained
            under: `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`
            (half-precision products, float32 weights and recurrent states;
            see Keras's mixed precision guide). The model's outputs stay
            float32 under every policy. None (the default) takes Keras's
            global policy, or the policy of the run being resumed.
        adaptable: Names of the settings a task may adapt to the data (such
            as the batch size of a small training split). `Task.settings`
            lists the ones that were not given by hand; settings built
            directly are used as given.
    """

    cell: str = "gru"
    units: int = 64
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 3e-3
    clipnorm: float | None = 1.0
    clipvalue: float | None = None
    seed: int = 0
    output_dir: str = "runs/model"
    patience: int = 2
    verbose: int = 1
    dtype_policy: str | None = None
    adaptable: tuple = ()

    def __post_init__(self):
        layer_for_cell(self.cell)
        for name in ("units", "epochs", "batch_size", "patience"):
            setattr(self, name, check_positive_int(name, getattr(self, name)))
        self.learning_rate = check_positive_number("learning_rate", self.learning_rate)
        for name in ("clipnorm", "clipvalue"):
            setattr(self, name, check_optional_positive_number(name, getattr(self, name)))
        if self.seed is None:
            raise TypeError("Expected `seed` to be an integer. Received: seed=None")
        check_optional_int("seed", self.seed)
        self.verbose = check_choice("verbose", self.verbose, (0, 1, 2))
        if self.dtype_policy is not None:
            self.dtype_policy = check_choice("dtype_policy", self.dtype_policy, DTYPE_POLICIES)
        self.output_dir = check_path("output_dir", self.output_dir)
        names = {field.name for field in dataclasses.fields(self)}
        if isinstance(self.adaptable, str) or not isinstance(self.adaptable, (tuple, list)):
            raise TypeError(
                "Expected `adaptable` to be a tuple of setting names. "
                f"Received: adaptable={self.adaptable!r}"
            )
        if set(self.adaptable) - names:
            raise ValueError(
                f"Expected `adaptable` to name settings of {sorted(names)}. "
                f"Received: adaptable={self.adaptable!r}"
            )
        self.adaptable = tuple(self.adaptable)

    def optimizer(self):
        return keras.optimizers.Adam(
            self.learning_rate, clipnorm=self.clipnorm, clipvalue=self.clipvalue
        )


@dataclasses.dataclass
class TrainResult:
    """What a training run produced."""

    model: keras.Model
    metrics: dict
    baselines: dict
    history: dict
    seconds: float
    model_path: pathlib.Path


class Task:
    """A learning task on real data. Subclasses implement the hooks below."""

    name = ""
    #: The held-out metric reported first, and whether lower is better.
    metric = ""
    lower_is_better = False
    default_source = ""
    #: Training settings that suit the task, overriding `TrainSettings`'s.
    recommended_settings = {}

    def settings(self, **overrides):
        """`TrainSettings` with the task's recommended values, then `overrides`.

        The settings not in `overrides` (or given as None) are `adaptable`:
        the task may adapt them to the data it trains on.
        """
        overrides = {key: value for key, value in overrides.items() if value is not None}
        adaptable = tuple(
            field.name
            for field in dataclasses.fields(TrainSettings)
            if field.name not in overrides and field.name != "adaptable"
        )
        return TrainSettings(**{**self.recommended_settings, "adaptable": adaptable, **overrides})

    def load_data(self, source=None, seed=0, limit=None):
        """Returns the task's splits (train, validation, test) as an object."""
        raise NotImplementedError

    def build_model(self, data, settings):
        """Returns an uncompiled `keras.Model` for the data and settings."""
        raise NotImplementedError

    def compile(self, model, settings):
        raise NotImplementedError

    def datasets(self, data, batch_size):
        """Returns the `tf.data` training and validation datasets."""
        raise NotImplementedError

    def adapted_settings(self, settings, data):
        """The settings to train on `data` with: `settings` unless a task adapts
        them to the data (such as its size)."""
        return settings

    def inference_model(self, model):
        """The trained model as it is evaluated, saved and returned.

        Override to drop what only training needs (such as extra outputs).
        """
        return model

    def evaluate(self, model, data):
        """Returns the held-out (test split) metrics of `model` as a dict."""
        raise NotImplementedError

    def baselines(self, data):
        """Returns the baselines' held-out metrics, as `{baseline: {metric: value}}`."""
        raise NotImplementedError

    def early_stopping_options(self, data):
        """`keras.callbacks.EarlyStopping` arguments for `data` (`monitor`, `mode`).

        Called before anything is written, so that a refused option writes
        nothing. Override to watch another validation metric.
        """
        return {"monitor": "val_loss", "mode": "min"}

    def epoch_callbacks(self, data):
        """Callbacks that add validation metrics to each epoch's logs.

        They run before early stopping, which may watch what they add.
        """
        return []

    def verdict(self, metrics, baselines):
        """One plain sentence when the model does worse than a baseline on the
        held-out part (printed by `train` and `evaluate`), else None."""
        return None

    def predict(self, model, inputs):
        """Returns one JSON-serialisable prediction per raw input string.

        This is what `keras-seqcells predict <task> INPUT...` prints.
        """
        raise NotImplementedError

    def train(self, settings, source=None, limit=None, callbacks=(), strategy=None):
        """Trains, evaluates and saves a model; see the module docstring.

        Args:
            settings: a `TrainSettings`.
            source: the data set (name or path); the task's shipped data by
                default.
            limit: optional number of examples to keep per split.
            callbacks: extra Keras callbacks for `fit`.
            strategy: optional `tf.distribute.Strategy` (such as
                `MirroredStrategy` over local devices, or
                `MultiWorkerMirroredStrategy` with `TF_CONFIG`) whose scope
                the model and its optimizer are built in; `settings.batch_size`
                is the global batch, split among the replicas.

        Returns:
            A `TrainResult`. Running the same call again after an
            interruption resumes from the last finished epoch (under the
            interrupted run's dtype policy).

        Raises:
            CheckpointError: for a backup that is corrupt, or that was
                written under another `dtype_policy` than the one given.
        """
        keras.utils.set_random_seed(settings.seed)
        data = self.load_data(source, seed=settings.seed, limit=limit)
        settings = self.adapted_settings(settings, data)
        stopping_options = self.early_stopping_options(data)
        output_dir = pathlib.Path(settings.output_dir)
        early_stopping = keras.callbacks.EarlyStopping(
            patience=settings.patience, restore_best_weights=True, **stopping_options
        )
        settings = resumed_dtype_policy(settings, output_dir / "backup")
        backup = ResumableTraining(
            output_dir / "backup", early_stopping, dtype_policy=settings.dtype_policy
        )
        with dtype_policy_scope(settings.dtype_policy):
            return self._train(settings, data, backup, callbacks, strategy)

    def _train(self, settings, data, backup, callbacks, strategy):
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model = self.build_model(data, settings)
            self.compile(model, settings)
        output_dir = pathlib.Path(settings.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        train_ds, validation_ds = self.datasets(data, settings.batch_size)
        early_stopping = backup.early_stopping
        # One iterator over the repeated training data for the whole run, so
        # that each epoch's shuffled order depends only on the seed and the
        # epoch: a resumed run skips the finished epochs' batches and sees
        # the orders of an uninterrupted run (fit would otherwise make new
        # iterators, and draw new orders, a number of times per epoch that
        # depends on Keras's internals).
        steps = batches_per_epoch(train_ds)
        train_ds = train_ds.repeat().skip(backup.saved_epoch() * steps)
        callbacks = [
            *self.epoch_callbacks(data),
            keras.callbacks.TensorBoard(str(output_dir / "logs")),
            early_stopping,
            backup,  # after EarlyStopping: it restores and saves its state
            keras.callbacks.TerminateOnNaN(),
            *callbacks,
        ]
        start = time.perf_counter()
        history = model.fit(
            train_ds,
            validation_data=validation_ds,
            steps_per_epoch=steps,
            epochs=settings.epochs,
            callbacks=callbacks,
            shuffle=False,  # the training dataset shuffles itself, seeded
            verbose=settings.verbose,
        )
        history.history = backup.full_history(history.history)
        seconds = time.perf_counter() - start
        model = self.inference_model(model)
        metrics = self.evaluate(model, data)
        # The baselines are the same reference under every policy of the model.
        with dtype_policy_scope("float32"):
            baselines = self.baselines(data)
        model_path = output_dir / "model.keras"
        save_atomically(model, model_path)
        plot_learning_curve(
            history.history, output_dir / "learning_curve.png", f"{self.name} ({settings.cell})"
        )
        summary = {
            "task": self.name,
            "settings": dataclasses.asdict(settings),
            "metrics": metrics,
            "baselines": baselines,
            "epochs_run": len(history.history.get("loss", [])),
            "train_seconds": seconds,
        }
        write_json_atomically(summary, output_dir / "metrics.json")
        return TrainResult(model, metrics, baselines, history.history, seconds, model_path)


def resumed_dtype_policy(settings, backup_dir):
    """`settings` with the dtype policy to train under, as a policy name.

    A run resumed from a backup keeps the policy it was started with when
    `settings.dtype_policy` is None; given by hand, a policy other than the
    backup's is refused, since the backup's optimizer state and progress
    belong to a run under the other policy.

    Raises:
        CheckpointError: when the backup was written under another policy
            than the one given.
    """
    saved = ResumableTraining(backup_dir).saved_dtype_policy()
    policy = settings.dtype_policy
    if policy is None:
        policy = saved or keras.config.dtype_policy().name
    elif saved is not None and saved != policy:
        raise CheckpointError(
            f"Expected `dtype_policy` to be the policy of the training backup in {backup_dir} "
            f"({saved!r}) to resume it. Received: dtype_policy={policy!r}. Delete "
            f"{backup_dir} to train from the start under {policy!r}."
        )
    return dataclasses.replace(settings, dtype_policy=policy)


def batches_per_epoch(dataset):
    """The number of batches of a finite `tf.data.Dataset`."""
    count = int(dataset.cardinality())
    if count < 0:  # unknown: counted (an infinite dataset never reaches here)
        count = int(dataset.reduce(np.int64(0), lambda total, _: total + 1))
    if count == 0:
        raise DataError("Expected training data. Received: an empty training dataset")
    return count
