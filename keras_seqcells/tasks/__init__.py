"""Learning tasks on real data, one module per task, with shared training."""

from keras_seqcells.layers import CELL_LAYERS
from keras_seqcells.tasks.base import Task, TrainResult, TrainSettings
from keras_seqcells.tasks.data import DataError
from keras_seqcells.tasks.forecasting import Forecasting
from keras_seqcells.tasks.next_word import NextWord
from keras_seqcells.tasks.tagging import Tagging
from keras_seqcells.tasks.text_classification import TextClassification

TASKS = {task.name: task for task in (TextClassification, Forecasting, Tagging, NextWord)}


def get_task(name, **options):
    """Returns the task called `name` (e.g. `"text-classification"`)."""
    if name not in TASKS:
        raise ValueError(f"Expected `task` to be one of {sorted(TASKS)}. Received: task={name!r}")
    return TASKS[name](**options)


__all__ = [
    "CELL_LAYERS",
    "TASKS",
    "DataError",
    "Forecasting",
    "NextWord",
    "Tagging",
    "Task",
    "TextClassification",
    "TrainResult",
    "TrainSettings",
    "get_task",
]
