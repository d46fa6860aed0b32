"""The text-classification task and the command line, on tiny settings."""

import json

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_seqcells import cli
from keras_seqcells.tasks import DataError, TextClassification, TrainSettings, get_task
from keras_seqcells.tasks.data import shipped_path
from keras_seqcells.tasks.text_classification import read_polarity_folder
from tests.task_helpers import tiny_settings

TINY_TASK = {"max_tokens": 300, "sequence_length": 12, "embedding_dim": 8}


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


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
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
    class Interrupt(Exception):
        pass

    class InterruptAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise Interrupt

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
