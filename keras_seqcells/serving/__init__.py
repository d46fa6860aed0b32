"""Export to SavedModels for TensorFlow Serving, and checks that a server can run them.

`export(model, "saved_models/<name>")` writes the next version of a model in
the layout TensorFlow Serving watches, with signatures that take raw inputs
(`serving_default`, `serving_xla`, `step`, `initial_state`); `serve_check`
loads the newest version with TensorFlow's C++ loader and runs the example
requests, as REST bodies and as a gRPC `PredictRequest` too. See
`saved_models/README.md` for serving them.
"""

from keras_seqcells.serving.saved_model import (
    check_graph,
    export,
    model_folder,
    newest_version,
    read_examples,
    versions,
)
from keras_seqcells.serving.serve_check import ServeCheckError, serve_check
from keras_seqcells.serving.signatures import EXPORT_TASKS, StepError, detect_task

__all__ = [
    "EXPORT_TASKS",
    "ServeCheckError",
    "StepError",
    "check_graph",
    "detect_task",
    "export",
    "model_folder",
    "newest_version",
    "read_examples",
    "serve_check",
    "versions",
]
