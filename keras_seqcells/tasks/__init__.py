"""Learning tasks on real data, one module per task, with shared training."""

import inspect

from keras_seqcells.layers import CELL_LAYERS

# Registers each task's export adapter.
from keras_seqcells.tasks import adapters  # noqa: F401
from keras_seqcells.tasks.base import DTYPE_POLICIES, Task, TrainResult, TrainSettings
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
    task_class = TASKS[name]
    accepted = sorted(
        parameter
        for parameter in inspect.signature(task_class).parameters
        if parameter not in ("self", "kwargs")
    )
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"Expected options of the {name} task among {accepted}. "
            f"Received unknown option(s): {', '.join(f'{key}={options[key]!r}' for key in unknown)}"
        )
    return task_class(**options)


__all__ = [
    "CELL_LAYERS",
    "DTYPE_POLICIES",
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
