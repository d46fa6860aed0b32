"""Text task models in ONNX and LiteRT: the numeric part in the file, the preprocessing beside it.

A client that has neither Keras, TensorFlow nor keras_seqcells reads the
written `<name>.vocabulary.json` with the written `<name>.preprocess.py`,
turns raw texts into the file's inputs, runs the file in its runtime and
gets the Keras task model's answers on the same raw texts.
"""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_seqcells as ks
from keras_seqcells import text_client, text_export
from keras_seqcells.layers import CELL_LAYERS
from keras_seqcells.tasks import TextClassification, TrainSettings
from keras_seqcells.tasks.next_word import LanguageData, NextWord, tokenize
from keras_seqcells.tasks.tagging import TaggedData, Tagging, TokenFeatureHashing
from keras_seqcells.tasks.text_classification import TextData
from tests.task_helpers import tiny_settings

pytestmark = pytest.mark.tensorflow_only(
    reason="the text task models read strings with TensorFlow's TextVectorization"
)

ATOL = 1e-5
SENTENCES = [
    ("The", "cat", "sat", "on", "the", "mat", "."),
    ("Paris", "is", "well-known", "in", "2024", "."),
    ("A", "dog", "ran", "home"),
]
RAW_TEXTS = [
    "The  cat sat on the mat .",
    "Zürich was ÉCOLE-like in 1999 , said O'Neil",
    "a dog ran home and then it ran home again and again and again",
    "",
    "unseen words everywhere\tand tabs",
]
PROMPTS = ["The cat sat", "Socrates -- is it not? unseen"]


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if variable.dtype == "float32":
            variable.assign(rng.normal(0.0, 0.5, variable.shape).astype("float32"))
    return model


def _tagger(tmp_path, cell="gru", spelling_features=True):
    tags = [np.arange(len(s), dtype="int32") % 3 for s in SENTENCES]
    data = TaggedData(SENTENCES, tags, SENTENCES, tags, SENTENCES, tags, ("NOUN", "VERB", "X"))
    task = Tagging(
        spelling_features=spelling_features,
        max_length=8,
        embedding_dim=4,
        feature_bins=20,
        feature_dim=2,
    )
    return _randomize(task.build_model(data, tiny_settings(tmp_path, cell=cell, units=3)))


def _classifier(tmp_path, cell="lstm"):
    texts = np.array([" ".join(s) for s in SENTENCES])
    labels = np.array([0, 1, 2], "int32")
    data = TextData(texts, labels, texts, labels, texts, labels, classes=("a", "b", "c"))
    task = TextClassification(max_tokens=50, sequence_length=6, embedding_dim=4)
    return _randomize(task.build_model(data, tiny_settings(tmp_path, cell=cell, units=3)))


def _chunked_classifier(tmp_path, cell="gru"):
    """A classifier reading its 8 tokens in chunks of 3 (the last one padded)."""
    texts = np.array([" ".join(s) for s in SENTENCES])
    labels = np.array([0, 1, 2], "int32")
    data = TextData(texts, labels, texts, labels, texts, labels, classes=("a", "b", "c"))
    task = TextClassification(max_tokens=50, sequence_length=8, chunk_length=3, embedding_dim=4)
    model = _randomize(task.build_model(data, tiny_settings(tmp_path, cell=cell, units=3)))
    assert [type(layer).__name__ for layer in model.layers].count("ChunkPooling") == 1
    return model


def _next_word(cell="lstm"):
    vocabulary = ["[UNK]", "the", "cat", "sat", "is", "it", "not", "?", "--"]
    ids = np.arange(1, len(vocabulary), dtype="int32")
    data = LanguageData(vocabulary, ids, ids, ids, ids[:2], sequence_length=4)
    task = NextWord(sequence_length=4, embedding_dim=4, layers=2)
    return _randomize(task.build_model(data, TrainSettings(cell=cell, units=3, seed=1)))


def _keras_answers(model, texts):
    if model.inputs[0].dtype == "string":
        return np.asarray(model(tf.constant(texts)))
    vocabulary = next(layer for layer in model.layers if hasattr(layer, "ids"))
    return [
        np.asarray(model(np.array([vocabulary.ids(tokenize(text))], "int32")))[0] for text in texts
    ]


_CLIENT = r"""
import importlib.util, json, sys
import numpy as np

kind, model_path, settings_path, script_path, texts_path = sys.argv[1:6]
spec = importlib.util.spec_from_file_location("preprocess", script_path)
preprocess = importlib.util.module_from_spec(spec)
spec.loader.exec_module(preprocess)
text = preprocess.TextPreprocessor.from_file(settings_path)
with open(texts_path, encoding="utf-8") as file:
    texts = json.load(file)
per_text = text.settings.get("token_pattern") is not None
batches = [[t] for t in texts] if per_text else [texts]
answers = []
for batch in batches:
    inputs = text(batch)
    if kind == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        (answer,) = session.run(None, inputs)
    else:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=model_path)
        runner = interpreter.get_signature_runner()
        rows = []
        for row in range(len(batch)):
            (output,) = runner(**{k: v[row : row + 1] for k, v in inputs.items()}).values()
            rows.append(output[0])
        answer = np.stack(rows)
    if per_text:
        answer = answer[0, : len(text.tokens(batch[0]))]
        answers.append(answer.tolist())
    else:
        answers.extend(answer.tolist())
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras",
                                                              "keras_seqcells"))
print(json.dumps({"answers": answers, "labels": text.labels, "loaded": loaded}))
"""


def _client_answers(kind, path, texts, tmp_path):
    settings, script = text_export.sidecar_paths(path)
    assert settings.exists() and script.exists()
    texts_path = tmp_path / "texts.json"
    texts_path.write_text(json.dumps(texts), encoding="utf-8")
    arguments = [kind, str(path), str(settings), str(script), str(texts_path)]
    result = subprocess.run(
        [sys.executable, "-I", "-c", _CLIENT, *arguments],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    assert reply["loaded"] == []
    return reply


def _export(kind, model, path, **kwargs):
    if kind == "onnx":
        return ks.export_onnx(model, path, **kwargs)
    return ks.export_litert(model, path, **kwargs)


SUFFIX = {"onnx": ".onnx", "litert": ".tflite"}


@pytest.mark.parametrize("kind", ["onnx", "litert"])
def test_tagger_with_spelling_features_from_raw_text_in_a_fresh_process(kind, tmp_path):
    pytest.importorskip("onnxruntime" if kind == "onnx" else "ai_edge_litert")
    model = _tagger(tmp_path, cell="layer_norm_gru" if kind == "onnx" else "gru")
    path = _export(kind, model, tmp_path / f"tagger{SUFFIX[kind]}")
    settings = json.loads(text_export.sidecar_paths(path)[0].read_text())
    assert [f["feature"] for f in settings["features"]] == ["suffix", "shape"]
    assert settings["labels"] == ["NOUN", "VERB", "X"]
    reply = _client_answers(kind, path, RAW_TEXTS, tmp_path)
    assert reply["labels"] == ["NOUN", "VERB", "X"]
    np.testing.assert_allclose(
        np.array(reply["answers"]), _keras_answers(model, RAW_TEXTS), atol=ATOL, rtol=0
    )


@pytest.mark.parametrize("kind", ["onnx", "litert"])
def test_text_classifier_from_raw_text_in_a_fresh_process(kind, tmp_path):
    pytest.importorskip("onnxruntime" if kind == "onnx" else "ai_edge_litert")
    model = _classifier(tmp_path, cell="min_lstm" if kind == "onnx" else "lstm")
    path = _export(kind, model, tmp_path / f"classifier{SUFFIX[kind]}")
    reply = _client_answers(kind, path, RAW_TEXTS, tmp_path)
    assert reply["labels"] == ["a", "b", "c"]
    np.testing.assert_allclose(
        np.array(reply["answers"]), _keras_answers(model, RAW_TEXTS), atol=ATOL, rtol=0
    )


CHUNKED_TEXTS = [
    *RAW_TEXTS,
    "one",  # one chunk of 3 filled, two of padding alone
    "one two three four",  # the second chunk part filled, the third padding
    "one two three four",
    "one two three four five six seven eight nine ten",  # cut to three full chunks
]


@pytest.mark.parametrize("kind", ["onnx", "litert"])
def test_chunked_text_classifier_from_raw_text_in_a_fresh_process(kind, tmp_path):
    pytest.importorskip("onnxruntime" if kind == "onnx" else "ai_edge_litert")
    model = _chunked_classifier(tmp_path, cell="layer_norm_gru" if kind == "onnx" else "gru")
    path = _export(kind, model, tmp_path / f"chunked{SUFFIX[kind]}")
    settings = json.loads(text_export.sidecar_paths(path)[0].read_text())
    assert settings["sequence_length"] == 9  # 8 tokens rounded up to three chunks of 3
    if kind == "onnx":
        import onnx

        onnx.checker.check_model(onnx.load(path), full_check=True)
    reply = _client_answers(kind, path, CHUNKED_TEXTS, tmp_path)
    assert reply["labels"] == ["a", "b", "c"]
    np.testing.assert_allclose(
        np.array(reply["answers"]), _keras_answers(model, CHUNKED_TEXTS), atol=ATOL, rtol=0
    )


def test_onnx_chunk_pooling_matches_the_layer_on_padding_chunks(tmp_path):
    """Padding chunks whose encodings are the largest or the smallest, and a text of padding."""
    onnxruntime = pytest.importorskip("onnxruntime")
    from keras_seqcells.tasks.text_classification import ChunkPooling, TextChunks

    tokens = keras.Input((6,), dtype="int64", name="tokens")
    rows = TextChunks(2, name="chunks")(tokens)
    encodings = keras.layers.Embedding(10, 3, name="embedding")(rows)
    encodings = keras.layers.Flatten(name="flat")(encodings)
    pooled = ChunkPooling(2, name="chunk_pooling")(encodings, tokens)
    model = _randomize(keras.Model(tokens, pooled))
    ids = np.array(
        [[3, 4, 0, 0, 0, 0], [5, 6, 0, 0, 7, 8], [0, 0, 0, 0, 0, 0], [0, 9, 0, 0, 1, 0]],
        "int64",
    )
    path = ks.export_onnx(model, tmp_path / "pooling.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (received,) = session.run(None, {"inputs": ids})
    expected = np.asarray(model(ids))
    assert np.abs(expected[2, :6]).max() == 0  # a text of padding alone: a mean of 0
    np.testing.assert_allclose(received, expected, atol=ATOL, rtol=0)


def test_next_word_from_raw_text_in_a_fresh_process(tmp_path):
    pytest.importorskip("onnxruntime")
    model = _next_word(cell="layer_norm_lstm")
    path = ks.export_onnx(model, tmp_path / "next_word.onnx")
    settings = json.loads(text_export.sidecar_paths(path)[0].read_text())
    assert settings["input"] == "token_ids" and settings["oov_id"] == 0
    reply = _client_answers("onnx", path, PROMPTS, tmp_path)
    for got, want in zip(reply["answers"], _keras_answers(model, PROMPTS), strict=True):
        np.testing.assert_allclose(np.array(got), want, atol=ATOL, rtol=0)

    import onnxruntime

    step_path = ks.export_onnx(model, tmp_path / "next_word_step.onnx", streaming=True)
    step_settings = json.loads(text_export.sidecar_paths(step_path)[0].read_text())
    assert step_settings["form"] == "step"
    session = onnxruntime.InferenceSession(str(step_path), providers=["CPUExecutionProvider"])
    ids = text_client.TextPreprocessor(step_settings)(PROMPTS[1])["token_ids"]
    states = {i.name: np.zeros((1, 3), "float32") for i in session.get_inputs()[1:]}
    names = [o.name for o in session.get_outputs()]
    for t in range(ids.shape[1]):
        answers = session.run(None, {"token_ids": ids[:, t : t + 1], **states})
        results = dict(zip(names, answers, strict=True))
        states = {name: results[f"next_{name}"] for name in states}
    np.testing.assert_allclose(
        results["outputs"][0, 0], _keras_answers(model, PROMPTS[1:])[0][-1], atol=ATOL, rtol=0
    )


def test_onnx_export_of_a_text_model_replaces_and_removes_its_preprocessing(tmp_path):
    pytest.importorskip("onnxruntime")
    model = _classifier(tmp_path)
    path = ks.export_onnx(model, tmp_path / "model.onnx")
    settings, script = text_export.sidecar_paths(path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ks.export_onnx(model, path)
    plain = keras.Sequential([keras.Input((None, 2)), ks.GRU(2)])
    ks.export_onnx(plain, path, overwrite=True)
    assert not settings.exists() and not script.exists()


def test_preprocessing_module_reproduces_the_keras_layers(tmp_path):
    model = _tagger(tmp_path)
    _, sidecar = text_export.numeric_model(model)
    preprocess = text_client.TextPreprocessor(sidecar)
    inputs = preprocess(RAW_TEXTS)
    vectorizer = model.get_layer("vectorizer")
    np.testing.assert_array_equal(inputs["token_ids"], vectorizer(tf.constant(RAW_TEXTS)))
    for feature in ("suffix", "shape", "prefix"):
        layer = TokenFeatureHashing(feature, 97, 8)
        setting = {"feature": feature, "num_bins": 97, "suffix_length": 3, "sequence_length": 8}
        np.testing.assert_array_equal(
            preprocess.feature_ids(RAW_TEXTS, setting), layer(tf.constant(RAW_TEXTS))
        )
    stripping = {**sidecar, "standardize": "lower_and_strip_punctuation"}
    keras_layer = keras.layers.TextVectorization(
        vocabulary=sidecar["vocabulary"][2:], output_sequence_length=8
    )
    np.testing.assert_array_equal(
        text_client.TextPreprocessor(stripping)(RAW_TEXTS)["token_ids"],
        keras_layer(tf.constant(RAW_TEXTS)),
    )


def test_fingerprint_is_tensorflows_hash_for_every_length():
    rng = np.random.default_rng(0)
    alphabet = list("abcXYZ -.09é漢")
    texts = ["".join(rng.choice(alphabet, size=n)) for n in [*range(0, 140), 300, 1000]]
    expected = tf.strings.to_hash_bucket_fast(texts, 2**62).numpy()
    received = [text_client.hash_bucket(t, 2**62) for t in texts]
    assert received == expected.tolist()


def test_text_read_by_other_layers_is_refused(tmp_path):
    texts = keras.Input((), dtype="string", name="text")
    vectorizer = keras.layers.TextVectorization(output_sequence_length=4, name="vectorizer")
    vectorizer.adapt(["a b c"])
    counts = keras.layers.TextVectorization(output_mode="count", name="counts")
    counts.adapt(["a b c"])
    x = keras.layers.Embedding(10, 2)(vectorizer(texts))
    x = ks.GRU(2)(x)
    x = keras.layers.Concatenate()([x, counts(texts)])
    model = keras.Model(texts, keras.layers.Dense(1)(x))
    with pytest.raises(ValueError, match=r"Received: layers reading the text \['vectorizer'"):
        ks.export_onnx(model, tmp_path / "refused.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["onnx", "litert"])
@pytest.mark.parametrize("cell", sorted(CELL_LAYERS))
def test_every_cell_in_the_text_task_models(cell, kind, tmp_path):
    pytest.importorskip("onnxruntime" if kind == "onnx" else "ai_edge_litert")
    models = {
        "tagger": _tagger(tmp_path, cell=cell),
        "classifier": _classifier(tmp_path, cell=cell),
        "chunked_classifier": _chunked_classifier(tmp_path, cell=cell),
    }
    if kind == "onnx":  # a LiteRT file fixes its number of steps, a prompt's is free
        models["next_word"] = _next_word(cell=cell)
    for name, model in models.items():
        path = _export(kind, model, tmp_path / f"{name}{SUFFIX[kind]}")
        texts = {"next_word": PROMPTS, "chunked_classifier": CHUNKED_TEXTS}.get(name, RAW_TEXTS)
        reply = _client_answers(kind, path, texts, tmp_path)
        for got, want in zip(reply["answers"], _keras_answers(model, texts), strict=True):
            np.testing.assert_allclose(np.array(got), want, atol=ATOL, rtol=0)
