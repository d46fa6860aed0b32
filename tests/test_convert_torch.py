"""Exact conversion with `from_torch` / `to_torch`, checked against PyTorch itself."""

import sys

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from tests.cases import FLOAT64

torch = pytest.importorskip("torch")

BATCH, STEPS, FEATURES, HIDDEN = 2, 4, 3, 4
DTYPES = ["float32", FLOAT64]
ATOL = {"float32": 1e-5, "float64": 1e-10}

# id -> (PyTorch module name, PyTorch cell name, our layer, our cell, options)
KINDS = {
    "rnn_tanh": ("RNN", "RNNCell", ks.SimpleRNN, ks.SimpleRNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNN", "RNNCell", ks.SimpleRNN, ks.SimpleRNNCell, {"nonlinearity": "relu"}),
    "lstm": ("LSTM", "LSTMCell", ks.LSTM, ks.LSTMCell, {}),
    "gru": ("GRU", "GRUCell", ks.GRU, ks.GRUCell, {}),
}
# (num_layers, bidirectional)
STRUCTURES = {"one": (1, False), "bidirectional": (1, True), "two": (2, False), "two_bi": (2, True)}


def _randomize(module, seed=0):
    """Non-zero random parameters, both biases included; a GRU's `b_hn` is zero,
    the only value the specification's equations can express."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            values = torch.rand(parameter.shape, generator=generator, dtype=torch.float64)
            parameter.copy_((values - 0.5) * 1.2)
            if isinstance(module, (torch.nn.GRU, torch.nn.GRUCell)) and name.startswith("bias_hh"):
                parameter[2 * module.hidden_size :] = 0.0
    return module


def _torch_module(kind, dtype, num_layers=1, bidirectional=False, batch_first=True, **options):
    module_name, _, _, _, kind_options = KINDS[kind]
    module = getattr(torch.nn, module_name)(
        FEATURES,
        HIDDEN,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        dtype=getattr(torch, dtype),
        **{**kind_options, **options},
    )
    return _randomize(module)


def _torch_cell(kind, dtype, bias=True):
    _, cell_name, _, _, kind_options = KINDS[kind]
    cell = getattr(torch.nn, cell_name)(
        FEATURES, HIDDEN, bias=bias, dtype=getattr(torch, dtype), **kind_options
    )
    return _randomize(cell)


def _randomize_keras(layer, seed=1):
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.uniform(-0.6, 0.6, size=w.shape) for w in layer.get_weights()])
    return layer


def _keras_layer(kind, dtype, bidirectional=False, **options):
    _, _, layer_class, _, kind_options = KINDS[kind]
    activation = (
        {"activation": kind_options["nonlinearity"]} if "nonlinearity" in kind_options else {}
    )
    layer = layer_class(HIDDEN, dtype=dtype, return_sequences=True, **activation, **options)
    if bidirectional:
        layer = keras.layers.Bidirectional(layer, dtype=dtype)
    return layer


def _keras_stack(kind, dtype, num_layers, bidirectional, dropout=0.0):
    """Our layer (or Bidirectional, or Sequential stack) with random weights."""
    return_state = num_layers == 1
    layers = []
    for index in range(num_layers):
        if index and dropout:
            layers.append(keras.layers.Dropout(dropout))
        layers.append(_keras_layer(kind, dtype, bidirectional, return_state=return_state))
    if num_layers == 1:
        layer = layers[0]
        layer.build((None, None, FEATURES))
        return _randomize_keras(layer)
    model = keras.Sequential([keras.Input((None, FEATURES), dtype=dtype), *layers])
    return _randomize_keras(model)


def _numpy(tensor):
    if isinstance(tensor, torch.Tensor):
        return tensor.detach().numpy()
    return keras.ops.convert_to_numpy(tensor)


def _recurrent_layers(converted):
    layers = converted.layers if isinstance(converted, keras.Sequential) else [converted]
    return [layer for layer in layers if not isinstance(layer, keras.layers.Dropout)]


def _assert_computes_the_same(converted, module, dtype, seed=0):
    """The Keras layer or stack and the PyTorch module agree on outputs and final states,
    from given initial states (each layer of a stack called in turn) and from zeros."""
    atol = ATOL[dtype]
    rng = np.random.default_rng(seed)
    is_lstm = isinstance(module, torch.nn.LSTM)
    directions = 2 if module.bidirectional else 1
    state_shape = (module.num_layers * directions, BATCH, HIDDEN)
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype(dtype)
    h_0 = rng.standard_normal(state_shape).astype(dtype)
    c_0 = rng.standard_normal(state_shape).astype(dtype)

    torch_x = torch.from_numpy(x if module.batch_first else np.swapaxes(x, 0, 1).copy())
    hx = (torch.from_numpy(h_0), torch.from_numpy(c_0)) if is_lstm else torch.from_numpy(h_0)
    output, final = module(torch_x, hx)
    output = _numpy(output) if module.batch_first else np.swapaxes(_numpy(output), 0, 1)
    h_n, c_n = (_numpy(final[0]), _numpy(final[1])) if is_lstm else (_numpy(final), None)

    sequence = x
    for index, layer in enumerate(_recurrent_layers(converted)):
        rows = range(index * directions, (index + 1) * directions)
        initial_state = [s[row] for row in rows for s in ((h_0, c_0) if is_lstm else (h_0,))]
        result = layer(sequence, initial_state=initial_state)
        if layer.return_state:
            sequence, *states = result
            expected = [s[row] for row in rows for s in ((h_n, c_n) if is_lstm else (h_n,))]
            assert len(states) == len(expected)
            for state, want in zip(states, expected, strict=True):
                np.testing.assert_allclose(_numpy(state), want, rtol=0, atol=atol)
        else:
            sequence = result
        sequence = _numpy(sequence)
        np.testing.assert_allclose(sequence[:, -1, :HIDDEN], h_n[rows[0]], rtol=0, atol=atol)
        if directions == 2:
            np.testing.assert_allclose(sequence[:, 0, HIDDEN:], h_n[rows[1]], rtol=0, atol=atol)
    np.testing.assert_allclose(sequence, output, rtol=0, atol=atol)

    from_zeros, _ = module(torch_x)
    from_zeros = _numpy(from_zeros) if module.batch_first else np.swapaxes(_numpy(from_zeros), 0, 1)
    whole = converted(x)
    whole = whole[0] if isinstance(whole, (list, tuple)) else whole
    np.testing.assert_allclose(_numpy(whole), from_zeros, rtol=0, atol=atol)


# ------------------------------------------------------------------ from_torch
@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "time_major"])
@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_from_torch_computes_what_torch_computes(kind, dtype, structure, batch_first):
    num_layers, bidirectional = STRUCTURES[structure]
    module = _torch_module(kind, dtype, num_layers, bidirectional, batch_first)
    converted = ks.from_torch(module, return_state=num_layers == 1 or None)
    expected_type = (
        keras.Sequential
        if num_layers > 1
        else keras.layers.Bidirectional
        if bidirectional
        else KINDS[kind][2]
    )
    assert type(converted) is expected_type
    for layer in _recurrent_layers(converted):
        assert layer.dtype == dtype
    _assert_computes_the_same(converted, module, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_from_torch_without_bias(kind, dtype):
    module = _torch_module(kind, dtype, bidirectional=True, bias=False)
    converted = ks.from_torch(module, return_state=True)
    assert not converted.forward_layer.cell.use_bias
    _assert_computes_the_same(converted, module, dtype)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one_way", "bidirectional"])
@pytest.mark.parametrize("kind", KINDS)
def test_from_torch_last_output_only(kind, bidirectional):
    module = _torch_module(kind, "float32", bidirectional=bidirectional)
    converted = ks.from_torch(module, return_sequences=False)
    x = np.random.default_rng(3).standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    output = _numpy(module(torch.from_numpy(x))[0])
    expected = output[:, -1]
    if bidirectional:
        # The backward direction ends at the first step.
        expected = np.concatenate([output[:, -1, :HIDDEN], output[:, 0, HIDDEN:]], axis=-1)
    np.testing.assert_allclose(_numpy(converted(x)), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_cells_convert_both_ways(kind, dtype, bias):
    torch_cell = _torch_cell(kind, dtype, bias)
    cell = ks.from_torch(torch_cell, name="converted_cell")
    assert type(cell) is KINDS[kind][3]
    assert cell.name == "converted_cell" and cell.use_bias is bias
    back = ks.to_torch(cell)
    assert type(back) is type(torch_cell)
    rng = np.random.default_rng(5)
    states = [rng.standard_normal((BATCH, HIDDEN)).astype(dtype)]
    if kind == "lstm":
        states.append(rng.standard_normal((BATCH, HIDDEN)).astype(dtype))
    for step in range(STEPS):
        x_t = rng.standard_normal((BATCH, FEATURES)).astype(dtype)
        torch_states = [torch.from_numpy(s) for s in states]
        hx = tuple(torch_states) if kind == "lstm" else torch_states[0]
        expected = torch_cell(torch.from_numpy(x_t), hx)
        expected = [_numpy(e) for e in (expected if kind == "lstm" else (expected,))]
        again = back(torch.from_numpy(x_t), hx)
        again = [_numpy(a) for a in (again if kind == "lstm" else (again,))]
        output, new_states = cell(x_t, states)
        for ours, theirs, round_trip in zip(new_states, expected, again, strict=True):
            np.testing.assert_allclose(_numpy(ours), theirs, rtol=0, atol=ATOL[dtype])
            np.testing.assert_allclose(round_trip, theirs, rtol=0, atol=ATOL[dtype])
        np.testing.assert_allclose(_numpy(output), expected[0], rtol=0, atol=ATOL[dtype])
        states = expected if step % 2 else [_numpy(s) for s in new_states]


def test_from_torch_names_and_dropout_between_layers():
    module = _torch_module("lstm", "float32", num_layers=3, dropout=0.25)
    model = ks.from_torch(module, name="encoder")
    assert model.name == "encoder"
    assert [type(layer).__name__ for layer in model.layers] == [
        "LSTM",
        "Dropout",
        "LSTM",
        "Dropout",
        "LSTM",
    ]
    assert [layer.name for layer in _recurrent_layers(model)] == [
        "encoder_l0",
        "encoder_l1",
        "encoder_l2",
    ]
    assert {layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)} == {
        0.25
    }
    # Dropout acts in training only: in inference the stack is PyTorch's module in eval mode.
    _assert_computes_the_same(model, module.eval(), "float32")
    assert ks.to_torch(model).dropout == 0.25


# -------------------------------------------------------------------- to_torch
@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "time_major"])
@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_to_torch_computes_what_keras_computes(kind, dtype, structure, batch_first):
    num_layers, bidirectional = STRUCTURES[structure]
    layer = _keras_stack(kind, dtype, num_layers, bidirectional)
    module = ks.to_torch(layer, batch_first=batch_first)
    module_name, _, _, _, options = KINDS[kind]
    assert type(module) is getattr(torch.nn, module_name)
    assert (module.num_layers, module.bidirectional, module.batch_first) == (
        num_layers,
        bidirectional,
        batch_first,
    )
    assert (module.input_size, module.hidden_size, module.dropout) == (FEATURES, HIDDEN, 0.0)
    assert getattr(module, "nonlinearity", None) == options.get("nonlinearity")
    assert next(module.parameters()).dtype == getattr(torch, dtype)
    _assert_computes_the_same(layer, module, dtype)
    # The single bias goes into bias_ih; bias_hh is zero.
    for name, parameter in module.named_parameters():
        if name.startswith("bias_hh"):
            assert not parameter.any()


@pytest.mark.parametrize("kind", KINDS)
def test_to_torch_from_a_list_with_dropout(kind):
    model = _keras_stack(kind, "float32", num_layers=3, bidirectional=False, dropout=0.5)
    module = ks.to_torch(list(model.layers), batch_first=False)
    assert (module.num_layers, module.dropout, module.batch_first) == (3, 0.5, False)
    _assert_computes_the_same(model, module.eval(), "float32")


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_to_torch_of_builtin_keras_layers(kind):
    keras_class = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}[kind]
    layer = getattr(keras.layers, keras_class)(HIDDEN, return_sequences=True, return_state=True)
    layer.build((None, None, FEATURES))
    weights = _randomize_keras(layer).get_weights()
    if kind == "gru":
        weights[-1][1, 2 * HIDDEN :] = 0.0  # the recurrent candidate bias from_keras requires
        weights[-1][1, : 2 * HIDDEN] = 0.3  # non-zero elsewhere: it adds into the single bias
        layer.set_weights(weights)
    module = ks.to_torch(layer)
    _assert_computes_the_same(layer, module, "float32")
    rnn = keras.layers.RNN(ks.LSTMCell(HIDDEN), return_sequences=True)
    rnn.build((None, None, FEATURES))
    _assert_computes_the_same(rnn, ks.to_torch(_randomize_keras(rnn)), "float32")


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("kind", KINDS)
def test_torch_round_trip(kind, structure, dtype):
    """to_torch(from_torch(m)) keeps every weight bit for bit; each bias_ih holds the
    sum bias_ih + bias_hh (a single bias in the equations) and each bias_hh is zero."""
    num_layers, bidirectional = STRUCTURES[structure]
    module = _torch_module(kind, dtype, num_layers, bidirectional, batch_first=False)
    again = ks.to_torch(ks.from_torch(module), batch_first=False)
    assert type(again) is type(module)
    original = dict(module.named_parameters())
    for name, parameter in again.named_parameters():
        expected = original[name]
        if name.startswith("bias_ih"):
            expected = expected + original[name.replace("bias_ih", "bias_hh")]
        elif name.startswith("bias_hh"):
            expected = torch.zeros_like(expected)
        assert parameter.dtype == expected.dtype
        assert torch.equal(parameter, expected), name
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((STEPS, BATCH, FEATURES)))
    x = x.to(getattr(torch, dtype))
    torch.testing.assert_close(again(x)[0], module(x)[0], rtol=0, atol=ATOL[dtype])


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("kind", KINDS)
def test_keras_round_trip_keeps_every_weight(kind, structure):
    num_layers, bidirectional = STRUCTURES[structure]
    layer = _keras_stack(kind, "float64", num_layers, bidirectional)
    again = ks.from_torch(ks.to_torch(layer), return_state=num_layers == 1 or None)
    assert type(again) is type(layer)
    actual, expected = again.get_weights(), layer.get_weights()
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a.dtype == e.dtype and np.array_equal(a, e)


# --------------------------------------------------------------------- refusals
def _gru_with_candidate_bias(**options):
    module = _torch_module("gru", "float32", **options)
    # Only the named direction's candidate bias is non-zero: the other passes the check.
    parameter = "bias_hh_l0_reverse" if module.bidirectional else "bias_hh_l0"
    with torch.no_grad():
        getattr(module, parameter)[-1] = 0.5
    return module


def _gru_cell_with_candidate_bias():
    cell = _torch_cell("gru", "float32")
    with torch.no_grad():
        cell.bias_hh[2 * HIDDEN] = -0.25
    return cell


def _with_nonlinearity(module, nonlinearity):
    # PyTorch refuses other nonlinearities when constructing; a changed attribute is how
    # a module computing something else arrives here. torch.nn.RNN computes by its `mode`.
    if isinstance(module, torch.nn.RNN):
        module.mode = nonlinearity
    else:
        module.nonlinearity = nonlinearity
    return module


FROM_TORCH_REFUSALS = {
    "not_a_recurrent_module": (
        lambda: torch.nn.Linear(3, 4),
        {},
        TypeError,
        "Expected a torch.nn.RNN, LSTM, GRU, RNNCell, LSTMCell or GRUCell. Received: module=Linear",
    ),
    "rnn_nonlinearity": (
        lambda: _with_nonlinearity(_torch_module("rnn_tanh", "float32"), "RNN_GELU"),
        {},
        ValueError,
        "nonlinearity 'tanh' or 'relu'. Received: mode='RNN_GELU'",
    ),
    "rnn_cell_nonlinearity": (
        lambda: _with_nonlinearity(_torch_cell("rnn_tanh", "float32"), "sigmoid"),
        {},
        ValueError,
        "Received: nonlinearity='sigmoid'",
    ),
    "lstm_projection": (
        lambda: torch.nn.LSTM(3, 4, proj_size=2),
        {},
        ValueError,
        "proj_size=0: the LSTM equations have no projection of h_t. Received: proj_size=2",
    ),
    "gru_candidate_bias": (
        lambda: _gru_with_candidate_bias(),
        {},
        ValueError,
        r"bias_hh_l0\[2\*hidden_size:\], b_hn\) is zero.*"
        r"Received: max \|bias_hh_l0\[2\*hidden_size:\]\|=0.5",
    ),
    "gru_candidate_bias_backward": (
        lambda: _gru_with_candidate_bias(bidirectional=True),
        {},
        ValueError,
        r"Received: max \|bias_hh_l0_reverse\[2\*hidden_size:\]\|=0.5",
    ),
    "gru_as_initialised_by_torch": (
        lambda: torch.nn.GRU(3, 4),
        {},
        ValueError,
        r"Received: max \|bias_hh_l0\[2\*hidden_size:\]\|=",
    ),
    "gru_cell_candidate_bias": (
        _gru_cell_with_candidate_bias,
        {},
        ValueError,
        r"Received: max \|bias_hh\[2\*hidden_size:\]\|=0.25",
    ),
    "return_state_of_a_stack": (
        lambda: torch.nn.LSTM(3, 4, num_layers=2),
        {"return_state": True},
        ValueError,
        "Expected `return_state=False` for a module with num_layers > 1.*"
        "Received: return_state=True, num_layers=2",
    ),
    "return_sequences_of_a_cell": (
        lambda: torch.nn.LSTMCell(3, 4),
        {"return_sequences": False},
        ValueError,
        "Expected `return_sequences=None` when converting a torch.nn.LSTMCell.*"
        "Received: return_sequences=False",
    ),
    "return_sequences_not_a_bool": (
        lambda: torch.nn.LSTM(3, 4),
        {"return_sequences": "yes"},
        TypeError,
        "Received: return_sequences='yes'",
    ),
}


@pytest.mark.parametrize("case", FROM_TORCH_REFUSALS)
def test_from_torch_refuses(case):
    build, kwargs, error, message = FROM_TORCH_REFUSALS[case]
    module = build()
    with pytest.raises(error, match=message):
        ks.from_torch(module, **kwargs)


def _built(layer, features=FEATURES, batch=None):
    layer.build((batch, None, features))
    return layer


def _built_cell(cell):
    cell.build((None, FEATURES))
    return cell


def _lstm_stack(*layers):
    return keras.Sequential([keras.Input((None, FEATURES)), *layers])


TO_TORCH_REFUSALS = {
    "not_a_recurrent_layer": (
        lambda: _built(keras.layers.Dense(4)),
        TypeError,
        "Expected a keras_seqcells.SimpleRNN, LSTM or GRU.*Received: layer=<Dense",
    ),
    "stack_with_a_dense_layer": (
        lambda: _lstm_stack(ks.LSTM(4, return_sequences=True), keras.layers.Dense(4)),
        TypeError,
        "Received: layer\\[1\\]=<Dense",
    ),
    "cell_dropout": (
        lambda: _built_cell(ks.LSTMCell(4, dropout=0.1)),
        ValueError,
        "set the cell's `dropout` to 0.0 first\\). Received: dropout=0.1",
    ),
    "empty_list": (lambda: [], ValueError, "Expected at least one recurrent layer"),
    "unbuilt": (
        lambda: ks.LSTM(4),
        ValueError,
        "Expected a built LSTM.*Received: layer=<LSTM.*unbuilt",
    ),
    "unbuilt_cell": (lambda: ks.GRUCell(4), ValueError, "Expected a built GRUCell"),
    "output_head": (
        lambda: _built(ks.SimpleRNN(4, output_units=3)),
        ValueError,
        "without an output head: torch.nn.RNN has no softmax head. Received: output_units=3",
    ),
    "output_head_cell": (
        lambda: _built_cell(ks.SimpleRNNCell(4, output_units=3)),
        ValueError,
        "Received: output_units=3",
    ),
    "simple_rnn_activation": (
        lambda: _built(ks.SimpleRNN(4, activation="sigmoid")),
        ValueError,
        "activation 'tanh' or 'relu'.*Received: activation='sigmoid'",
    ),
    "lstm_activation": (
        lambda: _built(ks.LSTM(4, activation="relu")),
        ValueError,
        "activation='tanh' and recurrent_activation='sigmoid', PyTorch's. "
        "Received: activation='relu'",
    ),
    "gru_recurrent_activation": (
        lambda: _built(ks.GRU(4, recurrent_activation="hard_sigmoid")),
        ValueError,
        "Received: recurrent_activation='hard_sigmoid'",
    ),
    "gru_reset_before": (
        lambda: _built(ks.GRU(4, reset_after=False)),
        ValueError,
        "reset_after=True: torch.nn.GRU applies the reset gate after the recurrent product. "
        "Received: reset_after=False",
    ),
    "go_backwards_alone": (
        lambda: _built(ks.LSTM(4, go_backwards=True)),
        ValueError,
        "go_backwards=False: PyTorch reads backwards only in a bidirectional module.*"
        "Received: go_backwards=True",
    ),
    "merge_mode": (
        lambda: _built(keras.layers.Bidirectional(ks.GRU(4), merge_mode="sum")),
        ValueError,
        "merge_mode='concat'.*Received: merge_mode='sum'",
    ),
    "stateful": (
        lambda: _built(ks.SimpleRNN(4, stateful=True), batch=BATCH),
        ValueError,
        "stateful=False.*Received: stateful=True",
    ),
    "dropout": (
        lambda: _built(ks.LSTM(4, dropout=0.1)),
        ValueError,
        "dropout=0: PyTorch's recurrent modules have no per-sequence.*Received: dropout=0.1",
    ),
    "recurrent_dropout": (
        lambda: _built(ks.GRU(4, recurrent_dropout=0.2)),
        ValueError,
        "Received: recurrent_dropout=0.2",
    ),
    "stack_of_different_units": (
        lambda: [_built(ks.LSTM(4, return_sequences=True)), _built(ks.LSTM(5), 4)],
        ValueError,
        "same units.*Received: layer\\[0\\] units=4, layer\\[1\\] units=5",
    ),
    "stack_of_different_cells": (
        lambda: [_built(ks.LSTM(4, return_sequences=True)), _built(ks.GRU(4), 4)],
        ValueError,
        "same cell.*Received: layer\\[0\\] cell='LSTMCell', layer\\[1\\] cell='GRUCell'",
    ),
    "stack_of_different_activations": (
        lambda: [
            _built(ks.SimpleRNN(4, return_sequences=True)),
            _built(ks.SimpleRNN(4, activation="relu"), 4),
        ],
        ValueError,
        "same activation.*Received: layer\\[0\\] activation='tanh', layer\\[1\\] activation='relu'",
    ),
    "stack_with_wrong_input_size": (
        lambda: [_built(ks.LSTM(4, return_sequences=True)), _built(ks.LSTM(4), 6)],
        ValueError,
        "Expected layer\\[1\\] to read the 4 features of the layer below. Received: input_dim=6",
    ),
    "stack_without_sequences": (
        lambda: [_built(ks.LSTM(4)), _built(ks.LSTM(4), 4)],
        ValueError,
        "Received: layer\\[0\\] return_sequences=False",
    ),
    "stack_half_bidirectional": (
        lambda: [
            _built(keras.layers.Bidirectional(ks.LSTM(4, return_sequences=True))),
            _built(ks.LSTM(4), 8),
        ],
        ValueError,
        "all bidirectional or all not.*layer\\[1\\] bidirectional=False",
    ),
    "dropout_first": (
        lambda: _lstm_stack(keras.layers.Dropout(0.1), ks.LSTM(4)),
        ValueError,
        "Dropout only between two recurrent layers.*Received: a Dropout at position 0 of 2",
    ),
    "dropout_rates_differ": (
        lambda: _lstm_stack(
            ks.LSTM(4, return_sequences=True),
            keras.layers.Dropout(0.1),
            ks.LSTM(4, return_sequences=True),
            keras.layers.Dropout(0.2),
            ks.LSTM(4),
        ),
        ValueError,
        "same rate between every two.*Received: rates=\\[0.1, 0.2\\] between 3",
    ),
    "dropout_between_some": (
        lambda: _lstm_stack(
            ks.LSTM(4, return_sequences=True),
            keras.layers.Dropout(0.1),
            ks.LSTM(4, return_sequences=True),
            ks.LSTM(4),
        ),
        ValueError,
        "Received: rates=\\[0.1\\] between 3 recurrent layers",
    ),
}


@pytest.mark.parametrize("case", TO_TORCH_REFUSALS)
def test_to_torch_refuses(case):
    build, error, message = TO_TORCH_REFUSALS[case]
    layer = build()
    with pytest.raises(error, match=message):
        ks.to_torch(layer)


def test_to_torch_refuses_a_batch_first_that_is_not_a_bool():
    with pytest.raises(TypeError, match="Received: batch_first='no'"):
        ks.to_torch(_built(ks.LSTM(4)), batch_first="no")


def test_a_missing_torch_is_named(monkeypatch):
    layer = _built(ks.LSTM(4))
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"Expected PyTorch to be installed for .*from_torch"):
        ks.from_torch(object())
    with pytest.raises(ImportError, match=r"Expected PyTorch to be installed for .*to_torch"):
        ks.to_torch(layer)
