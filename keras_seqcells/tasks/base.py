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
import hashlib
import json
import numbers
import os
import pathlib
import tempfile
import time

import keras
import numpy as np

from keras_seqcells._checks import check_choice, check_optional_int, check_path, check_positive_int
from keras_seqcells.layers import layer_for_cell
from keras_seqcells.tasks.data import DataError


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
            setattr(self, name, check_positive_int(name, getattr(self, name)))
        for name in ("learning_rate", "clipnorm", "clipvalue"):
            value = getattr(self, name)
            if value is None and name != "learning_rate":
                continue
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                raise TypeError(f"Expected `{name}` to be a number. Received: {name}={value!r}")
            if not value > 0:
                raise ValueError(f"Expected `{name}` to be positive. Received: {name}={value!r}")
        if self.seed is None:
            raise TypeError("Expected `seed` to be an integer. Received: seed=None")
        check_optional_int("seed", self.seed)
        self.verbose = check_choice("verbose", self.verbose, (0, 1, 2))
        self.output_dir = check_path("output_dir", self.output_dir)

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
            interruption resumes from the last finished epoch.
        """
        keras.utils.set_random_seed(settings.seed)
        data = self.load_data(source, seed=settings.seed, limit=limit)
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model = self.build_model(data, settings)
            self.compile(model, settings)
        output_dir = pathlib.Path(settings.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        train_ds, validation_ds = self.datasets(data, settings.batch_size)
        early_stopping = keras.callbacks.EarlyStopping(
            patience=settings.patience, restore_best_weights=True
        )
        backup = ResumableTraining(output_dir / "backup", early_stopping)
        # One iterator over the repeated training data for the whole run, so
        # that each epoch's shuffled order depends only on the seed and the
        # epoch: a resumed run skips the finished epochs' batches and sees
        # the orders of an uninterrupted run (fit would otherwise make new
        # iterators, and draw new orders, a number of times per epoch that
        # depends on Keras's internals).
        steps = batches_per_epoch(train_ds)
        train_ds = train_ds.repeat().skip(backup.saved_epoch() * steps)
        callbacks = [
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


def batches_per_epoch(dataset):
    """The number of batches of a finite `tf.data.Dataset`."""
    count = int(dataset.cardinality())
    if count < 0:  # unknown: counted (an infinite dataset never reaches here)
        count = int(dataset.reduce(np.int64(0), lambda total, _: total + 1))
    if count == 0:
        raise DataError("Expected training data. Received: an empty training dataset")
    return count


class CheckpointError(DataError):
    """A training backup is incomplete, corrupt or from another run."""


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _random_states(model):
    """The model's variables that its weights files leave out: the states of
    its random generators (dropout's, for one), which a resumed run needs."""
    saved = {id(variable) for variable in model.weights}
    return [variable for variable in model.variables if id(variable) not in saved]


class ResumableTraining(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` with atomic, verified and complete backups.

    At the end of every epoch it writes the model's and the optimizer's
    variables to a new file, then `state.json` (written atomically) naming
    that file with its SHA-256, the epoch, the history so far, the states of
    the model's random generators (which weights files leave out) and the
    `EarlyStopping` callback's state (its best value and weights, and its
    patience count), so that a resumed run ends where an uninterrupted one
    would. Before the first epoch it writes a `state.json` of epoch 0 naming
    no files, so that a run killed at any moment, even while writing its
    first backup, leaves the previous complete backup (or that empty one). A
    backup whose files are missing, truncated or altered is refused with a
    `CheckpointError` that says which file and how to start afresh; it is
    never loaded. The backup folder is deleted when training ends.

    Args:
        backup_dir: The backup folder.
        early_stopping: The run's `keras.callbacks.EarlyStopping`, if any;
            it must come before this callback in the callback list.
    """

    FORMAT = 1

    def __init__(self, backup_dir, early_stopping=None):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=True)
        self.folder = pathlib.Path(backup_dir)
        self.state_path = self.folder / "state.json"
        self.early_stopping = early_stopping
        self._saved_history = {}  # of the epochs before a resume
        self._history = {}  # of all epochs, as saved

    def _corrupt(self, reason):
        return CheckpointError(
            f"Expected the training backup in {self.folder} to be complete and intact. "
            f"Received: {reason}. Delete {self.folder} to train from the start."
        )

    def read_state(self):
        """The verified backup state (a dict), or None when there is no backup."""
        if not self.state_path.exists():
            if self.folder.is_dir() and any(self.folder.glob("*.weights.h5")):
                raise self._corrupt("weights without state.json (an older or foreign backup)")
            return None
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            epoch, files = state["epoch"], state["files"]
            if state.get("format") != self.FORMAT or not isinstance(epoch, int) or epoch < 0:
                raise ValueError(f"format {state.get('format')!r}, epoch {epoch!r}")
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            raise self._corrupt(f"unreadable state.json ({error})") from None
        for role, entry in files.items():
            path = self.folder / pathlib.Path(str(entry.get("name"))).name
            if not path.is_file():
                raise self._corrupt(f"missing {role} file {path.name}")
            if _sha256(path) != entry.get("sha256"):
                raise self._corrupt(f"{path.name} does not match its SHA-256 in state.json")
        return state

    def saved_epoch(self):
        """Epochs finished by the backed-up run (0 without a backup)."""
        state = self.read_state()
        return 0 if state is None else state["epoch"]

    def full_history(self, history):
        """The history of the backed-up epochs followed by `history`."""
        return {
            key: list(self._saved_history.get(key, [])) + list(history.get(key, []))
            for key in {*self._saved_history, *history}
        }

    def _load_model(self):
        if not self.model.built:
            raise ValueError(
                f"Expected a built model before `fit()`. Received: model={self.model.name} "
                "(unbuilt)"
            )
        state = self.read_state()
        if state is None:
            # A backup folder whose state.json says "nothing finished yet",
            # before any weights are written: a run killed while writing its
            # first backup then leaves this state, not weights without a
            # state.json (which is refused as an older or foreign backup).
            self.folder.mkdir(parents=True, exist_ok=True)
            write_json_atomically(
                {"format": self.FORMAT, "epoch": 0, "history": {}, "files": {}},
                self.state_path,
            )
            return
        if state["epoch"] == 0:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.folder / state["files"]["weights"]["name"])
        self.model._initial_epoch = state["epoch"]  # what BackupAndRestore sets
        self._current_epoch = state["epoch"]
        random_states = _random_states(self.model)
        if len(random_states) != len(state.get("random_states", [])):
            raise self._corrupt(
                f"{len(state.get('random_states', []))} random generator state(s) for a "
                f"model with {len(random_states)} (a backup of another model)"
            )
        for variable, value in zip(random_states, state["random_states"], strict=True):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        self._saved_history = state.get("history", {})
        self._history = {key: list(values) for key, values in self._saved_history.items()}
        stopping = self.early_stopping
        if stopping is not None and state.get("early_stopping"):
            saved = state["early_stopping"]
            stopping.wait = saved["wait"]
            stopping.best = saved["best"]
            stopping.best_epoch = saved["best_epoch"]
            if "best_weights" in state["files"]:
                path = self.folder / state["files"]["best_weights"]["name"]
                with np.load(path, allow_pickle=False) as arrays:
                    stopping.best_weights = [arrays[f"w{i}"] for i in range(len(arrays.files))]

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self._history.setdefault(key, []).append(float(value))
        super().on_epoch_end(epoch, logs)

    def _save_model(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        epoch = self._current_epoch
        files = {"weights": self.folder / f"epoch-{epoch}.weights.h5"}
        with atomic_write(files["weights"], suffix=".weights.h5") as temporary:
            self.model.save_weights(temporary)
        state = {
            "format": self.FORMAT,
            "epoch": epoch,
            "history": self._history,
            "random_states": [
                keras.ops.convert_to_numpy(v).tolist() for v in _random_states(self.model)
            ],
        }
        stopping = self.early_stopping
        if stopping is not None:
            best = None if stopping.best is None else float(stopping.best)
            state["early_stopping"] = {
                "wait": int(stopping.wait),
                "best": best,
                "best_epoch": int(stopping.best_epoch),
            }
            if stopping.best_weights is not None:
                files["best_weights"] = self.folder / f"epoch-{epoch}.best.npz"
                with atomic_write(files["best_weights"]) as temporary:
                    arrays = {f"w{i}": w for i, w in enumerate(stopping.best_weights)}
                    with open(temporary, "wb") as handle:
                        np.savez(handle, **arrays)
        state["files"] = {
            role: {"name": path.name, "sha256": _sha256(path)} for role, path in files.items()
        }
        write_json_atomically(state, self.state_path)
        kept = {path.name for path in files.values()} | {self.state_path.name}
        for path in self.folder.iterdir():
            if path.name not in kept and not path.name.startswith("."):
                path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path, suffix=None):
    """Yields a temporary path beside `path`, renamed to `path` only on success.

    The temporary file is flushed to disk before the rename. A failure leaves
    `path` as it was and no stray file; an interruption (even SIGKILL) leaves
    `path` as it was and at most a hidden `.name-*` file beside it.

    Args:
        path: The file to write.
        suffix: The temporary file's suffix (`path`'s by default), for
            writers that insist on one, such as `.weights.h5`.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.stem}-", suffix=suffix or path.suffix, dir=path.parent
    )
    os.close(handle)
    temporary = pathlib.Path(temporary)
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
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


def save_figure(figure, path, dpi=100):
    """Writes a matplotlib figure to `path` atomically and closes it, even when the write fails."""
    import matplotlib.pyplot as plt

    try:
        with atomic_write(path) as temporary:
            figure.savefig(temporary, dpi=dpi)
    finally:
        plt.close(figure)


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
    save_figure(figure, path)
