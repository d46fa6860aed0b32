"""Data-parallel training: a task trained under `tf.distribute.MirroredStrategy`
on 2 logical CPU devices matches the same training on one device.

The devices must be configured before TensorFlow initialises them, so each
run is a subprocess (`tests/scripts/fault_training.py --devices 2`). The
match is within a tolerance, not bit for bit: the replicas sum their
gradients in a different order, and `tf.data` draws the reshuffled epoch
orders of a distributed dataset differently from a local one.
"""

import json
import re
from pathlib import Path

import keras
import numpy as np

from tests.test_faults import SCRIPT, _finish, _start

RUN = ["--devices", 2, "--dropout", 0, "--limit", 64]


def _losses(log):
    (line,) = [line for line in log.splitlines() if line.startswith("loss: ")]
    return np.array(json.loads(line[len("loss: ") :]))


def _result(folder):
    import keras_seqcells.tasks  # noqa: F401  (registers the task layers)

    model = keras.saving.load_model(Path(folder) / "model.keras", safe_mode=True)
    metrics = json.loads((Path(folder) / "metrics.json").read_text())["metrics"]
    return model.get_weights(), metrics


def test_mirrored_training_on_two_devices_matches_one_device(tmp_path):
    single = _start(SCRIPT, tmp_path / "single", *RUN)
    mirrored = _start(SCRIPT, tmp_path / "mirrored", *RUN, "--distribute")
    single_log, mirrored_log = _finish(single), _finish(mirrored)
    assert re.search(r"^replicas: 2$", mirrored_log, re.MULTILINE), mirrored_log
    np.testing.assert_allclose(_losses(mirrored_log), _losses(single_log), rtol=0.03)
    single_weights, single_metrics = _result(tmp_path / "single")
    mirrored_weights, mirrored_metrics = _result(tmp_path / "mirrored")
    for mirrored_w, single_w in zip(mirrored_weights, single_weights, strict=True):
        np.testing.assert_allclose(mirrored_w, single_w, atol=0.05)
    for name in ("mae", "rmse"):
        np.testing.assert_allclose(mirrored_metrics[name], single_metrics[name], rtol=0.03)


def test_cli_trains_with_distribute(tmp_path, capsys):
    from keras_seqcells import cli

    argv = ["train", "forecasting", "--source", "airline-passengers", "--distribute"]
    argv += ["--units", "4", "--epochs", "1", "--limit", "32", "--quiet"]
    argv += ["--output-dir", str(tmp_path), "--task-option", "window=8"]
    argv += ["--task-option", "horizon=3", "--task-option", "min_epoch_windows=1"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert "held-out mae" in capsys.readouterr().out
    cli.load_model(tmp_path / "model.keras")
