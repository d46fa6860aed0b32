"""Pictures of what happens inside a model's recurrent layers: gates and gradients."""

import keras
import numpy as np
from keras import ops

from keras_seqcells.diagnostics.long_range import BASELINE_MSE
from keras_seqcells.diagnostics.trace import trace
from keras_seqcells.stepping import find_layers, recurrent_layers

# Value ranges of the gates, for a shared colour scale across plots.
_UNIT_INTERVAL = ("i", "f", "o", "z", "r", "y")
_SIGNED_UNIT = ("c_tilde", "h_tilde", "h")


def _vectorizer(model):
    found = find_layers(model, keras.layers.TextVectorization)
    return found[0] if found else None


def _prepare_inputs(model, inputs):
    """One example as the model takes it: a string, or an array of steps."""
    if isinstance(inputs, str):
        if not inputs.strip():
            raise ValueError(f"Expected a non-empty input text. Received: inputs={inputs!r}")
        if model.inputs[0].dtype != "string":
            raise ValueError(
                "Expected numbers for a model whose input is "
                f"{model.inputs[0].dtype}, not text. Received: inputs={inputs!r}"
            )
        return np.array([inputs])
    array = np.asarray(inputs, dtype="float32")
    if array.size == 0:
        raise ValueError(f"Expected a non-empty input sequence. Received: inputs={inputs!r}")
    expected = model.inputs[0].shape
    if array.ndim == len(expected) - 2 and expected[-1] == 1:
        array = array[..., None]
    if array.ndim == len(expected) - 1:
        array = array[None]
    if array.ndim != len(expected):
        raise ValueError(
            f"Expected one input of shape {tuple(expected[1:])}. "
            f"Received: inputs.shape={np.shape(inputs)}"
        )
    return array[:1]


def trace_model(model, inputs):
    """Traces every keras_seqcells recurrent layer of a model on one input.

    For each recurrent layer, a sub-model from the model's input to that
    layer's input computes what reaches it (its sequence and, when the model
    masks padding, its mask); `keras_seqcells.trace` then runs the layer on
    the unmasked steps, which is exactly what the masked layer computes.

    Args:
        model: a built `keras.Model` with one input (such as a saved task
            model) containing keras_seqcells recurrent layers, possibly
            wrapped in `keras.layers.Bidirectional` or stacked.
        inputs: one example: a string for a model on raw text, or an array of
            shape `(timesteps, features)` (or `(timesteps,)` for one feature).

    Returns:
        A list with one dict per recurrent layer (each direction of a
        bidirectional one): `"name"`, `"gates"` (gate name to a NumPy array of
        shape `(units, steps)`, steps in input order even for a backward
        layer) and `"labels"` (one label per step: the token from the model's
        `TextVectorization` vocabulary when there is one, else the step
        number).

    Raises:
        ValueError: if the model has no keras_seqcells recurrent layer, or
            for an empty input.
    """
    layers = recurrent_layers(model)
    if not layers:
        raise ValueError(
            "Expected a model with at least one keras_seqcells recurrent layer (SimpleRNN, "
            "LSTM or GRU, possibly inside Bidirectional). Received: model "
            f"{model.name!r} with layers {[layer.name for layer in model.layers]}"
        )
    if len(model.inputs) != 1:
        raise ValueError(
            "Expected a model with one input. Received: model "
            f"{model.name!r} with {len(model.inputs)} inputs"
        )
    example = _prepare_inputs(model, inputs)
    vectorizer = _vectorizer(model)
    tokens = None
    if vectorizer is not None and isinstance(inputs, str):
        vocabulary = np.array(vectorizer.get_vocabulary())
        ids = ops.convert_to_numpy(vectorizer(example))[0]
        tokens = [str(word) or "[pad]" for word in vocabulary[ids]]

    results = []
    feeds = {}
    for name, rnn, outer in layers:
        if id(outer) not in feeds:
            node_inputs = outer.input if isinstance(outer.input, list) else [outer.input]
            sequences = node_inputs[0]
            masks = [
                t
                for t in node_inputs[1:]
                if t.dtype == "bool" and len(t.shape) == len(sequences.shape) - 1
            ]
            sub_model = keras.Model(model.inputs[0], [sequences, *masks[:1]])
            outputs = sub_model(example, training=False)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            values = ops.convert_to_numpy(outputs[0])
            steps = np.arange(values.shape[1])
            if len(outputs) > 1:
                steps = steps[ops.convert_to_numpy(outputs[1])[0].astype(bool)]
            feeds[id(outer)] = (values[:, steps], steps, values.shape[1])
        values, steps, total_steps = feeds[id(outer)]
        if len(steps) == 0:
            raise ValueError(
                f"Expected at least one unmasked step reaching layer {name!r}. "
                f"Received: inputs={inputs!r}, all of whose steps are masked"
            )
        gates = trace(rnn, values)
        if rnn.go_backwards:
            gates = {gate: array[:, ::-1] for gate, array in gates.items()}
        if tokens is not None and len(tokens) == total_steps:
            labels = [tokens[step] for step in steps]
        else:
            labels = [str(step + 1) for step in steps]
        results.append(
            {
                "name": name,
                "gates": {gate: array[0].T for gate, array in gates.items()},
                "labels": labels,
            }
        )
    return results


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_gates(model, inputs, path):
    """Draws every gate of every recurrent layer of a model over one input, to a PNG.

    One row per recurrent layer (per direction for a bidirectional one), one
    heatmap per gate: units down, steps across, labelled with the input's
    tokens (or step numbers). Gates in [0, 1] (`i`, `f`, `o`, `z`, `r`) share
    one colour scale, values in [-1, 1] (`c_tilde`, `h_tilde`, `h`) another;
    the LSTM cell state `c` is scaled to its largest magnitude.

    Args:
        model: a `keras.Model` with keras_seqcells recurrent layers (see
            `trace_model`).
        inputs: one example (see `trace_model`).
        path: where to write the PNG.

    Returns:
        What `trace_model` returns.
    """
    traced = trace_model(model, inputs)
    plt = _pyplot()
    columns = max(len(item["gates"]) for item in traced)
    steps = max(len(item["labels"]) for item in traced)
    width = max(2.6, 0.32 * steps + 1.2)
    units = max(next(iter(item["gates"].values())).shape[0] for item in traced)
    height = max(2.0, 0.12 * units + 1.4)
    figure, axes = plt.subplots(
        len(traced),
        columns,
        figsize=(width * columns, height * len(traced)),
        squeeze=False,
    )
    for row, item in zip(axes, traced, strict=True):
        for axis in row[len(item["gates"]) :]:
            axis.axis("off")
        for axis, (gate, values) in zip(row, item["gates"].items(), strict=False):
            if gate in _UNIT_INTERVAL:
                scale = {"cmap": "viridis", "vmin": 0.0, "vmax": 1.0}
            else:
                bound = 1.0 if gate in _SIGNED_UNIT else max(float(np.abs(values).max()), 1e-6)
                scale = {"cmap": "RdBu_r", "vmin": -bound, "vmax": bound}
            image = axis.imshow(values, aspect="auto", interpolation="nearest", **scale)
            axis.set_title(f"{item['name']}: {gate}", fontsize=9)
            axis.set_xticks(range(len(item["labels"])))
            axis.set_xticklabels(item["labels"], rotation=90, fontsize=7)
            axis.set_ylabel("unit", fontsize=8)
            axis.tick_params(axis="y", labelsize=7)
            figure.colorbar(image, ax=axis, fraction=0.046, pad=0.02)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return traced


def plot_gradient_flow(flows, path, title="||dL/dh_t|| over t"):
    """Plots gradient norms over the steps, one line per model, on a log scale.

    Args:
        flows: a dict mapping a label (such as `"lstm"`) to what
            `keras_seqcells.gradient_flow` returns for a layer (its `"h"`
            entry is plotted), such as what it returns for a model: one
            curve per recurrent layer and direction.
        path: where to write the PNG.
        title: the figure's title.
    """
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, flow in flows.items():
        values = np.asarray(flow["h"], dtype="float64")
        # Zeros (an underflowed gradient) cannot be drawn on a log scale.
        values = np.where(values > 0, values, np.nan)
        axis.plot(np.arange(1, len(values) + 1), values, label=label)
    axis.set_yscale("log")
    axis.set_xlabel("step t")
    axis.set_ylabel("mean ||dL/dh_t||")
    axis.set_title(title)
    axis.grid(True, which="major", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_initialisations(runs, path, title="adding problem"):
    """Plots the effect of the initialisation: gradient flow and training curves.

    Left: `||dL/dh_t||` over t at initialisation (dashed) and after training
    (solid), one colour per initialisation, on a log scale. Right: the
    training loss over the steps (a moving average over 25 steps), with the
    loss of always predicting the mean target.

    Args:
        runs: a dict mapping a label to an
            `keras_seqcells.diagnostics.long_range.InitialisationRun` (what
            `compare_initialisations` returns).
        path: where to write the PNG.
        title: the figure's title.
    """

    plt = _pyplot()
    figure, (flow_axis, loss_axis) = plt.subplots(1, 2, figsize=(12, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (label, run) in enumerate(runs.items()):
        colour = colours[index % len(colours)]
        for flow, style, when in (
            (run.flow_before, "--", "init"),
            (run.flow_after, "-", "trained"),
        ):
            values = np.asarray(flow, dtype="float64")
            values = np.where(values > 0, values, np.nan)
            flow_axis.plot(
                np.arange(1, len(values) + 1),
                values,
                style,
                color=colour,
                label=f"{label} ({when})",
            )
        losses = np.asarray(run.losses, dtype="float64")
        window = min(25, len(losses))
        smoothed = np.convolve(losses, np.ones(window) / window, mode="valid")
        loss_axis.plot(np.arange(window, len(losses) + 1), smoothed, color=colour, label=label)
    flow_axis.set_yscale("log")
    flow_axis.set_xlabel("step t")
    flow_axis.set_ylabel("mean ||dL/dh_t||")
    flow_axis.set_title("gradient flow: at initialisation (--) and trained (-)", fontsize=10)
    flow_axis.grid(True, which="major", alpha=0.3)
    flow_axis.legend(fontsize=7, ncol=2)
    loss_axis.axhline(BASELINE_MSE, color="grey", linestyle=":", label="predict the mean")
    loss_axis.set_yscale("log")
    loss_axis.set_xlabel("training step")
    loss_axis.set_ylabel("training MSE (moving average)")
    loss_axis.set_title("training", fontsize=10)
    loss_axis.grid(True, which="major", alpha=0.3)
    loss_axis.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
