"""Trains each task's model with its recommended settings and ships it in `saved_models/`.

For every task it trains the model of the README results table (the task's
recommended settings and cell, on the shipped data, seed 0), writes that
row of the table (`benchmarks/results/task-results.md`, as
`benchmarks.task_results` does), exports the model into
`saved_models/<name>/1`, checks the export with `serve_check` against the
Keras model, and stores beside it `assets.extra/keras_seqcells_heldout.json`:
the held-out metric, the task's options and training settings, and a few
held-out inputs with the Keras model's answers (which
`tests/test_shipped_exports.py` asks the export again). The recommended
models fit a repository as they are (the `shipped-exports` block of
`saved_models/README.md` gives their sizes and how long a run took), so
their vocabularies are not trimmed: a trimmed model would no longer be the
one whose metric the table reports.

    python -m benchmarks.export_examples              # all four tasks
    python -m benchmarks.export_examples --only tagging

Rerun it after changing a task (its defaults or recommended settings): the
shipped-export tests fail until the exports match the task again.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import platform
import tempfile
import time

import numpy as np

from benchmarks import task_results
from benchmarks.readme_blocks import write_block
from keras_seqcells.serving import export, serve_check
from keras_seqcells.serving.serve_check import keras_answers
from keras_seqcells.tasks import get_task

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: The export folder of each task's model under `saved_models/`.
EXPORT_NAMES = {
    "text-classification": "text_classifier",
    "forecasting": "forecaster",
    "tagging": "tagger",
    "next-word": "next_word",
}
#: Where an export keeps its held-out record (TF Serving ignores `assets.extra`).
HELDOUT_FILE = pathlib.Path("assets.extra") / "keras_seqcells_heldout.json"
#: Held-out inputs recorded per export.
HELDOUT_INPUTS = 4
#: Settings that say where and how verbosely to train, or which values a task
#: may adapt, not what is trained (the adapted values themselves are recorded).
RUN_ONLY_SETTINGS = ("output_dir", "verbose", "adaptable")


def task_options(task):
    """The task's constructor options, as JSON holds them."""
    return json.loads(json.dumps(vars(task), default=str))


def recorded_settings(settings):
    """The training settings that decide the model, as JSON holds them."""
    values = dataclasses.asdict(settings)
    # Float32 (or the global policy, None) is what every record before the
    # setting existed was trained under: such records leave it out.
    if values.get("dtype_policy") in (None, "float32"):
        values.pop("dtype_policy", None)
    return json.loads(
        json.dumps({key: value for key, value in values.items() if key not in RUN_ONLY_SETTINGS})
    )


def heldout_request(task_name, task, data, count=HELDOUT_INPUTS):
    """A `serving_default` request of the first `count` inputs of the test split."""
    if task_name == "text-classification":
        return {"text": [str(text) for text in data.test_texts[:count]]}
    if task_name == "tagging":
        return {"sentence": [" ".join(sentence) for sentence in data.test_sentences[:count]]}
    if task_name == "next-word":
        prompts, length = [], 8
        ids = data.test_ids
        for start in range(0, len(ids) - length, 97):
            window = ids[start : start + length]
            if np.all(window != 0):  # prompts of known words only
                prompts.append(" ".join(data.vocabulary[i] for i in window))
            if len(prompts) == count:
                break
        return {"prompt": prompts}
    if task_name == "forecasting":
        return {"window": data.inputs("test")[:count, :, 0].tolist()}
    raise ValueError(f"Expected one of {sorted(EXPORT_NAMES)}. Received: task={task_name!r}")


def _jsonable(answers):
    def convert(value):
        if isinstance(value, np.ndarray):
            return convert(value.tolist())
        if isinstance(value, (list, tuple)):
            return [convert(item) for item in value]
        if isinstance(value, bytes):
            return value.decode()
        if isinstance(value, (np.floating, np.integer)):
            return value.item()
        return value

    return {name: convert(value) for name, value in answers.items()}


def answers_from_record(task_name, answers):
    """The recorded Keras answers in the form `serve_check.compare_with_keras` takes."""
    if task_name == "tagging":
        return answers
    converted = {}
    for name, value in answers.items():
        array = np.asarray(value)
        converted[name] = array.astype(object) if array.dtype.kind in "USO" else array
    if task_name == "text-classification":
        converted["probabilities"] = converted["probabilities"].astype("float32")
    return converted


def write_json_atomically(record, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as file:
        json.dump(record, file, indent=1)
    os.chmod(file.name, 0o644)
    os.replace(file.name, path)


def ship(task_name, folder, run_dir):
    """Trains, records, exports and checks one task's model; returns `(path, table row)`."""
    start = time.perf_counter()
    task = get_task(task_name)
    settings = task.settings(output_dir=str(run_dir), verbose=2)
    result = task.train(settings)
    data = task.load_data(seed=settings.seed)
    row = task_results.table_row(task, settings.cell, result)
    path = export(
        result.model, pathlib.Path(folder) / EXPORT_NAMES[task_name], version=1, overwrite=True
    )
    serve_check(path, model=result.model)
    request = heldout_request(task_name, task, data)
    record = {
        "task": task_name,
        "metric": task.metric,
        "value": result.metrics[task.metric],
        "cell": settings.cell,
        "epochs_run": len(result.history["loss"]),
        "task_options": task_options(task),
        "settings": recorded_settings(settings),
        "inputs": request,
        "answers": _jsonable(keras_answers(result.model, task_name, request)),
        "seconds": time.perf_counter() - start,
        "machine": f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}",
    }
    write_json_atomically(record, path / HELDOUT_FILE)
    return path, row


def export_size(path):
    """Bytes of the files of an export folder."""
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file())


def shipped_table(folder):
    """The `shipped-exports` block: one row per shipped export, read from its record."""
    folder = pathlib.Path(folder)
    rows, total, seconds, machines = [], 0, 0.0, set()
    for task_name, name in EXPORT_NAMES.items():
        record_path = folder / name / "1" / HELDOUT_FILE
        if not record_path.is_file():
            continue
        record = json.loads(record_path.read_text())
        size = export_size(folder / name)
        total += size
        seconds += record["seconds"]
        machines.add(record["machine"])
        rows.append(
            f"| `{name}/1` | {task_name} | {record['cell']} | {record['metric']} "
            f"{record['value']:.3f} | {record['epochs_run']} | {size / 1e6:.1f} MB |"
        )
    return "\n".join(
        [
            "| export | task | cell | held-out metric | epochs | size |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            f"{total / 1e6:.1f} MB in all. Training, exporting and checking them took "
            f"{seconds / 60:.0f} minutes, summed over the exports, on "
            f"{', '.join(sorted(machines))} (`python -m benchmarks.export_examples` "
            "regenerates them).",
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(EXPORT_NAMES), action="append")
    parser.add_argument(
        "--folder", default=str(ROOT / "saved_models"), help="where the model folders go"
    )
    args = parser.parse_args(argv)
    for task_name in args.only or EXPORT_NAMES:
        with tempfile.TemporaryDirectory() as run_dir:
            path, row = ship(task_name, args.folder, pathlib.Path(run_dir))
        # Row by row, so that the table always describes the exports on disk.
        task_results.update_readme([row])
        size = export_size(path)
        print(f"{task_name}: {path} ({size / 1e6:.2f} MB), serve-check OK", flush=True)
    if pathlib.Path(args.folder).resolve() == (ROOT / "saved_models").resolve():
        write_block("shipped-exports", shipped_table(args.folder))


if __name__ == "__main__":
    main()
