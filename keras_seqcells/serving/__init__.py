"""Export to SavedModels for TensorFlow Serving, and checks of what a server would load.

`export(model, path)` writes the next version of a model under `path`
(absolute, such as `/models/<name>`, or relative; `model_folder(root, name)`
for a name that comes from outside) in the layout TensorFlow Serving
watches, with signatures that take raw inputs (`serving_default`,
`serving_xla`, `step`, `initial_state`). `serve_check` loads the newest
version with `tf.compat.v1.saved_model.loader` (Python over TensorFlow's C++
session, not TensorFlow Serving's own loader), runs the example requests,
checks REST bodies and a gRPC `PredictRequest` round trip (no server), and
runs `saved_model_cli` and `tf.saved_model.load` in fresh processes without
keras_seqcells. See `saved_models/README.md` for serving them.

What each task's signatures take and return is its export adapter's (see
`keras_seqcells.serving.adapters`): the task modules register theirs, and a
model built by a task keeps the task's name (`TaskModel`).
"""

from keras_seqcells.serving.adapters import (
    ExportAdapter,
    TaskModel,
    adapter_for,
    register_adapter,
)
from keras_seqcells.serving.saved_model import (
    check_graph,
    export,
    model_folder,
    newest_version,
    read_examples,
    versions,
)
from keras_seqcells.serving.serve_check import ServeCheckError, serve_check
from keras_seqcells.serving.signatures import StepError, detect_task


def __getattr__(name):
    # Read from the registry when asked for: the task modules register their
    # adapters when they are imported, which this package does only then.
    if name == "EXPORT_TASKS":
        from keras_seqcells.serving.adapters import export_tasks

        return export_tasks()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EXPORT_TASKS",
    "ExportAdapter",
    "ServeCheckError",
    "StepError",
    "TaskModel",
    "adapter_for",
    "check_graph",
    "detect_task",
    "export",
    "model_folder",
    "newest_version",
    "read_examples",
    "register_adapter",
    "serve_check",
    "versions",
]
