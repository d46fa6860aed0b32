"""Data-parallel training, checked from inside the training step.

`MirroredStrategy` on 2 logical CPU devices and `MultiWorkerMirroredStrategy`
with 2 worker processes on 127.0.0.1. Devices must be configured before
TensorFlow initialises them, so every run is a subprocess. Each training step
records, from inside the traced step, its replica id, the number of replicas
in sync and the batch it received (`tests/scripts/distributed_step.py`,
`tests/scripts/fault_training.py --steps-file`): a strategy that were created
but ignored shows 1 replica and the whole global batch, which these tests
refuse (`test_an_ignored_strategy_is_detected` runs that case).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.test_faults import SCRIPT, _finish, _start

ROOT = Path(__file__).resolve().parent.parent
STEP_SCRIPT = ROOT / "tests" / "scripts" / "distributed_step.py"
GLOBAL_BATCH = 16  # distributed_step.py's, and fault_training.py's batch_size
RUN = ["--devices", 2, "--dropout", 0, "--limit", 64]


def _environment(**extra):
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def _step_run(mode, folder, **environment):
    output = Path(folder) / f"{mode}.json"
    process = subprocess.Popen(
        [sys.executable, str(STEP_SCRIPT), mode, str(output)],
        cwd=ROOT,
        env=_environment(**environment),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    return process, output


def _wait_all(runs, timeout):
    """Waits for every `(process, output)`; kills them all if one fails or time runs out."""
    deadline = time.monotonic() + timeout
    try:
        results = []
        for process, output in runs:
            _, stderr = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert process.returncode == 0, stderr[-3000:]
            results.append(json.loads(output.read_text()))
        return results
    finally:
        for process, _ in runs:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()


def _assert_replicated(steps, replicas):
    """Every step ran on `replicas` replicas, each with its share of the global batch."""
    assert steps, "no training step was recorded"
    assert {count for _, count, _ in steps} == {replicas}, steps
    assert {replica for replica, _, _ in steps} == set(range(replicas)), steps
    assert {batch for _, _, batch in steps} == {GLOBAL_BATCH // replicas}, steps


def _assert_same_weights(actual, expected, atol):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(np.array(a), np.array(e), rtol=0, atol=atol)


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
    """The unshuffled small run on one device, without a strategy."""
    (result,) = _wait_all([_step_run("single", tmp_path_factory.mktemp("single"))], 300)
    _assert_replicated(result["steps"], 1)
    return result


def test_mirrored_steps_run_on_two_replicas_with_all_reduced_gradients(tmp_path, single_device):
    """Inside the training step: 2 replicas in sync, each given 8 of the 16
    examples. Each replica computes its gradient on its half only, so ending
    at the one-device weights (to float32 rounding) after 8 steps needs the
    gradients summed across replicas; and every variable's two copies are
    identical."""
    (mirrored,) = _wait_all([_step_run("mirrored", tmp_path)], 300)
    _assert_replicated(mirrored["steps"], 2)
    assert len(mirrored["steps"]) == 2 * len(single_device["steps"])
    assert set(mirrored["copies"]) == {2}
    assert all(mirrored["in_sync"])
    _assert_same_weights(mirrored["weights"], single_device["weights"], atol=1e-6)


@pytest.mark.slow
def test_an_ignored_strategy_is_detected(tmp_path):
    """The model built outside the strategy's scope (the strategy ignored):
    the steps show 1 replica and the whole batch, which the checks refuse."""
    (ignored,) = _wait_all([_step_run("mirrored-ignored", tmp_path)], 300)
    with pytest.raises(AssertionError):
        _assert_replicated(ignored["steps"], 2)
    assert set(ignored["copies"]) == {1}


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.slow
def test_two_workers_end_at_the_weights_of_one_worker(tmp_path, single_device):
    """Two worker processes on 127.0.0.1 with `TF_CONFIG` train with
    `MultiWorkerMirroredStrategy` (8 examples a step each, gradients
    all-reduced between the processes) and end at the weights of one process
    trained on the same global batches; bounded at 5 minutes, and both
    workers are killed if one fails."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    runs = []
    for index in range(2):
        folder = tmp_path / f"worker{index}"
        folder.mkdir()
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        runs.append(_step_run("worker", folder, TF_CONFIG=json.dumps(config)))
    workers = _wait_all(runs, 300)
    for index, worker in enumerate(workers):
        # Each process records its own replica: its index in the cluster.
        assert {count for _, count, _ in worker["steps"]} == {2}, worker["steps"]
        assert {replica for replica, _, _ in worker["steps"]} == {index}
        assert {batch for _, _, batch in worker["steps"]} == {GLOBAL_BATCH // 2}
        assert len(worker["steps"]) == len(single_device["steps"])
        _assert_same_weights(worker["weights"], single_device["weights"], atol=1e-6)
    _assert_same_weights(workers[0]["weights"], workers[1]["weights"], atol=0)


def _steps(path):
    return [[int(field) for field in line.split()] for line in path.read_text().splitlines()]


def _losses(log):
    (line,) = [line for line in log.splitlines() if line.startswith("loss: ")]
    return np.array(json.loads(line[len("loss: ") :]))


def _result(folder):
    import keras_seqcells.tasks  # noqa: F401  (registers the task layers)

    model = keras.saving.load_model(Path(folder) / "model.keras", safe_mode=True)
    metrics = json.loads((Path(folder) / "metrics.json").read_text())["metrics"]
    return model.get_weights(), metrics


def test_task_training_under_mirrored_strategy_runs_on_two_replicas(tmp_path):
    """`Task.train(..., strategy=MirroredStrategy())` runs every training step on
    2 replicas, each given at most half of the global batch of 16, and ends
    close to the same training on one device (not bit for bit: the replicas
    add their gradients in another order, and `tf.data` draws the reshuffled
    epoch orders of a distributed dataset differently)."""
    single_steps, mirrored_steps = tmp_path / "single.steps", tmp_path / "mirrored.steps"
    single = _start(SCRIPT, tmp_path / "single", *RUN, "--steps-file", single_steps)
    mirrored = _start(
        SCRIPT, tmp_path / "mirrored", *RUN, "--distribute", "--steps-file", mirrored_steps
    )
    single_log, mirrored_log = _finish(single), _finish(mirrored)
    assert re.search(r"^replicas: 2$", mirrored_log, re.MULTILINE), mirrored_log

    steps = _steps(mirrored_steps)
    assert {count for _, count, _ in steps} == {2}, steps
    assert {replica for replica, _, _ in steps} == {0, 1}
    assert max(batch for _, _, batch in steps) == GLOBAL_BATCH // 2
    local = _steps(single_steps)
    assert {count for _, count, _ in local} == {1}
    assert max(batch for _, _, batch in local) == GLOBAL_BATCH

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
