"""Training under `mixed_bfloat16` against float32, on this CPU.

Each cell's layer is timed in one training step (forward, backward, Adam,
MSE; B=64, T=100, D=32, a Dense(1) head) twice: with the default float32
policy and with `mixed_bfloat16` (bfloat16 products, float32 weights and
recurrent state), the two models' steps interleaved so that both see the same
machine load. The ratio is the bfloat16 time over the float32 time (below 1:
bfloat16 is faster). Whether the CPU has bfloat16 matrix units (AMX,
AVX-512 BF16) is read from /proc/cpuinfo and printed.

    python -m benchmarks.bfloat16 [--h 128 512] [--update-readme]
"""

import argparse
import os

import keras

from benchmarks.readme_blocks import load_sentence, write_block
from benchmarks.rnn import CELLS, FEATURES, _inputs, interleaved_medians, machine

BATCH, TIMESTEPS = 64, 100
POLICIES = ("float32", "mixed_bfloat16")


def cpu_bfloat16_units():
    """The bfloat16 instruction sets this CPU reports (empty where unknown)."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return []
    return [flag for flag in ("amx_bf16", "avx512_bf16") if flag in flags]


def training_model(cell, units, policy):
    """`cell`'s layer and a Dense(1) head under `policy`, compiled for training."""
    layer_class = CELLS[cell][0]
    model = keras.Sequential(
        [
            keras.Input((TIMESTEPS, FEATURES)),
            layer_class(units, dtype=policy),
            keras.layers.Dense(1, dtype=policy),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def measure(cells, units, repeats):
    """Rows `{"cell", "units", "float32", "mixed_bfloat16", "ratio", "load"}` (seconds)."""
    rows = []
    x, y = _inputs(BATCH, TIMESTEPS)
    for hidden in units:
        for cell in cells:
            models = {policy: training_model(cell, hidden, policy) for policy in POLICIES}
            steps = {
                policy: (lambda model=model: model.train_on_batch(x, y))
                for policy, model in models.items()
            }
            medians = interleaved_medians(steps, repeats)
            rows.append(
                {
                    "cell": cell,
                    "units": hidden,
                    **medians,
                    "ratio": medians["mixed_bfloat16"] / medians["float32"],
                    "load": os.getloadavg()[0],
                }
            )
    return rows


def table(rows, description, repeats):
    units = cpu_bfloat16_units()
    lines = [
        f"Measured by `python -m benchmarks.bfloat16` on {description}; bfloat16 units: "
        f"{', '.join(units) or 'none reported'}. {load_sentence([row['load'] for row in rows])}. "
        f"One training step, B={BATCH}, T={TIMESTEPS}, D={FEATURES}, medians of {repeats} "
        "interleaved repeats; ratio = `mixed_bfloat16` time / float32 time.",
        "",
        "| cell | H | float32 ms | mixed_bfloat16 ms | ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['cell']} | {row['units']} | {1e3 * row['float32']:.1f} "
            f"| {1e3 * row['mixed_bfloat16']:.1f} | {row['ratio']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--h", type=int, nargs="+", default=[128, 512], help="hidden sizes")
    parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated cells")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    cells = [cell for cell in args.cells.split(",") if cell]
    unknown = sorted(set(cells) - set(CELLS))
    if unknown:
        parser.error(f"Expected cells among {sorted(CELLS)}. Received: cells={unknown}")
    rows = measure(cells, args.h, args.repeats)
    text = table(rows, machine(), args.repeats)
    print(text)
    if args.update_readme:
        write_block("bfloat16", text)
    return rows


if __name__ == "__main__":
    main()
