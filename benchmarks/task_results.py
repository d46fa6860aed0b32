"""Trains every task with every cell type and writes the README's results table.

For each task and cell (`simple_rnn`, `lstm`, `gru`) it trains with the task's
recommended settings on the shipped data, then reports the held-out metric
beside the task's baselines, the epochs run and the training time. The table
goes to `benchmarks/results/task-results.md` and the README block of that
name; a run of some tasks or cells replaces only their rows and keeps the
others.

    python -m benchmarks.task_results                  # all tasks (tens of minutes)
    python -m benchmarks.task_results --task tagging   # one task
"""

import argparse
import os
import pathlib
import platform

from benchmarks.readme_blocks import result_path, write_block
from keras_seqcells.tasks import CELL_LAYERS, TASKS, get_task

BLOCK = "task-results"


def _format(value):
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def run(task_names, cells, output_root):
    rows = []
    for name in task_names:
        task = get_task(name)
        for cell in cells:
            output_dir = str(output_root / f"{name}-{cell}")
            settings = task.settings(cell=cell, output_dir=output_dir, verbose=2)
            rows.append(table_row(task, cell, task.train(settings)))
    return rows


def table_row(task, cell, result):
    """The table's row of a training run (a `TrainResult`) of `task` with `cell`."""
    baselines = ", ".join(
        f"{baseline} {_format(values[task.metric])}"
        for baseline, values in result.baselines.items()
    )
    return (
        f"| {task.name} | {cell} | {task.metric} {_format(result.metrics[task.metric])} | "
        f"{baselines} | {len(result.history['loss'])} | {result.seconds:.0f} s |"
    )


def table_values():
    """`{(task, cell): (metric name, value as written)}` of the committed table."""
    values = {}
    for line in result_path(BLOCK).read_text().splitlines():
        if line.startswith("| ") and not line.startswith(("| task |", "| --- |")):
            task, cell, model = (part.strip() for part in line.strip("|").split("|")[:3])
            metric, value = model.split(" ", 1)
            values[task, cell] = (metric, value)
    return values


def _key(row):
    """The (task, cell) of a table row."""
    return tuple(cell.strip() for cell in row.strip("|").split("|")[:2])


def merge_rows(old_rows, new_rows):
    """`old_rows` with the rows of `new_rows`' (task, cell) pairs replaced, in
    place; the new pairs not in `old_rows` come after the rest of their task
    (or at the end)."""
    new = {_key(row): row for row in new_rows}
    merged = [new.pop(_key(row), row) for row in old_rows]
    for key, row in new.items():
        same_task = [i for i, old in enumerate(merged) if _key(old)[0] == key[0]]
        merged.insert(same_task[-1] + 1 if same_task else len(merged), row)
    return merged


def update_readme(rows):
    old_rows = [
        line
        for line in result_path(BLOCK).read_text().splitlines()
        if line.startswith("| ") and not line.startswith(("| task |", "| --- |"))
    ]
    rows = merge_rows(old_rows, rows)
    machine = f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}"
    table = "\n".join(
        [
            f"Held-out results on the shipped data (measured on {machine}; "
            "regenerate with `python -m benchmarks.task_results`):",
            "",
            "| task | cell | model | baselines | epochs | training time |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    write_block(BLOCK, table)
    print(table)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), action="append")
    parser.add_argument("--cell", choices=sorted(CELL_LAYERS), action="append")
    parser.add_argument("--output-root", default="runs/results")
    args = parser.parse_args(argv)
    rows = run(
        args.task or list(TASKS),
        args.cell or ["simple_rnn", "lstm", "gru"],
        pathlib.Path(args.output_root),
    )
    update_readme(rows)


if __name__ == "__main__":
    main()
