"""Pictures of what happens inside a model's recurrent layers: gates and gradients."""

import numpy as np

from keras_seqcells.diagnostics.adding import BASELINE_MSE

# Value ranges of the gates, for a shared colour scale across plots.
_UNIT_INTERVAL = ("i", "f", "o", "z", "r", "y")
_SIGNED_UNIT = ("c_tilde", "h_tilde", "h")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _heatmap(figure, axis, gate, values, title, labels):
    from matplotlib.ticker import MaxNLocator
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    if gate in _UNIT_INTERVAL:
        scale = {"cmap": "viridis", "vmin": 0.0, "vmax": 1.0}
    else:
        bound = 1.0 if gate in _SIGNED_UNIT else max(float(np.abs(values).max()), 1e-6)
        scale = {"cmap": "RdBu_r", "vmin": -bound, "vmax": bound}
    image = axis.imshow(values, aspect="auto", interpolation="nearest", **scale)
    axis.set_title(title, fontsize=9)
    axis.set_xticks(range(len(labels)))
    axis.set_xticklabels(labels, rotation=90, fontsize=7)
    axis.set_ylabel("unit", fontsize=8)
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.tick_params(axis="y", labelsize=7)
    colour_axis = make_axes_locatable(axis).append_axes("right", size="4%", pad=0.05)
    figure.colorbar(image, cax=colour_axis)


def _context(axis, view, steps):
    """Draws above a heatmap what the model makes of each step, on the same time axis."""
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    # The same right-hand margin as the heatmap's colour bar keeps the steps aligned.
    make_axes_locatable(axis).append_axes("right", size="4%", pad=0.05).axis("off")
    axis.set_xlim(-0.5, steps - 0.5)
    axis.set_xticks([])
    if view.values is not None:
        for column in range(view.values.shape[1]):
            axis.plot(np.arange(steps), view.values[:, column], marker=".", linewidth=1)
        axis.set_ylabel("input", fontsize=8)
        axis.tick_params(axis="y", labelsize=7)
        axis.grid(True, alpha=0.3)
        return
    axis.set_ylim(0, 1)
    axis.set_yticks([])
    axis.set_title("likeliest next words after each step", fontsize=8)
    for step, words in enumerate(view.next_words):
        text = "  ".join(f"{word} {probability:.0%}" for word, probability in words)
        axis.text(step, 0.02, text, rotation=90, ha="center", va="bottom", fontsize=6)


def plot_gates(view, path):
    """Draws every gate of every recurrent layer of a model over one input, to a PNG.

    One row per recurrent layer (per direction for a bidirectional one), one
    heatmap per gate: units down, steps across, labelled with the input's
    tokens (or step numbers). Gates in [0, 1] (`i`, `f`, `o`, `z`, `r`) share
    one colour scale, values in [-1, 1] (`c_tilde`, `h_tilde`, `h`) another;
    the LSTM cell state `c` is scaled to its largest magnitude. Above the
    heatmaps, on the same time axis: the likeliest next words after each
    step for a next-word model, the input values for a numeric model.

    Args:
        view: A `keras_seqcells.diagnostics.gates.GateView` (what `gate_view`
            returns).
        path: Where to write the PNG.

    Example:

    >>> from keras_seqcells.diagnostics.gates import gate_view
    >>> plot_gates(gate_view(model, "a witty film"), "gates.png")
    """
    plt = _pyplot()
    traced = view.traces
    context = view.next_words is not None or view.values is not None
    columns = max(len(item["gates"]) for item in traced)
    steps = max(len(item["labels"]) for item in traced)
    width = max(2.6, (0.45 if view.next_words is not None else 0.32) * steps + 1.2)
    units = max(next(iter(item["gates"].values())).shape[0] for item in traced)
    height = max(2.0, 0.12 * units + 1.4)
    context_height = 1.6 if view.next_words is not None else 1.2
    heights = [context_height] * context + [height] * len(traced)
    figure, axes = plt.subplots(
        len(heights),
        columns,
        figsize=(width * columns, sum(heights)),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    if context:
        first_steps = len(traced[0]["labels"])
        for axis in axes[0][: len(traced[0]["gates"])]:
            _context(axis, view, first_steps)
        for axis in axes[0][len(traced[0]["gates"]) :]:
            axis.axis("off")
    for row, item in zip(axes[int(context) :], traced, strict=True):
        for axis in row[len(item["gates"]) :]:
            axis.axis("off")
        for axis, (gate, values) in zip(row, item["gates"].items(), strict=False):
            _heatmap(figure, axis, gate, values, f"{item['name']}: {gate}", item["labels"])
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


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
