"""Gradient flow through 100 steps at initialisation, for every cell: the README table.

Runs `keras_seqcells.diagnostics.long_range.compare_gradient_flow` (what
`keras-seqcells gradients` prints) on the adding problem, T = 100, 16 units,
32 sequences, seed 0, with the default recurrent initialisation and with
orthogonal recurrent kernels times 3, and writes the README's
`gradient-flow` block (`benchmarks/results/gradient-flow.md`).

    python -m benchmarks.gradient_flow   # under a minute on 2 CPU cores
"""

import argparse

from benchmarks.readme_blocks import write_block
from keras_seqcells.diagnostics.long_range import compare_gradient_flow

NAMES = {
    "simple_rnn": "SimpleRNN",
    "lstm": "LSTM",
    "gru": "GRU",
    "lstm_chrono": "LSTM, `chrono_init={timesteps}`",
    "gru_chrono": "GRU, `chrono_init={timesteps}`",
}


def _input_ratio(flow):
    return float(flow["x"][0] / flow["x"][-1])


def _power_of_ten(value):
    return f"{value:.1e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


def block(default, scaled, timesteps, units, examples, scale):
    lines = [
        f"Measured by `python -m benchmarks.gradient_flow` (adding problem, T = {timesteps}, "
        f"{units} units, {examples} sequences, seed 0, at initialisation):",
        "",
        "| cell | `‖dL/dh_1‖` | `‖dL/dh_T‖` | `‖dL/dx_1‖ / ‖dL/dx_T‖` "
        f"| with recurrent gain {scale:g} |",
        "| --- | --- | --- | --- | --- |",
    ]
    for cell, flow in default.items():
        gained = _input_ratio(scaled[cell])
        note = " (exploding)" if gained > 1 else ""
        lines.append(
            f"| {NAMES[cell].format(timesteps=timesteps)} | {flow['h'][0]:.2g} "
            f"| {flow['h'][-1]:.3g} | {_input_ratio(flow):.2g} | {gained:.2g}{note} |"
        )
    lines += [
        "",
        "The first input's influence on the loss, relative to the last one's "
        f"(`‖dL/dx_1‖ / ‖dL/dx_T‖`), is {_power_of_ten(_input_ratio(default['simple_rnn']))} "
        f"(SimpleRNN), {_power_of_ten(_input_ratio(default['lstm']))} (LSTM) and "
        f"{_power_of_ten(_input_ratio(default['gru']))} (GRU) with the default "
        f"initialisation. `chrono_init={timesteps}` multiplies the gradient reaching step 1, "
        f"`‖dL/dh_1‖`, by {_power_of_ten(default['lstm_chrono']['h'][0] / default['lstm']['h'][0])}"
        f" (LSTM) and {_power_of_ten(default['gru_chrono']['h'][0] / default['gru']['h'][0])} "
        "(GRU).",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    timesteps, units, examples, scale = 100, 16, 32, 3.0
    default = compare_gradient_flow(timesteps, units, examples, seed=0)
    scaled = compare_gradient_flow(timesteps, units, examples, seed=0, recurrent_scale=scale)
    text = block(default, scaled, timesteps, units, examples, scale)
    print(text)
    write_block("gradient-flow", text)


if __name__ == "__main__":
    main()
