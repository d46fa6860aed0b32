"""Text classification accuracy by seed: the README's per-seed table.

Trains the text-classification task (rt-polarity, the task's recommended
settings) with each cell and each seed; the seed draws the split, the
weights and dropout. Reports each held-out accuracy beside the bag-of-words
baseline's on the same split, and the means, in the README's `text-seeds`
block (`benchmarks/results/text-seeds.md`).

    python -m benchmarks.text_seeds                      # seeds 0, 1, 2: ~5 minutes on 2 CPU cores
    python -m benchmarks.text_seeds --seeds 0 --cells gru

A run whose `metrics.json` is already in `--output-dir` is not trained
again, so separate processes can train some seeds each (`--no-block`) and a
last call assembles the block from their results.
"""

import argparse
import json
import pathlib

from benchmarks.readme_blocks import write_block
from keras_seqcells.tasks import CELL_LAYERS, TextClassification

BASELINE = "bag-of-words logistic regression"


def block(accuracies, baselines, seeds, cells):
    seed_list = ", ".join(map(str, seeds))
    command = f"python -m benchmarks.text_seeds --seeds {','.join(map(str, seeds))}"
    if cells != ["simple_rnn", "lstm", "gru"]:
        command += f" --cells {','.join(cells)}"
    lines = [
        f"Measured by `{command}` "
        "(rt-polarity, the task's recommended settings; the seed draws the split, the weights "
        "and dropout; 2 CPU cores, x86_64). Held-out accuracy by seed "
        f"({seed_list}) and mean:",
        "",
        "| model | " + " | ".join(f"seed {seed}" for seed in seeds) + " | mean |",
        "| --- |" + " --- |" * (len(seeds) + 1),
    ]
    rows = {f"`{cell}`": accuracies[cell] for cell in cells}
    rows[BASELINE] = baselines
    for label, values in rows.items():
        mean = sum(values) / len(values)
        lines.append(
            f"| {label} | " + " | ".join(f"{value:.3f}" for value in values) + f" | {mean:.3f} |"
        )
    missing = [cell for cell in ("simple_rnn", "lstm", "gru") if cell not in cells]
    if missing:
        lines += [
            "",
            f"Not run here: {', '.join(f'`{cell}`' for cell in missing)} (the script's "
            "default runs all three cells).",
        ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--cells", default="simple_rnn,lstm,gru")
    parser.add_argument("--output-dir", default="runs/text_seeds")
    parser.add_argument("--no-block", action="store_true", help="train only; write no block")
    args = parser.parse_args(argv)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    cells = args.cells.split(",")
    unknown = sorted(set(cells) - set(CELL_LAYERS))
    if unknown:
        parser.error(f"unknown cells {unknown}; expected among {sorted(CELL_LAYERS)}")
    task = TextClassification()
    accuracies = {cell: [] for cell in cells}
    baselines = []
    for seed in seeds:
        for cell in cells:
            output_dir = pathlib.Path(args.output_dir) / f"{cell}-seed-{seed}"
            if not (output_dir / "metrics.json").exists():
                settings = task.settings(
                    cell=cell, seed=seed, output_dir=str(output_dir), verbose=0
                )
                task.train(settings)
            summary = json.loads((output_dir / "metrics.json").read_text())
            accuracies[cell].append(summary["metrics"]["accuracy"])
            print(f"seed {seed} {cell}: accuracy {accuracies[cell][-1]:.3f}", flush=True)
        baselines.append(summary["baselines"][BASELINE]["accuracy"])
    if args.no_block:
        return
    text = block(accuracies, baselines, seeds, cells)
    print(text)
    write_block("text-seeds", text)


if __name__ == "__main__":
    main()
