"""ONNX export of keras_seqcells models with ONNX's own recurrent operators.

`export_onnx` writes a Keras model built from the keras_seqcells layers as an
ONNX graph whose recurrences are ONNX `LSTM`, `GRU` and `RNN` nodes (opset
17), so that any ONNX runtime runs them with its fused kernels. The graph is
written with the `onnx` package's helpers, checked with
`onnx.checker.check_model(full_check=True)` and written atomically.

How the equations map (see the specification):

- LSTM: ONNX orders the gate blocks i, o, f, c; the cells order them i, f, c,
  o. The blocks are reordered; the recurrent bias `Rb` is zero.
- GRU: ONNX computes `h_t = (1 - z) ⊙ h~ + z ⊙ h_{t-1}`, the cells
  `h_t = (1 - z) ⊙ h_{t-1} + z ⊙ h~`. Since σ(-a) = 1 - σ(a), the update
  gate's weights and bias are negated. `reset_after=True` is ONNX's
  `linear_before_reset=1` with a zero recurrent bias for the candidate (the
  cells' reset product has no bias); `reset_after=False` is
  `linear_before_reset=0`, whose candidate `g(W_h x + R_h (r ⊙ h) + Wb_h +
  Rb_h)` is the cells' with `Rb_h = 0`.
- SimpleRNN: ONNX `RNN`; the optional softmax head is `MatMul`, `Add` and
  `Softmax` after it.
- PeepholeLSTM: ONNX `LSTM` with `P = [p_i, p_o, p_f]`; ONNX's peepholes are
  the cell's (`p_i`, `p_f` on `C_{t-1}`, `p_o` on `C_t`).
- CIFGLSTM (sigmoid gates): ONNX `LSTM` with `input_forget=1`, which
  computes `f = 1 - i` from the input gate; that gate gets the negated
  forget weights, so `i = σ(-a_f) = 1 - f_t` and `f = f_t`.
- The other cells (layer norm, minGRU, minLSTM): a `Scan` over the input
  projections (one `MatMul` for all steps) whose body is the cell's step in
  primitive operators (`keras_seqcells.onnx_cells`); a mask is a second
  scanned input, a masked step keeping the states and repeating the last
  output (zeros before any step, or with `zero_output_for_mask`).

Masks (from `Masking` or `Embedding(mask_zero=True)`) become the nodes'
`sequence_lens`. Keras skips masked steps wherever they are, carrying the
states over them; the graph reproduces that exactly, holes included: it
moves each row's unmasked steps to the front (in order) before the
recurrent node, runs it over that many steps, and gathers each step's
output back to its position, where a masked step repeats the previous
output (or is zero, with `zero_output_for_mask`) as in Keras.
"""

import os
import pathlib
import tempfile

import keras
import numpy as np

from keras_seqcells import onnx_cells, text_export
from keras_seqcells._checks import check_bool, check_optional_positive_int
from keras_seqcells.cells import (
    CIFGLSTMCell,
    GRUCell,
    LSTMCell,
    PeepholeLSTMCell,
    SimpleRNNCell,
)

OPSET = 17

# Keras activations and the ONNX operator computing each.
_DENSE_ACTIVATIONS = {
    "linear": None,
    "relu": "Relu",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "softmax": "Softmax",
}
# Activations that the ONNX recurrent operators take by name.
_RECURRENT_ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}

# The cells that ONNX's own recurrent operators compute (exact types: a
# subclass may change the equations).
_CELL_OPS = {
    LSTMCell: "LSTM",
    PeepholeLSTMCell: "LSTM",
    CIFGLSTMCell: "LSTM",
    GRUCell: "GRU",
    SimpleRNNCell: "RNN",
}

_SUPPORTED = (
    "InputLayer, the keras_seqcells recurrent layers or an RNN layer on their cells, "
    "Bidirectional of them, Embedding, Masking, Dense, TimeDistributed(Dense), Concatenate, "
    "Add, Subtract, Multiply, Average, Maximum, Minimum, Rescaling, Cropping1D, Permute, "
    "Reshape, Flatten, UpSampling1D, Identity, Dropout, the text classifier's TextChunks and "
    "ChunkPooling"
)


def _onnx():
    """The `onnx` package, imported when an export runs (it is an optional dependency)."""
    import onnx

    return onnx


class _Value:
    """An ONNX tensor standing for a Keras tensor, with its Keras mask.

    `mask` names a boolean tensor of shape `(batch, time)`, or is None.
    """

    def __init__(self, name, mask=None):
        self.name = name
        self.mask = mask


class _Graph:
    """Collects the nodes, initializers, inputs and outputs of the graph."""

    def __init__(self):
        self.nodes = []
        self.initializers = []
        self.inputs = []
        self.outputs = []
        self._used = set()

    def subgraph(self):
        """A graph for a `Scan` body: fresh names and constants shared with this graph.

        Its constants become initializers of this (outer) graph, which the
        body reads from the outer scope.
        """
        body = _Graph()
        body._used = self._used
        body.initializers = self.initializers
        return body

    def fresh(self, hint):
        hint = "".join(c if c.isalnum() or c in "_/." else "_" for c in hint)
        name, number = hint, 0
        while name in self._used:
            number += 1
            name = f"{hint}_{number}"
        self._used.add(name)
        return name

    def constant(self, value, hint, dtype=None):
        from onnx import numpy_helper

        array = np.asarray(value, dtype=dtype)
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def ints(self, values, hint="ints"):
        return self.constant(list(values), hint, dtype=np.int64)

    def op(self, op_type, inputs, hint=None, outputs=1, **attributes):
        from onnx import helper

        names = [
            self.fresh(f"{hint or op_type.lower()}" + (f"_{i}" if i else ""))
            for i in range(outputs)
        ]
        self.nodes.append(
            helper.make_node(
                op_type, list(inputs), names, name=self.fresh(f"node/{names[0]}"), **attributes
            )
        )
        return names[0] if outputs == 1 else names

    def add_input(self, name, elem_type, shape):
        from onnx import helper

        self._used.add(name)
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def add_output(self, source, name, elem_type, rank):
        from onnx import helper

        name = self.fresh(name)
        self.nodes.append(
            helper.make_node("Identity", [source], [name], name=self.fresh(f"node/{name}"))
        )
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, [None] * rank))
        return name

    # -------------------------------------------------------------- helpers
    def unsqueeze(self, x, axes, hint=None):
        return self.op("Unsqueeze", [x, self.ints(axes, "axes")], hint)

    def squeeze(self, x, axes, hint=None):
        return self.op("Squeeze", [x, self.ints(axes, "axes")], hint)

    def take(self, x, index, axis, hint=None):
        """`x` indexed at `index` along `axis` (that axis removed)."""
        return self.op("Gather", [x, self.constant(np.int64(index), "index")], hint, axis=axis)

    def dim(self, x, axis, hint="dim"):
        """Dimension `axis` of `x` as an int64 tensor of shape (1,)."""
        return self.op("Shape", [x], hint, start=axis, end=axis + 1)

    def reverse_time(self, x, hint=None):
        """`x` with its axis 1 reversed."""
        return self.op(
            "Slice",
            [
                x,
                self.ints([-1], "starts"),
                self.ints([np.iinfo(np.int64).min], "ends"),
                self.ints([1], "axes"),
                self.ints([-1], "steps"),
            ],
            hint,
        )


# ------------------------------------------------------------------ checks
def _refuse(layer, why):
    raise ValueError(
        f"Expected a layer that the ONNX export supports ({_SUPPORTED}){why}. "
        f"Received: layer {layer.name!r} of type {type(layer).__name__}"
    )


def _check_float32(layer):
    policy = getattr(layer, "dtype_policy", None)
    name = getattr(policy, "name", "float32")
    if name != "float32":
        _refuse(layer, f", in float32 (its dtype policy is {name!r})")


_activation_name = onnx_cells.activation_name


def _numpy(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


# ------------------------------------------------------------ recurrences
def _is_native(cell):
    """Whether one of ONNX's recurrent operators computes the cell's equations."""
    if type(cell) not in _CELL_OPS:
        return False
    if type(cell) not in onnx_cells.STEPS:
        return True
    if isinstance(cell, CIFGLSTMCell) and (
        _activation_name(cell.recurrent_activation) != "sigmoid"
    ):
        # i = 1 - f is ONNX's input_forget coupling through σ(-a) = 1 - σ(a).
        return False
    return all(
        _activation_name(function) in _RECURRENT_ACTIVATIONS
        for function in (cell.activation, cell.recurrent_activation)
    )


def _check_recurrent_layer(layer, streaming):
    if not isinstance(layer, keras.layers.RNN) or not (
        type(layer.cell) in _CELL_OPS or type(layer.cell) in onnx_cells.STEPS
    ):
        _refuse(layer, "")
    _check_float32(layer)
    cell = layer.cell
    if layer.stateful:
        _refuse(
            layer,
            ", not stateful (export it with `streaming=True` to carry the states between calls)",
        )
    if streaming and layer.go_backwards:
        _refuse(
            layer,
            ", running forwards with `streaming=True` (a backward pass needs the future steps)",
        )
    if not _is_native(cell):
        for function in onnx_cells.step_activations(cell):
            if _activation_name(function) not in onnx_cells.ACTIVATIONS:
                _refuse(
                    layer,
                    f", with activations among {sorted(onnx_cells.ACTIVATIONS)} "
                    f"(received {_activation_name(function)!r})",
                )
        return
    activations = [cell.activation]
    if not isinstance(cell, SimpleRNNCell):
        activations.insert(0, cell.recurrent_activation)
    for function in activations:
        if _activation_name(function) not in _RECURRENT_ACTIVATIONS:
            _refuse(
                layer,
                f", with activations among {sorted(_RECURRENT_ACTIVATIONS)} "
                f"(received {_activation_name(function)!r})",
            )
    if isinstance(cell, GRUCell) and _activation_name(cell.recurrent_activation) != "sigmoid":
        # The update gate maps onto ONNX's only through σ(-a) = 1 - σ(a).
        _refuse(layer, ", a GRU with recurrent_activation='sigmoid'")


def _direction_weights(cell):
    """ONNX `W`, `R`, `B` (without the direction axis) and the activations of a cell."""
    named = cell.named_weights()
    units = cell.units
    zeros = np.zeros(units, np.float32)

    def weights(gate, sign=1.0):
        return (
            sign * named[f"W_x{gate}"],
            sign * named[f"W_h{gate}"],
            sign * named.get(f"b_{gate}", zeros),
        )

    if isinstance(cell, CIFGLSTMCell):
        # ONNX's input_forget computes f = 1 - i from the input gate: the
        # input gate is σ(-a_f) = 1 - f_t, its own forget block is unused.
        unused = (np.zeros_like(named["W_xf"]), np.zeros_like(named["W_hf"]), zeros)
        gates = [weights("f", -1.0), weights("o"), unused, weights("c")]
        activations = [cell.recurrent_activation, cell.activation, cell.activation]
    elif isinstance(cell, LSTMCell):
        gates = [weights(g) for g in ("i", "o", "f", "c")]
        activations = [cell.recurrent_activation, cell.activation, cell.activation]
    elif isinstance(cell, GRUCell):
        gates = [weights("z", -1.0), weights("r"), weights("h")]
        activations = [cell.recurrent_activation, cell.activation]
    else:
        gates = [weights("h")]
        activations = [cell.activation]
    kernel = np.concatenate([g[0] for g in gates], axis=0)
    recurrent_kernel = np.concatenate([g[1] for g in gates], axis=0)
    input_bias = np.concatenate([g[2] for g in gates])
    bias = np.concatenate([input_bias, np.zeros_like(input_bias)])
    names = [_RECURRENT_ACTIVATIONS[_activation_name(f)] for f in activations]
    return kernel, recurrent_kernel, bias, names


def _state_names(cell):
    return list(cell.state_names)


def _peepholes(cell):
    """ONNX's `P` (p_i, p_o, p_f) of a peephole LSTM cell, else None."""
    if not isinstance(cell, PeepholeLSTMCell):
        return None
    named = cell.named_weights()
    return np.concatenate([named["p_i"], named["p_o"], named["p_f"]]).astype(np.float32)


def _head(graph, cell, x, hint):
    """The SimpleRNN cell's softmax head on `x` (..., units), or `x` itself."""
    if not isinstance(cell, SimpleRNNCell) or cell.output_units is None:
        return x
    named = cell.named_weights()
    y = graph.op(
        "MatMul", [x, graph.constant(named["W_hy"].T.astype(np.float32), f"{hint}/W_hy_T")]
    )
    if "b_y" in named:
        y = graph.op("Add", [y, graph.constant(named["b_y"].astype(np.float32), f"{hint}/b_y")])
    return graph.op("Softmax", [y], f"{hint}/y", axis=-1)


class _MaskPlan:
    """The tensors derived from a `(batch, time)` mask that the recurrence uses."""

    def __init__(self, graph, mask, hint):
        g = graph
        self.mask = mask
        self.mask_int = g.op("Cast", [mask], f"{hint}/mask_int", to=_onnx().TensorProto.INT64)
        self.lengths = g.op(
            "ReduceSum", [self.mask_int, g.ints([1])], f"{hint}/lengths", keepdims=0
        )
        self.lengths_column = g.unsqueeze(self.lengths, [1], f"{hint}/lengths_column")
        self.any_step = g.op("Greater", [self.lengths_column, g.ints([0])], f"{hint}/any_step")
        self.sequence_lens = g.op(
            "Cast", [self.lengths], f"{hint}/sequence_lens", to=_onnx().TensorProto.INT32
        )
        self.inclusive = g.op("CumSum", [self.mask_int, g.ints([1])], f"{hint}/steps_so_far")
        # Unmasked steps first, each group in time order: sort on
        # (masked, position), which is one exact float key.
        steps = g.dim(mask, 1, f"{hint}/time")
        positions = g.op(
            "Range",
            [
                g.constant(np.int64(0), "zero"),
                g.squeeze(steps, [0]),
                g.constant(np.int64(1), "one"),
            ],
        )
        masked = g.op(
            "Sub",
            [
                g.constant(np.float32(1), "one_f"),
                g.op("Cast", [mask], to=_onnx().TensorProto.FLOAT),
            ],
        )
        key = g.op(
            "Add",
            [
                g.op("Mul", [masked, g.op("Cast", [steps], to=_onnx().TensorProto.FLOAT)]),
                g.op("Cast", [positions], to=_onnx().TensorProto.FLOAT),
            ],
            f"{hint}/order_key",
        )
        _, self.order = g.op(
            "TopK", [key, steps], f"{hint}/order", outputs=2, axis=1, largest=0, sorted=1
        )

    def compact(self, graph, x, hint):
        """`x` (batch, time, features) with each row's unmasked steps moved to the front."""
        index = graph.op("Expand", [graph.unsqueeze(self.order, [2]), graph.op("Shape", [x])])
        return graph.op("GatherElements", [x, index], f"{hint}/compacted", axis=1)

    def spread(self, graph, outputs, backwards, zero_output_for_mask, hint):
        """Each step's Keras output from the outputs of the compacted steps.

        `outputs` is (batch, time, units) over the compacted steps; a masked
        step repeats the output of the step processed before it (the previous
        unmasked step going forwards, the next one going backwards), or zero
        before any step, or always with `zero_output_for_mask`.
        """
        g = graph
        if backwards:
            index = g.op("Sub", [self.inclusive, self.mask_int])
            valid = g.op("Less", [index, self.lengths_column])
        else:
            index = g.op("Sub", [self.inclusive, g.ints([1])])
            valid = g.op("GreaterOrEqual", [index, g.ints([0])])
        if zero_output_for_mask:
            valid = self.mask
        last = g.op("Sub", [g.dim(outputs, 1), g.ints([1])])
        index = g.op("Max", [g.op("Min", [index, last]), g.ints([0])])
        index = g.op("Expand", [g.unsqueeze(index, [2]), g.op("Shape", [outputs])])
        gathered = g.op("GatherElements", [outputs, index], axis=1)
        return g.op(
            "Where",
            [g.unsqueeze(valid, [2]), gathered, g.constant(np.float32(0), "zero_f")],
            f"{hint}/sequence",
        )


class _Recurrence:
    """Converts one recurrent layer, or the two layers of a `Bidirectional`."""

    def __init__(self, graph, context, layer, directions, backwards_in_place):
        self.graph = graph
        self.context = context
        self.layer = layer
        self.directions = directions
        # Bidirectional flips its backward layer's outputs back into time order.
        self.backwards_in_place = backwards_in_place
        first = directions[0]
        self.cell = first.cell
        self.op_type = _CELL_OPS[type(self.cell)]
        self.hint = layer.name

    def node_inputs(self, sequences, sequence_lens, initial_states):
        g, hint = self.graph, self.hint
        parts = [_direction_weights(d.cell) for d in self.directions]
        kernel = g.constant(np.stack([p[0] for p in parts]).astype(np.float32), f"{hint}/W")
        recurrent = g.constant(np.stack([p[1] for p in parts]).astype(np.float32), f"{hint}/R")
        bias = g.constant(np.stack([p[2] for p in parts]).astype(np.float32), f"{hint}/B")
        activations = [name for p in parts for name in p[3]]
        inputs = [sequences, kernel, recurrent, bias, sequence_lens or "", *initial_states]
        peepholes = [_peepholes(d.cell) for d in self.directions]
        if peepholes[0] is not None:
            inputs += [""] * (7 - len(inputs))
            inputs.append(g.constant(np.stack(peepholes), f"{hint}/P"))
        while inputs and inputs[-1] == "":
            inputs.pop()
        attributes = {
            "hidden_size": self.cell.units,
            "activations": activations,
            "direction": (
                "bidirectional"
                if len(self.directions) == 2
                else ("reverse" if self.directions[0].go_backwards else "forward")
            ),
        }
        if self.op_type == "GRU":
            attributes["linear_before_reset"] = int(self.cell.reset_after)
        if isinstance(self.cell, CIFGLSTMCell):
            attributes["input_forget"] = 1
        return inputs, attributes

    def run(self, x, initial_state):
        """Returns `(output, states)` per direction: its Keras output and final states."""
        g, hint = self.graph, self.hint
        n_states = len(_state_names(self.cell))
        plan = _MaskPlan(g, x.mask, hint) if x.mask is not None else None
        sequences = plan.compact(g, x.name, hint) if plan else x.name
        time_major = g.op("Transpose", [sequences], f"{hint}/time_major", perm=[1, 0, 2])
        states = self._initial_states(initial_state, n_states)
        inputs, attributes = self.node_inputs(
            time_major, plan.sequence_lens if plan else None, states
        )
        outputs = g.op(
            self.op_type,
            inputs,
            f"{hint}/{self.op_type.lower()}",
            outputs=1 + n_states,
            **attributes,
        )
        all_steps, final_states = outputs[0], list(outputs[1:])
        if plan is not None and states:
            # An all-masked row keeps its initial states (ONNX returns zeros).
            keep = g.unsqueeze(plan.any_step, [0])
            final_states = [
                g.op("Where", [keep, final, start])
                for final, start in zip(final_states, states, strict=True)
            ]
        per_direction = []
        for index, direction in enumerate(self.directions):
            backwards = direction.go_backwards
            last = _head(g, direction.cell, g.take(final_states[0], index, 0), f"{hint}/{index}")
            if plan is not None:
                last = g.op("Where", [plan.any_step, last, g.constant(np.float32(0), "zero_f")])
            sequence = None
            if self.layer.return_sequences:
                steps = g.op("Transpose", [g.take(all_steps, index, 1)], perm=[1, 0, 2])
                steps = _head(g, direction.cell, steps, f"{hint}/{index}")
                if plan is not None:
                    steps = plan.spread(
                        g, steps, backwards, direction.zero_output_for_mask, f"{hint}/{index}"
                    )
                if backwards and not self.backwards_in_place:
                    steps = g.reverse_time(steps)
                sequence = steps
            state_values = [g.take(s, index, 0) for s in final_states]
            per_direction.append((sequence if sequence is not None else last, state_values))
        return per_direction

    def _initial_states(self, initial_state, n_states):
        """ONNX initial states (directions, batch, units), or [] for zeros."""
        if initial_state is None:
            return []
        g = self.graph
        given = [self.context.value(t).name for t in initial_state]
        if len(given) != n_states * len(self.directions):
            _refuse(
                self.layer,
                f", with {n_states * len(self.directions)} initial states (received {len(given)})",
            )
        states = []
        for which in range(n_states):
            per_direction = [
                g.unsqueeze(given[d * n_states + which], [0]) for d in range(len(self.directions))
            ]
            states.append(
                per_direction[0]
                if len(per_direction) == 1
                else g.op("Concat", per_direction, axis=0)
            )
        return states

    def step(self, x, state_inputs):
        """The streaming form: one step from `state_inputs` (batch, units); (output, new states)."""
        g, hint = self.graph, self.hint
        n_states = len(_state_names(self.cell))
        time_major = g.op("Transpose", [x.name], f"{hint}/time_major", perm=[1, 0, 2])
        states = [g.unsqueeze(s, [0]) for s in state_inputs]
        inputs, attributes = self.node_inputs(time_major, None, states)
        outputs = g.op(
            self.op_type,
            inputs,
            f"{hint}/{self.op_type.lower()}",
            outputs=1 + n_states,
            **attributes,
        )
        new_states = [g.squeeze(s, [0]) for s in outputs[1:]]
        if x.mask is not None:
            # A masked step carries the states over, as in the whole sequence.
            step_mask = x.mask
            new_states = [
                g.op("Where", [step_mask, new, old])
                for new, old in zip(new_states, state_inputs, strict=True)
            ]
        output = _head(g, self.cell, new_states[0], f"{hint}/0")
        if x.mask is not None and self.layer.zero_output_for_mask and self.layer.return_sequences:
            output = g.op("Where", [x.mask, output, g.constant(np.float32(0), "zero_f")])
        if self.layer.return_sequences:
            output = g.unsqueeze(output, [1])
        return output, new_states


class _ScanRecurrence:
    """Converts a recurrent layer on a cell ONNX has no operator for: a `Scan` of its step.

    The input projections of all steps are one `MatMul` before the `Scan`;
    its body is the cell's step in primitive operations (`onnx_cells`). A
    mask is a second scanned input: a masked step keeps the states, and its
    output repeats the last output (zeros before any step, or always with
    `zero_output_for_mask`), as in Keras.
    """

    def __init__(self, graph, context, layer, directions, backwards_in_place):
        self.graph = graph
        self.context = context
        self.layer = layer
        self.directions = directions
        self.backwards_in_place = backwards_in_place
        self.cell = directions[0].cell
        self.hint = layer.name

    def _projection(self, graph, cell, x, hint):
        y = graph.op("MatMul", [x, graph.constant(_numpy(cell.kernel), f"{hint}/kernel")])
        if cell.use_bias and cell.bias_in_projection:
            y = graph.op("Add", [y, graph.constant(_numpy(cell.bias), f"{hint}/bias")])
        return y

    def _zeros(self, x):
        """Zero states (batch, units) for the batch of `x`."""
        g = self.graph
        shape = g.op("Concat", [g.dim(x, 0), g.ints([self.cell.units], "units")], axis=0)
        return g.op(
            "ConstantOfShape",
            [shape],
            f"{self.hint}/zeros",
            value=_onnx().helper.make_tensor("zero", _onnx().TensorProto.FLOAT, [1], [0.0]),
        )

    def run(self, x, initial_state):
        """Returns `(output, states)` per direction: its Keras output and final states."""
        g = self.graph
        n_states = len(_state_names(self.cell))
        given = None
        if initial_state is not None:
            given = [self.context.value(t).name for t in initial_state]
            if len(given) != n_states * len(self.directions):
                _refuse(
                    self.layer,
                    f", with {n_states * len(self.directions)} initial states "
                    f"(received {len(given)})",
                )
        mask = None
        if x.mask is not None:
            # Scanned along time: (batch, time, 1), broadcast over the units.
            mask = g.unsqueeze(x.mask, [2], f"{self.hint}/step_mask")
        per_direction = []
        for index, direction in enumerate(self.directions):
            hint = f"{self.hint}/{index}" if len(self.directions) == 2 else self.hint
            if given is not None:
                states = given[index * n_states : (index + 1) * n_states]
            else:
                states = [self._zeros(x.name) for _ in range(n_states)]
            per_direction.append(self._scan(direction, x.name, mask, states, hint))
        return per_direction

    def _scan(self, direction, x, mask, states, hint):
        onnx = _onnx()
        g = self.graph
        cell = direction.cell
        float_type = onnx.TensorProto.FLOAT
        projected = self._projection(g, cell, x, hint)
        body = g.subgraph()
        state_inputs = [
            body.add_input(body.fresh(f"{hint}/{name}_prev"), float_type, None)
            for name in _state_names(cell)
        ]
        carried = list(states)
        last_input = None
        if mask is not None:
            last_input = body.add_input(body.fresh(f"{hint}/last_output"), float_type, None)
            carried.append(self._zeros(x))
        projected_t = body.add_input(body.fresh(f"{hint}/projected_t"), float_type, None)
        scanned = [projected]
        mask_t = None
        if mask is not None:
            mask_t = body.add_input(body.fresh(f"{hint}/mask_t"), onnx.TensorProto.BOOL, None)
            scanned.append(mask)
        new_states = onnx_cells.STEPS[type(cell)](body, cell, projected_t, state_inputs)
        output = new_states[0]
        outputs = list(new_states)
        sequence_output = output
        if mask is not None:
            outputs = [
                body.op("Where", [mask_t, new, old])
                for new, old in zip(new_states, state_inputs, strict=True)
            ]
            last = body.op("Where", [mask_t, output, last_input])
            outputs.append(last)
            held = (
                body.constant(np.float32(0), "zero_f")
                if direction.zero_output_for_mask
                else last_input
            )
            sequence_output = body.op("Where", [mask_t, output, held])
        body_outputs = []
        for index, source in enumerate([*outputs, sequence_output]):
            body_outputs.append(body.add_output(source, f"{hint}/out_{index}", float_type, 2))
        body_graph = onnx.helper.make_graph(
            body.nodes, g.fresh(f"{hint}/step"), body.inputs, body.outputs
        )
        backwards = direction.go_backwards
        results = g.op(
            "Scan",
            [*carried, *scanned],
            f"{hint}/scan",
            outputs=len(carried) + 1,
            body=body_graph,
            num_scan_inputs=len(scanned),
            scan_input_axes=[1] * len(scanned),
            scan_input_directions=[int(backwards)] * len(scanned),
            scan_output_axes=[1],
            # Keras gives a backward layer's outputs in the order it computed
            # them; Bidirectional puts them back in time order.
            scan_output_directions=[int(backwards and self.backwards_in_place)],
        )
        final_states = results[: len(states)]
        last_output = results[len(states)] if mask is not None else final_states[0]
        sequence = results[-1] if self.layer.return_sequences else None
        return (sequence if sequence is not None else last_output, final_states)

    def step(self, x, state_inputs):
        """The streaming form: one step from `state_inputs` (batch, units); (output, new states)."""
        g, cell = self.graph, self.cell
        x_t = g.squeeze(x.name, [1], f"{self.hint}/x_t")
        projected = self._projection(g, cell, x_t, self.hint)
        new_states = onnx_cells.STEPS[type(cell)](g, cell, projected, state_inputs)
        if x.mask is not None:
            step_mask = x.mask
            new_states = [
                g.op("Where", [step_mask, new, old])
                for new, old in zip(new_states, state_inputs, strict=True)
            ]
        output = new_states[0]
        if x.mask is not None and self.layer.zero_output_for_mask and self.layer.return_sequences:
            output = g.op("Where", [x.mask, output, g.constant(np.float32(0), "zero_f")])
        if self.layer.return_sequences:
            output = g.unsqueeze(output, [1])
        return output, new_states


# ------------------------------------------------------------ the walk
class _Context:
    """Maps the Keras tensors of the model to ONNX values while converting."""

    def __init__(self, graph, streaming):
        self.graph = graph
        self.streaming = streaming
        self.values = {}
        self.state_pairs = []  # (state input, its next value) in streaming
        self.one_recurrent_layer = True

    def state_name(self, layer, state):
        """`state_h`, or `<layer name>/state_h` in a model of several recurrent layers."""
        return f"state_{state}" if self.one_recurrent_layer else f"{layer.name}/state_{state}"

    def value(self, keras_tensor):
        return self.values[id(keras_tensor)]

    def set(self, keras_tensor, value):
        self.values[id(keras_tensor)] = value


def _merge(graph, layer, forward, backward):
    mode = layer.merge_mode
    if mode == "concat":
        return [graph.op("Concat", [forward, backward], f"{layer.name}/concat", axis=-1)]
    if mode == "sum":
        return [graph.op("Add", [forward, backward], f"{layer.name}/sum")]
    if mode == "mul":
        return [graph.op("Mul", [forward, backward], f"{layer.name}/mul")]
    if mode == "ave":
        total = graph.op("Add", [forward, backward])
        return [
            graph.op("Mul", [total, graph.constant(np.float32(0.5), "half")], f"{layer.name}/ave")
        ]
    if mode is None:
        return [forward, backward]
    _refuse(
        layer, f", with merge_mode among 'concat', 'sum', 'ave', 'mul', None (received {mode!r})"
    )


def _convert_recurrent(context, layer, x, initial_state, receives_mask):
    g = context.graph
    mask = x.mask if layer.return_sequences else None
    if not receives_mask:
        x = _Value(x.name)
    bidirectional = isinstance(layer, keras.layers.Bidirectional)
    if bidirectional:
        if context.streaming:
            _refuse(
                layer,
                ", not Bidirectional with `streaming=True` "
                "(a backward pass needs the future steps)",
            )
        forward, backward = layer.forward_layer, layer.backward_layer
        for inner in (forward, backward):
            _check_recurrent_layer(inner, streaming=False)
        if forward.go_backwards or not backward.go_backwards:
            _refuse(layer, ", with a forward layer running forwards and a backward one backwards")
        native = _is_native(forward.cell)
        same = (
            type(forward.cell) is type(backward.cell)
            and forward.cell.units == backward.cell.units
            and native == _is_native(backward.cell)
            and (
                not native
                or _direction_weights(forward.cell)[3] == _direction_weights(backward.cell)[3]
            )
            and getattr(forward.cell, "reset_after", None)
            == getattr(backward.cell, "reset_after", None)
        )
        if not same:
            _refuse(layer, ", whose two layers have the same cell type, units and activations")
        directions = [forward, backward]
    else:
        _check_recurrent_layer(layer, context.streaming)
        directions = [layer]
    kind = _Recurrence if _is_native(directions[0].cell) else _ScanRecurrence
    recurrence = kind(g, context, layer, directions, backwards_in_place=bidirectional)
    if context.streaming:
        cell = layer.cell
        names = _state_names(cell)
        state_inputs = []
        for state in names:
            name = context.state_name(layer, state)
            g.add_input(name, _onnx().TensorProto.FLOAT, ["batch", cell.units])
            state_inputs.append(name)
        output, new_states = recurrence.step(x, state_inputs)
        for state, source in zip(names, new_states, strict=True):
            context.state_pairs.append((context.state_name(layer, state), source))
        if layer.return_state:
            return [_Value(output, mask), *(_Value(s) for s in new_states)]
        return [_Value(output, mask)]
    per_direction = recurrence.run(x, initial_state)
    if bidirectional:
        merged = _merge(g, layer, per_direction[0][0], per_direction[1][0])
        outputs = [_Value(name, mask) for name in merged]
    else:
        outputs = [_Value(per_direction[0][0], mask)]
    if layer.return_state:
        outputs += [_Value(s) for _, states in per_direction for s in states]
    return outputs


def _convert_dense(context, layer, x, owner=None):
    owner = owner or layer
    _check_float32(layer)
    g = context.graph
    activation = _activation_name(layer.activation)
    if activation not in _DENSE_ACTIVATIONS:
        _refuse(
            owner,
            f", with an activation among {sorted(_DENSE_ACTIVATIONS)} (received {activation!r})",
        )
    if getattr(layer, "quantization_mode", None) or getattr(layer, "lora_enabled", False):
        _refuse(owner, ", without quantization or LoRA")
    y = g.op("MatMul", [x.name, g.constant(_numpy(layer.kernel), f"{layer.name}/kernel")])
    if layer.use_bias:
        y = g.op(
            "Add", [y, g.constant(_numpy(layer.bias), f"{layer.name}/bias")], f"{layer.name}/linear"
        )
    op_type = _DENSE_ACTIVATIONS[activation]
    if op_type == "Softmax":
        y = g.op("Softmax", [y], f"{layer.name}/softmax", axis=-1)
    elif op_type:
        y = g.op(op_type, [y], f"{layer.name}/{op_type.lower()}")
    return [_Value(y, x.mask)]


def _convert_embedding(context, layer, x):
    _check_float32(layer)
    if getattr(layer, "quantization_mode", None) or getattr(layer, "lora_enabled", False):
        _refuse(layer, ", without quantization or LoRA")
    g = context.graph
    ids = g.op("Cast", [x.name], f"{layer.name}/ids", to=_onnx().TensorProto.INT64)
    y = g.op(
        "Gather",
        [g.constant(_numpy(layer.embeddings), f"{layer.name}/embeddings"), ids],
        f"{layer.name}/vectors",
        axis=0,
    )
    mask = x.mask
    if layer.mask_zero:
        mask = g.op(
            "Not", [g.op("Equal", [ids, g.constant(np.int64(0), "zero_i")])], f"{layer.name}/mask"
        )
    return [_Value(y, mask)]


def _convert_masking(context, layer, x):
    g = context.graph
    different = g.op(
        "Not",
        [
            g.op(
                "Equal",
                [x.name, g.constant(np.float32(layer.mask_value), f"{layer.name}/mask_value")],
            )
        ],
    )
    kept = g.op(
        "ReduceMax",
        [g.op("Cast", [different], to=_onnx().TensorProto.FLOAT)],
        axes=[-1],
        keepdims=0,
    )
    mask = g.op("Cast", [kept], f"{layer.name}/mask", to=_onnx().TensorProto.BOOL)
    y = g.op("Mul", [x.name, g.unsqueeze(kept, [-1])], f"{layer.name}/masked")
    return [_Value(y, mask)]


# Merging layers and the ONNX operator combining their inputs, two at a time.
_MERGES = {
    keras.layers.Add: "Add",
    keras.layers.Subtract: "Sub",
    keras.layers.Multiply: "Mul",
    keras.layers.Maximum: "Max",
    keras.layers.Minimum: "Min",
    keras.layers.Average: "Add",
}


def _convert_merge(context, layer, node):
    """`Concatenate` (last axis) or an elementwise merge of a list of tensors.

    Masks: Keras keeps a step that every masked input keeps, which is `And`
    of the masks.
    """
    args, kwargs = node.arguments.args, dict(node.arguments.kwargs)
    kwargs.pop("training", None)
    kwargs.pop("mask", None)
    tensors = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple)) else None
    if kwargs or not tensors or not all(isinstance(t, keras.KerasTensor) for t in tensors):
        _refuse(layer, ", called on a list of tensors")
    values = [context.value(t) for t in tensors]
    g = context.graph
    masks = [v.mask for v in values if v.mask is not None]
    mask = masks[0] if masks else None
    for other in masks[1:]:
        mask = g.op("And", [mask, other], f"{layer.name}/mask")
    if isinstance(layer, keras.layers.Concatenate):
        rank = len(tensors[0].shape)
        if layer.axis not in (-1, rank - 1):
            _refuse(layer, f", concatenating the last axis (received axis={layer.axis})")
        y = g.op("Concat", [v.name for v in values], f"{layer.name}/concat", axis=-1)
        return [_Value(y, mask)]
    op_type = _MERGES[type(layer)]
    y = values[0].name
    for value in values[1:]:
        y = g.op(op_type, [y, value.name], f"{layer.name}/{op_type.lower()}")
    if isinstance(layer, keras.layers.Average):
        y = g.op("Mul", [y, g.constant(np.float32(1 / len(values)), "fraction")], layer.name)
    return [_Value(y, mask)]


def _static_size(layer, tensor, axis):
    size = tensor.shape[axis]
    if size is None:
        _refuse(layer, f", on an input whose axis {axis} has a known size")
    return int(size)


def _convert_reshaping(context, layer, node, x):
    """The layers that move or cut values of unmasked tensors (forecasting models)."""
    g = context.graph
    if x.mask is not None:
        _refuse(layer, ", on an unmasked input")
    source = node.arguments.args[0]
    name = layer.name
    if isinstance(layer, keras.layers.Rescaling):
        y = g.op(
            "Mul",
            [x.name, g.constant(np.asarray(layer.scale, np.float32), f"{name}/scale")],
        )
        y = g.op("Add", [y, g.constant(np.asarray(layer.offset, np.float32), f"{name}/offset")])
        return [_Value(y)]
    if isinstance(layer, keras.layers.Cropping1D):
        start, stop = (int(c) for c in layer.cropping)
        end = -stop if stop else np.iinfo(np.int64).max
        y = g.op(
            "Slice",
            [x.name, g.ints([start], "starts"), g.ints([end], "ends"), g.ints([1], "axes")],
            f"{name}/cropped",
        )
        return [_Value(y)]
    if isinstance(layer, keras.layers.Permute):
        perm = [0, *(int(d) for d in layer.dims)]
        return [_Value(g.op("Transpose", [x.name], f"{name}/permuted", perm=perm))]
    if isinstance(layer, keras.layers.Reshape):
        shape = [0, *(int(d) for d in layer.target_shape)]
        return [_Value(g.op("Reshape", [x.name, g.ints(shape, "shape")], f"{name}/reshaped"))]
    if isinstance(layer, keras.layers.Flatten):
        return [_Value(g.op("Flatten", [x.name], f"{name}/flat", axis=1))]
    if isinstance(layer, keras.layers.UpSampling1D):
        # Each step repeated `size` times in place: (b, T, n) -> (b, T, size, n)
        # -> (b, T * size, n).
        size = int(layer.size)
        channels = _static_size(layer, source, -1)
        y = g.op("Tile", [g.unsqueeze(x.name, [2]), g.ints([1, 1, size, 1], "repeats")])
        y = g.op("Reshape", [y, g.ints([0, -1, channels], "shape")], f"{name}/repeated")
        return [_Value(y)]
    return [_Value(g.op("Identity", [x.name], f"{name}/identity"))]


_RESHAPING = (
    keras.layers.Rescaling,
    keras.layers.Cropping1D,
    keras.layers.Permute,
    keras.layers.Reshape,
    keras.layers.Flatten,
    keras.layers.UpSampling1D,
    keras.layers.Identity,
)


def _is_text_chunking(layer):
    """The text classifier's `TextChunks` or `ChunkPooling` layer (long texts read in chunks)."""
    return type(layer).__name__ in ("TextChunks", "ChunkPooling") and hasattr(layer, "chunk_length")


def _convert_text_chunks(context, layer, node):
    """`TextChunks`: token ids `(batch, chunks * L)` to rows `(batch * chunks, L)`."""
    args, kwargs = node.arguments.args, dict(node.arguments.kwargs)
    kwargs.pop("training", None)
    kwargs.pop("mask", None)
    if kwargs or len(args) != 1 or not isinstance(args[0], keras.KerasTensor):
        _refuse(layer, ", called on one tensor")
    x = context.value(args[0])
    if x.mask is not None:
        _refuse(layer, ", on an unmasked input")
    g = context.graph
    shape = g.ints([-1, layer.chunk_length], f"{layer.name}/shape")
    return [_Value(g.op("Reshape", [x.name, shape], f"{layer.name}/rows"))]


def _convert_chunk_pooling(context, layer, node):
    """`ChunkPooling`: the mean and the maximum over each text's non-empty chunks.

    As the layer does: a chunk is present when one of its token ids is not
    0; the mean divides by the number of present chunks, at least 1 (a text
    of padding alone gets zeros); before the maximum, a padding chunk takes
    the lowest value of the text's chunks, padding ones included, so it
    never wins (a text of padding alone gets that lowest value).
    """
    args, kwargs = node.arguments.args, dict(node.arguments.kwargs)
    kwargs.pop("training", None)
    kwargs.pop("mask", None)
    if kwargs or len(args) != 2 or not all(isinstance(t, keras.KerasTensor) for t in args):
        _refuse(layer, ", called on the encodings and the token ids")
    encodings, tokens = (context.value(t) for t in args)
    if encodings.mask is not None:
        _refuse(layer, ", on unmasked encodings")
    length = layer.chunk_length
    chunks = _static_size(layer, args[1], 1) // length
    features = _static_size(layer, args[0], -1)
    g, name = context.graph, layer.name
    onnx = _onnx()
    ids = g.op("Cast", [tokens.name], f"{name}/ids", to=onnx.TensorProto.INT64)
    ids = g.op("Reshape", [ids, g.ints([-1, chunks, length], f"{name}/chunk_ids_shape")])
    filled = g.op("Not", [g.op("Equal", [ids, g.constant(np.int64(0), "zero_i")])])
    # (batch, chunks, 1): 1.0 for a chunk with a token, 0.0 for padding alone.
    weights = g.op(
        "ReduceMax",
        [g.op("Cast", [filled], to=onnx.TensorProto.FLOAT)],
        f"{name}/weights",
        axes=[-1],
        keepdims=1,
    )
    present = g.op("Greater", [weights, g.constant(np.float32(0), "zero_f")], f"{name}/present")
    x = g.op(
        "Reshape",
        [encodings.name, g.ints([-1, chunks, features], f"{name}/encodings_shape")],
        f"{name}/encodings",
    )
    axis = g.ints([1], f"{name}/chunk_axis")
    total = g.op("ReduceSum", [g.op("Mul", [x, weights]), axis], keepdims=0)
    count = g.op("ReduceSum", [weights, axis], f"{name}/count", keepdims=0)
    count = g.op("Max", [count, g.constant(np.float32(1), "one_f")])
    mean = g.op("Div", [total, count], f"{name}/mean")
    lowest = g.op("ReduceMin", [x], f"{name}/lowest", axes=[1], keepdims=1)
    maximum = g.op(
        "ReduceMax",
        [g.op("Where", [present, x, lowest])],
        f"{name}/maximum",
        axes=[1],
        keepdims=0,
    )
    return [_Value(g.op("Concat", [mean, maximum], f"{name}/pooled", axis=-1))]


def _convert_layer(context, layer, node):
    if isinstance(layer, keras.layers.Concatenate) or type(layer) in _MERGES:
        return _convert_merge(context, layer, node)
    if _is_text_chunking(layer):
        if type(layer).__name__ == "TextChunks":
            return _convert_text_chunks(context, layer, node)
        return _convert_chunk_pooling(context, layer, node)
    args, kwargs = node.arguments.args, dict(node.arguments.kwargs)
    kwargs.pop("training", None)
    # Keras records the mask it hands a layer in the call's arguments; a
    # recurrent layer called with `initial_state` gets none (its output
    # still carries its input's mask on).
    receives_mask = kwargs.get("mask") is not None
    # The mask Keras propagates is recomputed here; a mask passed by hand (a
    # tensor of the model) is not. A model built from inner tensors of
    # another (a text model's numeric part) is a clone whose nodes record
    # the original graph's masks, which are no tensors of the model.
    if "mask" in kwargs and (
        kwargs["mask"] is None
        or (args and kwargs["mask"] is getattr(args[0], "_keras_mask", None))
        or id(kwargs["mask"]) not in context.values
    ):
        kwargs.pop("mask")
    initial_state = kwargs.pop("initial_state", None)
    if kwargs or len(args) != 1 or not isinstance(args[0], keras.KerasTensor):
        _refuse(layer, ", called on one tensor (with `initial_state` and `training` only)")
    x = context.value(args[0])
    if initial_state is not None and not isinstance(
        layer, (keras.layers.RNN, keras.layers.Bidirectional)
    ):
        _refuse(layer, ", called without `initial_state`")
    if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
        if initial_state is not None and not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        return _convert_recurrent(
            context, layer, x, None if context.streaming else initial_state, receives_mask
        )
    if isinstance(layer, keras.layers.Dense):
        return _convert_dense(context, layer, x)
    if isinstance(layer, keras.layers.TimeDistributed) and isinstance(
        layer.layer, keras.layers.Dense
    ):
        return _convert_dense(context, layer.layer, x, owner=layer)
    if isinstance(layer, keras.layers.Embedding):
        return _convert_embedding(context, layer, x)
    if isinstance(layer, keras.layers.Masking):
        return _convert_masking(context, layer, x)
    if isinstance(layer, keras.layers.Dropout) or _is_vocabulary(layer):
        return [x]
    if type(layer) in _RESHAPING:
        return _convert_reshaping(context, layer, node, x)
    _refuse(layer, "")


def _is_vocabulary(layer):
    """A next-word model's `Vocabulary` layer, which passes the token ids through."""
    return type(layer).__name__ == "Vocabulary" and hasattr(layer, "vocabulary")


def _functional(model):
    if isinstance(model, keras.Sequential):
        functional = getattr(model, "_functional", None)
        if functional is None:
            raise ValueError(
                "Expected a Sequential model that starts with `keras.Input(...)` (so that its "
                f"input shape is known). Received: model {model.name!r} without an Input"
            )
        return functional
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        raise ValueError(
            "Expected a Sequential or functional Keras model. "
            f"Received: model of type {type(model).__name__}"
        )
    return model


def _graph_inputs(graph, model, sequence_length, streaming, input_names=None):
    """Declares the graph inputs; returns `{id(keras tensor): _Value}`."""
    onnx = _onnx()
    state_tensors = set()
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for state in node.arguments.kwargs.get("initial_state", None) or []:
                state_tensors.add(id(state))
    values = {}
    single = len(model.inputs) == 1
    for index, tensor in enumerate(model.inputs):
        layer = tensor._keras_history[0]
        name = "inputs" if single else layer.name
        if input_names is not None:
            name = input_names[index]
        dtype = onnx.helper.np_dtype_to_tensor_dtype(
            np.dtype(keras.backend.standardize_dtype(tensor.dtype))
        )
        shape = ["batch", *(d for d in tensor.shape[1:])]
        if id(tensor) not in state_tensors and len(shape) >= 2:
            if streaming:
                shape[1] = 1
            elif sequence_length is not None:
                if tensor.shape[1] not in (None, sequence_length):
                    raise ValueError(
                        f"Expected `sequence_length` equal to the model's time dimension "
                        f"({tensor.shape[1]}). Received: sequence_length={sequence_length}"
                    )
                shape[1] = sequence_length
            elif shape[1] is None:
                shape[1] = "time"
            # else the model fixes the number of steps (a forecasting window):
            # the graph keeps it, since its layers may depend on it.
        shape = [f"{name}_dim{i}" if d is None else d for i, d in enumerate(shape)]
        graph.add_input(name, dtype, shape)
        values[id(tensor)] = _Value(name)
    return values


def build_onnx_model(model, sequence_length=None, streaming=False, input_names=None):
    """Returns the `onnx.ModelProto` that `export_onnx` writes (see there).

    `model` is the numeric model (`text_export.numeric_model`); `input_names`
    optionally names its inputs in the graph.
    """
    onnx = _onnx()
    sequence_length = check_optional_positive_int("sequence_length", sequence_length)
    streaming = check_bool("streaming", streaming)
    if streaming and sequence_length not in (None, 1):
        raise ValueError(
            "Expected `sequence_length=None` with `streaming=True` (a streaming graph takes one "
            f"step). Received: sequence_length={sequence_length}"
        )
    functional = _functional(model)
    graph = _Graph()
    context = _Context(graph, streaming)
    context.values.update(_graph_inputs(graph, functional, sequence_length, streaming, input_names))
    context.one_recurrent_layer = (
        sum(
            isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))
            for layer in functional.layers
        )
        <= 1
    )
    own_nodes = functional._nodes
    for layer in functional.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        nodes = [
            node
            for index, node in enumerate(layer._inbound_nodes)
            if f"{id(layer)}_ib-{index}" in own_nodes
        ]
        if len(nodes) != 1:
            _refuse(layer, ", called once in the model")
        node = nodes[0]
        outputs = _convert_layer(context, layer, node)
        if len(outputs) != len(node.outputs):
            _refuse(layer, f", with {len(outputs)} outputs (it has {len(node.outputs)})")
        for tensor, value in zip(node.outputs, outputs, strict=True):
            context.set(tensor, value)
    single = len(functional.outputs) == 1
    for index, tensor in enumerate(functional.outputs):
        name = "outputs" if single else f"outputs_{index}"
        graph.add_output(
            context.value(tensor).name, name, onnx.TensorProto.FLOAT, len(tensor.shape)
        )
    for state_input, source in context.state_pairs:
        graph.add_output(source, f"next_{state_input}", onnx.TensorProto.FLOAT, 2)
    consumed = {name for node in graph.nodes for name in node.input}
    graph.inputs = [i for i in graph.inputs if i.name in consumed]
    onnx_graph = onnx.helper.make_graph(
        graph.nodes,
        f"{model.name}{'_step' if streaming else ''}",
        graph.inputs,
        graph.outputs,
        graph.initializers,
    )
    onnx_model = onnx.helper.make_model(
        onnx_graph,
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="keras_seqcells",
        # IR 8 (ONNX 1.10+) holds opset 17 and loads in older runtimes than the newest IR.
        ir_version=8,
    )
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def export_onnx(model, path, sequence_length=None, streaming=False, overwrite=False):
    """Exports a Keras model of keras_seqcells layers as an ONNX file.

    The recurrent layers become ONNX's own `LSTM`, `GRU` and `RNN` operators
    (opset 17; no converter package is involved), so ONNX Runtime and other
    runtimes run them with their fused kernels; the batch dimension stays
    dynamic, and so does the time dimension unless the model fixes it. The
    model must be a Sequential or functional model made of:
    `keras.Input`; `keras_seqcells.SimpleRNN` (with or without its softmax
    head), `LSTM` and `GRU` (both `reset_after` forms), with
    `return_sequences`, `return_state`, `go_backwards` and `initial_state`
    tensors from other inputs of the model, and `keras_seqcells.RNN` or
    `keras.layers.RNN` around their cells; the further cells:
    `PeepholeLSTM` (ONNX `LSTM` with its peepholes `P`), `CIFGLSTM` (ONNX
    `LSTM` with `input_forget=1`, its input gate `σ(-a_f) = 1 - f_t`), and
    `LayerNormLSTM`, `LayerNormSimpleRNN`, `LayerNormGRU`, `MinGRU`,
    `MinLSTM` (and the two LSTM variants with activations ONNX's operator
    does not take), which become a `Scan` whose body is one step of the
    cell's equations in primitive operators (`MatMul`, `Add`, `Sigmoid`,
    `LayerNormalization`, ...; see `keras_seqcells.onnx_cells`), as does a
    cell of one's own whose step is registered with
    `keras_seqcells.onnx_cells.register_step`;
    `keras.layers.Bidirectional` of them (every merge mode); `Embedding`
    (`mask_zero` included); `Masking`; `Dense` with a linear, relu,
    sigmoid, tanh or softmax activation; `TimeDistributed(Dense)`;
    `Concatenate` on the last axis; `Add`, `Subtract`, `Multiply`,
    `Average`, `Maximum`, `Minimum`; on unmasked tensors `Rescaling`,
    `Cropping1D`, `Permute`, `Reshape`, `Flatten`, `UpSampling1D` and
    `Identity` (the forecasting models' layers); `Dropout` and
    `SpatialDropout1D` (nothing at inference); the text classifier's
    `TextChunks` (a `Reshape` of the token ids into rows of one chunk) and
    `ChunkPooling` (the mean and maximum over each text's non-empty chunks,
    a chunk being empty when all its token ids are 0, exactly as the layer
    computes them, a text of padding alone included). Anything else (stateful layers, other
    activations, other layers, a layer called twice, a dtype policy other
    than float32) raises a ValueError naming the layer.

    Text models export from their token ids on (see
    `keras_seqcells.text_export`): a `TextVectorization` front end and the
    tagger's `TokenFeatureHashing` spelling features stay out of the graph,
    whose inputs are `token_ids` (and `<feature>_ids`); the vocabulary,
    settings and labels go to `<name>.vocabulary.json` beside the file,
    with `<name>.preprocess.py`, a module importing only numpy that turns
    raw texts into those inputs (`TextPreprocessor`). So do the vocabulary
    and tokeniser of a next-word model (input `token_ids`).

    Masks become the recurrent nodes' `sequence_lens`, and the outputs equal
    Keras's for any mask: masked steps are skipped wherever they are
    (right padding or holes), and a masked step's output repeats the previous
    output (zero with `zero_output_for_mask`), as in Keras.

    Graph inputs are named `inputs` for a model with one input, else by
    the model's Input layer names; outputs `outputs`, or `outputs_0`,
    `outputs_1`, ... With `streaming=True` the graph computes one step: its
    sequence inputs have one time step, the recurrent layer's states are
    inputs `state_h` (and `state_c` for an LSTM) of shape `(batch, units)`
    and outputs `next_state_h` (`next_state_c`) to feed to the next step
    (start from zeros); with several recurrent layers the names are
    `<layer name>/state_h` and `next_<layer name>/state_h`. Feeding a
    sequence step by step gives the outputs of the whole sequence; a masked
    step carries the states over (its output is the previous step's, except
    that before any unmasked step Keras gives zeros and a SimpleRNN head
    gives `softmax(b_y)`). Bidirectional and `go_backwards` layers cannot
    stream.

    Args:
        model: A built Keras model (a Sequential model must start with
            `keras.Input`).
        path: The `.onnx` file to write (its folder is created if missing).
        sequence_length: None (default: a dynamic time dimension) or the
            fixed number of time steps of the graph's sequence inputs.
        streaming: Whether to export the one-step form with the states as
            inputs and outputs.
        overwrite: Whether an existing file may be replaced. The file is
            written to a temporary file in the same folder and moved into
            place, so a reader never sees a partial file.

    Returns:
        The path of the written file (a `pathlib.Path`).

    Example:

    ```python
    import keras, numpy as np, onnxruntime, keras_seqcells

    model = keras.Sequential([keras.Input((None, 3)), keras_seqcells.LSTM(8)])
    path = keras_seqcells.export_onnx(model, "lstm.onnx")
    session = onnxruntime.InferenceSession(str(path))
    x = np.random.rand(2, 5, 3).astype("float32")
    (y,) = session.run(None, {"inputs": x})  # equals model.predict(x)
    ```
    """
    if overwrite not in (True, False):
        raise TypeError(f"Expected `overwrite` to be a boolean. Received: overwrite={overwrite!r}")
    path = pathlib.Path(os.fspath(path))
    text_export.check_free(path, overwrite)
    _functional(model)  # a clear error for a model it cannot read
    numeric, sidecar = text_export.numeric_model(model)
    if sequence_length is None and sidecar is not None and not streaming:
        sequence_length = sidecar.get("sequence_length")
    onnx_model = build_onnx_model(
        numeric,
        sequence_length=sequence_length,
        streaming=streaming,
        input_names=text_export.input_names(sidecar) if sidecar is not None else None,
    )
    dtypes = {
        graph_input.name: _onnx()
        .helper.tensor_dtype_to_np_dtype(graph_input.type.tensor_type.elem_type)
        .name
        for graph_input in onnx_model.graph.input
    }
    text_export.write_sidecar(path, sidecar, dtypes, "step" if streaming else "sequence")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(onnx_model.SerializeToString())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path
