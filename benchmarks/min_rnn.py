"""Training-step time of MinGRU's parallel scan against step loops, as T grows.

Measures, in one run, one training step (`model.train_on_batch`: forward,
backward, Adam, MSE loss) of `Input -> layer -> Dense(1)` with B=32, D=32,
H=128 for

- `keras_seqcells.MinGRU(parallel=True)`: the parallel scan in log space;
- `keras_seqcells.MinGRU(parallel=False)`: the same equations, step by step;
- `keras_seqcells.GRU`: the full GRU (gates read `h_{t-1}`), step by step;
- `keras.layers.GRU` (`reset_after=True`): the reference of the ratios,

with their repeats interleaved round-robin after warm-up (so that all see
the same load on a shared machine), and reports medians and the ratio of
each to `keras.layers.GRU` (below 1: faster). The paper's speed-ups (Feng
et al., 2024) are against sequential loops on a GPU; on a CPU the scan's
log-space arithmetic and its `O(log T)` levels of slicing and interleaving
compete with a loop whose steps are small matrix products.

Usage:

    python -m benchmarks.min_rnn                   # T = 64, 256, 1024, 5 rounds
    python -m benchmarks.min_rnn --quick           # T = 32, 128, 2 rounds
    python -m benchmarks.min_rnn --quick --update-readme   # refresh the `min-rnn` block
"""

import argparse
import os

import keras
import numpy as np

import keras_seqcells
from benchmarks.readme_blocks import load_sentence, write_block
from benchmarks.rnn import interleaved_medians, machine

BATCH, FEATURES, UNITS = 32, 32, 128
REFERENCE = "keras.layers.GRU"
IMPLEMENTATIONS = {
    "MinGRU parallel": lambda units: keras_seqcells.MinGRU(units, parallel=True),
    "MinGRU sequential": lambda units: keras_seqcells.MinGRU(units, parallel=False),
    "GRU (keras_seqcells)": lambda units: keras_seqcells.GRU(units),
    REFERENCE: lambda units: keras.layers.GRU(units, reset_after=True),
}
FULL = {"timesteps": (64, 256, 1024), "rounds": 5}
QUICK = {"timesteps": (32, 128), "rounds": 2}


def _model(layer, timesteps, features):
    model = keras.Sequential([keras.Input((timesteps, features)), layer, keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", jit_compile="auto")
    return model


def measure(timesteps, rounds, batch=BATCH, features=FEATURES, units=UNITS, warmup=2):
    """Median seconds per training step of each implementation at each length.

    Args:
        timesteps: The sequence lengths to measure.
        rounds: Interleaved repeats per length (after `warmup` calls each).
        batch, features, units: The sizes B, D and H.
        warmup: Calls of each training step before the timed ones.

    Returns:
        A list of rows `{"timesteps", "implementation", "seconds", "ratio",
        "load"}`, the ratio being to `keras.layers.GRU` at the same length and
        the load the machine's 1-minute load average after that length.
    """
    rng = np.random.default_rng(0)
    rows = []
    for length in timesteps:
        x = rng.normal(size=(batch, length, features)).astype("float32")
        y = rng.normal(size=(batch, 1)).astype("float32")
        models = {
            name: _model(make(units), length, features) for name, make in IMPLEMENTATIONS.items()
        }
        medians = interleaved_medians(
            {name: (lambda m=m, x=x, y=y: m.train_on_batch(x, y)) for name, m in models.items()},
            rounds,
            warmup=warmup,
        )
        load = os.getloadavg()[0]
        for name, seconds in medians.items():
            rows.append(
                {
                    "timesteps": length,
                    "implementation": name,
                    "seconds": seconds,
                    "ratio": seconds / medians[REFERENCE],
                    "load": load,
                }
            )
    return rows


def _seconds(rows, length, implementation):
    return next(
        row["seconds"]
        for row in rows
        if row["timesteps"] == length and row["implementation"] == implementation
    )


def summary(rows):
    """One line on what the measurements show, computed from them."""
    lengths = sorted({row["timesteps"] for row in rows})
    longest = lengths[-1]
    scan_over_loop = [
        _seconds(rows, t, "MinGRU parallel") / _seconds(rows, t, "MinGRU sequential")
        for t in lengths
    ]
    against_keras = _seconds(rows, longest, "MinGRU parallel") / _seconds(rows, longest, REFERENCE)
    faster = [t for t, ratio in zip(lengths, scan_over_loop, strict=True) if ratio < 1]
    if len(faster) == len(lengths):
        where = "at every length measured"
    elif faster:
        where = f"at T = {', '.join(map(str, faster))} only"
    else:
        where = "at no length measured"
    default = (
        'as `parallel="auto"` picks on CPUs'
        if scan_over_loop[-1] > 1
        else 'which `parallel="auto"` does not pick on CPUs'
    )
    choice = "the step loop" if scan_over_loop[-1] > 1 else "the parallel scan"
    return (
        f"On this CPU the parallel scan takes {scan_over_loop[-1]:.2f}x the time of MinGRU's "
        f"own step loop at T = {longest} (it is faster {where}) and {against_keras:.2f}x that "
        f"of `keras.layers.GRU`: {choice} is the faster choice here, {default}; the "
        "paper's speed-ups are against sequential loops on GPUs, which this does not measure."
    )


def table(rows, description, command):
    """The markdown block: how it was measured, the table, and the summary line."""
    lines = [
        f"Measured by `{command}` on {description}. "
        f"{load_sentence([row['load'] for row in rows])}; the interleaved repeats share it. "
        f"One training step (forward, backward, Adam, MSE), B={BATCH}, D={FEATURES}, "
        f"H={UNITS}; medians; ratio = time / `{REFERENCE}`'s at the same T.",
        "",
        "| T | layer | ms / step | ratio |",
        "|---:|---|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['timesteps']} | {row['implementation']} | {1e3 * row['seconds']:.1f} "
            f"| {row['ratio']:.2f} |"
        )
    lines += ["", summary(rows)]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="T = 32, 128 and 2 rounds")
    parser.add_argument("--timesteps", type=int, nargs="+", help="sequence lengths to measure")
    parser.add_argument("--rounds", type=int, help="interleaved repeats per length")
    parser.add_argument("--update-readme", action="store_true", help="write the min-rnn block")
    args = parser.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    if args.timesteps:
        settings["timesteps"] = tuple(args.timesteps)
    if args.rounds:
        settings["rounds"] = args.rounds
    rows = measure(**settings)
    command = "python -m benchmarks.min_rnn" + (" --quick" if args.quick else "")
    text = table(rows, machine(), command)
    print(text)
    if args.update_readme:
        write_block("min-rnn", text)
    return rows


if __name__ == "__main__":
    main()
