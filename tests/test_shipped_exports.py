"""The exports shipped in `saved_models/`: the README table's models, answering like them.

`python -m benchmarks.export_examples` trains each task's model with its
recommended settings, exports it and records held-out inputs with the Keras
model's answers; these tests hold the committed exports to that record, to
the README results table and to the tasks' current settings.
"""

import json
import pathlib

import numpy as np
import pytest

from benchmarks import task_results
from benchmarks.export_examples import (
    EXPORT_NAMES,
    HELDOUT_FILE,
    answers_from_record,
    export_size,
    recorded_settings,
    task_options,
)
from keras_seqcells.serving.serve_check import CppLoaded, compare_with_keras
from keras_seqcells.tasks import get_task

SAVED_MODELS = pathlib.Path(__file__).resolve().parent.parent / "saved_models"
#: What a repository should carry: all shipped exports, and any one of them.
MAX_TOTAL_BYTES = 20_000_000
MAX_EXPORT_BYTES = 8_000_000
TASKS = sorted(EXPORT_NAMES)


def record(task_name):
    return json.loads((SAVED_MODELS / EXPORT_NAMES[task_name] / "1" / HELDOUT_FILE).read_text())


@pytest.mark.parametrize("task_name", TASKS)
def test_each_export_answers_like_its_keras_model_on_held_out_inputs(task_name):
    recorded = record(task_name)
    assert recorded["task"] == task_name
    inputs = recorded["inputs"]
    assert len(next(iter(inputs.values()))) >= 3
    with CppLoaded(SAVED_MODELS / EXPORT_NAMES[task_name] / "1") as loaded:
        got = loaded.run("serving_default", inputs)
    compare_with_keras(task_name, got, answers_from_record(task_name, recorded["answers"]))


@pytest.mark.parametrize("task_name", TASKS)
def test_each_held_out_metric_is_the_readme_tables(task_name):
    recorded = record(task_name)
    task = get_task(task_name)
    assert recorded["cell"] == task.settings().cell
    assert recorded["metric"] == task.metric
    table = task_results.table_values()
    assert table[task_name, recorded["cell"]] == (task.metric, f"{recorded['value']:.3f}")


@pytest.mark.parametrize("task_name", TASKS)
def test_each_export_was_trained_with_the_tasks_current_settings(task_name):
    # Fails after a change of a task's defaults or recommended settings until
    # `python -m benchmarks.export_examples` is rerun.
    recorded = record(task_name)
    task = get_task(task_name)
    assert recorded["settings"] == recorded_settings(task.settings())
    assert recorded["task_options"] == task_options(task)


def test_the_shipped_exports_fit_a_repository():
    sizes = {name: export_size(SAVED_MODELS / name) for name in EXPORT_NAMES.values()}
    assert all(0 < size < MAX_EXPORT_BYTES for size in sizes.values()), sizes
    assert sum(sizes.values()) < MAX_TOTAL_BYTES, sizes
    extra = [p for p in SAVED_MODELS.iterdir() if p.is_dir() and p.name not in sizes]
    assert extra == []


def test_the_shipped_text_classifier_tells_praise_from_scorn():
    with CppLoaded(SAVED_MODELS / "text_classifier" / "1") as loaded:
        got = loaded.run(
            "serving_default", {"text": ["a gorgeous, witty film", "a dull, lifeless mess"]}
        )
    assert [label.decode() for label in got["label"]] == ["positive", "negative"]
    assert np.all(np.max(got["probabilities"], axis=1) > 0.7)
