"""The tagging task on tiny settings: data, masking, saving and errors."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_seqcells.tasks import DataError, tagging
from keras_seqcells.tasks.tagging import (
    TaggedData,
    Tagging,
    TokenFeatureHashing,
    read_conllu,
)
from tests.task_helpers import tiny_settings

TINY_TASK = {"max_length": 8, "embedding_dim": 8, "feature_bins": 50, "feature_dim": 4}

CONLLU = """\
# sent_id = 1
# text = Don't stop now.
1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_
3\tstop\tstop\tVERB\tVB\t_\t0\troot\t_\t_
4\tnow\tnow\tADV\tRB\t_\t3\tadvmod\t_\tSpaceAfter=No
5\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

1\tGo\tgo\tVERB\tVB\t_\t0\troot\t_\t_
1.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t0:root\t_
2\thome\thome\tADV\tRB\t_\t1\tadvmod\t_\t_

1\tYes\tyes\tINTJ\tUH\t_\t0\troot\t_\t_
"""


def test_conllu_reader_skips_comments_ranges_and_empty_nodes(tmp_path):
    path = tmp_path / "tiny.conllu"
    path.write_text(CONLLU)
    sentences, tags = read_conllu(path)
    assert sentences == [("Do", "n't", "stop", "now", "."), ("Go", "home"), ("Yes",)]
    assert tags == [("AUX", "PART", "VERB", "ADV", "PUNCT"), ("VERB", "ADV"), ("INTJ",)]
    data = Tagging().load_data(str(path), seed=0)
    splits = [data.train_sentences, data.validation_sentences, data.test_sentences]
    assert sorted(s for split in splits for s in split) == sorted(sentences)
    assert data.tag_names == ("ADV", "AUX", "INTJ", "PART", "PUNCT", "VERB")


def test_shipped_split_is_seeded_and_disjoint():
    task = Tagging()
    data = task.load_data(seed=3)
    assert data.test_sentences == task.load_data(seed=3).test_sentences
    assert data.test_sentences != task.load_data(seed=4).test_sentences
    sizes = [len(data.train_sentences), len(data.validation_sentences), len(data.test_sentences)]
    assert sizes == [1441, 160, 400]  # 20% held out, then 10% of the rest
    assert len(data.tag_names) == 17
    pairs = zip(data.train_sentences, data.train_tags, strict=True)
    assert all(len(sentence) == len(tags) for sentence, tags in pairs)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_tiny_model_trains_evaluates_and_reloads(cell, tmp_path):
    task = Tagging(**TINY_TASK)
    result = task.train(tiny_settings(tmp_path, batch_size=256, cell=cell), limit=48)
    assert 0.0 <= result.metrics["accuracy"] <= 1.0
    assert result.metrics["test_tokens"] > 0
    assert set(result.baselines) == {"most frequent tag", "most frequent tag per word"}
    reloaded = keras.saving.load_model(result.model_path, safe_mode=True)
    long_sentence = " ".join(["the", "dog", "barked", "at", "zyxwv", "Quokkas"] * 3)
    sentences = ["From the AP comes this story :", long_sentence]
    tagged = task.predict(result.model, sentences)
    assert task.predict(reloaded, sentences) == tagged
    assert [token for token, _ in tagged[1]] == long_sentence.split()  # beyond max_length
    assert all(tag in result.model.get_layer("tags").tags for _, tag in tagged[0])


def test_padding_is_not_counted_in_the_accuracy(tmp_path):
    # One-token sentences in sequences of 4: 3 positions of 4 are padding. The
    # model predicts NOUN (index 0, also the padding's label) everywhere while
    # every real token is a VERB: 0% of the tokens, 75% of the positions.
    sentences = [("run",), ("jump",), ("swim",), ("go",)]
    tags = [np.array([1], dtype="int32")] * 4
    data = TaggedData(sentences, tags, sentences, tags, sentences, tags, ("NOUN", "VERB"))
    task = Tagging(**{**TINY_TASK, "max_length": 4})
    settings = tiny_settings(tmp_path, batch_size=256)
    model = task.build_model(data, settings)
    output = model.get_layer("tags")
    kernel, _ = output.get_weights()
    output.set_weights([np.zeros_like(kernel), np.array([5.0, -5.0], dtype="float32")])
    assert task.evaluate(model, data)["accuracy"] == 0.0
    task.compile(model, settings)
    _, validation = task.datasets(data, batch_size=4)
    assert model.evaluate(validation, return_dict=True, verbose=0)["accuracy"] == 0.0
    positions = np.argmax(model.predict(tf.constant(["run", "jump"]), verbose=0), axis=-1)
    assert np.mean(positions == np.array([[1, 0, 0, 0]] * 2)) == 0.75


@pytest.mark.parametrize(
    ("name", "option", "first_tags"),
    [
        ("universal_dependencies/en_ewt", "pos", ("ADJ", "ADP")),
        ("conll2003", "pos", ('"', "''")),
        ("conll2003", "ner", ("O", "B-PER")),
    ],
)
def test_tfds_names_with_mock_data(name, option, first_tags):
    with tfds.testing.mock_data(num_examples=6):
        data = Tagging(conll2003_tags=option).load_data(name)
    assert data.tag_names[:2] == first_tags and "_" not in data.tag_names
    assert len(data.train_sentences) == len(data.test_sentences) == 6
    for sentence, tags in zip(data.train_sentences, data.train_tags, strict=True):
        assert len(sentence) == len(tags) and all(" " not in token for token in sentence)
        assert np.all(tags < len(data.tag_names))


def test_docstring_examples():
    assert doctest.testmod(tagging).failed == 0


def test_token_feature_hashing_pads_with_zero():
    shape = TokenFeatureHashing("shape", num_bins=50, output_sequence_length=5)
    ids = keras.ops.convert_to_numpy(shape(tf.constant(["Paris in 2024", "Rome"])))
    assert ids.shape == (2, 5) and np.all(ids[:, :1] > 0) and np.all(ids[0, 3:] == 0)
    assert ids[0, 0] == ids[1, 0]  # both "Xx"
    suffix = TokenFeatureHashing("suffix", num_bins=50, output_sequence_length=2)
    ids = keras.ops.convert_to_numpy(suffix(tf.constant(["walking talking"])))
    assert ids[0, 0] == ids[0, 1]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "Expected `source` to be an existing file"),
        ("1\tGo\tgo\tVERB\n", r"line 1: expected 10 tab-separated columns, found 4"),
        (CONLLU.replace("2\thome\thome\tADV", "x\thome\thome\tADV"), r"line 12: .*word ID"),
        (CONLLU.replace("INTJ", "_"), r"line 14: expected a word form and a UPOS tag"),
        ("", r"no sentence"),
        ("# only a comment\n\n", r"no sentence"),
    ],
)
def test_missing_or_malformed_file_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "data.conllu"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message) as error:
        Tagging().load_data(str(path))
    assert str(path) in str(error.value)


def test_bad_options_and_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="non-empty sentences"):
        Tagging().predict(model=None, inputs=[])
    with pytest.raises(ValueError, match="non-empty sentences"):
        Tagging().predict(model=None, inputs="   ")
    with pytest.raises(ValueError, match="Expected `conll2003_tags` to be one of"):
        Tagging(conll2003_tags="chunks")
