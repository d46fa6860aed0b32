"""Training speed of a cell written on the public API, against the built-in cells.

`UserGRUCell` below is what a user would write: our GRU's equations
(reset-after form) in a `keras_seqcells.RecurrentCell` subclass, the same
matrix products and so the same FLOPs as `keras_seqcells.GRU` and
`keras.layers.GRU(reset_after=True)`. One run times a training step
(`model.train_on_batch`: forward, backward, Adam) of
`Input -> layer -> Dense(1)` at B=64, T=100, D=32, H=128, and a compiled
forward call at B=1 (as `benchmarks/rnn.py` times inference), for:

- `keras.layers.GRU` (Keras's built-in layer),
- `keras_seqcells.GRU` (our built-in cell),
- `keras_seqcells.RNN(UserGRUCell)` (the user's cell on our fast path),
- `keras.layers.RNN(UserGRUCell)` (the same cell in Keras's generic loop),
- `keras.layers.RNN(PlainGRUCell)` (the same equations as a plain Keras cell,
  as written without this package, in Keras's generic loop),

repeats interleaved round-robin so that all see the same machine load, and
prints medians with the ratios of the user's cell to each of the others.

Usage:

    python -m benchmarks.cell_api                   # 15 repeats
    python -m benchmarks.cell_api --update-readme   # also refresh the `cell-api` block
"""

import argparse
import os

import keras
from keras import ops

import keras_seqcells
from benchmarks.readme_blocks import write_block
from benchmarks.rnn import _inputs, compiled_forward, interleaved_medians, machine


@keras.saving.register_keras_serializable(package="benchmarks")
class UserGRUCell(keras_seqcells.RecurrentCell):
    """`keras_seqcells.GRUCell`'s reset-after equations, written as a user would."""

    gate_names = ("z", "r", "h")

    def step(self, projected, states, recurrence):
        (h_prev,) = states
        x_z, x_r, x_h = ops.split(projected, 3, axis=-1)
        h_z, h_r, h_h = ops.split(recurrence(h_prev), 3, axis=-1)
        z = ops.sigmoid(x_z + h_z)
        r = ops.sigmoid(x_r + h_r)
        h_tilde = ops.tanh(x_h + r * h_h)
        h = (1.0 - z) * h_prev + z * h_tilde
        return h, [h], {"z": z, "r": r, "h_tilde": h_tilde, "h": h}


@keras.saving.register_keras_serializable(package="benchmarks")
class PlainGRUCell(keras.layers.Layer):
    """The same equations as a plain Keras cell, as written without this package."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3 * self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 3 * self.units), name="recurrent_kernel", initializer="orthogonal"
        )
        self.bias = self.add_weight(shape=(3 * self.units,), name="bias", initializer="zeros")

    def call(self, inputs, states):
        h_prev = states[0]
        x_z, x_r, x_h = ops.split(ops.matmul(inputs, self.kernel) + self.bias, 3, axis=-1)
        h_z, h_r, h_h = ops.split(ops.matmul(h_prev, self.recurrent_kernel), 3, axis=-1)
        z = ops.sigmoid(x_z + h_z)
        r = ops.sigmoid(x_r + h_r)
        h = (1.0 - z) * h_prev + z * ops.tanh(x_h + r * h_h)
        return h, [h]


LAYERS = {
    "keras.layers.GRU": lambda units: keras.layers.GRU(units, reset_after=True),
    "keras_seqcells.GRU": lambda units: keras_seqcells.GRU(units),
    "user cell in keras_seqcells.RNN": lambda units: keras_seqcells.RNN(UserGRUCell(units)),
    "user cell in keras.layers.RNN": lambda units: keras.layers.RNN(UserGRUCell(units)),
    "plain Keras cell in keras.layers.RNN": lambda units: keras.layers.RNN(PlainGRUCell(units)),
}
USER = "user cell in keras_seqcells.RNN"


def training_model(name, units, timesteps, features):
    model = keras.Sequential(
        [keras.Input((timesteps, features)), LAYERS[name](units), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse", jit_compile="auto")
    return model


def measure(units=128, batch=64, timesteps=100, repeats=15):
    """Median seconds of each layer of `LAYERS`: `{"train": {...}, "infer": {...}}`.

    "train" is a training step at `batch`; "infer" a compiled forward call at
    batch 1 (`benchmarks.rnn.compiled_forward`).
    """
    x, y = _inputs(batch, timesteps)
    models = {name: training_model(name, units, timesteps, x.shape[-1]) for name in LAYERS}
    train = interleaved_medians(
        {name: (lambda m=m: m.train_on_batch(x, y)) for name, m in models.items()}, repeats
    )
    one = x[:1]
    forwards = {name: compiled_forward(model) for name, model in models.items()}
    infer = interleaved_medians(
        {name: (lambda f=f: f(one)) for name, f in forwards.items()}, repeats
    )
    return {"train": train, "infer": infer}


def markdown(medians, description):
    train, infer = medians["train"], medians["infer"]
    lines = [
        description,
        "",
        "| layer | training step (ms) | user cell / this | inference B=1 (ms) | user cell / this |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in train:
        lines.append(
            f"| {name} | {train[name] * 1e3:.1f} | {train[USER] / train[name]:.2f} "
            f"| {infer[name] * 1e3:.2f} | {infer[USER] / infer[name]:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    medians = measure(units=args.units, repeats=args.repeats)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    description = (
        f"Training step at B=64 and compiled inference at B=1, T=100 D=32 H={args.units}, "
        f"medians of {args.repeats} interleaved "
        f"repeats on {machine()} (load average {load:.1f} at the end; "
        "`python -m benchmarks.cell_api`). `UserGRUCell` is our GRU's equations written on "
        "the public cell API (same products, same FLOPs)."
    )
    text = markdown(medians, description)
    print(text)
    if args.update_readme:
        write_block("cell-api", text)


if __name__ == "__main__":
    main()
