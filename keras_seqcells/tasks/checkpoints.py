"""Resumable training: a backup each epoch that a restarted run resumes from, or refuses.

`ResumableTraining` extends `keras.callbacks.BackupAndRestore` with what a
resumed run needs to continue exactly (the random generators' states, the
history so far) and with checks (checksums, the run's settings) that refuse
an incomplete, corrupt or foreign backup instead of training from it.
"""

import hashlib
import json
import pathlib

import keras
import numpy as np

from keras_seqcells._checks import check_int_at_least
from keras_seqcells.tasks.data import DataError
from keras_seqcells.tasks.files import atomic_write, write_json_atomically


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
        dtype_policy: The name of the dtype policy the run trains under,
            recorded in `state.json` so that a resumed run keeps it.
    """

    FORMAT = 1

    def __init__(self, backup_dir, early_stopping=None, dtype_policy=None):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=True)
        self.folder = pathlib.Path(backup_dir)
        self.state_path = self.folder / "state.json"
        self.early_stopping = early_stopping
        self.dtype_policy = dtype_policy
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
            if state.get("format") != self.FORMAT:
                raise ValueError(f"format {state.get('format')!r}")
            check_int_at_least("epoch", epoch, 0)
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

    def saved_dtype_policy(self):
        """The dtype policy of the backed-up run, or None (no backup, none
        finished epoch yet, or a backup that does not record one)."""
        state = self.read_state()
        if state is None or state["epoch"] == 0:
            return None
        policy = state.get("dtype_policy")
        return None if policy is None else str(policy)

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
            "dtype_policy": self.dtype_policy,
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
