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
before/after plot to `--output-dir`.

    python -m benchmarks.chrono_init                              # ~10 minutes, 2 CPU cores
    python -m benchmarks.chrono_init --timesteps 100 --steps 500  # quicker
"""

import argparse
import json
import pathlib

import numpy as np

from keras_seqcells.diagnostics.long_range import (
    BASELINE_MSE,
    INITIALISATIONS,
    train_adding,
)
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timesteps", type=int, default=200)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", default=",".join(INITIALISATIONS))
    parser.add_argument("--output-dir", default="runs/chrono_init")
    args = parser.parse_args(argv)
    output_dir = pathlib.Path(args.output_dir)
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
            seed=args.seed,
        )
        print(json.dumps(run.summary()), flush=True)
        runs[label] = run
    settings = {key: value for key, value in vars(args).items() if key != "output_dir"}
    results = {
        "settings": settings,
        "baseline_mse": BASELINE_MSE,
        "runs": {label: run.summary() for label, run in runs.items()},
        "losses": {label: run.losses for label, run in runs.items()},
        "flow_before": {label: run.flow_before.tolist() for label, run in runs.items()},
        "flow_after": {label: run.flow_after.tolist() for label, run in runs.items()},
    }
    (output_dir / "results.json").write_text(json.dumps(results, indent=1))
    markdown = table(results["runs"], results["losses"], args.steps)
    (output_dir / "results.md").write_text(markdown + "\n")
    plot_initialisations(
        runs,
        output_dir / "chrono_init.png",
        f"adding problem, T={args.timesteps}, {args.units} units, Adam "
        f"{args.learning_rate:g}, batch {args.batch_size}, seed {args.seed}",
    )
    print(markdown)
    print(f"written: {output_dir}/results.json, results.md, chrono_init.png")


if __name__ == "__main__":
    main()
