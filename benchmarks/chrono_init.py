"""Measures the effect of the gate-bias initialisation on a long-range task.

Trains the adding-problem model (T = 200 by default) from each
initialisation of `keras_seqcells.diagnostics.long_range.INITIALISATIONS`
(LSTM with forget bias 0, 1 (Keras's default) and chrono; GRU with update
bias 0 (default) and chrono), with the same seed, batches and steps, and
reports the training loss (moving average over 50 steps) at the end and the
first step where it falls below 0.1 (predicting the mean scores 1/6), the
held-out loss, the fraction of held-out sequences solved (within 0.04 of the
target) and the gradient-flow ratio `||dL/dh_1|| / ||dL/dh_T||` before and
after training. Writes the numbers (JSON), a Markdown table and the
before/after plot to `--output-dir`, and with `--write-block` the README's
`chrono-init` block (`benchmarks/results/chrono-init.md`): the table of the
first seed, the held-out MSE of every seed, and the numbers the README's
discussion quotes.

    python -m benchmarks.chrono_init --write-block               # 7-10 minutes a seed, 2 cores
    python -m benchmarks.chrono_init --seeds 0,1 --write-block   # two seeds
    python -m benchmarks.chrono_init --timesteps 100 --steps 500 # quicker, no block
"""

import argparse
import json
import pathlib

import numpy as np

from benchmarks.readme_blocks import write_block
from keras_seqcells.diagnostics.adding import BASELINE_MSE
from keras_seqcells.diagnostics.long_range import INITIALISATIONS, train_adding
from keras_seqcells.diagnostics.plots import plot_initialisations

NAMES = {
    "lstm_forget_bias_0": "LSTM, forget bias 0",
    "lstm": "LSTM, forget bias 1 (default)",
    "lstm_chrono": "LSTM, `chrono_init=T`",
    "gru": "GRU, update bias 0 (default)",
    "gru_chrono": "GRU, `chrono_init=T`",
}


def _moving_average(losses, window=50):
    window = min(window, len(losses))
    return np.convolve(losses, np.ones(window) / window, mode="valid"), window


def _ratio(value):
    return "0 (underflow)" if value == 0 else f"{value:.2g}"


def table(summaries, losses, steps):
    """The Markdown table: `summaries` and `losses` map each label to its run's."""
    lines = [
        f"| initialisation | training MSE after {steps} steps | held-out MSE | solved "
        "| MSE below 0.1 from step | `‖dL/dh_1‖ / ‖dL/dh_T‖`, init → trained |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, summary in summaries.items():
        smoothed, window = _moving_average(losses[label])
        below = np.flatnonzero(smoothed < 0.1)
        learns = str(int(below[0]) + window) if below.size else "never"
        lines.append(
            f"| {NAMES.get(label, label)} | {smoothed[-1]:.2g} | {summary['test_loss']:.2g} "
            f"| {summary['test_accuracy']:.0%} | {learns} "
            f"| {_ratio(summary['ratio_before'])} → {_ratio(summary['ratio_after'])} |"
        )
    return "\n".join(lines)


def _learns_from(losses):
    smoothed, window = _moving_average(losses)
    below = np.flatnonzero(smoothed < 0.1)
    return int(below[0]) + window if below.size else None


def block(results_by_seed, settings):
    """The README block: the first seed's table, then every seed's held-out MSE."""
    seeds = list(results_by_seed)
    first = results_by_seed[seeds[0]]
    runs = first["runs"]
    lines = [
        f"Measured by `python -m benchmarks.chrono_init --seeds {','.join(map(str, seeds))} "
        f"--write-block` (T = {settings['timesteps']}, {settings['units']} units, "
        f"{settings['steps']} Adam steps of {settings['batch_size']} sequences; 2 CPU cores, "
        "x86_64).",
        "",
        table(runs, first["losses"], settings["steps"]).replace(
            "| initialisation |", f"| initialisation (seed {seeds[0]}) |", 1
        ),
        "",
        "Held-out MSE by seed (and the step from which the training MSE stays below 0.1):",
        "",
        "| initialisation | " + " | ".join(f"seed {seed}" for seed in seeds) + " |",
        "| --- |" + " --- |" * len(seeds),
    ]
    for label in runs:
        cells = []
        for seed in seeds:
            result = results_by_seed[seed]
            learns = _learns_from(result["losses"][label])
            cells.append(
                f"{result['runs'][label]['test_loss']:.2g} "
                f"({'never' if learns is None else f'from step {learns}'})"
            )
        lines.append(f"| {NAMES.get(label, label)} | " + " | ".join(cells) + " |")
    if {"lstm", "lstm_chrono", "gru", "gru_chrono"} <= set(runs):
        default_learns = _learns_from(first["losses"]["gru"])
        chrono_learns = _learns_from(first["losses"]["gru_chrono"])
        sooner = (
            f"{default_learns - chrono_learns} steps sooner"
            if None not in (default_learns, chrono_learns)
            else "see the table"
        )
        lines += [
            "",
            f"With seed {seeds[0]}: the default LSTM's gradient ratio at initialisation is "
            f"{_ratio(runs['lstm']['ratio_before'])}, the chrono-initialised LSTM's "
            f"{_ratio(runs['lstm_chrono']['ratio_before'])} (held-out MSE "
            f"{runs['lstm_chrono']['test_loss']:.2g} after training against "
            f"{runs['lstm']['test_loss']:.2g}); the default GRU's ratio goes from "
            f"{_ratio(runs['gru']['ratio_before'])} to {_ratio(runs['gru']['ratio_after'])} "
            f"in training, the chrono GRU starts at {_ratio(runs['gru_chrono']['ratio_before'])} "
            f"and gets below an MSE of 0.1 {sooner}.",
        ]
    if len(seeds) == 1:
        lines += [
            "",
            "One seed only (a run of this script takes about 7-10 minutes a seed on 2 CPU "
            "cores); `--seeds 0,1` adds a column per seed.",
        ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timesteps", type=int, default=200)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    parser.add_argument("--labels", default=",".join(INITIALISATIONS))
    parser.add_argument("--output-dir", default="runs/chrono_init")
    parser.add_argument(
        "--write-block",
        action="store_true",
        help="write the README's chrono-init block (only with the default settings)",
    )
    args = parser.parse_args(argv)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    settings = {
        key: value for key, value in vars(args).items() if key not in ("output_dir", "write_block")
    }
    results_by_seed = {}
    for seed in seeds:
        output_dir = pathlib.Path(args.output_dir) / f"seed-{seed}"
        output_dir.mkdir(parents=True, exist_ok=True)
        runs = {}
        for label in args.labels.split(","):
            run = train_adding(
                label,
                timesteps=args.timesteps,
                units=args.units,
                steps=args.steps,
                batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                seed=seed,
            )
            print(json.dumps({"seed": seed, **run.summary()}), flush=True)
            runs[label] = run
        results = {
            "settings": {**settings, "seed": seed},
            "baseline_mse": BASELINE_MSE,
            "runs": {label: run.summary() for label, run in runs.items()},
            "losses": {label: run.losses for label, run in runs.items()},
            "flow_before": {label: run.flow_before.tolist() for label, run in runs.items()},
            "flow_after": {label: run.flow_after.tolist() for label, run in runs.items()},
        }
        results_by_seed[seed] = results
        (output_dir / "results.json").write_text(json.dumps(results, indent=1))
        markdown = table(results["runs"], results["losses"], args.steps)
        (output_dir / "results.md").write_text(markdown + "\n")
        plot_initialisations(
            runs,
            output_dir / "chrono_init.png",
            f"adding problem, T={args.timesteps}, {args.units} units, Adam "
            f"{args.learning_rate:g}, batch {args.batch_size}, seed {seed}",
        )
        print(markdown)
        print(f"written: {output_dir}/results.json, results.md, chrono_init.png")
    if args.write_block:
        defaults = vars(parser.parse_args([]))
        changed = [
            key
            for key in ("timesteps", "units", "steps", "batch_size", "learning_rate", "labels")
            if getattr(args, key) != defaults[key]
        ]
        if changed:
            parser.error(f"--write-block runs with the default settings; changed: {changed}")
        write_block("chrono-init", block(results_by_seed, settings))


if __name__ == "__main__":
    main()
