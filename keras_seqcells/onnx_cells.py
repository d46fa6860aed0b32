"""The steps of the cells that ONNX has no recurrent operator for, in primitive ONNX ops.

`keras_seqcells.export_onnx` runs these cells with an ONNX `Scan` whose body
is one step of the cell's equations (the equations of each cell's
docstring), written with `MatMul`, `Add`, `Mul`, `Sigmoid`, `Tanh`,
`LayerNormalization`, `Where`, ... The streaming graph writes the same step
once, in the main graph. Each function here takes:

- `graph`: the `_Graph` the step's nodes go to (the `Scan` body, or the main
  graph); its constants (the cell's weights) go to the main graph's
  initializers, which a `Scan` body reads from the outer scope;
- `cell`: the built cell;
- `projected`: the step's input projection `x_t @ kernel` (plus `bias` when
  the cell's `bias_in_projection` is True), shape `(batch, n_gates * units)`,
  computed for every step at once before the `Scan`;
- `states`: the previous states, in the order of the cell's `state_names`;

and returns the list of new states (the step's output is the first).

Where ONNX's own `LSTM` operator computes a cell's equations (the peephole
LSTM with its `P` input, the CIFG LSTM with `input_forget=1`), the export
uses the operator instead (see `onnx_export`).

A cell of one's own (a `keras_seqcells.RecurrentCell` subclass) exports once
its step is registered with `register_step`: a function of the signature
above writing the step with `graph.op(op_type, inputs, **attributes)` (the
name of its output, or a list of names with `outputs=n`) and
`graph.constant(array, hint)` (the name of a constant).

Example: the IndRNN cell of `examples/custom_cell.py`,
`h_t = relu(W x_t + u ⊙ h_{t-1} + b)`.

```python
def indrnn_step(graph, cell, projected, states):
    u = graph.constant(keras.ops.convert_to_numpy(cell.u), "u")
    (h_prev,) = states
    return [graph.op("Relu", [graph.op("Add", [projected, graph.op("Mul", [u, h_prev])])])]

keras_seqcells.onnx_cells.register_step(IndRNNCell, indrnn_step)
```
"""

import keras
import numpy as np

from keras_seqcells.cells import (
    CIFGLSTMCell,
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LayerNormSimpleRNNCell,
    MinGRUCell,
    MinLSTMCell,
    PeepholeLSTMCell,
)

# Keras activations and the ONNX operator (and attributes) computing each.
ACTIVATIONS = {
    "linear": None,
    "relu": ("Relu", {}),
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "softsign": ("Softsign", {}),
    "elu": ("Elu", {"alpha": 1.0}),
}


def activation_name(function):
    """The name Keras serialises an activation function under."""
    try:
        return keras.activations.serialize(function)
    except (ValueError, TypeError):
        return getattr(function, "__name__", repr(function))


def _numpy(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def _activate(graph, function, x):
    operator = ACTIVATIONS[activation_name(function)]
    if operator is None:
        return x
    op_type, attributes = operator
    return graph.op(op_type, [x], **attributes)


def _block(graph, x, index, units):
    """Columns `[index * units, (index + 1) * units)` of `x` (..., n * units)."""
    return graph.op(
        "Slice",
        [
            x,
            graph.ints([index * units], "start"),
            graph.ints([(index + 1) * units], "end"),
            graph.ints([-1], "last_axis"),
        ],
    )


def _recurrent_product(graph, cell, h):
    return graph.op("MatMul", [h, graph.constant(_numpy(cell.recurrent_kernel), "recurrent")])


def _layer_norm(graph, x, gamma, beta, epsilon):
    """`keras_seqcells.cells.layer_norm.layer_norm` as ONNX's `LayerNormalization`."""
    inputs = [x, graph.constant(_numpy(gamma), "gamma")]
    if beta is not None:
        inputs.append(graph.constant(_numpy(beta), "beta"))
    return graph.op("LayerNormalization", inputs, axis=-1, epsilon=float(epsilon))


def _bias_blocks(graph, cell, count):
    """The `count` blocks of the cell's bias as constants, or Nones without a bias."""
    if not cell.use_bias:
        return [None] * count
    bias = _numpy(cell.bias)
    units = cell.units
    return [graph.constant(bias[i * units : (i + 1) * units], f"bias_{i}") for i in range(count)]


def _add(graph, x, y):
    return x if y is None else graph.op("Add", [x, y])


def _one_minus(graph, x):
    return graph.op("Sub", [graph.constant(np.float32(1), "one_f"), x])


def _normalised_products(graph, cell, projected, h_prev):
    """The layer-normalised input and recurrent products of a layer-norm LSTM or GRU."""
    epsilon = cell.norm_epsilon
    inputs = _layer_norm(graph, projected, cell.kernel_norm_gamma, cell.kernel_norm_beta, epsilon)
    recurrent = _layer_norm(
        graph,
        _recurrent_product(graph, cell, h_prev),
        cell.recurrent_norm_gamma,
        cell.recurrent_norm_beta,
        epsilon,
    )
    return inputs, recurrent


def _layer_norm_lstm(graph, cell, projected, states):
    h_prev, c_prev = states
    z, recurrent = _normalised_products(graph, cell, projected, h_prev)
    z = graph.op("Add", [z, recurrent])
    if cell.use_bias:
        z = graph.op("Add", [z, graph.constant(_numpy(cell.bias), "bias")])
    a_i, a_f, a_c, a_o = (_block(graph, z, k, cell.units) for k in range(4))
    i = _activate(graph, cell.recurrent_activation, a_i)
    f = _activate(graph, cell.recurrent_activation, a_f)
    c_tilde = _activate(graph, cell.activation, a_c)
    o = _activate(graph, cell.recurrent_activation, a_o)
    c = graph.op(
        "Add", [graph.op("Mul", [f, c_prev]), graph.op("Mul", [i, c_tilde])], "c_unnormalised"
    )
    c = _layer_norm(graph, c, cell.state_norm_gamma, cell.state_norm_beta, cell.norm_epsilon)
    h = graph.op("Mul", [o, _activate(graph, cell.activation, c)], "h")
    return [h, c]


def _layer_norm_simple_rnn(graph, cell, projected, states):
    (h_prev,) = states
    a = graph.op("Add", [projected, _recurrent_product(graph, cell, h_prev)])
    normalised = _layer_norm(graph, a, cell.layernorm_gamma, None, cell.layernorm_epsilon)
    (bias,) = _bias_blocks(graph, cell, 1)
    h = _activate(graph, cell.activation, _add(graph, normalised, bias))
    return [h]


def _layer_norm_gru(graph, cell, projected, states):
    (h_prev,) = states
    units = cell.units
    u, v = _normalised_products(graph, cell, projected, h_prev)
    u_z, u_r, u_h = (_block(graph, u, k, units) for k in range(3))
    v_z, v_r, v_h = (_block(graph, v, k, units) for k in range(3))
    b_z, b_r, b_h = _bias_blocks(graph, cell, 3)
    a_z = _add(graph, graph.op("Add", [u_z, v_z]), b_z)
    a_r = _add(graph, graph.op("Add", [u_r, v_r]), b_r)
    a_h = _add(graph, u_h, b_h)
    z = _activate(graph, cell.recurrent_activation, a_z)
    r = _activate(graph, cell.recurrent_activation, a_r)
    h_tilde = _activate(graph, cell.activation, graph.op("Add", [a_h, graph.op("Mul", [r, v_h])]))
    h = graph.op(
        "Add",
        [graph.op("Mul", [_one_minus(graph, z), h_prev]), graph.op("Mul", [z, h_tilde])],
        "h",
    )
    return [h]


def _candidate(graph, a):
    """minGRU's and minLSTM's `g(a)`: `a + 0.5` for `a ≥ 0`, `σ(a)` below."""
    return graph.op(
        "Where",
        [
            graph.op("GreaterOrEqual", [a, graph.constant(np.float32(0), "zero_f")]),
            graph.op("Add", [a, graph.constant(np.float32(0.5), "half")]),
            graph.op("Sigmoid", [a]),
        ],
        "h_tilde",
    )


def _min_gru(graph, cell, projected, states):
    (h_prev,) = states
    x_z, x_h = (_block(graph, projected, k, cell.units) for k in range(2))
    z = graph.op("Sigmoid", [x_z])
    h = graph.op(
        "Add",
        [
            graph.op("Mul", [_one_minus(graph, z), h_prev]),
            graph.op("Mul", [z, _candidate(graph, x_h)]),
        ],
        "h",
    )
    return [h]


def _log_sigmoid(graph, a):
    """`log σ(a) = -softplus(-a)`, finite for every `a`."""
    return graph.op("Neg", [graph.op("Softplus", [graph.op("Neg", [a])])])


def _min_lstm(graph, cell, projected, states):
    (h_prev,) = states
    x_f, x_i, x_h = (_block(graph, projected, k, cell.units) for k in range(3))
    # f' = σ(log f - log i) and i' = σ(log i - log f), as the cell computes them.
    difference = graph.op("Sub", [_log_sigmoid(graph, x_f), _log_sigmoid(graph, x_i)])
    f_prime = graph.op("Sigmoid", [difference])
    i_prime = graph.op("Sigmoid", [graph.op("Neg", [difference])])
    h = graph.op(
        "Add",
        [
            graph.op("Mul", [f_prime, h_prev]),
            graph.op("Mul", [i_prime, _candidate(graph, x_h)]),
        ],
        "h",
    )
    return [h]


def _lstm_output(graph, cell, f, i, c_tilde, c_prev, a_o, peephole_o=None):
    """`C_t = f ⊙ C_{t-1} + i ⊙ C~_t` and `h_t = σ(a_o [+ p_o ⊙ C_t]) ⊙ tanh(C_t)`."""
    c = graph.op("Add", [graph.op("Mul", [f, c_prev]), graph.op("Mul", [i, c_tilde])], "c")
    if peephole_o is not None:
        a_o = graph.op("Add", [a_o, graph.op("Mul", [peephole_o, c])])
    o = _activate(graph, cell.recurrent_activation, a_o)
    h = graph.op("Mul", [o, _activate(graph, cell.activation, c)], "h")
    return [h, c]


def _peephole_lstm(graph, cell, projected, states):
    h_prev, c_prev = states
    z = graph.op("Add", [projected, _recurrent_product(graph, cell, h_prev)])
    z_i, z_f, z_c, z_o = (_block(graph, z, k, cell.units) for k in range(4))
    named = cell.named_weights()
    p_i, p_f, p_o = (graph.constant(named[f"p_{g}"], f"p_{g}") for g in ("i", "f", "o"))
    i = _activate(
        graph, cell.recurrent_activation, graph.op("Add", [z_i, graph.op("Mul", [p_i, c_prev])])
    )
    f = _activate(
        graph, cell.recurrent_activation, graph.op("Add", [z_f, graph.op("Mul", [p_f, c_prev])])
    )
    c_tilde = _activate(graph, cell.activation, z_c)
    return _lstm_output(graph, cell, f, i, c_tilde, c_prev, z_o, peephole_o=p_o)


def _cifg_lstm(graph, cell, projected, states):
    h_prev, c_prev = states
    z = graph.op("Add", [projected, _recurrent_product(graph, cell, h_prev)])
    z_f, z_c, z_o = (_block(graph, z, k, cell.units) for k in range(3))
    f = _activate(graph, cell.recurrent_activation, z_f)
    c_tilde = _activate(graph, cell.activation, z_c)
    return _lstm_output(graph, cell, f, _one_minus(graph, f), c_tilde, c_prev, z_o)


#: The cells written as a `Scan` over one step, and the function writing the step.
STEPS = {
    LayerNormLSTMCell: _layer_norm_lstm,
    LayerNormSimpleRNNCell: _layer_norm_simple_rnn,
    LayerNormGRUCell: _layer_norm_gru,
    MinGRUCell: _min_gru,
    MinLSTMCell: _min_lstm,
    # With activations that ONNX's LSTM node does not take.
    PeepholeLSTMCell: _peephole_lstm,
    CIFGLSTMCell: _cifg_lstm,
}


_BUILT_IN_STEPS = frozenset(STEPS)


def register_step(cell_class, function):
    """Registers the function writing one step of `cell_class` in ONNX operators.

    Args:
        cell_class: A `keras_seqcells.RecurrentCell` subclass (the exact
            class: a subclass of it needs its own registration).
        function: `function(graph, cell, projected, states)` returning the
            list of new states, as the functions of this module (see the
            module docstring).

    Raises:
        ValueError: for a class that is no `RecurrentCell` subclass, or one
            whose step this module writes already.
    """
    from keras_seqcells.cells import RecurrentCell

    if not (isinstance(cell_class, type) and issubclass(cell_class, RecurrentCell)):
        raise ValueError(
            "Expected `cell_class` to be a keras_seqcells.RecurrentCell subclass. "
            f"Received: cell_class={cell_class!r}"
        )
    if cell_class in _BUILT_IN_STEPS:
        raise ValueError(
            f"Expected a cell class whose step is not built in. Received: cell_class="
            f"{cell_class.__name__}"
        )
    if not callable(function):
        raise ValueError(f"Expected `function` to be callable. Received: function={function!r}")
    STEPS[cell_class] = function


def step_activations(cell):
    """The activation functions a built-in step applies by name (none for a registered one)."""
    if type(cell) not in _BUILT_IN_STEPS or isinstance(cell, (MinGRUCell, MinLSTMCell)):
        return []
    functions = [cell.activation]
    if hasattr(cell, "recurrent_activation"):
        functions.append(cell.recurrent_activation)
    return functions
