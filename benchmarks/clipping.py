"""Gradient clipping against an exploding gradient: the README's clipping table.

Initialises the SimpleRNN adding-problem model (T = 100, 16 units, seed 0)
with orthogonal recurrent kernels times 3, where its gradient explodes, and
trains it for 20 plain SGD steps (learning rate 0.1, 32 fresh sequences a
step) without clipping, with `clipnorm=1` and with `clipvalue=0.1`
(`keras_seqcells.diagnostics.long_range.short_training_run`, what
`keras-seqcells gradients --recurrent-scale 3` runs). Writes the README's
`clipping` block (`benchmarks/results/clipping.md`).

    python -m benchmarks.clipping   # under a minute on 2 CPU cores
"""

import argparse

import numpy as np

from benchmarks.readme_blocks import write_block
from keras_seqcells.diagnostics.long_range import compare_gradient_flow, short_training_run

TIMESTEPS, UNITS, SCALE, STEPS, LEARNING_RATE = 100, 16, 3.0, 20, 0.1
CLIPPINGS = {"none": {}, "`clipnorm=1`": {"clipnorm": 1.0}, "`clipvalue=0.1`": {"clipvalue": 0.1}}


def block(first_step_gradient, runs):
    lines = [
        f"Measured by `python -m benchmarks.clipping`: with the recurrent kernels initialised "
        f"as orthogonal matrices times {SCALE:g}, the SimpleRNN's gradient at step 1 of "
        f"{TIMESTEPS} is `‖dL/dh_1‖` = {first_step_gradient:.2g}. {STEPS} plain SGD steps "
        f"(learning rate {LEARNING_RATE:g}) on it, seed 0:",
        "",
        "| clipping | loss, first → last step | largest gradient norm | largest weight after |",
        "| --- | --- | --- | --- |",
    ]
    for label, run in runs.items():
        note = " (diverged)" if run.diverged else ""
        lines.append(
            f"| {label} | {run.losses[0]:.3g} → {run.losses[-1]:.3g}{note} "
            f"| {max(run.gradient_norms):.2g} | {run.max_abs_weight:.3g} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    (flow,) = compare_gradient_flow(
        TIMESTEPS, UNITS, 32, seed=0, recurrent_scale=SCALE, cells=("simple_rnn",)
    ).values()
    runs = {
        label: short_training_run(
            "simple_rnn",
            TIMESTEPS,
            UNITS,
            SCALE,
            steps=STEPS,
            learning_rate=LEARNING_RATE,
            seed=0,
            **options,
        )
        for label, options in CLIPPINGS.items()
    }
    text = block(float(np.asarray(flow["h"])[0]), runs)
    print(text)
    write_block("clipping", text)


if __name__ == "__main__":
    main()
