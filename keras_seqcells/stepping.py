"""The stepping core: finding a model's recurrent layers and running them step by step.

Everything that looks inside a model's recurrence goes through here:
`keras_seqcells.trace` and `gradient_flow` (through `run_steps` and
`state_hooks`, which run a layer's own cell one step at a time), and
next-word generation and the SavedModel `step` signature (through
`ModelStepper`, which runs a whole model one time step at a time with the
recurrent states carried outside).
"""

from typing import NamedTuple

import keras
from keras import ops

from keras_seqcells.cells.base import RecurrentCell
from keras_seqcells.layers.loops import StateHook, run_steps, state_hooks

__all__ = [
    "ModelStepper",
    "RecurrentLayer",
    "StateHook",
    "StepError",
    "find_layers",
    "is_recurrent",
    "last_layer_of",
    "layer_names",
    "recurrent_layers",
    "run_steps",
    "state_hooks",
]

# Layers that act on each time step alone (what a `ModelStepper` can run one
# step at a time). A custom layer joins them with `acts_per_step = True`.
_PER_STEP_LAYERS = (
    keras.layers.Embedding,
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.Activation,
    keras.layers.Softmax,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.Rescaling,
    keras.layers.TimeDistributed,
    keras.layers.LayerNormalization,
    keras.layers.BatchNormalization,
)


class StepError(ValueError):
    """The model cannot be run one time step at a time."""


class RecurrentLayer(NamedTuple):
    """A recurrent layer of a model: its label, the layer, and the model's layer holding it.

    `outer` is the layer itself, or the `keras.layers.Bidirectional` (or
    nested model) that holds it; `label` is the layer's name, or
    `"<name>/forward"` and `"<name>/backward"` for the two directions of a
    bidirectional layer.
    """

    label: str
    layer: keras.layers.Layer
    outer: keras.layers.Layer


def is_recurrent(layer):
    """Whether `layer` is a `keras.layers.RNN` on a `keras_seqcells.RecurrentCell`."""
    return isinstance(layer, keras.layers.RNN) and isinstance(
        getattr(layer, "cell", None), RecurrentCell
    )


def recurrent_layers(model, any_cell=False):
    """Lists the recurrent layers of a model (or layer), in the model's order.

    Args:
        model: A `keras.Model` (functional, Sequential or nested), a
            `keras.layers.Bidirectional`, or a recurrent layer itself.
        any_cell: Whether to list `keras.layers.RNN`s on any cell (True), or
            only those on a `RecurrentCell` (False, the default).

    Returns:
        A list of `RecurrentLayer`s (see its docstring).
    """
    wanted = (lambda layer: isinstance(layer, keras.layers.RNN)) if any_cell else is_recurrent
    found = []

    def visit(layer, outer, top):
        if wanted(layer):
            found.append(RecurrentLayer(layer.name, layer, outer))
        elif isinstance(layer, keras.layers.Bidirectional):
            for direction in ("forward", "backward"):
                inner = getattr(layer, f"{direction}_layer")
                if wanted(inner):
                    found.append(RecurrentLayer(f"{layer.name}/{direction}", inner, outer))
        elif isinstance(layer, keras.Model):
            for inner in layer.layers:
                visit(inner, inner if top else outer, top=False)

    visit(model, model, top=True)
    return found


def find_layers(model, kind):
    """The layers of `model` (not nested) that are instances of `kind`, in order."""
    return [layer for layer in model.layers if isinstance(layer, kind)]


def last_layer_of(model, kind):
    """The last layer of `model` (not nested) that is an instance of `kind`, or None."""
    found = find_layers(model, kind)
    return found[-1] if found else None


def layer_names(model):
    """The names of the layers of `model` (not nested), in order, as errors list them."""
    return [layer.name for layer in model.layers]


def _model_nodes(model, layer):
    """The layer's calls inside `model`'s graph.

    A Sequential model loaded from a `.keras` file calls its layers once
    while it is built from its config and once more in its graph; only the
    graph's calls count.
    """
    graph_nodes = getattr(getattr(model, "_functional", model), "_nodes", None)
    return [
        node
        for index, node in enumerate(layer._inbound_nodes)
        if graph_nodes is None or f"{id(layer)}_ib-{index}" in graph_nodes
    ]


def _inbound_layers(nodes):
    return [tensor._keras_history.operation for node in nodes for tensor in node.input_tensors]


def _chain(model):
    """The model's layers in order, if they form a chain (each one feeding the next)."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise StepError(
            "Expected a model with one input and one output to run step by step. "
            f"Received: model={model.name!r}"
        )
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    previous = model.inputs[0]._keras_history.operation
    for layer in layers:
        nodes = _model_nodes(model, layer)
        inbound = _inbound_layers(nodes)
        if len(nodes) != 1 or inbound != [previous]:
            raise StepError(
                "Expected a chain of layers, each one feeding the next, to run step by step. "
                f"Received: layer {layer.name!r} (inputs from "
                f"{[other.name for other in inbound]})"
            )
        previous = layer
    return layers


def _acts_per_step(layer):
    return isinstance(layer, _PER_STEP_LAYERS) or getattr(layer, "acts_per_step", False)


def _step_plan(model, require_recurrent):
    """The layers of a step-able model and its recurrent layers; `StepError` if none."""
    bidirectional = find_layers(model, keras.layers.Bidirectional)
    if bidirectional:
        raise StepError(
            "Expected forward recurrent layers to run step by step; a bidirectional layer "
            f"needs the whole sequence. Received: layer {bidirectional[0].name!r}"
        )
    layers = _chain(model)
    recurrent = [layer for layer in layers if isinstance(layer, keras.layers.RNN)]
    if require_recurrent and not recurrent:
        raise StepError(
            "Expected a model with a recurrent layer to run step by step. Received: "
            f"layers {[layer.name for layer in layers]}"
        )
    per_step = True  # whether the tensors still have a time axis
    for layer in layers:
        if isinstance(layer, keras.layers.RNN):
            if not per_step:
                raise StepError(
                    f"Expected recurrent layers fed step by step. Received: layer {layer.name!r}"
                )
            if layer.go_backwards:
                raise StepError(
                    "Expected forward recurrent layers to run step by step. Received: "
                    f"layer {layer.name!r} with go_backwards=True"
                )
            if layer.return_state:
                raise StepError(
                    "Expected recurrent layers without return_state to run step by step. "
                    f"Received: layer {layer.name!r}"
                )
            per_step = layer.return_sequences
            continue
        if not per_step:
            continue  # after the last state: the head sees one step's output
        if not _acts_per_step(layer):
            raise StepError(
                "Expected layers that act on each time step alone before and between the "
                f"recurrent layers, to run step by step. Received: layer {layer.name!r} "
                f"({type(layer).__name__})"
            )
        if isinstance(layer, keras.layers.Embedding) and layer.mask_zero:
            raise StepError(
                "Expected no masking (Embedding with mask_zero=True) to run step by step. "
                f"Received: layer {layer.name!r}"
            )
    return layers, recurrent


def _state_suffixes(cell):
    names = getattr(cell, "state_names", None)
    if names is not None:
        return list(names)
    sizes = cell.state_size
    count = len(sizes) if isinstance(sizes, (list, tuple)) else 1
    return ["h"] if count == 1 else [str(i) for i in range(count)]


def _state_sizes(cell):
    sizes = cell.state_size
    return list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]


class ModelStepper:
    """Runs a model one time step at a time, the recurrent states carried outside.

    The model must be a chain of layers (a `Sequential` model, or a functional
    one without branches) with one input and one output, whose recurrent
    layers run forwards without `return_state`, and whose other layers
    before the last recurrent layer act on each time step alone (an
    `Embedding` without `mask_zero`, `Dense`, dropout, normalisation, or a
    layer with `acts_per_step = True`).

    Args:
        model: The model.
        require_recurrent: Whether a model without a recurrent layer is
            refused (True, the default).

    Raises:
        StepError: for a model that cannot run step by step, saying why.

    Example:

    >>> stepper = ModelStepper(model)
    >>> states = stepper.initial_state(batch_size=1)
    >>> for x_t in sequence:
    ...     y_t, states = stepper.step(x_t[None], states)
    """

    def __init__(self, model, require_recurrent=True):
        self.model = model
        self.layers, self.recurrent = _step_plan(model, require_recurrent)

    @property
    def state_names(self):
        """One name per state: `state_h`, `state_c`, or `<layer>_state_h` with several layers."""
        prefix = (
            (lambda layer: "state")
            if len(self.recurrent) == 1
            else (lambda layer: f"{layer.name}_state")
        )
        return [
            f"{prefix(layer)}_{suffix}"
            for layer in self.recurrent
            for suffix in _state_suffixes(layer.cell)
        ]

    @property
    def state_sizes(self):
        """The width of each state, in the order of `state_names`."""
        return [size for layer in self.recurrent for size in _state_sizes(layer.cell)]

    @property
    def state_dtypes(self):
        """The dtype of each state (float32 under mixed precision)."""
        return [
            getattr(layer.cell, "state_dtype", layer.cell.variable_dtype)
            for layer in self.recurrent
            for _ in _state_sizes(layer.cell)
        ]

    def initial_state(self, batch_size):
        """The zero states a new sequence starts from."""
        return [
            ops.zeros((batch_size, size), dtype=dtype)
            for size, dtype in zip(self.state_sizes, self.state_dtypes, strict=True)
        ]

    def step(self, x, states, training=False):
        """Runs one time step.

        Args:
            x: The step's input: the model input of one step, without the
                time axis (e.g. `(batch,)` token ids, `(batch, features)`).
            states: The list of states (`initial_state`, or the previous
                step's).

        Returns:
            `(output, new_states)`: the model's output for the step (without
            a time axis) and the list of new states.
        """
        states = list(states)
        index = 0
        per_step = True
        for layer in self.layers:
            if isinstance(layer, keras.layers.RNN):
                count = len(_state_sizes(layer.cell))
                output, new = layer.cell(x, states[index : index + count], training=training)
                new = list(new) if isinstance(new, (list, tuple)) else [new]
                dtypes = self.state_dtypes[index : index + count]
                states[index : index + count] = [
                    ops.cast(s, dtype) for s, dtype in zip(new, dtypes, strict=True)
                ]
                index += count
                x = output
                per_step = layer.return_sequences
            elif per_step:
                x = layer(ops.expand_dims(x, 1), training=training)[:, 0]
            else:
                x = layer(x, training=training)
        return x, states
