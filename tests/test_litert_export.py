"""LiteRT export: built-in operations only, the Keras model's answers, streaming and variants."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from keras_seqcells.stepping import ModelStepper, StepError

litert = pytest.importorskip("ai_edge_litert.interpreter")

pytestmark = pytest.mark.tensorflow_only(
    reason="the LiteRT converter traces TensorFlow functions of the model"
)

# Measured on random data (cells of 32 units, 16 features, 6 steps, inputs in
# [-1, 1], four seeds, outputs up to 1.25): float16 weights differ from the
# Keras model by at most 6.7e-4, int8 dynamic-range quantisation by at most
# 1.1e-2 (a SimpleRNN; 3.5e-3 for LSTM and GRU).
FLOAT16_TOLERANCE = 2e-3
INT8_TOLERANCE = 3e-2

RNG = np.random.default_rng(0)

CELLS = {
    "simple_rnn": lambda **kw: ks.SimpleRNN(4, **kw),
    "simple_rnn_output_units": lambda **kw: ks.SimpleRNN(4, output_units=3, **kw),
    "lstm": lambda **kw: ks.LSTM(4, **kw),
    "gru": lambda **kw: ks.GRU(4, **kw),
    "gru_reset_before": lambda **kw: ks.GRU(4, reset_after=False, **kw),
    # The variant cells: their equations are built-in operations too.
    "peephole_lstm": lambda **kw: ks.PeepholeLSTM(4, **kw),
    "cifg_lstm": lambda **kw: ks.CIFGLSTM(4, **kw),
    "layer_norm_lstm": lambda **kw: ks.LayerNormLSTM(4, **kw),
    "layer_norm_gru": lambda **kw: ks.LayerNormGRU(4, **kw),
    "layer_norm_simple_rnn": lambda **kw: ks.LayerNormSimpleRNN(4, **kw),
    "min_gru": lambda **kw: ks.MinGRU(4, **kw),
    "min_lstm": lambda **kw: ks.MinLSTM(4, **kw),
}


def _interpreter(path):
    """An interpreter without the default delegates, so that the op list is the file's own."""
    return litert.Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )


def _run(path, **inputs):
    runner = _interpreter(path).get_signature_runner()
    return runner(**inputs)


def _op_names(path):
    interpreter = _interpreter(path)
    interpreter.allocate_tensors()
    return {op["op_name"] for op in interpreter._get_ops_details()}


def _assert_builtins_only(path):
    names = _op_names(path)
    assert names, "the file holds no operation"
    assert not [name for name in names if name.startswith("Flex") or name == "CUSTOM"], names
    # No loop and no variable: the steps are unrolled and the weights constants.
    assert not names & {"WHILE", "READ_VARIABLE", "VAR_HANDLE", "ASSIGN_VARIABLE"}, names


def _stream(path, stepper, sequence, input_name="inputs"):
    """Feeds `sequence` step by step; returns every step's output and the final states."""
    runner = _interpreter(path).get_signature_runner()
    batch = sequence.shape[0]
    states = {
        name: np.zeros((batch, size), "float32")
        for name, size in zip(stepper.state_names, stepper.state_sizes, strict=True)
    }
    outputs = []
    for t in range(sequence.shape[1]):
        answer = runner(**{input_name: sequence[:, t]}, **states)
        states = {name: answer[name] for name in states}
        (output,) = [value for name, value in answer.items() if name not in states]
        outputs.append(output)
    return np.stack(outputs, axis=1), states


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_cell_sequence_and_stream_equal_keras(cell, tmp_path):
    model = keras.Sequential(
        [keras.Input((5, 3)), CELLS[cell](return_sequences=True), keras.layers.Dense(2)]
    )
    sequence = RNG.uniform(-1, 1, (2, 5, 3)).astype("float32")
    expected = model(sequence).numpy()

    whole = ks.export_litert(model, tmp_path / "model.tflite", batch_size=2)
    assert whole == tmp_path / "model.tflite"
    _assert_builtins_only(whole)
    (answer,) = _run(whole, inputs=sequence).values()
    np.testing.assert_allclose(answer, expected, atol=1e-5)

    step = ks.export_litert(model, tmp_path / "step.tflite", streaming=True, batch_size=2)
    _assert_builtins_only(step)
    streamed, _ = _stream(step, ModelStepper(model), sequence)
    np.testing.assert_allclose(streamed, answer, atol=1e-5)


def test_stacked_layers_with_go_backwards(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            ks.LSTM(4, return_sequences=True),
            ks.GRU(3, return_sequences=True, go_backwards=True),
            ks.SimpleRNN(3),
            keras.layers.Dense(2),
        ]
    )
    sequence = RNG.uniform(-1, 1, (1, 6, 3)).astype("float32")
    path = ks.export_litert(model, tmp_path / "stacked.tflite", sequence_length=6)
    _assert_builtins_only(path)
    (answer,) = _run(path, inputs=sequence).values()
    np.testing.assert_allclose(answer, model(sequence).numpy(), atol=1e-5)


def test_bidirectional_with_mask_equals_keras(tmp_path):
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(20, 4, mask_zero=True)(ids)
    # Keras's own unrolled loop zeroes the wrong steps of this backward
    # direction (go_backwards, a mask and zero_output_for_mask together).
    x = keras.layers.Bidirectional(ks.LSTM(3, return_sequences=True))(x)
    x = ks.GRU(3, go_backwards=True)(x)
    probability = keras.layers.Dense(2, activation="softmax", name="probability")(x)
    model = keras.Model(ids, probability)
    tokens = np.array([[3, 4, 5, 0, 0, 0], [7, 1, 2, 9, 8, 0]], "int32")
    path = ks.export_litert(
        model, tmp_path / "bidirectional.tflite", sequence_length=6, batch_size=2
    )
    _assert_builtins_only(path)
    answer = _run(path, token_ids=tokens)
    assert list(answer) == ["probability"]
    np.testing.assert_allclose(answer["probability"], model(tokens).numpy(), atol=1e-5)
    with pytest.raises(StepError, match="bidirectional"):
        ks.export_litert(model, tmp_path / "step.tflite", streaming=True)


def test_embedding_lstm_softmax_streams_to_the_same_answer(tmp_path):
    ids = keras.Input((7,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(30, 5)(ids)
    x = ks.LSTM(6)(x)
    probability = keras.layers.Dense(4, activation="softmax", name="probability")(x)
    model = keras.Model(ids, probability)
    tokens = RNG.integers(0, 30, (1, 7)).astype("int32")
    expected = model(tokens).numpy()

    whole = ks.export_litert(model, tmp_path / "classifier.tflite")  # 7 steps from the model
    np.testing.assert_allclose(_run(whole, token_ids=tokens)["probability"], expected, atol=1e-5)
    step = ks.export_litert(model, tmp_path / "step.tflite", streaming=True)
    _assert_builtins_only(step)
    streamed, states = _stream(step, ModelStepper(model), tokens, input_name="token_ids")
    assert set(states) == {"state_h", "state_c"}
    np.testing.assert_allclose(streamed[:, -1], expected, atol=1e-5)


def test_tagging_like_time_distributed_head(tmp_path):
    ids = keras.Input((5,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(12, 4, mask_zero=True)(ids)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Bidirectional(ks.GRU(3, return_sequences=True))(x)
    tags = keras.layers.TimeDistributed(keras.layers.Dense(3, activation="softmax"), name="tags")(x)
    model = keras.Model(ids, tags)
    tokens = np.array([[4, 2, 7, 0, 0]], "int32")
    path = ks.export_litert(model, tmp_path / "tagger.tflite")
    _assert_builtins_only(path)
    np.testing.assert_allclose(
        _run(path, token_ids=tokens)["tags"], model(tokens).numpy(), atol=1e-5
    )


def test_text_model_takes_token_ids_and_writes_its_vocabulary(tmp_path):
    from keras_seqcells.tasks.text_classification import ClassProbabilities

    texts = ["a good film", "a bad film", "good and bad", "the plot was good"]
    vectorizer = keras.layers.TextVectorization(output_sequence_length=4, name="vectorizer")
    vectorizer.adapt(texts)
    text = keras.Input((), dtype="string", name="text")
    x = keras.layers.Embedding(vectorizer.vocabulary_size(), 4, mask_zero=True)(vectorizer(text))
    x = keras.layers.Bidirectional(ks.LSTM(3))(x)
    model = keras.Model(text, ClassProbabilities(["neg", "pos", "mixed"], name="probability")(x))

    path = ks.export_litert(model, tmp_path / "classifier.tflite")
    _assert_builtins_only(path)
    sidecar = json.loads((tmp_path / "classifier.vocabulary.json").read_text())
    assert sidecar["vocabulary"] == vectorizer.get_vocabulary()
    assert sidecar["labels"] == ["neg", "pos", "mixed"]
    assert sidecar["sequence_length"] == 4 and sidecar["form"] == "sequence"
    # Replaced by a model without a vocabulary, the file loses its vocabulary too.
    plain = keras.Sequential([keras.Input((4, 2)), ks.GRU(2)])
    ks.export_litert(plain, tmp_path / "plain.tflite")
    with pytest.raises(FileExistsError):
        ks.export_litert(plain, tmp_path / "classifier.tflite")
    ks.export_litert(model, tmp_path / "again.tflite")
    ks.export_litert(plain, tmp_path / "again.tflite", overwrite=True)
    assert not (tmp_path / "again.vocabulary.json").exists()
    index = {word: i for i, word in enumerate(sidecar["vocabulary"])}
    words = ["a", "good", "plot"]
    ids = [index.get(word, sidecar["oov_id"]) for word in words]
    ids = np.array([ids + [sidecar["padding_id"]] * (4 - len(ids))], "int32")
    answer = _run(path, **{sidecar["input"]: ids})["probability"]
    np.testing.assert_allclose(answer, model(np.array(["a good plot"])).numpy(), atol=1e-5)


def test_next_word_step_model_writes_its_vocabulary(tmp_path):
    from keras_seqcells.tasks.next_word import Vocabulary

    words = ["[UNK]", "the", "just", "man", "is"]
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    x = Vocabulary(words, name="vocabulary")(ids)
    x = keras.layers.Embedding(len(words), 4)(x)
    x = ks.GRU(4, return_sequences=True, name="recurrent_0")(x)
    x = ks.LSTM(4, return_sequences=True, name="recurrent_1")(x)
    model = keras.Model(ids, keras.layers.Dense(len(words), name="logits")(x))

    path = ks.export_litert(model, tmp_path / "next_word.tflite", streaming=True)
    _assert_builtins_only(path)
    sidecar = json.loads((tmp_path / "next_word.vocabulary.json").read_text())
    assert sidecar["vocabulary"] == words and sidecar["form"] == "step"
    tokens = np.array([[1, 3, 4, 2]], "int32")
    stepper = ModelStepper(model)
    assert stepper.state_names == [
        "recurrent_0_state_h",
        "recurrent_1_state_h",
        "recurrent_1_state_c",
    ]
    streamed, _ = _stream(path, stepper, tokens, input_name="token_ids")
    np.testing.assert_allclose(streamed, model(tokens).numpy(), atol=1e-5)


def test_stateful_model_exports_its_step_model(tmp_path):
    model = keras.Sequential(
        [keras.Input((3, 2), batch_size=1), ks.LSTM(4, stateful=True), keras.layers.Dense(1)]
    )
    first, second = RNG.uniform(-1, 1, (2, 1, 3, 2)).astype("float32")
    model(first)
    expected = model(second).numpy()  # continues from the states after `first`
    with pytest.raises(ValueError, match="streaming=True"):
        ks.export_litert(model, tmp_path / "whole.tflite")
    path = ks.export_litert(model, tmp_path / "step.tflite", streaming=True)
    streamed, _ = _stream(path, ModelStepper(model), np.concatenate([first, second], axis=1))
    np.testing.assert_allclose(streamed[:, -1], expected, atol=1e-5)


@pytest.mark.parametrize(
    "quantize,tolerance", [("float16", FLOAT16_TOLERANCE), ("int8", INT8_TOLERANCE)]
)
def test_quantized_variants_are_smaller_and_close(quantize, tolerance, tmp_path):
    # 32 units: the converter leaves weights of fewer than 1024 values unquantised.
    model = keras.Sequential(
        [keras.Input((6, 16)), ks.GRU(32, return_sequences=True), keras.layers.Dense(3)]
    )
    sequence = RNG.uniform(-1, 1, (1, 6, 16)).astype("float32")
    plain = ks.export_litert(model, tmp_path / "plain.tflite")
    small = ks.export_litert(model, tmp_path / f"{quantize}.tflite", quantize=quantize)
    _assert_builtins_only(small)
    assert os.path.getsize(small) < 0.8 * os.path.getsize(plain)
    (answer,) = _run(small, inputs=sequence).values()
    error = np.abs(answer - model(sequence).numpy()).max()
    assert 0 < error < tolerance


def test_fresh_process_runs_the_file_without_tensorflow(tmp_path):
    model = keras.Sequential([keras.Input((4, 2)), ks.LSTM(3), keras.layers.Dense(2)])
    sequence = RNG.uniform(-1, 1, (1, 4, 2)).astype("float32")
    path = ks.export_litert(model, tmp_path / "model.tflite")
    np.save(tmp_path / "sequence.npy", sequence)
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter
        runner = Interpreter(model_path={str(path)!r}).get_signature_runner()
        (answer,) = runner(inputs=np.load({str(tmp_path / "sequence.npy")!r})).values()
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras",
                                                                      "keras_seqcells"))
        print(json.dumps({{"answer": answer.tolist(), "loaded": loaded}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        timeout=120,
    )
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    assert reply["loaded"] == []
    np.testing.assert_allclose(reply["answer"], model(sequence).numpy(), atol=1e-5)


def test_refusals_and_atomic_overwrite(tmp_path):
    model = keras.Sequential([keras.Input((None, 2)), ks.SimpleRNN(3)])
    target = tmp_path / "model.tflite"
    with pytest.raises(ValueError, match="Received: sequence_length=None"):
        ks.export_litert(model, target)
    with pytest.raises(ValueError, match="Received: quantize='int4'"):
        ks.export_litert(model, target, sequence_length=3, quantize="int4")
    with pytest.raises(ValueError, match=r"ending in '\.tflite'"):
        ks.export_litert(model, tmp_path / "model.bin", sequence_length=3)
    with pytest.raises(ValueError, match="known inputs"):
        ks.export_litert(keras.Sequential([ks.SimpleRNN(3)]), target, sequence_length=3)
    keras_layer = keras.Sequential([keras.Input((3, 2)), keras.layers.GRU(3)])
    with pytest.raises(ValueError, match="from_keras"):
        ks.export_litert(keras_layer, target)
    fixed = keras.Sequential([keras.Input((4, 2)), ks.SimpleRNN(3)])
    with pytest.raises(ValueError, match="number of steps \\(4\\)"):
        ks.export_litert(fixed, target, sequence_length=5)
    assert not target.exists()

    ks.export_litert(model, target, sequence_length=3)
    first = target.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ks.export_litert(model, target, sequence_length=4)
    assert target.read_bytes() == first
    ks.export_litert(model, target, sequence_length=4, overwrite=True)
    assert target.read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]
    (answer,) = _run(target, inputs=np.ones((1, 4, 2), "float32")).values()
    np.testing.assert_allclose(answer, model(np.ones((1, 4, 2))).numpy(), atol=1e-5)


def test_fused_lstm_where_its_equations_are_the_cells(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6, 3)),
            keras.layers.Bidirectional(ks.LSTM(4, return_sequences=True)),
            ks.LSTM(3, go_backwards=True, use_bias=False),
            keras.layers.Dense(2),
        ]
    )
    sequence = RNG.uniform(-1, 1, (1, 6, 3)).astype("float32")
    path = ks.export_litert(model, tmp_path / "fused.tflite", fused_lstm=True)
    _assert_builtins_only(path)
    names = _op_names(path)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in names and "LOGISTIC" not in names
    (answer,) = _run(path, inputs=sequence).values()
    np.testing.assert_allclose(answer, model(sequence).numpy(), atol=1e-5)

    # The peephole LSTM's equations are not the fused kernel's.
    peephole = keras.Sequential([keras.Input((6, 3)), ks.PeepholeLSTM(4)])
    path = ks.export_litert(peephole, tmp_path / "peephole.tflite", fused_lstm=True)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in _op_names(path)
    (answer,) = _run(path, inputs=sequence).values()
    np.testing.assert_allclose(answer, peephole(sequence).numpy(), atol=1e-5)

    # Masked steps and other activations keep the unrolled equations.
    ids = keras.Input((5,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(10, 3, mask_zero=True)(ids)
    x = ks.LSTM(4, return_sequences=True)(x)
    masked = keras.Model(ids, ks.LSTM(3, activation="relu")(x))
    path = ks.export_litert(masked, tmp_path / "masked.tflite", fused_lstm=True)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in _op_names(path)
    tokens = np.array([[4, 2, 7, 0, 0]], "int32")
    (answer,) = _run(path, token_ids=tokens).values()
    np.testing.assert_allclose(answer, masked(tokens).numpy(), atol=1e-5)


def test_fused_lstm_clips_the_cell_state_which_the_equations_do_not(tmp_path):
    layer = ks.LSTM(1, return_sequences=True, name="lstm")
    model = keras.Sequential([keras.Input((25, 1)), layer])
    # Gates open (i = f = o = 1) and C~_t = sign(x_t): C_t counts up to 15,
    # then down to 5; clipped at 10 it comes down to 0 instead.
    layer.cell.set_named_weights(
        {
            "W_xi": [[0.0]],
            "W_xf": [[0.0]],
            "W_xc": [[20.0]],
            "W_xo": [[0.0]],
            **{f"W_h{gate}": [[0.0]] for gate in "ifco"},
            "b_i": [30.0],
            "b_f": [30.0],
            "b_c": [0.0],
            "b_o": [30.0],
        }
    )
    sequence = np.concatenate([np.ones(15), -np.ones(10)]).reshape(1, 25, 1).astype("float32")
    expected = model(sequence).numpy()
    assert expected[0, -1, 0] == pytest.approx(np.tanh(5.0), abs=1e-5)
    exact = ks.export_litert(model, tmp_path / "exact.tflite")
    fused = ks.export_litert(model, tmp_path / "fused.tflite", fused_lstm=True)
    np.testing.assert_allclose(_run(exact, inputs=sequence)["lstm"], expected, atol=1e-5)
    assert _run(fused, inputs=sequence)["lstm"][0, -1, 0] == pytest.approx(0.0, abs=1e-5)
