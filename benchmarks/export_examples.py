"""Regenerates the example exports in `saved_models/`, one small model per task.

Each model is trained briefly (a few hundred examples of the task's shipped
data, one or two epochs, 16 units) so that the exports stay small; they show
the layout and the signatures, not good models (train with the recommended
settings for those, then `keras-seqcells export`). Every export is checked
with `serve_check` against its Keras model before the command ends.

    python -m benchmarks.export_examples              # into saved_models/
    python -m benchmarks.export_examples --only tagging
"""

import argparse
import os
import pathlib
import tempfile

from keras_seqcells.serving import export, serve_check
from keras_seqcells.tasks import get_task

#: Folder name, task options, training settings and example limit of each task.
EXAMPLES = {
    "text-classification": (
        "text_classifier",
        {"max_tokens": 2000, "embedding_dim": 16},
        {"cell": "gru", "epochs": 2},
        600,
    ),
    "tagging": (
        "tagger",
        {"max_tokens": 2000, "embedding_dim": 16, "feature_bins": 200, "feature_dim": 8},
        {"cell": "gru", "epochs": 2},
        300,
    ),
    "next-word": (
        "next_word",
        {"max_vocabulary": 500, "embedding_dim": 16},
        {"cell": "lstm", "epochs": 1, "batch_size": 32},
        200,
    ),
    "forecasting": ("forecaster", {"reference": "none"}, {"cell": "gru", "epochs": 2}, None),
}


def build(task_name, run_dir):
    """Trains the small model of a task; returns it."""
    _, options, settings, limit = EXAMPLES[task_name]
    task = get_task(task_name, **options)
    settings = task.settings(units=16, output_dir=str(run_dir), verbose=0, **settings)
    return task.train(settings, limit=limit).model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(EXAMPLES), action="append")
    parser.add_argument("--folder", default="saved_models", help="a relative folder")
    args = parser.parse_args(argv)
    for task_name in args.only or EXAMPLES:
        name = EXAMPLES[task_name][0]
        with tempfile.TemporaryDirectory() as run_dir:
            model = build(task_name, pathlib.Path(run_dir))
        path = export(model, os.path.join(args.folder, name), version=1, overwrite=True)
        serve_check(path, model=model)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        print(f"{task_name}: {path} ({size / 1e6:.2f} MB), serve-check OK")


if __name__ == "__main__":
    main()
