"""What every task shares: cell choice, training settings and the training run.

A task (one module per task) subclasses `Task` and says how to load its data,
build its model, evaluate it and compute its baselines; `Task.train` does the
rest the same way for all of them: gradient clipping, a progress bar, a stop
on a NaN loss, TensorBoard logs, resumable training
(`keras.callbacks.BackupAndRestore`), a learning-curve PNG, held-out metrics
beside the baselines and an atomically written `.keras` model.
"""

import contextlib
import dataclasses
import json
import os
import pathlib
import tempfile
import time

import keras

from keras_seqcells.layers import layer_for_cell


def recurrent_layer(cell, units, **kwargs):
    """The keras_seqcells layer for a cell name (`simple_rnn`, `lstm` or `gru`)."""
    return layer_for_cell(cell)(units, **kwargs)


@dataclasses.dataclass
class TrainSettings:
    """How to train a task's model.

    Args:
        cell: `"simple_rnn"`, `"lstm"` or `"gru"`.
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

    def __post_init__(self):
        layer_for_cell(self.cell)
        for name in ("units", "epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f"Expected `{name}` to be a positive integer. Received: {name}={value!r}"
                )
        for name in ("learning_rate", "clipnorm", "clipvalue"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"Expected `{name}` to be positive. Received: {name}={value!r}")

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
        """`TrainSettings` with the task's recommended values, then `overrides`."""
        overrides = {key: value for key, value in overrides.items() if value is not None}
        return TrainSettings(**{**self.recommended_settings, **overrides})

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

    def predict(self, model, inputs):
        """Returns one JSON-serialisable prediction per raw input string.

        This is what `keras-seqcells predict <task> INPUT...` prints.
        """
        raise NotImplementedError

    def train(self, settings, source=None, limit=None, callbacks=()):
        """Trains, evaluates and saves a model; see the module docstring.

        Args:
            settings: a `TrainSettings`.
            source: the data set (name or path); the task's shipped data by
                default.
            limit: optional number of examples to keep per split.
            callbacks: extra Keras callbacks for `fit`.

        Returns:
            A `TrainResult`. Running the same call again after an
            interruption resumes from the last finished epoch.
        """
        keras.utils.set_random_seed(settings.seed)
        data = self.load_data(source, seed=settings.seed, limit=limit)
        model = self.build_model(data, settings)
        self.compile(model, settings)
        output_dir = pathlib.Path(settings.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        train_ds, validation_ds = self.datasets(data, settings.batch_size)
        callbacks = [
            keras.callbacks.BackupAndRestore(str(output_dir / "backup")),
            keras.callbacks.TensorBoard(str(output_dir / "logs")),
            keras.callbacks.EarlyStopping(patience=settings.patience, restore_best_weights=True),
            keras.callbacks.TerminateOnNaN(),
            *callbacks,
        ]
        start = time.perf_counter()
        history = model.fit(
            train_ds,
            validation_data=validation_ds,
            epochs=settings.epochs,
            callbacks=callbacks,
            shuffle=False,  # the training dataset shuffles itself, seeded
            verbose=settings.verbose,
        )
        seconds = time.perf_counter() - start
        model = self.inference_model(model)
        metrics = self.evaluate(model, data)
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


@contextlib.contextmanager
def atomic_write(path):
    """Yields a temporary path beside `path`, renamed to `path` only on success.

    A failure (or an interruption) leaves `path` as it was and no stray file.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent
    )
    os.close(handle)
    temporary = pathlib.Path(temporary)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def save_atomically(model, path):
    """Saves `model` to a `.keras` file without ever leaving a half-written one."""
    with atomic_write(path) as temporary:
        model.save(temporary)


def write_json_atomically(obj, path):
    with atomic_write(path) as temporary:
        temporary.write_text(json.dumps(obj, indent=2, default=float) + "\n")


def plot_learning_curve(history, path, title):
    """Plots each metric of a Keras history (training and validation) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in history if not name.startswith("val_")]
    figure, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        epochs = range(1, len(history[name]) + 1)
        axis.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    try:
        with atomic_write(path) as temporary:
            figure.savefig(temporary, dpi=100)
    finally:
        plt.close(figure)
