"""`export_onnx`: ONNX's own recurrent operators give the Keras model's outputs."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_seqcells as ks

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

ATOL = 1e-5
UNITS, FEATURES, STEPS = 3, 4, 5


def _randomize(model, seed=0):
    """Gives every weight (biases included) random values, so that each one counts."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.normal(0.0, 0.6, variable.shape).astype("float32"))
    return model


def _sequences(batch=3, seed=1):
    return np.random.default_rng(seed).normal(size=(batch, STEPS, FEATURES)).astype("float32")


def _masked_sequences():
    """Rows: no padding, right padding, a hole, one step, and nothing at all."""
    x = _sequences(batch=5)
    x[1, 3:] = 0.0
    x[2, [1, 3]] = 0.0
    x[3, 1:] = 0.0
    x[4] = 0.0
    return x


def _export(model, tmp_path, name="model.onnx", **kwargs):
    path = ks.export_onnx(model, tmp_path / name, **kwargs)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _as_list(outputs):
    return [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


def _assert_matches(model, session, feeds, keras_inputs):
    expected = _as_list(model(keras_inputs))
    received = session.run(None, feeds)
    assert len(received) == len(expected)
    for got, want in zip(received, expected, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
        assert np.abs(want).max() > 1e-3  # a real output, not zeros on both sides


def _sequential(*layers, input_shape=(None, FEATURES), dtype="float32"):
    return _randomize(keras.Sequential([keras.Input(input_shape, dtype=dtype), *layers]))


RECURRENT = {
    "simple_rnn": lambda **kw: ks.SimpleRNN(UNITS, **kw),
    "simple_rnn_head": lambda **kw: ks.SimpleRNN(UNITS, output_units=2, **kw),
    "lstm": lambda **kw: ks.LSTM(UNITS, **kw),
    # ONNX takes the activations by name, in its own order (f, g, h).
    "lstm_relu": lambda **kw: ks.LSTM(UNITS, activation="relu", **kw),
    "gru": lambda **kw: ks.GRU(UNITS, **kw),
    "gru_reset_before": lambda **kw: ks.GRU(UNITS, reset_after=False, **kw),
}
OPS = {
    "simple_rnn": "RNN",
    "simple_rnn_head": "RNN",
    "lstm": "LSTM",
    "lstm_relu": "LSTM",
    "gru": "GRU",
    "gru_reset_before": "GRU",
}


# The further cells: ONNX's LSTM node where it computes their equations (its
# peepholes `P`; `input_forget` for the coupled gates), else a Scan of the step.
VARIANTS = {
    "layer_norm_lstm": (lambda **kw: ks.LayerNormLSTM(UNITS, **kw), "Scan"),
    "layer_norm_simple_rnn": (lambda **kw: ks.LayerNormSimpleRNN(UNITS, **kw), "Scan"),
    "layer_norm_gru": (lambda **kw: ks.LayerNormGRU(UNITS, **kw), "Scan"),
    "peephole_lstm": (lambda **kw: ks.PeepholeLSTM(UNITS, **kw), "LSTM"),
    "cifg_lstm": (lambda **kw: ks.CIFGLSTM(UNITS, **kw), "LSTM"),
    "min_gru": (lambda **kw: ks.MinGRU(UNITS, **kw), "Scan"),
    "min_lstm": (lambda **kw: ks.MinLSTM(UNITS, **kw), "Scan"),
    "cifg_lstm_relu_gates": (
        lambda **kw: ks.CIFGLSTM(UNITS, recurrent_activation="relu", **kw),
        "Scan",
    ),
}


def test_every_cell_of_the_package_is_tested():
    tested = {type(make().cell) for make in RECURRENT.values()}
    tested |= {type(make().cell) for make, _ in VARIANTS.values()}
    cells = {
        value
        for value in vars(ks).values()
        if isinstance(value, type)
        and issubclass(value, ks.RecurrentCell)
        and value is not ks.RecurrentCell
    }
    assert cells and cells <= tested


@pytest.mark.parametrize("kind", sorted(VARIANTS))
def test_each_further_cell_matches_keras_with_and_without_masks(kind, tmp_path):
    make, op_type = VARIANTS[kind]
    for return_sequences in (False, True):
        for go_backwards in (False, True):
            for masked in (False, True):
                masking = [keras.layers.Masking()] if masked else []
                model = _sequential(
                    *masking, make(return_sequences=return_sequences, go_backwards=go_backwards)
                )
                name = f"{return_sequences}_{go_backwards}_{masked}.onnx"
                session = _export(model, tmp_path, name)
                x = _masked_sequences() if masked else _sequences()
                _assert_matches(model, session, {"inputs": x}, x)
                ops = {n.op_type for n in onnx.load(str(tmp_path / name)).graph.node}
                assert op_type in ops and not ops & ({"LSTM", "GRU", "RNN", "Scan"} - {op_type})


@pytest.mark.parametrize("kind", sorted(VARIANTS))
def test_each_further_cell_streams_step_by_step_as_the_whole_sequence(kind, tmp_path):
    make, _ = VARIANTS[kind]
    model = _sequential(make(return_sequences=True))
    session = _export(model, tmp_path, streaming=True)
    state_names = [f"state_{name}" for name in model.layers[0].cell.state_names]
    assert [i.name for i in session.get_inputs()] == ["inputs", *state_names]
    x = _sequences()
    streamed = np.concatenate(_stream(session, x, len(x)), axis=1)
    np.testing.assert_allclose(streamed, np.asarray(model(x)), atol=ATOL, rtol=0)


def test_further_cells_in_bidirectional_stacked_masked_models_with_states(tmp_path):
    sequences = keras.Input((None, FEATURES), name="inputs")
    h0 = keras.Input((UNITS,), name="h0")
    masked = keras.layers.Masking()(sequences)
    y = keras.layers.Bidirectional(ks.LayerNormGRU(UNITS, return_sequences=True))(masked)
    y = keras.layers.Bidirectional(ks.MinLSTM(UNITS, return_sequences=True), merge_mode="sum")(y)
    y, h = ks.LayerNormSimpleRNN(UNITS, return_sequences=True, return_state=True)(
        y, initial_state=[h0], mask=masked._keras_mask
    )
    last = keras.layers.Bidirectional(ks.PeepholeLSTM(UNITS))(y)
    model = _randomize(keras.Model([sequences, h0], [y, h, last]))
    session = _export(model, tmp_path)
    x = _masked_sequences()
    state = np.random.default_rng(3).normal(size=(len(x), UNITS)).astype("float32")
    _assert_matches(model, session, {"inputs": x, "h0": state}, [x, state])
    stacked = _sequential(
        ks.LayerNormLSTM(UNITS, return_sequences=True),
        ks.MinGRU(UNITS, return_sequences=True),
        ks.CIFGLSTM(UNITS),
        keras.layers.Dense(2, activation="softmax"),
    )
    session = _export(stacked, tmp_path, "stacked.onnx")
    x = _sequences()
    _assert_matches(stacked, session, {"inputs": x}, x)
    step = _export(stacked, tmp_path, "stacked_step.onnx", streaming=True)
    streamed = _stream(step, x, len(x))
    np.testing.assert_allclose(streamed[-1], np.asarray(stacked(x)), atol=ATOL, rtol=0)


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("kind", sorted(RECURRENT))
def test_each_cell_matches_keras(kind, return_sequences, go_backwards, tmp_path):
    model = _sequential(
        RECURRENT[kind](return_sequences=return_sequences, go_backwards=go_backwards)
    )
    session = _export(model, tmp_path)
    x = _sequences()
    _assert_matches(model, session, {"inputs": x}, x)
    (recurrent_node,) = [
        node
        for node in onnx.load(str(tmp_path / "model.onnx")).graph.node
        if node.op_type in ("LSTM", "GRU", "RNN")
    ]
    assert recurrent_node.op_type == OPS[kind]


def test_rnn_layers_on_the_cells_match_keras(tmp_path):
    model = _sequential(
        ks.RNN(ks.SimpleRNNCell(UNITS, output_units=2), return_sequences=True),
        keras.layers.RNN(ks.GRUCell(UNITS, reset_after=False)),
    )
    session = _export(model, tmp_path)
    x = _sequences()
    _assert_matches(model, session, {"inputs": x}, x)


def test_time_dimension_is_dynamic_and_sequence_length_fixes_it(tmp_path):
    model = _sequential(ks.LSTM(UNITS, return_sequences=True))
    session = _export(model, tmp_path)
    assert session.get_inputs()[0].shape == ["batch", "time", FEATURES]
    for steps in (1, 2, 7):
        x = np.random.default_rng(steps).normal(size=(2, steps, FEATURES)).astype("float32")
        _assert_matches(model, session, {"inputs": x}, x)
    fixed = _export(model, tmp_path, "fixed.onnx", sequence_length=STEPS)
    assert fixed.get_inputs()[0].shape == ["batch", STEPS, FEATURES]
    x = _sequences()
    _assert_matches(model, fixed, {"inputs": x}, x)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul", None])
@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn_head"])
def test_bidirectional_matches_keras(kind, merge_mode, tmp_path):
    for return_sequences in (False, True):
        layer = RECURRENT[kind](return_sequences=return_sequences)
        model = _sequential(keras.layers.Bidirectional(layer, merge_mode=merge_mode))
        session = _export(model, tmp_path, f"{return_sequences}.onnx")
        x = _sequences()
        _assert_matches(model, session, {"inputs": x}, x)


def test_stacked_layers_with_dense_heads_match_keras(tmp_path):
    model = _sequential(
        ks.LSTM(UNITS, return_sequences=True),
        keras.layers.Dropout(0.5),
        keras.layers.Bidirectional(ks.GRU(UNITS, return_sequences=True)),
        keras.layers.TimeDistributed(keras.layers.Dense(4, activation="tanh")),
        ks.SimpleRNN(UNITS, return_sequences=True, go_backwards=True),
        keras.layers.Dense(3, activation="relu"),
        keras.layers.Dense(2, activation="sigmoid"),
    )
    session = _export(model, tmp_path)
    x = _sequences()
    _assert_matches(model, session, {"inputs": x}, x)


def test_return_state_matches_keras(tmp_path):
    inputs = keras.Input((None, FEATURES))
    sequence, h, c = ks.LSTM(UNITS, return_sequences=True, return_state=True)(inputs)
    both = keras.layers.Bidirectional(ks.GRU(UNITS, return_state=True))(sequence)
    model = _randomize(keras.Model(inputs, [sequence, h, c, *both]))
    session = _export(model, tmp_path)
    assert [o.name for o in session.get_outputs()] == [f"outputs_{i}" for i in range(6)]
    x = _sequences()
    _assert_matches(model, session, {"inputs": x}, x)


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("kind", sorted(RECURRENT))
def test_masks_match_keras_with_padding_holes_and_empty_rows(
    kind, return_sequences, go_backwards, tmp_path
):
    model = _sequential(
        keras.layers.Masking(),
        RECURRENT[kind](return_sequences=return_sequences, go_backwards=go_backwards),
    )
    session = _export(model, tmp_path)
    x = _masked_sequences()
    _assert_matches(model, session, {"inputs": x}, x)
    assert "sequence_lens" in str(onnx.load(str(tmp_path / "model.onnx")).graph.node)


@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
def test_masks_match_keras_in_bidirectional_and_stacked_layers(merge_mode, tmp_path):
    model = _sequential(
        keras.layers.Masking(),
        keras.layers.Bidirectional(
            ks.SimpleRNN(UNITS, output_units=2, return_sequences=True), merge_mode=merge_mode
        ),
        ks.LSTM(UNITS, return_sequences=True, zero_output_for_mask=True),
        keras.layers.Bidirectional(ks.GRU(UNITS), merge_mode=merge_mode),
    )
    session = _export(model, tmp_path)
    x = _masked_sequences()
    _assert_matches(model, session, {"inputs": x}, x)


def test_initial_states_are_graph_inputs(tmp_path):
    sequences = keras.Input((None, FEATURES))
    h0, c0 = keras.Input((UNITS,), name="h0"), keras.Input((UNITS,), name="c0")
    g_f, g_b = keras.Input((UNITS,), name="g_f"), keras.Input((UNITS,), name="g_b")
    masked = keras.layers.Masking()(sequences)
    # Keras hands no mask to a layer called with `initial_state` unless given
    # explicitly; the export follows what Keras does in both cases.
    y = ks.LSTM(UNITS, return_sequences=True)(
        masked, initial_state=[h0, c0], mask=masked._keras_mask
    )
    y = keras.layers.Bidirectional(ks.GRU(UNITS))(y, initial_state=[g_f, g_b])
    model = _randomize(keras.Model([sequences, h0, c0, g_f, g_b], y))
    session = _export(model, tmp_path)
    names = [i.name for i in session.get_inputs()]
    assert names[1:] == ["h0", "c0", "g_f", "g_b"]
    x = _masked_sequences()
    rng = np.random.default_rng(5)
    states = [rng.normal(size=(len(x), UNITS)).astype("float32") for _ in range(4)]
    # The last row is all masked: the LSTM keeps its initial states there.
    _assert_matches(model, session, dict(zip(names, [x, *states], strict=True)), [x, *states])


def _classifier():
    return _sequential(
        keras.layers.Embedding(20, 4, mask_zero=True),
        ks.LSTM(UNITS),
        keras.layers.Dense(3, activation="softmax"),
        input_shape=(None,),
        dtype="int32",
    )


def _token_ids():
    return np.array(
        [[1, 2, 3, 4, 5], [6, 7, 0, 0, 0], [8, 0, 9, 0, 0], [0, 0, 0, 0, 0]], dtype="int32"
    )


def test_embedding_lstm_dense_classifier_matches_keras(tmp_path):
    model = _classifier()
    session = _export(model, tmp_path)
    assert [n.op_type for n in onnx.load(str(tmp_path / "model.onnx")).graph.node].count(
        "Gather"
    ) >= 1
    ids = _token_ids()
    _assert_matches(model, session, {"inputs": ids}, ids)


def _stream(session, steps, batch):
    """Feeds `steps` (batch, time, ...) one step at a time; returns the outputs per step."""
    state_inputs = [i for i in session.get_inputs() if i.name != "inputs"]
    states = {i.name: np.zeros((batch, i.shape[1]), "float32") for i in state_inputs}
    names = [o.name for o in session.get_outputs()]
    outputs = []
    for t in range(steps.shape[1]):
        results = dict(
            zip(names, session.run(None, {"inputs": steps[:, t : t + 1], **states}), strict=True)
        )
        states = {name: results[f"next_{name}"] for name in states}
        outputs.append(results["outputs"])
    return outputs


@pytest.mark.parametrize("kind", sorted(RECURRENT))
def test_streaming_step_by_step_equals_the_whole_sequence(kind, tmp_path):
    model = _sequential(RECURRENT[kind](return_sequences=True))
    session = _export(model, tmp_path, streaming=True)
    state_names = ["state_h", "state_c"] if kind.startswith("lstm") else ["state_h"]
    assert [i.name for i in session.get_inputs()] == ["inputs", *state_names]
    assert [o.name for o in session.get_outputs()] == [
        "outputs",
        *(f"next_{name}" for name in state_names),
    ]
    assert session.get_inputs()[0].shape == ["batch", 1, FEATURES]
    x = _sequences()
    streamed = np.concatenate(_stream(session, x, len(x)), axis=1)
    np.testing.assert_allclose(streamed, np.asarray(model(x)), atol=ATOL, rtol=0)


def test_streaming_a_masked_stacked_classifier_equals_the_whole_sequence(tmp_path):
    model = _sequential(
        keras.layers.Embedding(20, 4, mask_zero=True),
        ks.GRU(UNITS, return_sequences=True),
        ks.LSTM(UNITS),
        keras.layers.Dense(3, activation="softmax"),
        input_shape=(None,),
        dtype="int32",
    )
    session = _export(model, tmp_path, streaming=True)
    names = [i.name for i in session.get_inputs()]
    assert names[1:] == [
        f"{model.layers[1].name}/state_h",
        f"{model.layers[2].name}/state_h",
        f"{model.layers[2].name}/state_c",
    ]
    ids = _token_ids()[:3]  # right padding: the padded steps carry the states over
    streamed = _stream(session, ids, len(ids))
    np.testing.assert_allclose(streamed[-1], np.asarray(model(ids)), atol=ATOL, rtol=0)


def test_exported_file_runs_in_a_fresh_process_without_the_package(tmp_path):
    model = _classifier()
    path = ks.export_onnx(model, tmp_path / "classifier.onnx")
    ids = _token_ids()
    np.save(tmp_path / "ids.npy", ids)
    script = (
        "import json, sys, numpy as np, onnxruntime\n"
        f"session = onnxruntime.InferenceSession({str(path)!r}, "
        "providers=['CPUExecutionProvider'])\n"
        f"ids = np.load({str(tmp_path / 'ids.npy')!r})\n"
        "(y,) = session.run(None, {'inputs': ids})\n"
        "print(json.dumps({'y': y.tolist(), "
        "'package': any(m.startswith('keras_seqcells') for m in sys.modules)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["package"] is False
    np.testing.assert_allclose(np.array(answer["y"]), np.asarray(model(ids)), atol=ATOL, rtol=0)


def test_write_is_atomic_and_refuses_to_overwrite(tmp_path):
    model = _sequential(ks.GRU(UNITS))
    path = tmp_path / "nested" / "gru.onnx"
    assert ks.export_onnx(model, path) == path
    first = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ks.export_onnx(model, path)
    assert path.read_bytes() == first
    model.layers[0].cell.kernel.assign(np.zeros((FEATURES, 3 * UNITS), "float32"))
    ks.export_onnx(model, path, overwrite=True)
    assert path.read_bytes() != first
    assert sorted(p.name for p in path.parent.iterdir()) == ["gru.onnx"]
    with pytest.raises(TypeError, match="Received: overwrite='yes'"):
        ks.export_onnx(model, tmp_path / "other.onnx", overwrite="yes")


def _refusal(model, tmp_path, **kwargs):
    with pytest.raises(ValueError) as raised:
        ks.export_onnx(model, tmp_path / "refused.onnx", **kwargs)
    assert not (tmp_path / "refused.onnx").exists()
    return str(raised.value)


def test_refuses_unsupported_layers_by_name(tmp_path):
    model = _sequential(keras.layers.Conv1D(2, 2, name="conv"), ks.LSTM(UNITS))
    message = _refusal(model, tmp_path)
    assert "Received: layer 'conv' of type Conv1D" in message
    model = _sequential(keras.layers.LSTM(UNITS, name="keras_lstm"))
    assert "Received: layer 'keras_lstm' of type LSTM" in _refusal(model, tmp_path)
    model = _sequential(keras.layers.RNN(keras.layers.GRUCell(UNITS), name="keras_cell"))
    assert "Received: layer 'keras_cell' of type RNN" in _refusal(model, tmp_path)


def test_refuses_stateful_layers_and_unsupported_activations(tmp_path):
    model = _randomize(
        keras.Sequential(
            [keras.Input((STEPS, FEATURES), batch_size=2), ks.LSTM(UNITS, stateful=True)]
        )
    )
    assert "not stateful" in _refusal(model, tmp_path)
    model = _sequential(ks.LSTM(UNITS, activation="gelu", name="gelu_lstm"))
    message = _refusal(model, tmp_path)
    assert "(received 'gelu')" in message and "'gelu_lstm'" in message
    model = _sequential(ks.GRU(UNITS, recurrent_activation="relu", name="relu_gru"))
    assert "recurrent_activation='sigmoid'" in _refusal(model, tmp_path)
    model = _sequential(ks.LSTM(UNITS), keras.layers.Dense(2, activation="elu", name="elu"))
    message = _refusal(model, tmp_path)
    assert "(received 'elu')" in message and "'elu'" in message


def test_refuses_what_cannot_stream(tmp_path):
    model = _sequential(keras.layers.Bidirectional(ks.LSTM(UNITS), name="both"))
    assert "not Bidirectional with `streaming=True`" in _refusal(model, tmp_path, streaming=True)
    model = _sequential(ks.GRU(UNITS, go_backwards=True))
    assert "running forwards with `streaming=True`" in _refusal(model, tmp_path, streaming=True)
    model = _sequential(ks.GRU(UNITS))
    assert "Received: sequence_length=3" in _refusal(
        model, tmp_path, streaming=True, sequence_length=3
    )


def test_refuses_models_it_cannot_read(tmp_path):
    unbuilt = keras.Sequential([ks.LSTM(UNITS)])
    assert "starts with `keras.Input(...)`" in _refusal(unbuilt, tmp_path)
    inputs = keras.Input((None, FEATURES))
    shared = keras.layers.Dense(FEATURES, name="shared")
    model = keras.Model(inputs, ks.LSTM(UNITS)(shared(shared(inputs))))
    assert "called once in the model" in _refusal(model, tmp_path)
    steps_mask = keras.Input((None,), dtype="bool")
    by_hand = keras.Model(
        [inputs, steps_mask], ks.LSTM(UNITS, name="masked_by_hand")(inputs, mask=steps_mask)
    )
    message = _refusal(by_hand, tmp_path)
    assert "called on one tensor" in message and "'masked_by_hand'" in message
    fixed = _sequential(ks.LSTM(UNITS), input_shape=(STEPS, FEATURES))
    assert "Received: sequence_length=7" in _refusal(fixed, tmp_path, sequence_length=7)
    with pytest.raises(ValueError, match="Received: sequence_length=0"):
        ks.export_onnx(fixed, tmp_path / "zero.onnx", sequence_length=0)
    mixed = _sequential(ks.LSTM(UNITS, dtype="mixed_float16", name="half"))
    assert "in float32 (its dtype policy is 'mixed_float16')" in _refusal(mixed, tmp_path)


def test_a_cell_of_ones_own_exports_once_its_step_is_registered(tmp_path):
    import importlib.util
    import pathlib

    from keras_seqcells import onnx_cells

    path = pathlib.Path(__file__).parents[1] / "examples" / "custom_cell.py"
    spec = importlib.util.spec_from_file_location("custom_cell_for_onnx", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    model = _sequential(
        keras.layers.Masking(), ks.RNN(example.IndRNNCell(UNITS), return_sequences=True)
    )
    assert "of type RNN" in _refusal(model, tmp_path)

    def indrnn_step(graph, cell, projected, states):
        u = graph.constant(keras.ops.convert_to_numpy(cell.u), "u")
        (h_prev,) = states
        return [graph.op("Relu", [graph.op("Add", [projected, graph.op("Mul", [u, h_prev])])])]

    onnx_cells.register_step(example.IndRNNCell, indrnn_step)
    try:
        session = _export(model, tmp_path)
        x = _masked_sequences()
        _assert_matches(model, session, {"inputs": x}, x)
    finally:
        del onnx_cells.STEPS[example.IndRNNCell]
    with pytest.raises(ValueError, match="Received: cell_class=LayerNormGRUCell"):
        onnx_cells.register_step(ks.LayerNormGRUCell, indrnn_step)
    with pytest.raises(ValueError, match="RecurrentCell subclass"):
        onnx_cells.register_step(keras.layers.GRUCell, indrnn_step)
