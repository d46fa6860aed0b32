"""Faults: a killed training run resumes exactly, a corrupt backup is refused,
and saving a model is atomic even under SIGKILL."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from keras_seqcells import cli
from keras_seqcells.tasks import Forecasting
from keras_seqcells.tasks.checkpoints import CheckpointError, ResumableTraining
from keras_seqcells.tasks.files import save_atomically
from tests.task_helpers import tiny_settings

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "scripts" / "fault_training.py"


def _environment():
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _start(*args):
    return subprocess.Popen(
        [sys.executable, *map(str, args)],
        cwd=ROOT,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process, timeout=300):
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]
    return stdout


def _weights(path):
    import keras_seqcells.tasks  # noqa: F401  (registers the task layers)

    return keras.saving.load_model(path, safe_mode=True).get_weights()


def _epochs_run(log):
    """The epochs (from 1) that a run of the script trained itself, from its log."""
    return [int(line.split()[-1]) for line in log.splitlines() if line.startswith("running epoch")]


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory):
    """(log, weights) of the script's run without interruption (5 epochs)."""
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    log = _finish(_start(SCRIPT, output_dir))
    assert _epochs_run(log) == [1, 2, 3, 4, 5]
    return log, _weights(output_dir / "model.keras")


# How the first process dies, and the epochs its backup then holds.
KILLS = {
    # The test kills the process while it waits after the epoch-2 backup.
    "after_the_epoch_2_backup": ("hang", 2, 2),
    # The process kills itself with two datasets of the HDF5 weights written.
    "inside_the_epoch_3_weights_write": ("weights", 3, 2),
    "inside_the_epoch_1_weights_write": ("weights", 1, 0),
    # The process kills itself with half of state.json's text written.
    "inside_the_epoch_3_state_write": ("state", 3, 2),
    "inside_the_epoch_1_state_write": ("state", 1, 0),
}
DEFAULT_KILLS = {"inside_the_epoch_3_weights_write", "inside_the_epoch_1_state_write"}


def _kill(output_dir, where, epoch, marker):
    if where != "hang":
        process = _start(SCRIPT, output_dir, "--kill-in", where, epoch)
        log, stderr = process.communicate(timeout=300)
        assert process.returncode == -signal.SIGKILL, stderr[-3000:]
        return log
    process = _start(SCRIPT, output_dir, "--hang-after", epoch, marker)
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"the run never finished {epoch} epochs"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    log, _ = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return log


@pytest.mark.parametrize(
    "kill",
    [pytest.param(name, marks=() if name in DEFAULT_KILLS else pytest.mark.slow) for name in KILLS],
)
def test_training_killed_with_sigkill_resumes_from_its_backup(tmp_path, kill, uninterrupted_run):
    """A run killed with SIGKILL (after a backup, or inside the write of the
    weights or of state.json) and started again trains only the epochs its
    last complete backup lacks, counted from what the second process itself
    ran, and ends bit-for-bit where an uninterrupted run with the same seed
    ends (dropout on, op determinism on)."""
    where, epoch, saved = KILLS[kill]
    output_dir = tmp_path / "run"
    backup = output_dir / "backup"
    killed_log = _kill(output_dir, where, epoch, tmp_path / "marker")
    assert _epochs_run(killed_log) == list(range(1, epoch + 1))
    assert ResumableTraining(backup).saved_epoch() == saved
    assert not (output_dir / "model.keras").exists()
    # The kill came part-way through a write: its temporary file is there,
    # incomplete, and the committed backup does not name it.
    if where == "weights":
        assert list(backup.glob(f".epoch-{epoch}.weights-*.weights.h5"))
    elif where == "state":
        (partial,) = backup.glob(".state-*.json")
        with pytest.raises(ValueError):
            json.loads(partial.read_text())

    resumed_log = _finish(_start(SCRIPT, output_dir))
    assert _epochs_run(resumed_log) == list(range(saved + 1, 6))
    expected_log, expected_weights = uninterrupted_run
    assert "epochs: 5" in resumed_log
    # The resumed run's history holds all 5 epochs, equal to the uninterrupted one's.
    assert resumed_log.splitlines()[-1] == expected_log.splitlines()[-1]
    actual = _weights(output_dir / "model.keras")
    assert len(actual) == len(expected_weights)
    for a, e in zip(actual, expected_weights, strict=True):
        np.testing.assert_array_equal(a, e)
    assert not backup.exists()  # deleted once training ended


class _Interrupt(Exception):
    pass


class _InterruptAfter(keras.callbacks.Callback):
    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise _Interrupt


TASK = {"window": 12, "horizon": 3, "min_epoch_windows": 32}


@pytest.fixture(scope="module")
def interrupted_backup(tmp_path_factory):
    """The backup folder of a run interrupted after 2 of 4 epochs."""
    output_dir = tmp_path_factory.mktemp("interrupted")
    task = Forecasting(**TASK)
    with pytest.raises(_Interrupt):
        task.train(
            tiny_settings(output_dir, epochs=4),
            source="airline-passengers",
            callbacks=[_InterruptAfter(2)],
        )
    backup = output_dir / "backup"
    assert ResumableTraining(backup).saved_epoch() == 2
    return backup


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_bit(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _weights_file(backup):
    (path,) = backup.glob("epoch-*.weights.h5")
    return path


CORRUPTIONS = {
    "truncated_weights": (lambda b: _truncate(_weights_file(b)), "does not match its SHA-256"),
    "bit_flipped_weights": (lambda b: _flip_a_bit(_weights_file(b)), "does not match its SHA-256"),
    "bit_flipped_best_weights": (
        lambda b: _flip_a_bit(next(b.glob("*.best.npz"))),
        "best.npz does not match its SHA-256",
    ),
    "missing_weights": (lambda b: _weights_file(b).unlink(), "missing weights file epoch-2"),
    "garbage_state": (
        lambda b: (b / "state.json").write_text('{"epoch": 2, "fi'),
        "unreadable state.json",
    ),
    "truncated_state": (
        lambda b: (b / "state.json").write_text((b / "state.json").read_text()[:40]),
        "unreadable state.json",
    ),
    "state_of_another_format": (
        lambda b: (b / "state.json").write_text('{"format": 99, "epoch": 2, "files": {}}'),
        "format 99",
    ),
    "weights_without_state": (lambda b: (b / "state.json").unlink(), "without state.json"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_corrupt_backup_is_refused_not_loaded(interrupted_backup, tmp_path, corruption):
    corrupt, reason = CORRUPTIONS[corruption]
    backup = tmp_path / "backup"
    shutil.copytree(interrupted_backup, backup)
    corrupt(backup)
    before = {path.name: path.read_bytes() for path in backup.iterdir()}
    with pytest.raises(CheckpointError) as raised:
        ResumableTraining(backup).saved_epoch()
    message = str(raised.value)
    assert message.startswith(f"Expected the training backup in {backup} to be complete")
    assert reason in message and f"Delete {backup} to train from the start" in message
    assert {path.name: path.read_bytes() for path in backup.iterdir()} == before


def test_training_refuses_a_corrupt_backup(interrupted_backup, tmp_path):
    shutil.copytree(interrupted_backup, tmp_path / "backup")
    _flip_a_bit(_weights_file(tmp_path / "backup"))
    with pytest.raises(CheckpointError, match="does not match its SHA-256"):
        Forecasting(**TASK).train(tiny_settings(tmp_path, epochs=4), source="airline-passengers")
    assert not (tmp_path / "model.keras").exists()


def test_the_cli_refuses_a_corrupt_backup_in_one_line(interrupted_backup, tmp_path, capsys):
    shutil.copytree(interrupted_backup, tmp_path / "backup")
    _truncate(_weights_file(tmp_path / "backup"))
    argv = ["train", "forecasting", "--source", "airline-passengers", "--output-dir"]
    argv += [str(tmp_path), "--units", "4", "--epochs", "4", "--quiet"]
    argv += [f"--task-option={key}={value}" for key, value in TASK.items()]
    assert cli.main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("keras-seqcells train: error: Expected the training backup in ")
    assert "does not match its SHA-256" in line


def _model(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((None, 2)), ks.LSTM(3), keras.layers.Dense(1)])


def test_a_failed_save_leaves_the_previous_model(tmp_path, monkeypatch):
    path = tmp_path / "model.keras"
    first = _model(0)
    save_atomically(first, path)
    saved = path.read_bytes()

    def failing_save(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"PK\x03\x04partial")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_atomically(_model(1), path)
    assert path.read_bytes() == saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


KILLED_SAVE = """
import os, signal, sys
from pathlib import Path
import keras
import keras_seqcells as ks
from keras_seqcells.tasks.files import save_atomically

path = Path(sys.argv[1])
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((None, 2)), ks.GRU(3), keras.layers.Dense(1)])
save_atomically(model, path)
real_save = keras.Model.save

def save_then_die(self, filepath, *args, **kwargs):
    real_save(self, filepath, *args, **kwargs)
    data = Path(filepath).read_bytes()
    Path(filepath).write_bytes(data[: len(data) // 2])  # killed mid-write
    os.kill(os.getpid(), signal.SIGKILL)

keras.Model.save = save_then_die
model.layers[-1].kernel.assign(model.layers[-1].kernel + 1.0)
save_atomically(model, path)
"""


def test_a_save_killed_with_sigkill_leaves_the_previous_model(tmp_path):
    path = tmp_path / "model.keras"
    result = subprocess.run(
        [sys.executable, "-c", KILLED_SAVE, str(path)],
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    model = cli.load_model(path)  # complete, verified and loadable in safe mode
    keras.utils.set_random_seed(0)
    expected = keras.Sequential([keras.Input((None, 2)), ks.GRU(3), keras.layers.Dense(1)])
    for actual, wanted in zip(model.get_weights(), expected.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, wanted)
    # Only a hidden temporary file may remain; nothing a loader would pick up.
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["model.keras"]
