"""The text-classification task and the command line, on tiny settings."""

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_seqcells import cli
from keras_seqcells.tasks import DataError, TextClassification, TrainSettings, get_task
from keras_seqcells.tasks.data import shipped_path
from keras_seqcells.tasks.text_classification import (
    ChunkPooling,
    ClassProbabilities,
    TextChunks,
    TextData,
    choose_chunk_length,
    choose_sequence_length,
    chunk_length_of,
    classification_report,
    read_polarity_folder,
    sequence_length_of,
    token_counts,
)
from tests.task_helpers import Interrupt, InterruptAfterFirstEpoch, tiny_settings

TINY_TASK = {"max_tokens": 300, "sequence_length": 12, "embedding_dim": 8}
TINY_TASK_AUTO = {"max_tokens": 300, "embedding_dim": 8}


def test_shipped_data_split_is_seeded_and_disjoint():
    task = TextClassification()
    data = task.load_data(seed=3)
    again = task.load_data(seed=3)
    other = task.load_data(seed=4)
    np.testing.assert_array_equal(data.test_texts, again.test_texts)
    assert not np.array_equal(data.test_texts, other.test_texts)
    sizes = [len(data.train_texts), len(data.validation_texts), len(data.test_texts)]
    assert sum(sizes) == 10662 and sizes[2] == 1066
    everything, _ = read_polarity_folder(shipped_path("rt-polarity"))
    splits = np.concatenate([data.train_texts, data.validation_texts, data.test_texts])
    assert sorted(splits) == sorted(everything)  # a partition: nothing lost or repeated
    assert set(np.unique(data.train_labels)) == {0, 1}


@pytest.mark.parametrize(
    "cell",
    [
        "simple_rnn",
        "lstm",
        "gru",
        *(pytest.param(cell, marks=pytest.mark.slow) for cell in ("layer_norm_lstm", "min_gru")),
    ],
)
def test_tiny_model_trains_evaluates_and_saves(cell, tmp_path):
    task = TextClassification(**TINY_TASK)
    result = task.train(tiny_settings(tmp_path, cell=cell), limit=64)
    assert 0.0 <= result.metrics["accuracy"] <= 1.0
    assert set(result.baselines) == {"majority class", "bag-of-words logistic regression"}
    for name in ("model.keras", "learning_curve.png", "metrics.json"):
        assert (tmp_path / name).is_file()
    assert any((tmp_path / "logs").rglob("*tfevents*"))
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["settings"]["cell"] == cell
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    texts = ["a gorgeous , witty film", "dull and lifeless"]
    assert task.predict(reloaded, texts) == task.predict(result.model, texts)


def test_interrupted_training_resumes_from_backup(tmp_path):
    task = TextClassification(**TINY_TASK)
    settings = tiny_settings(tmp_path, epochs=3, patience=5)
    with pytest.raises(Interrupt):
        task.train(settings, limit=64, callbacks=[InterruptAfterFirstEpoch()])
    assert (tmp_path / "backup").exists()
    assert not (tmp_path / "model.keras").exists()
    result = task.train(settings, limit=64)
    # The history holds epoch 1 (from the backup), then epochs 2 and 3 (trained now).
    assert len(result.history["loss"]) == 3
    assert not (tmp_path / "backup").exists()


def test_imdb_reviews_by_name_with_mock_data():
    with tfds.testing.mock_data(num_examples=20):
        data = get_task("text-classification").load_data("imdb_reviews")
    assert len(data.test_texts) == 20
    assert len(data.train_texts) + len(data.validation_texts) == 20
    assert isinstance(data.train_texts[0], str)


def test_folder_source(tmp_path):
    (tmp_path / "a.pos").write_text("good\ngreat fun\nlovely\n")
    (tmp_path / "a.neg").write_text("bad\nboring\nawful mess\n")
    data = TextClassification().load_data(str(tmp_path), seed=0)
    assert len(data.train_texts) + len(data.validation_texts) + len(data.test_texts) == 6


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no \\*.pos file"),
        ({"a.pos": "good\n"}, "no \\*.neg file"),
        ({"a.pos": "good\n", "a.neg": "\n\n"}, "no sentence"),
        ({"a.pos": b"\xff\xfe bad bytes", "a.neg": "bad\n"}, "readable UTF-8"),
    ],
)
def test_missing_or_malformed_data_is_a_clear_error(tmp_path, files, message):
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(DataError, match=message):
        TextClassification().load_data(str(tmp_path))


def test_bad_names_and_inputs_are_clear_errors():
    with pytest.raises(ValueError, match=r"Expected `task` to be one of .* Received: task='nope'"):
        get_task("nope")
    with pytest.raises(ValueError, match=r"Expected `cell` to be one of .* Received: cell='rnn'"):
        TrainSettings(cell="rnn")
    with pytest.raises(ValueError, match="Expected `units` to be a positive integer"):
        TrainSettings(units=0)
    with pytest.raises(ValueError, match="non-empty texts"):
        TextClassification().predict(model=None, texts=["   "])


def test_cli_train_evaluate_predict(tmp_path, capsys):
    output_dir = tmp_path / "run"
    common = ["--limit", "64"]
    assert (
        cli.main(
            [
                *("train", "text-classification", "--units", "4", "--epochs", "1", "--quiet"),
                *("--output-dir", str(output_dir), *common),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "held-out accuracy" in out and "bag-of-words logistic regression" in out
    model = str(output_dir / "model.keras")
    assert cli.main(["evaluate", "text-classification", "--model", model, *common]) == 0
    assert "majority class" in capsys.readouterr().out
    assert cli.main(["predict", "text-classification", "a witty film", "--model", model]) == 0
    prediction = json.loads(capsys.readouterr().out.splitlines()[0])
    assert prediction["prediction"][0] in ("negative", "positive")


def test_cli_errors(tmp_path, capsys):
    missing = str(tmp_path / "missing.keras")
    assert cli.main(["predict", "text-classification", "fine", "--model", missing]) == 2
    assert "Expected `--model` to be a saved .keras file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "no-such-task"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["train", "text-classification", "--cell", "transformer"])
    assert "invalid choice: 'transformer'" in capsys.readouterr().err


def test_training_stops_on_a_nan_loss(tmp_path):
    class PoisonWeights(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            for variable in self.model.trainable_variables:
                variable.assign(np.full(variable.shape, np.nan))

    task = TextClassification(**TINY_TASK)
    result = task.train(tiny_settings(tmp_path, epochs=3), limit=64, callbacks=[PoisonWeights()])
    assert len(result.history["loss"]) == 1


# ------------------------------------------------------- any labelled text
TOPICS = {
    "sport": ["the team won the match", "a goal in the final minute", "the striker scored twice"],
    "food": ["a bowl of spicy noodles", "fresh bread and butter", "the soup needs more salt"],
    "tech": ["the laptop battery died", "a new phone with a fast chip", "the server needs a patch"],
}


def _topic_rows(copies=4):
    """Labelled texts of three classes, each class's texts repeated `copies` times."""
    return [
        (f"{text} ({i})", label)
        for label, texts in TOPICS.items()
        for text in texts
        for i in range(copies)
    ]


def _write_table(path, rows, text_column="text", label_column="label"):
    if path.suffix in (".jsonl", ".ndjson"):
        lines = [
            json.dumps({"id": i, text_column: t, label_column: y}) for i, (t, y) in enumerate(rows)
        ]
        path.write_text("\n".join(lines) + "\n")
    else:
        delimiter = "\t" if path.suffix in (".tsv", ".tab") else ","
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerow(["id", text_column, label_column])
            writer.writerows([i, t, y] for i, (t, y) in enumerate(rows))
    return path


def _write_class_folders(root, rows, extra=None):
    for i, (text, label) in enumerate(rows):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{i}.txt").write_text(text)
    for name in extra or ():
        (root / name).mkdir()
        (root / name / "0.txt").write_text("not a class of this data")
    return root


def _all_texts(data):
    return sorted([*data.train_texts, *data.validation_texts, *data.test_texts])


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_tables_with_named_columns(tmp_path, suffix):
    rows = _topic_rows()
    # Texts holding the delimiter and a quote, as real CSVs have.
    rows[0] = ('the team, "at last", won\tthe match', "sport")
    path = _write_table(tmp_path / f"data{suffix}", rows, "review", "topic")
    task = TextClassification(text_column="review", label_column="topic")
    data = task.load_data(str(path), seed=1)
    assert data.classes == ("food", "sport", "tech")
    assert _all_texts(data) == sorted(text for text, _ in rows)
    labels = dict(rows)
    for texts, indices in (
        (data.train_texts, data.train_labels),
        (data.test_texts, data.test_labels),
    ):
        assert [labels[t] for t in texts] == [data.classes[i] for i in indices]


def test_default_columns_are_text_and_label(tmp_path):
    path = _write_table(tmp_path / "data.csv", _topic_rows())
    assert TextClassification().load_data(str(path)).classes == ("food", "sport", "tech")


def test_class_folders_like_text_dataset_from_directory(tmp_path):
    rows = _topic_rows()
    root = _write_class_folders(tmp_path / "corpus", rows, extra=["unsup"])
    (root / "food" / "notes.md").write_text("not a document: only .txt files are read")
    (root / "tech" / "nested").mkdir()
    (root / "tech" / "nested" / "deep.txt").write_text("a nested document counts too")
    data = TextClassification(class_names="food,sport,tech").load_data(str(root))
    assert data.classes == ("food", "sport", "tech")
    expected = sorted([text for text, _ in rows] + ["a nested document counts too"])
    assert _all_texts(data) == expected
    # Without class_names every sub-folder is a class, as in Keras.
    everything = TextClassification().load_data(str(root))
    assert everything.classes == ("food", "sport", "tech", "unsup")
    keras_classes = keras.utils.text_dataset_from_directory(root, batch_size=None).class_names
    assert list(everything.classes) == keras_classes


def test_split_is_stratified_and_seeded(tmp_path):
    rows = [(f"sport text {i}", "sport") for i in range(60)] + [
        (f"food text {i}", "food") for i in range(20)
    ]
    path = _write_table(tmp_path / "data.csv", rows)
    data = TextClassification().load_data(str(path), seed=5)
    for labels, size in ((data.test_labels, 8), (data.validation_labels, 8)):
        assert len(labels) == size
        assert sorted(np.bincount(labels, minlength=2).tolist()) == [2, 6]
    again = TextClassification().load_data(str(path), seed=5)
    np.testing.assert_array_equal(data.test_texts, again.test_texts)


def test_sequence_length_comes_from_the_training_texts():
    texts = np.array([" ".join(["w"] * n) for n in range(1, 101)], dtype=object)
    assert choose_sequence_length(texts, maximum=400) == 100  # 99th percentile: 99.01
    assert choose_sequence_length(texts[:50], maximum=400) == 50
    assert choose_sequence_length(texts, maximum=30) == 30
    data = TextData(
        texts,
        np.zeros(100, "int32") + np.arange(100) % 2,
        texts,
        np.arange(100) % 2,
        texts,
        np.arange(100) % 2,
    )
    model = TextClassification(**TINY_TASK_AUTO).build_model(data, tiny_settings("unused"))
    assert sequence_length_of(model) == 100
    fixed = TextClassification(**TINY_TASK_AUTO, sequence_length=7).build_model(
        data, tiny_settings("unused")
    )
    assert sequence_length_of(fixed) == 7


def test_shipped_data_keeps_almost_every_sentence_whole():
    data = TextClassification().load_data()
    length = TextClassification().chosen_sequence_length(data)
    assert 40 <= length < 60
    assert np.mean(token_counts(data.train_texts) > length) <= 0.01


def test_classification_report_by_hand():
    # truth:     a a a b b c
    # predicted: a b a b c c
    report = classification_report([0, 0, 0, 1, 1, 2], [0, 1, 0, 1, 2, 2], ["a", "b", "c"])
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report["accuracy"] == pytest.approx(4 / 6)
    per_class = report["per_class"]
    assert per_class["a"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    )
    assert per_class["b"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert per_class["c"]["precision"] == 0.5 and per_class["c"]["recall"] == 1.0
    assert report["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    never_predicted = classification_report([0, 1], [0, 0], ["a", "b"])["per_class"]["b"]
    assert never_predicted == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_multiclass_model_is_softmax_and_answers_with_label_names(tmp_path, monkeypatch):
    path = _write_table(tmp_path / "topics.csv", _topic_rows(copies=6))
    task = TextClassification(**TINY_TASK)
    run = tmp_path / "run"
    result = task.train(tiny_settings(run, epochs=2), source=str(path))
    output = result.model.get_layer("probability")
    assert isinstance(output, ClassProbabilities)
    assert output.units == 3 and output.get_config()["activation"] == "softmax"
    assert result.model.loss == "sparse_categorical_crossentropy"
    summary = json.loads((run / "metrics.json").read_text())
    assert set(summary["metrics"]["per_class"]) == {"food", "sport", "tech"}
    assert np.sum(summary["metrics"]["confusion_matrix"]) == summary["metrics"]["test_examples"]
    assert (run / "confusion_matrix.png").stat().st_size > 1000
    texts = ["a bowl of fresh noodles", "the team scored"]
    answers = task.predict(result.model, texts)
    for label, probabilities in answers:
        assert list(probabilities) == ["food", "sport", "tech"]
        assert label == max(probabilities, key=probabilities.get)
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    reloaded = cli.load_model(run / "model.keras")
    assert task.predict(reloaded, texts) == answers
    monkeypatch.chdir(tmp_path)
    from keras_seqcells.serving import export, serve_check

    exported = export(reloaded, "saved_models/topics")
    serve_check("saved_models/topics", model=reloaded)  # labels and probabilities as Keras's
    loaded = tf.saved_model.load(str(exported))
    served = loaded.signatures["serving_default"](text=tf.constant(texts))
    assert [label.decode() for label in served["label"].numpy()] == [a[0] for a in answers]
    assert served["probabilities"].shape == (2, 3)


def test_two_string_classes_are_one_sigmoid_unit_named_in_exports(tmp_path, monkeypatch):
    rows = [(text, "spam" if label == "food" else "ham") for text, label in _topic_rows()]
    path = _write_table(tmp_path / "mail.jsonl", rows)
    task = TextClassification(**TINY_TASK)
    data = task.load_data(str(path))
    assert data.classes == ("ham", "spam")
    model = task.build_model(data, tiny_settings(tmp_path))
    output = model.get_layer("probability")
    assert output.units == 1 and output.get_config()["activation"] == "sigmoid"
    answers = task.predict(model, ["a bowl of noodles", "the server"])
    assert {label for label, _ in answers} <= {"ham", "spam"}
    monkeypatch.chdir(tmp_path)
    from keras_seqcells.serving import export, serve_check

    exported = export(model, "saved_models/mail")
    serve_check("saved_models/mail", model=model)
    served = tf.saved_model.load(str(exported)).signatures["serving_default"](
        text=tf.constant(["a bowl of noodles", "the server"])
    )
    assert [label.decode() for label in served["label"].numpy()] == [a[0] for a in answers]


def test_evaluating_on_labels_the_model_does_not_know_is_an_error(tmp_path):
    path = _write_table(tmp_path / "topics.csv", _topic_rows())
    task = TextClassification(**TINY_TASK)
    model = task.build_model(task.load_data(str(path)), tiny_settings(tmp_path))
    other = _write_table(
        tmp_path / "other.csv", [(f"x {i}", "law" if i % 2 else "food") for i in range(20)]
    )
    with pytest.raises(DataError, match=r"unknown label\(s\) \['law'\]"):
        task.evaluate(model, task.load_data(str(other)))


def test_cli_trains_on_a_tsv_with_task_options_and_predicts_names(tmp_path, capsys):
    path = _write_table(tmp_path / "topics.tsv", _topic_rows(), "body", "topic")
    run = tmp_path / "run"
    options = ["--task-option", "text_column=body", "--task-option", "label_column=topic"]
    argv = ["train", "text-classification", *options, "--source", str(path)]
    argv += ["--units", "4", "--epochs", "1", "--quiet", "--output-dir", str(run)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "macro_f1" in out and "per class (test split):" in out and "confusion matrix:" in out
    model = str(run / "model.keras")
    assert cli.main(["predict", "text-classification", "fresh bread", "--model", model]) == 0
    prediction = json.loads(capsys.readouterr().out.splitlines()[0])["prediction"]
    assert prediction[0] in ("food", "sport", "tech")
    assert set(prediction[1]) == {"food", "sport", "tech"}


def _rows_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    ("name", "content", "options", "message"),
    [
        (
            "a.csv",
            "body,label\nfine,x\n",
            {},
            r"text_column='text' \(the columns of .* are \['body', 'label'\]",
        ),
        ("a.csv", "text,label\nfine,x\n", {"label_column": "y"}, r"label_column='y'"),
        (
            "a.jsonl",
            '{"text": "fine"}\n',
            {},
            r"label_column='label' \(line 1 .* has the keys \['text'\]",
        ),
        ("a.jsonl", '{"text": "a", "label": 1}\n{oops\n', {}, "JSON object a line .* line 2"),
        ("a.csv", "", {}, r"text_column='text' \(the columns of .* are \[\]"),
        ("a.csv", "text,label\n", {}, r"no data rows"),
        ("a.csv", "text,label\na,x\n,y\n", {}, r"non-empty text .* on line 3"),
        ("a.csv", "text,label\na,x\nb,\n", {}, r"empty label on line 3"),
        (
            "a.csv",
            "text,label\na,x\nb,x\n",
            {},
            r"two or more classes .*\(only the label\(s\) \['x'\]",
        ),
        ("a.csv", b"text,label\nfine,x\ncaf\xe9,y\n", {}, r"byte 0xe9 on line 3 cannot be decoded"),
        (
            "a.csv",
            "text,label\na,x\nb,y\nc,z\n",
            {"class_names": "x,y"},
            r"unknown label\(s\) \['z'\]",
        ),
        ("a.txt", "some text\n", {}, r"a \.csv/\.tsv/\.tab/\.jsonl/\.ndjson file"),
    ],
)
def test_bad_tables_are_clear_errors(tmp_path, name, content, options, message):
    path = _rows_file(tmp_path, name, content)
    with pytest.raises(DataError, match=message):
        TextClassification(**options).load_data(str(path))


def test_latin1_files_read_with_the_encoding_option(tmp_path):
    path = tmp_path / "a.csv"
    rows = "text,label\n" + "".join(f"café {i},{'xy'[i % 2]}\n" for i in range(10))
    path.write_bytes(rows.encode("latin-1"))
    data = TextClassification(encoding="latin-1").load_data(str(path))
    assert "café 0" in _all_texts(data)


@pytest.mark.parametrize(
    ("layout", "options", "message"),
    [
        ({"a": [], "b": ["x"]}, {}, r"a \(no \.txt file"),
        ({"a": ["x"], "b": ["  "]}, {}, r"\.txt file of `source`. Received: .*b/0\.txt \(empty\)"),
        ({"a": ["x"], "b": ["y"]}, {"class_names": ["a", "c"]}, r"no folder 'c'"),
        ({}, {"class_folders": True}, r"one sub-folder per class .* \(no sub-folder\)"),
    ],
)
def test_bad_class_folders_are_clear_errors(tmp_path, layout, options, message):
    for folder, texts in layout.items():
        (tmp_path / folder).mkdir()
        for i, text in enumerate(texts):
            (tmp_path / folder / f"{i}.txt").write_text(text)
    with pytest.raises(DataError, match=message):
        TextClassification(**options).load_data(str(tmp_path))


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"class_folders": "yes"},
            ValueError,
            "Expected `class_folders` to be true, false or null",
        ),
        ({"text_column": "x", "label_column": "x"}, ValueError, "to differ"),
        ({"text_column": ""}, ValueError, "`text_column` to be a non-empty string"),
        ({"sequence_length": 0}, ValueError, "`sequence_length` to be a positive integer"),
        ({"max_sequence_length": -3}, ValueError, "`max_sequence_length` to be a positive"),
        ({"class_names": "only"}, ValueError, "two or more distinct names"),
        ({"class_names": 3}, TypeError, "comma-separated string"),
        ({"encoding": "no-such-codec"}, ValueError, "`encoding` to name a text encoding"),
        ({"chunk_length": -1}, ValueError, r"`chunk_length` to be 'auto'.*chunk_length=-1"),
        ({"chunk_length": "long"}, ValueError, r"Received: chunk_length='long'"),
        (
            {"min_steps": -5},
            ValueError,
            r"`min_steps` to be an integer >= 0\. Received: min_steps=-5",
        ),
        (
            {"min_batches": 1.5},
            TypeError,
            r"`min_batches` to be an integer\. Received: min_batches=1.5",
        ),
    ],
)
def test_bad_options_are_clear_errors(tmp_path, options, error, message):
    path = _write_table(tmp_path / "a.csv", _topic_rows())
    with pytest.raises(error, match=message):
        TextClassification(**options).load_data(str(path))


def test_a_refused_source_writes_nothing(tmp_path):
    path = _rows_file(tmp_path, "a.csv", "body,label\nfine,x\n")
    run = tmp_path / "run"
    with pytest.raises(DataError):
        TextClassification(**TINY_TASK).train(tiny_settings(run), source=str(path))
    assert not run.exists()


# ------------------------------------------------------------ long texts
def _texts_of_lengths(lengths, seed=0):
    """Texts of the given token counts; label "long" when "alpha" is among the first words."""
    rng = np.random.default_rng(seed)
    words = np.array(["alpha", "beta", "gamma", "delta", "omega", "sigma"])
    texts = [" ".join(rng.choice(words, n)) for n in lengths]
    labels = ["long" if "alpha" in text.split()[:4] else "short" for text in texts]
    return texts, labels


def _text_data(texts, labels):
    classes = tuple(sorted(set(labels)))
    indices = np.array([classes.index(label) for label in labels], dtype="int32")
    texts = np.array(texts, dtype=object)
    return TextData(texts, indices, texts[:4], indices[:4], texts[:4], indices[:4], classes)


def test_long_texts_are_read_in_chunks_and_short_ones_whole():
    assert choose_chunk_length(45) is None and choose_chunk_length(128) is None
    assert choose_chunk_length(129) == 64
    short = _text_data(*_texts_of_lengths([20] * 30))
    long = _text_data(*_texts_of_lengths([300] * 30))
    auto = TextClassification()
    assert auto.chosen_sequence_length(short) == 20
    assert auto.chosen_chunk_length(20) is None
    assert auto.chosen_sequence_length(long) == 320  # 300 rounded up to whole chunks of 64
    assert auto.chosen_chunk_length(320) == 64
    whole = TextClassification(chunk_length=0)
    assert whole.chosen_sequence_length(long) == 300 and whole.chosen_chunk_length(300) is None
    tens = TextClassification(chunk_length=10, sequence_length=25)
    assert tens.chosen_sequence_length(long) == 30 and tens.chosen_chunk_length(30) == 10
    assert TextClassification(chunk_length=50).chosen_chunk_length(40) is None


def test_chunk_pooling_leaves_out_chunks_of_padding():
    tokens = np.array([[3, 4, 0, 0, 0, 0], [5, 6, 0, 0, 7, 8]])  # chunks of 2: 1 and 2 filled
    rows = TextChunks(2)(tokens)
    assert tuple(rows.shape) == (6, 2)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(rows)[3], [5, 6])
    encodings = np.array([[-1.0, 2.0], [9.0, 9.0], [9.0, 9.0], [1.0, 0.0], [3.0, -2.0], [5.0, 5.0]])
    pooled = keras.ops.convert_to_numpy(ChunkPooling(2)(encodings, tokens))
    np.testing.assert_allclose(pooled[0], [-1.0, 2.0, -1.0, 2.0])  # mean, then max
    np.testing.assert_allclose(pooled[1], [3.0, 2.5, 5.0, 5.0])  # not the padding's [3, -2]
    for layer in (TextChunks(2), ChunkPooling(2)):
        assert type(layer).from_config(layer.get_config()).chunk_length == 2
    with pytest.raises(ValueError, match="Received: chunk_length=0"):
        TextChunks(0)


def test_a_chunked_model_learns_saves_loads_exports_and_traces(tmp_path):
    from keras_seqcells.diagnostics.gates import gate_view
    from keras_seqcells.serving import export, serve_check

    texts, labels = _texts_of_lengths([6, 11, 2, 9] * 12)
    path = _write_table(tmp_path / "long.csv", list(zip(texts, labels, strict=True)))
    task = TextClassification(max_tokens=50, embedding_dim=4, sequence_length=12, chunk_length=4)
    result = task.train(tiny_settings(tmp_path / "run", epochs=2), source=str(path))
    model = result.model
    assert [type(layer).__name__ for layer in model.layers].count("TextChunks") == 1
    assert result.metrics["chunk_length"] == 4 and result.metrics["sequence_length"] == 12
    loaded = keras.saving.load_model(result.model_path, safe_mode=True)
    assert chunk_length_of(loaded) == 4
    sample = list(texts[:5])
    np.testing.assert_allclose(
        loaded.predict(tf.constant(sample), verbose=0),
        model.predict(tf.constant(sample), verbose=0),
        atol=1e-6,
    )
    # The trace joins the chunks: one step per word, labelled with the word.
    view = gate_view(loaded, "alpha beta gamma delta omega sigma")
    assert [item["name"] for item in view.traces] == ["encoder/forward", "encoder/backward"]
    forward = view.traces[0]
    assert forward["labels"] == ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
    assert forward["steps"] == [0, 1, 2, 3, 4, 5] and forward["length"] == 12
    assert forward["gates"]["h"].shape == (4, 6)
    # Steps 4 and 5 are the second chunk, read from a zero state as a text of its own.
    alone = gate_view(loaded, "omega sigma").traces[0]
    np.testing.assert_allclose(forward["gates"]["h"][:, 4:], alone["gates"]["h"], atol=1e-5)
    export_path = export(loaded, str(tmp_path / "saved_models" / "chunked"), xla=False)
    report = serve_check(export_path, model=loaded, grpc=False, fresh_process=False)
    assert report[-1] == "serving_default: the Keras model's answers"


def test_small_training_sets_get_smaller_batches_and_more_steps():
    task = TextClassification()
    tiny = _text_data(*_texts_of_lengths([5] * 150))
    adapted = task.adapted_settings(task.settings(), tiny)
    assert (adapted.batch_size, adapted.epochs, adapted.patience) == (16, 100, 10)
    middle = _text_data(*_texts_of_lengths([5] * 900))
    adapted = task.adapted_settings(task.settings(), middle)
    assert (adapted.batch_size, adapted.epochs, adapted.patience) == (32, 35, 4)
    large = _text_data(*_texts_of_lengths([5] * 8530))  # rt-polarity's training split
    assert task.adapted_settings(task.settings(), large) == task.settings()
    # Settings given by hand are kept; so are the defaults with the options at 0.
    given = task.settings(batch_size=8, epochs=3, patience=1)
    assert task.adapted_settings(given, tiny) == given
    # Even at the default values: what is given by hand is not adapted.
    given_defaults = task.settings(batch_size=64, epochs=8, patience=2)
    assert task.adapted_settings(given_defaults, tiny) == given_defaults
    direct = TrainSettings(**task.recommended_settings)
    assert task.adapted_settings(direct, tiny) == direct
    with pytest.raises(TypeError, match="Received: adaptable='epochs'"):
        TrainSettings(adaptable="epochs")
    off = TextClassification(min_batches=0, min_steps=0)
    assert off.adapted_settings(off.settings(), tiny) == off.settings()


def test_training_records_the_adapted_settings(tmp_path):
    texts, labels = _texts_of_lengths([5, 7] * 20)
    path = _write_table(tmp_path / "small.csv", list(zip(texts, labels, strict=True)))
    task = TextClassification(max_tokens=50, embedding_dim=4, min_batches=3, min_steps=6)
    settings = task.settings(units=4, output_dir=str(tmp_path / "run"), verbose=0)
    result = task.train(settings, source=str(path))
    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())["settings"]
    # 32 training texts: batches of 64 halve to 16 (2 batches) and stop at the floor of 16.
    assert recorded["batch_size"] == 16 and recorded["epochs"] == 8
    assert recorded["patience"] == 50  # at least 100 steps of 2 batches
    assert len(result.history["loss"]) <= 8


def test_module_examples_run():
    import doctest

    from keras_seqcells.tasks import text_classification

    assert doctest.testmod(text_classification).failed == 0
