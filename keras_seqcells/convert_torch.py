"""Exact conversion between keras_seqcells and PyTorch's recurrent modules.

PyTorch stores each gate's matrices in document orientation (`weight_ih` of
shape `(gates * hidden_size, input_size)`, one row block per gate), so the
named weights of the cells (`named_weights()`) are row blocks of PyTorch's
parameters. PyTorch has two biases, `bias_ih` and `bias_hh`; outside a GRU's
candidate they are only ever added, so their sum is the single bias of the
equations. The gate orders are:

- `torch.nn.RNN`: one block, `W_xh`, `W_hh`, `b_h = b_ih + b_hh`.
- `torch.nn.LSTM`: i, f, g, o, which is i, f, c, o here.
- `torch.nn.GRU`: r, z, n. PyTorch computes `h' = (1 - z) ⊙ n + z ⊙ h`, so
  its `z` weights the old state where the update gate here weights the new
  candidate: the update gate's weights and bias are negated
  (σ(-a) = 1 - σ(a)). Its candidate
  `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))` is the reset-after
  candidate here when `b_hn` is zero; a non-zero `b_hn` sits inside the
  reset product, where the equations have no bias, and is refused.

PyTorch is imported only when a conversion runs.
"""

import keras
import numpy as np

from keras_seqcells._checks import check_bool
from keras_seqcells.cells import GRUCell, LSTMCell, SimpleRNNCell
from keras_seqcells.convert import from_keras
from keras_seqcells.layers import GRU, LSTM, SeqCellRNN, SimpleRNN

# PyTorch's gate blocks, in its order, as (our gate name, sign). The sign is -1
# for the GRU update gate, whose convention is the opposite of PyTorch's.
_TORCH_GATES = {
    "simple_rnn": (("h", 1.0),),
    "lstm": (("i", 1.0), ("f", 1.0), ("c", 1.0), ("o", 1.0)),
    "gru": (("r", 1.0), ("z", -1.0), ("h", 1.0)),
}
_OUR_LAYERS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}
_OUR_CELLS = {"simple_rnn": SimpleRNNCell, "lstm": LSTMCell, "gru": GRUCell}
_TORCH_LAYER_NAMES = {"simple_rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
_TORCH_CELL_NAMES = {"simple_rnn": "RNNCell", "lstm": "LSTMCell", "gru": "GRUCell"}
_SIMPLE_RNN_ACTIVATIONS = {"tanh": keras.activations.tanh, "relu": keras.activations.relu}


def from_torch(module, return_sequences=None, return_state=None, name=None):
    """Returns the Keras layer (or cell) computing exactly what `module` computes.

    Conversions (each exact up to floating-point rounding):

    - `torch.nn.RNN` -> `keras_seqcells.SimpleRNN` (`nonlinearity="relu"`
      gives `activation="relu"`), `torch.nn.LSTM` -> `keras_seqcells.LSTM`,
      `torch.nn.GRU` -> `keras_seqcells.GRU(reset_after=True)`;
    - `bidirectional=True` -> `keras.layers.Bidirectional` of two such
      layers (`merge_mode="concat"`, the backward one with
      `go_backwards=True`), whose outputs are PyTorch's: forward and backward
      features concatenated, each step in input order;
    - `num_layers > 1` -> a `keras.Sequential` of the stacked layers (every
      layer but the last with `return_sequences=True`), so that the model
      is called like the module. A non-zero `dropout` between the layers,
      which acts only in training, becomes a `keras.layers.Dropout` of that
      rate between the layers, as in PyTorch;
    - `torch.nn.RNNCell`, `LSTMCell`, `GRUCell` -> a built
      `keras_seqcells.SimpleRNNCell`, `LSTMCell` or `GRUCell`, called as
      `cell(x_t, [h])` (or `[h, c]`).

    PyTorch's two biases `bias_ih + bias_hh` add into the single bias of the
    equations; for a GRU, only the candidate's `bias_hh` part (`b_hn`) must be
    zero (see Raises). PyTorch initialises `b_hn` at random, so a GRU meant
    for conversion needs it zeroed, and kept zero in training (for example
    with a gradient hook that zeroes its gradient), or `bias=False`. The
    Keras layer has the module's parameter dtype (`float32`, `float64`, ...).

    Keras is batch-major: the returned layers take `(batch, timesteps,
    features)` whatever the module's `batch_first`; a time-major input
    `x` of a `batch_first=False` module is `np.swapaxes(x, 0, 1)` here.
    PyTorch's initial state `h_0` of shape `(num_layers * num_directions,
    batch, hidden_size)` maps to `initial_state=[h_0[0]]` (an LSTM:
    `[h_0[0], c_0[0]]`; a bidirectional layer: `[h_0[0], h_0[1]]`, or
    `[h_0[0], c_0[0], h_0[1], c_0[1]]`) of the first layer, `h_0[k * dirs]`
    onwards of layer `k`; with `return_state=True` the final states come
    back in the same order.

    Args:
        module: A `torch.nn.RNN`, `LSTM`, `GRU`, `RNNCell`, `LSTMCell` or
            `GRUCell`.
        return_sequences: Whether the (last) layer returns the whole output
            sequence, like PyTorch's `output`, or only the last step. Default
            (None): True. Not for cells.
        return_state: Whether the layer also returns its final states (PyTorch's
            `h_n`, `c_n`). Default (None): False. Only for `num_layers=1`;
            not for cells.
        name: Name of the returned layer, model or cell; the layers of a
            stack are named `{name}_l{k}`. Default: Keras's automatic names.

    Returns:
        A `keras_seqcells.SimpleRNN`, `LSTM` or `GRU`, a
        `keras.layers.Bidirectional` of two of them, a `keras.Sequential` of
        either (for `num_layers > 1`), or a keras_seqcells cell; built, with
        the module's weights.

    Raises:
        TypeError: if `module` is not one of those PyTorch modules.
        ValueError: for an `RNN` whose `nonlinearity` is not `"tanh"` or
            `"relu"`, an `LSTM` with `proj_size > 0` (a projection the
            equations do not have), a `GRU` whose candidate recurrent bias
            `b_hn` (the last third of `bias_hh`) is non-zero (it sits inside
            the reset product, where the equations have no bias),
            `return_state=True` with `num_layers > 1`, or `return_sequences`
            / `return_state` given for a cell.

    Example:

    >>> import torch
    >>> module = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)
    >>> model = keras_seqcells.from_torch(module)  # a Sequential of 2 LSTMs
    >>> x = torch.randn(2, 5, 3)
    >>> output, (h_n, c_n) = module(x)
    >>> np.allclose(model(x.numpy()), output.detach().numpy(), atol=1e-5)
    True
    """
    torch = _import_torch("from_torch")
    kind, is_cell = _torch_kind(module, torch)
    _check_torch_module(module, kind, is_cell)
    dtype = _keras_dtype(module)
    activation = _torch_nonlinearity(module, is_cell)
    if is_cell:
        for argument, value in (
            ("return_sequences", return_sequences),
            ("return_state", return_state),
        ):
            if value is not None:
                raise ValueError(
                    f"Expected `{argument}=None` when converting a torch.nn."
                    f"{type(module).__name__}: a cell returns one step. "
                    f"Received: {argument}={value!r}"
                )
        cell_options = {"activation": activation} if kind == "simple_rnn" else {}
        cell = _OUR_CELLS[kind](
            module.hidden_size, use_bias=module.bias, dtype=dtype, name=name, **cell_options
        )
        cell.build((None, module.input_size))
        cell.set_named_weights(_named_from_torch(kind, module, ""))
        return cell

    return_sequences = (
        True if return_sequences is None else check_bool("return_sequences", return_sequences)
    )
    return_state = False if return_state is None else check_bool("return_state", return_state)
    if return_state and module.num_layers > 1:
        raise ValueError(
            "Expected `return_state=False` for a module with num_layers > 1, which becomes a "
            "keras.Sequential (it returns one output); call its layers one by one, each with "
            f"return_state=True, for their states. Received: return_state=True, "
            f"num_layers={module.num_layers}"
        )
    directions = 2 if module.bidirectional else 1
    stacked = []
    for index in range(module.num_layers):
        last = index == module.num_layers - 1
        layer_name = name if module.num_layers == 1 else (name and f"{name}_l{index}")
        options = {
            "use_bias": module.bias,
            "return_sequences": return_sequences if last else True,
            "return_state": return_state,
            "dtype": dtype,
        }
        if kind == "simple_rnn":
            options["activation"] = activation
        input_dim = module.input_size if index == 0 else directions * module.hidden_size
        layer = _our_layer_from_torch(kind, module, index, input_dim, layer_name, options)
        if stacked and module.dropout > 0:
            stacked.append(keras.layers.Dropout(module.dropout, dtype=dtype))
        stacked.append(layer)
    if module.num_layers == 1:
        return stacked[0]
    return keras.Sequential(
        [keras.Input((None, module.input_size), dtype=dtype), *stacked], name=name
    )


def to_torch(layer, batch_first=True):
    """Returns the PyTorch module computing exactly what `layer` computes.

    Conversions (each exact up to floating-point rounding; the reverse of
    `from_torch`):

    - a `keras_seqcells.SimpleRNN` (tanh or relu), `LSTM` or `GRU`
      (`reset_after=True`), or a `keras.layers.RNN` of a keras_seqcells cell
      -> `torch.nn.RNN` (`nonlinearity` from the activation), `LSTM` or
      `GRU`; a built-in `keras.layers.SimpleRNN`, `LSTM` or `GRU` is
      converted through `from_keras` first;
    - a `keras.layers.Bidirectional` of them (`merge_mode="concat"`) ->
      `bidirectional=True`;
    - a list, or a `keras.Sequential`, of such layers (or of such
      `Bidirectional` layers) of the same cell, `units`, bias and activation,
      stacked (each but the last with `return_sequences=True`) ->
      `num_layers=len(stack)`. One `keras.layers.Dropout` of the same rate
      between every two of them becomes PyTorch's `dropout`;
    - a built `SimpleRNNCell`, `LSTMCell` or `GRUCell` ->
      `torch.nn.RNNCell`, `LSTMCell` or `GRUCell`.

    The single bias becomes `bias_ih`, with `bias_hh` zero; the GRU's update
    gate weights and bias are negated (PyTorch's `z` weights the old state).
    The module has the layer's variable dtype, is on the CPU and in
    training mode (as new PyTorch modules are). PyTorch's module always
    returns `output, h_n` (an LSTM: `output, (h_n, c_n)`), whatever the
    layer's `return_sequences` and `return_state`: the last step of the
    layer is `output[:, -1]`, and a bidirectional layer's last output is
    `output[:, -1, :units]` with `output[:, 0, units:]`.

    Args:
        layer: The Keras layer, stack or cell, built (so that its input size
            is known).
        batch_first: Whether the module takes `(batch, timesteps, features)`
            like Keras (True, the default) or PyTorch's default time-major
            `(timesteps, batch, features)` (False). Ignored for cells, which
            take one step `(batch, features)`.

    Returns:
        A `torch.nn.RNN`, `LSTM`, `GRU`, `RNNCell`, `LSTMCell` or `GRUCell`
        with the layer's weights.

    Raises:
        TypeError: if `layer` is none of the above, or a stack holds
            anything else.
        ValueError: for what PyTorch's modules do not compute: an unbuilt
            layer; a `SimpleRNN` with `output_units` (a softmax head) or an
            activation other than tanh and relu; an `LSTM` or `GRU` with
            activations other than tanh and sigmoid; a `GRU` with
            `reset_after=False`; `go_backwards=True` outside a
            `Bidirectional`; a `Bidirectional` whose `merge_mode` is not
            `"concat"`; a `stateful` layer; `dropout` or
            `recurrent_dropout` (PyTorch has no per-sequence masks; set
            `layer.cell.dropout = 0.0` to convert for inference); a stack
            whose layers differ, do not return sequences, or whose Dropout
            layers differ or do not separate every two layers.

    Example:

    >>> import torch
    >>> layer = keras_seqcells.GRU(4, return_sequences=True)
    >>> x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")
    >>> expected = layer(x)
    >>> module = keras_seqcells.to_torch(layer)
    >>> module
    GRU(3, 4, batch_first=True)
    >>> output, h_n = module(torch.from_numpy(x))
    >>> np.allclose(output.detach().numpy(), expected, atol=1e-5)
    True
    """
    torch = _import_torch("to_torch")
    batch_first = check_bool("batch_first", batch_first)
    cell_kind = _our_cell_kind(layer)
    if cell_kind is not None:
        _check_our_cell(layer, cell_kind, where="layer")
        _require_built(layer, "layer")
        module_class = getattr(torch.nn, _TORCH_CELL_NAMES[cell_kind])
        options = _torch_options(layer, cell_kind)
        module = module_class(
            _input_dim(layer),
            layer.units,
            bias=layer.use_bias,
            dtype=_torch_dtype(layer, torch),
            **options,
        )
        _write_torch_weights(module, "", cell_kind, layer, torch)
        return module

    entries, dropout = _stack_entries(layer)
    is_stack = isinstance(layer, (list, tuple, keras.Sequential))
    directional = [
        _directions(entry, f"layer[{index}]" if is_stack else "layer")
        for index, entry in enumerate(entries)
    ]
    kind = _check_stack(directional)
    first = directional[0][0]
    module_class = getattr(torch.nn, _TORCH_LAYER_NAMES[kind])
    module = module_class(
        _input_dim(first.cell),
        first.cell.units,
        num_layers=len(directional),
        bias=first.cell.use_bias,
        batch_first=batch_first,
        dropout=dropout,
        bidirectional=len(directional[0]) == 2,
        dtype=_torch_dtype(first.cell, torch),
        **_torch_options(first.cell, kind),
    )
    for index, directions in enumerate(directional):
        for rnn, suffix in zip(directions, ("", "_reverse"), strict=False):
            _write_torch_weights(module, f"_l{index}{suffix}", kind, rnn.cell, torch)
    return module


# ------------------------------------------------------------------ PyTorch side
def _import_torch(function):
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"Expected PyTorch to be installed for keras_seqcells.{function} "
            "(pip install 'keras-seqcells[torch]'). Received: no module named 'torch'"
        ) from error
    return torch


def _torch_kind(module, torch):
    """`(kind, is_cell)` of a PyTorch module, or a TypeError."""
    for kind in _TORCH_GATES:
        if isinstance(module, getattr(torch.nn, _TORCH_LAYER_NAMES[kind])):
            return kind, False
        if isinstance(module, getattr(torch.nn, _TORCH_CELL_NAMES[kind])):
            return kind, True
    raise TypeError(
        "Expected a torch.nn.RNN, LSTM, GRU, RNNCell, LSTMCell or GRUCell. "
        f"Received: module={module!r}"
    )


def _check_torch_module(module, kind, is_cell):
    module_name = f"torch.nn.{type(module).__name__}"
    if kind == "simple_rnn" and _torch_nonlinearity(module, is_cell) is None:
        received = f"nonlinearity={module.nonlinearity!r}" if is_cell else f"mode={module.mode!r}"
        raise ValueError(
            f"Expected a {module_name} with nonlinearity 'tanh' or 'relu'. Received: {received}"
        )
    if not is_cell and getattr(module, "proj_size", 0) > 0:
        raise ValueError(
            f"Expected a {module_name} with proj_size=0: the LSTM equations have no "
            f"projection of h_t. Received: proj_size={module.proj_size}"
        )
    if kind != "gru" or not module.bias:
        return
    hidden = module.hidden_size
    suffixes = [""] if is_cell else _torch_suffixes(module)
    for suffix in suffixes:
        candidate_bias = _torch_array(module, f"bias_hh{suffix}")[2 * hidden :]
        if np.any(candidate_bias != 0):
            raise ValueError(
                f"Expected a {module_name} whose recurrent bias of the candidate "
                f"(bias_hh{suffix}[2*hidden_size:], b_hn) is zero: it sits inside the reset "
                "product r * (W_hn h + b_hn), and the equations' reset-after candidate "
                "tanh(W_xh x + r * (W_hh h) + b_h) has no bias there, so it cannot be "
                "converted exactly (PyTorch initialises it at random: set it to zero, and "
                "keep its gradient zero in training, for a convertible GRU). "
                f"Received: max |bias_hh{suffix}[2*hidden_size:]|="
                f"{np.abs(candidate_bias).max()}"
            )


def _torch_nonlinearity(module, is_cell):
    """The nonlinearity a PyTorch module computes ("tanh" for LSTM and GRU), or None."""
    if not hasattr(module, "nonlinearity"):
        return "tanh"
    if is_cell:
        nonlinearity = module.nonlinearity
    else:
        # torch.nn.RNN's forward computes by `mode`, set from `nonlinearity` when built.
        nonlinearity = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}.get(module.mode)
    return nonlinearity if nonlinearity in _SIMPLE_RNN_ACTIVATIONS else None


def _torch_suffixes(module):
    """Parameter name suffixes of every layer and direction of a module, in order."""
    directions = ("", "_reverse") if module.bidirectional else ("",)
    return [f"_l{index}{end}" for index in range(module.num_layers) for end in directions]


def _torch_array(module, parameter):
    # float64 holds every float32 and float16 value exactly.
    return getattr(module, parameter).detach().cpu().double().numpy()


def _keras_dtype(module):
    dtype = next(module.parameters()).dtype
    if not dtype.is_floating_point:
        raise ValueError(
            f"Expected a torch.nn.{type(module).__name__} with floating-point parameters. "
            f"Received: dtype={dtype}"
        )
    return str(dtype).removeprefix("torch.")


def _named_from_torch(kind, module, suffix):
    """The named weights of our cell from a module's parameters of one layer and direction."""
    hidden = module.hidden_size
    weight_ih = _torch_array(module, f"weight_ih{suffix}")
    weight_hh = _torch_array(module, f"weight_hh{suffix}")
    bias = None
    if module.bias:
        bias_ih = _torch_array(module, f"bias_ih{suffix}")
        bias_hh = _torch_array(module, f"bias_hh{suffix}")
        # bias_hh of the GRU candidate is zero (checked): the sums are exact there.
        bias = bias_ih + bias_hh
    named = {}
    for block, (gate, sign) in enumerate(_TORCH_GATES[kind]):
        rows = slice(block * hidden, (block + 1) * hidden)
        named[f"W_x{gate}"] = sign * weight_ih[rows]
        named[f"W_h{gate}"] = sign * weight_hh[rows]
        if bias is not None:
            named[f"b_{gate}"] = sign * bias[rows]
    return named


def _our_layer_from_torch(kind, module, index, input_dim, name, options):
    """Our layer (or a Bidirectional of two) for one layer of a PyTorch module."""
    layer_class = _OUR_LAYERS[kind]
    layer = layer_class(module.hidden_size, name=name, **options)
    if module.bidirectional:
        backward = layer_class(module.hidden_size, go_backwards=True, **options)
        layer = keras.layers.Bidirectional(
            layer, backward_layer=backward, merge_mode="concat", name=name, dtype=options["dtype"]
        )
        layer.build((None, None, input_dim))
        # Bidirectional rebuilds its forward layer from the config: set weights after.
        directions = ((layer.forward_layer, ""), (layer.backward_layer, "_reverse"))
    else:
        layer.build((None, None, input_dim))
        directions = ((layer, ""),)
    for rnn, end in directions:
        rnn.cell.set_named_weights(_named_from_torch(kind, module, f"_l{index}{end}"))
    return layer


def _write_torch_weights(module, suffix, kind, cell, torch):
    """Writes our cell's weights into one layer and direction of a PyTorch module."""
    named = cell.named_weights()
    hidden = cell.units
    weights = {"weight_ih": [], "weight_hh": [], "bias_ih": []}
    for gate, sign in _TORCH_GATES[kind]:
        weights["weight_ih"].append(sign * named[f"W_x{gate}"])
        weights["weight_hh"].append(sign * named[f"W_h{gate}"])
        if cell.use_bias:
            weights["bias_ih"].append(sign * named[f"b_{gate}"])
    if cell.use_bias:
        weights["bias_hh"] = [np.zeros(len(_TORCH_GATES[kind]) * hidden)]
    with torch.no_grad():
        for parameter, blocks in weights.items():
            if blocks:
                target = getattr(module, f"{parameter}{suffix}")
                target.copy_(torch.from_numpy(np.concatenate(blocks)).to(target.dtype))


def _torch_dtype(cell, torch):
    return getattr(torch, keras.backend.standardize_dtype(cell.variable_dtype))


def _torch_options(cell, kind):
    if kind != "simple_rnn":
        return {}
    nonlinearity = next(
        name for name, function in _SIMPLE_RNN_ACTIVATIONS.items() if cell.activation is function
    )
    return {"nonlinearity": nonlinearity}


# -------------------------------------------------------------------- Keras side
def _our_cell_kind(cell):
    for kind, cell_class in _OUR_CELLS.items():
        if isinstance(cell, cell_class):
            return kind
    return None


def _require_built(obj, where):
    if not obj.built:
        raise ValueError(
            f"Expected a built {type(obj).__name__} (call it on an input or build it first), "
            f"so that its input size is known. Received: {where}={obj!r}, unbuilt"
        )


def _input_dim(cell):
    return int(cell.kernel.shape[0])


def _check_our_cell(cell, kind, where):
    """Raises for a cell whose equations PyTorch's modules do not compute."""
    cell_name = type(cell).__name__
    if kind == "simple_rnn":
        if cell.output_units is not None:
            raise ValueError(
                f"Expected {where} without an output head: torch.nn.RNN has no softmax "
                f"head. Received: output_units={cell.output_units}"
            )
        if not any(cell.activation is function for function in _SIMPLE_RNN_ACTIVATIONS.values()):
            raise ValueError(
                f"Expected {where} with activation 'tanh' or 'relu', torch.nn.RNN's "
                "nonlinearities. Received: "
                f"activation={keras.activations.serialize(cell.activation)!r}"
            )
    else:
        for argument, expected in (
            ("activation", keras.activations.tanh),
            ("recurrent_activation", keras.activations.sigmoid),
        ):
            if getattr(cell, argument) is not expected:
                raise ValueError(
                    f"Expected {where} ({cell_name}) with activation='tanh' and "
                    "recurrent_activation='sigmoid', PyTorch's. Received: "
                    f"{argument}={keras.activations.serialize(getattr(cell, argument))!r}"
                )
    if kind == "gru" and not cell.reset_after:
        raise ValueError(
            f"Expected {where} with reset_after=True: torch.nn.GRU applies the reset gate "
            "after the recurrent product. Received: reset_after=False"
        )
    for argument in ("dropout", "recurrent_dropout"):
        if getattr(cell, argument) != 0:
            raise ValueError(
                f"Expected {where} with {argument}=0: PyTorch's recurrent modules have no "
                "per-sequence input or recurrent dropout (to convert for inference, set "
                f"the cell's `{argument}` to 0.0 first). "
                f"Received: {argument}={getattr(cell, argument)}"
            )


def _stack_entries(layer):
    """The recurrent entries of a layer, list or Sequential, and the dropout between them."""
    if isinstance(layer, keras.Sequential):
        items = list(layer.layers)
    elif isinstance(layer, (list, tuple)):
        items = list(layer)
    else:
        items = [layer]
    if not items:
        raise ValueError(f"Expected at least one recurrent layer. Received: layer={layer!r}")
    entries, rates = [], []
    previous_was_dropout = True  # a stack may not start with Dropout
    for index, item in enumerate(items):
        if isinstance(item, keras.layers.Dropout):
            if previous_was_dropout or index == len(items) - 1:
                raise ValueError(
                    "Expected keras.layers.Dropout only between two recurrent layers, where "
                    "torch.nn.RNN/LSTM/GRU's `dropout` acts. Received: a Dropout at "
                    f"position {index} of {len(items)}"
                )
            rates.append(item.rate)
            previous_was_dropout = True
            continue
        entries.append(item)
        previous_was_dropout = False
    if rates and (len(rates) != len(entries) - 1 or len(set(rates)) != 1):
        raise ValueError(
            "Expected one keras.layers.Dropout of the same rate between every two recurrent "
            "layers (PyTorch's `dropout` acts between all of them), or none. Received: "
            f"rates={rates} between {len(entries)} recurrent layers"
        )
    return entries, (float(rates[0]) if rates else 0.0)


def _directions(entry, where):
    """`(forward,)` or `(forward, backward)`: our recurrent layers of one stack entry."""
    if isinstance(entry, keras.layers.Bidirectional):
        if entry.merge_mode != "concat":
            raise ValueError(
                f"Expected {where} with merge_mode='concat': PyTorch concatenates the two "
                f"directions. Received: merge_mode={entry.merge_mode!r}"
            )
        forward = _our_rnn(entry.forward_layer, f"{where}.forward_layer")
        backward = _our_rnn(entry.backward_layer, f"{where}.backward_layer")
        if forward.go_backwards or not backward.go_backwards:
            raise ValueError(
                f"Expected {where} whose forward layer reads forwards and backward layer "
                "backwards. Received: go_backwards="
                f"({forward.go_backwards}, {backward.go_backwards})"
            )
        return (forward, backward)
    rnn = _our_rnn(entry, where)
    if rnn.go_backwards:
        raise ValueError(
            f"Expected {where} with go_backwards=False: PyTorch reads backwards only in a "
            "bidirectional module (wrap the layer in keras.layers.Bidirectional). "
            "Received: go_backwards=True"
        )
    return (rnn,)


def _our_rnn(layer, where):
    """A checked, built RNN layer of one of our cells (a built-in Keras layer converted)."""
    builtin = (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU)
    if isinstance(layer, builtin) and not isinstance(layer, SeqCellRNN):
        _require_built(layer, where)
        layer = from_keras(layer)
    kind = _our_cell_kind(getattr(layer, "cell", None))
    if not isinstance(layer, keras.layers.RNN) or kind is None:
        raise TypeError(
            "Expected a keras_seqcells.SimpleRNN, LSTM or GRU (or a keras.layers.RNN of their "
            "cells, a built-in Keras SimpleRNN, LSTM or GRU, a keras.layers.Bidirectional of "
            f"them, a list or keras.Sequential of them, or a cell). Received: {where}={layer!r}"
        )
    _require_built(layer, where)
    _check_our_cell(layer.cell, kind, where)
    if layer.stateful:
        raise ValueError(
            f"Expected {where} with stateful=False: a PyTorch module keeps no state between "
            "calls (pass it as `hx` instead). Received: stateful=True"
        )
    return layer


def _check_stack(directional):
    """Checks that stacked layers form one PyTorch module; returns the cell kind."""
    first = directional[0][0].cell
    kind = _our_cell_kind(first)
    bidirectional = len(directional[0]) == 2
    expected_input = first.units * len(directional[0])
    for index, directions in enumerate(directional):
        if len(directions) != len(directional[0]):
            raise ValueError(
                "Expected stacked layers that are all bidirectional or all not. Received: "
                f"layer[0] bidirectional={bidirectional}, layer[{index}] "
                f"bidirectional={len(directions) == 2}"
            )
        for rnn in directions:
            cell = rnn.cell
            received = {
                "cell": type(cell).__name__,
                "units": cell.units,
                "use_bias": cell.use_bias,
                "activation": keras.activations.serialize(cell.activation),
                "dtype": cell.variable_dtype,
            }
            expected = {
                "cell": type(first).__name__,
                "units": first.units,
                "use_bias": first.use_bias,
                "activation": keras.activations.serialize(first.activation),
                "dtype": first.variable_dtype,
            }
            for key, value in received.items():
                if value != expected[key]:
                    raise ValueError(
                        f"Expected stacked layers with the same {key} (one PyTorch module has "
                        f"one). Received: layer[0] {key}={expected[key]!r}, layer[{index}] "
                        f"{key}={value!r}"
                    )
            if index > 0 and _input_dim(cell) != expected_input:
                raise ValueError(
                    f"Expected layer[{index}] to read the {expected_input} features of the "
                    f"layer below. Received: input_dim={_input_dim(cell)}"
                )
        if index < len(directional) - 1 and not directions[0].return_sequences:
            raise ValueError(
                f"Expected every stacked layer but the last to return sequences. Received: "
                f"layer[{index}] return_sequences=False"
            )
    return kind
