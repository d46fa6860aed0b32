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
    convert_tags,
    entity_scores,
    entity_spans,
    read_columns,
    read_conllu,
)
from tests.task_helpers import Interrupt, InterruptAfterFirstEpoch, tiny_settings

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


def test_shipped_treebank_keeps_its_train_split_and_holds_out_dev_documents():
    task = Tagging()
    data = task.load_data(seed=3)
    assert data.test_sentences == task.load_data(seed=4).test_sentences  # not a random split
    sizes = [len(data.train_sentences), len(data.validation_sentences), len(data.test_sentences)]
    # The whole EWT train split; the dev split's 318 documents alternate.
    assert sizes == [12544, 1058, 943]
    assert data.train_sentences[0][:4] == ("Al", "-", "Zaman", ":")
    # The dev split's first document validates, its second is held out.
    assert data.validation_sentences[0] == ("From", "the", "AP", "comes", "this", "story", ":")
    assert data.test_sentences[0][:3] == ("The", "sheikh", "in")
    assert len(data.tag_names) == 17
    pairs = zip(data.train_sentences, data.train_tags, strict=True)
    assert all(len(sentence) == len(tags) for sentence, tags in pairs)


def test_conllu_reader_reads_gzip_files_other_columns_and_documents(tmp_path):
    import gzip

    path = tmp_path / "tiny.conllu.gz"
    path.write_bytes(
        gzip.compress(
            ("# newdoc id = a\n" + CONLLU.replace("# text", "# newdoc id = b\n# text")).encode()
        )
    )
    tagged = read_conllu(path, tag_column="xpos", documents=True)
    assert tagged.tags[0] == ("VBP", "RB", "VB", "RB", ".")
    assert tagged.documents == [0, 0, 0]
    path.write_bytes(gzip.compress(CONLLU.replace("1\tGo", "# newdoc id = b\n1\tGo").encode()))
    assert read_conllu(path, documents=True).documents == [0, 1, 1]


@pytest.mark.parametrize(
    "cell",
    [
        "simple_rnn",
        "lstm",
        "gru",
        *(pytest.param(cell, marks=pytest.mark.slow) for cell in ("peephole_lstm", "min_lstm")),
    ],
)
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
    prefix = TokenFeatureHashing("prefix", num_bins=1000, output_sequence_length=3)
    ids = keras.ops.convert_to_numpy(prefix(tf.constant(["Walking wall talking"])))
    assert ids[0, 0] == ids[0, 1] != ids[0, 2]


@pytest.mark.parametrize(
    ("spelling_features", "layers"),
    [
        (True, {"suffix_hashing", "shape_hashing"}),
        (False, set()),
        ("prefix,suffix", {"prefix_hashing", "suffix_hashing"}),
    ],
)
def test_spelling_features_choose_the_hashing_layers(tmp_path, spelling_features, layers):
    sentences = [("Go", "home"), ("Run",)]
    tags = [np.array([1, 0], "int32"), np.array([1], "int32")]
    data = TaggedData(sentences, tags, sentences, tags, sentences, tags, ("NOUN", "VERB"))
    task = Tagging(spelling_features=spelling_features, **TINY_TASK)
    model = task.build_model(data, tiny_settings(tmp_path))
    assert {layer.name for layer in model.layers if "hashing" in layer.name} == layers


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


CONLL2003 = """\
-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
"""

# A WNUT-style file: tab-separated, lower-case types, blank lines holding a tab.
WNUT = "@paul\tO\nEmpire\tB-facility\nState\tI-facility\n\t\nGo\tO\n\u3000\tO\nhome\tO \n"


def test_conll2003_column_file_by_column_number_or_name(tmp_path):
    path = tmp_path / "eng.train"
    path.write_text(CONLL2003)
    tagged = read_columns(path)
    assert tagged.sentences == [
        ("EU", "rejects", "German", "call", "."),
        ("Peter", "Blackburn"),
        ("BRUSSELS",),
    ]
    assert tagged.tags[0] == ("B-ORG", "O", "B-MISC", "O", "O")
    assert tagged.documents == [1, 1, 2]
    chunks = read_columns(path, tag_column=2).tags[1]
    named = read_columns(path, tag_column="chunk", column_names="word,pos,chunk,ner").tags[1]
    assert chunks == named == ("B-NP", "I-NP")
    task = Tagging(column_names=["word", "pos", "chunk", "ner"], tag_column="pos")
    assert task.read_file(path).tags[0] == ("NNP", "VBZ", "JJ", "NN", ".")
    assert Tagging(tag_column="1", file_format="columns").read_file(path).tags[1] == ("NNP",) * 2


def test_iob_file_with_tabs_and_whitespace_only_separators(tmp_path):
    path = tmp_path / "wnut.txt"
    path.write_text(WNUT)
    tagged = Tagging().read_file(path)  # sniffed as a column file
    assert tagged.sentences == [("@paul", "Empire", "State"), ("Go", "_", "home")]
    assert tagged.tags[0] == ("O", "B-facility", "I-facility")


def test_file_format_is_sniffed_or_forced(tmp_path):
    conllu = tmp_path / "tiny.txt"
    conllu.write_text(CONLLU)
    assert Tagging().read_file(conllu).tags[1] == ("VERB", "ADV")
    # Without its comments, a CoNLL-U file is also a column file.
    conllu.write_text("".join(line for line in CONLLU.splitlines(True) if line[0] != "#"))
    forced = Tagging(file_format="columns", token_column=1, tag_column=3).read_file(conllu)
    assert forced.sentences[0][0] == "Don't" and forced.tags[0][:2] == ("_", "AUX")
    # Ten tab-separated columns, numbers first, but not the word IDs 1, 2, ...
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("2005\t" + "x\t" * 8 + "B-DAT\n7\t" + "x\t" * 8 + "I-DAT\n")
    assert Tagging().read_file(numbers).tags == [("B-DAT", "I-DAT")]
    wnut = tmp_path / "wnut.txt"
    wnut.write_text(WNUT)
    with pytest.raises(DataError, match="expected 10 tab-separated columns"):
        Tagging(file_format="conllu").read_file(wnut)


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        # IOB1 (CoNLL-2003's original scheme): B- only between two entities of a type.
        (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], [("PER", 0, 1), ("PER", 2, 2), ("LOC", 4, 4)]),
        # IOB2 / BIO.
        (["B-PER", "I-PER", "B-PER", "O", "B-LOC"], [("PER", 0, 1), ("PER", 2, 2), ("LOC", 4, 4)]),
        # IOBES.
        (["B-PER", "E-PER", "S-PER", "O", "S-LOC"], [("PER", 0, 1), ("PER", 2, 2), ("LOC", 4, 4)]),
        # An I- of another type starts an entity; an I- after E- starts one.
        (["B-PER", "I-LOC", "E-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2), ("LOC", 3, 3)]),
        (["O", "O"], []),
    ],
)
def test_entity_spans_follow_conlleval(tags, spans):
    assert entity_spans(tags) == spans


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        ("iob1", ("I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG")),
        ("iob2", ("B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG")),
        ("bio", ("B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG")),
        ("iobes", ("B-PER", "E-PER", "S-PER", "O", "S-LOC", "S-ORG")),
    ],
)
def test_scheme_conversions_round_trip(scheme, expected):
    sources = [
        ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"],
        ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG"],
        ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "S-ORG"],
    ]
    for tags in sources:
        assert convert_tags(tags, scheme) == expected
    for other in ("iob1", "iob2", "iobes"):
        assert entity_spans(convert_tags(expected, other)) == entity_spans(expected)


def test_entity_scores_against_hand_worked_examples():
    # conlleval's own kind of example: the MISC entity is found with a wrong
    # start (not counted), the PER entity exactly. 1 of 2 found, 1 of 2 right.
    expected = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    predicted = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    scores = entity_scores(expected, predicted)
    assert (scores["entity_precision"], scores["entity_recall"], scores["entity_f1"]) == (
        0.5,
        0.5,
        0.5,
    )
    # 3 true entities (ORG, PER, LOC). Predicted: ORG right, PER with the wrong
    # type, LOC cut short, plus a spurious MISC: 1 of 4 predictions right, 1
    # of 3 entities found: P = 1/4, R = 1/3, F1 = 2PR/(P+R) = 2/7.
    expected = [["B-ORG", "O", "B-PER", "I-PER", "O", "B-LOC", "I-LOC"]]
    predicted = [["B-ORG", "O", "B-LOC", "I-LOC", "B-MISC", "B-LOC", "O"]]
    scores = entity_scores(expected, predicted)
    assert scores["entity_precision"] == pytest.approx(1 / 4)
    assert scores["entity_recall"] == pytest.approx(1 / 3)
    assert scores["entity_f1"] == pytest.approx(2 / 7)
    assert (scores["entities"], scores["predicted_entities"]) == (3, 4)
    # IOB1 prediction against IOB2 truth: the same entities, a perfect score.
    scores = entity_scores([["B-PER", "I-PER", "B-PER"]], [["I-PER", "I-PER", "B-PER"]])
    assert scores["entity_f1"] == 1.0
    # No prediction at all: precision and F1 are 0, not an error.
    assert entity_scores([["B-PER"]], [["O"]])["entity_f1"] == 0.0


def test_entity_file_trains_with_entity_scores_and_converted_scheme(tmp_path):
    path = tmp_path / "ner.txt"
    path.write_text((CONLL2003.replace("-DOCSTART- -X- -X- O\n", "") + "\n") * 12)
    task = Tagging(tag_scheme="iobes", **TINY_TASK)
    data = task.load_data(str(path))
    assert "S-ORG" in data.tag_names and "E-PER" in data.tag_names
    assert "I-PER" not in data.tag_names
    result = task.train(tiny_settings(tmp_path / "run", batch_size=256), source=str(path))
    for scores in (result.metrics, result.baselines["most frequent tag per word"]):
        assert 0.0 <= scores["entity_f1"] <= 1.0 and scores["entities"] > 0
    assert "entity_f1" not in result.baselines["most frequent tag"]


def test_per_word_baseline_entity_scores_are_computed_from_its_tags():
    sentences = [("Paris", "is", "big"), ("Paris", "Hilton")]
    names = ("B-LOC", "B-PER", "I-PER", "O")
    tags = [np.array([0, 3, 3], "int32"), np.array([1, 2], "int32")]
    data = TaggedData(sentences, tags, sentences, tags, [("Paris", "Hilton")], [tags[1]], names)
    baseline = Tagging().baselines(data)["most frequent tag per word"]
    # "Paris" was a LOC once and a PER once (the first index wins the tie: LOC);
    # "Hilton" was I-PER, which after a B-LOC starts a one-token PER.
    assert baseline["accuracy"] == 0.5
    assert (baseline["entities"], baseline["predicted_entities"]) == (1, 2)
    assert baseline["entity_f1"] == 0.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"file_format": "csv"}, "Expected `file_format` to be one of"),
        ({"spelling_features": "suffix,colour"}, "Expected `spelling_features` to be True"),
        ({"tag_scheme": "bilou"}, "Expected `tag_scheme` to be one of"),
        ({"column_names": "word,,ner"}, "Expected `column_names` to be unique"),
        ({"column_names": ["a", "a"]}, "Expected `column_names` to be unique"),
        ({"tag_column": "ner"}, r"one of the column names .*Received: tag_column='ner'"),
        ({"column_names": "word,ner", "tag_column": "pos"}, r"\['word', 'ner'\]"),
        ({"token_column": 1.5}, "Expected `token_column` to be a column number"),
        ({"token_column": 2, "tag_column": 2}, "to be different columns"),
        ({"file_format": "conllu", "column_names": "a,b"}, "Expected no `column_names`"),
    ],
)
def test_bad_file_options_are_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        Tagging(**options)


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ("EU B-ORG\nrejects\n", {}, r"line 2: 1 column\(s\)"),
        ("EU NNP B-ORG\n", {"tag_column": 5}, r"at least 6 column\(s\)"),
        ("EU\tB-ORG\n\t\n", {"file_format": "columns", "tag_scheme": "iob2"}, None),
        ("EU NNP\n\nGo O\n\nB-X O\n", {"tag_scheme": "iob2"}, r"entity tags .* \['NNP'\]"),
        ("   \n\n", {}, "no sentence"),
        ("-DOCSTART- -X- O\n\n", {}, "no sentence"),
    ],
)
def test_bad_column_files_are_clear_errors(tmp_path, content, options, message):
    path = tmp_path / "data.txt"
    path.write_text(content)
    task = Tagging(**options)
    if message is None:
        assert task.read_file(path).tags == [("B-ORG",)]
        return
    with pytest.raises(DataError, match=message) as error:
        task.load_data(str(path))
    assert str(path) in str(error.value) or "source" in str(error.value)


def test_mixed_encodings_name_the_file_and_line(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Café B-LOC\n".encode() + "\nCafé B-LOC\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.txt, line 3: .*UTF-8|UTF-8.*line 3") as error:
        Tagging().load_data(str(path))
    assert str(path) in str(error.value)


def test_conll2003_ner_with_mock_data_converts_schemes_and_scores_entities():
    with tfds.testing.mock_data(num_examples=6):
        data = Tagging(conll2003_tags="ner", tag_scheme="iobes").load_data("conll2003")
    assert all(name == "O" or name[:2] in ("B-", "I-", "E-", "S-") for name in data.tag_names)
    tags = [[data.tag_names[i] for i in sentence] for sentence in data.test_tags]
    assert all(convert_tags(sentence, "iobes") == tuple(sentence) for sentence in tags)


def test_command_line_options_read_a_conll2003_file(tmp_path):
    from keras_seqcells.cli import _task_options
    from keras_seqcells.tasks import get_task

    path = tmp_path / "eng.train"
    path.write_text(CONLL2003)
    options = _task_options(
        ["column_names=word,pos,chunk,ner", "tag_column=ner", "token_column=0", "tag_scheme=bio"]
    )
    task = get_task("tagging", **options)
    assert task.read_file(path).tags[0] == ("B-ORG", "O", "B-MISC", "O", "O")
    assert get_task("tagging", **_task_options(["tag_column=-2"])).read_file(path).tags[1] == (
        "B-NP",
        "I-NP",
    )


def _entity_file(tmp_path):
    path = tmp_path / "ner.txt"
    path.write_text((CONLL2003.replace("-DOCSTART- -X- -X- O\n", "") + "\n") * 12)
    return path


def test_word_tag_feature_feeds_each_words_training_tags(tmp_path):
    sentences = [("Go", "home"), ("go", "Go")]
    tags = [np.array([1, 0], "int32"), np.array([0, 1], "int32")]
    data = TaggedData(sentences, tags, sentences, tags, sentences, tags, ("NOUN", "VERB"))
    model = Tagging(**TINY_TASK).build_model(data, tiny_settings(tmp_path))
    lookup = keras.Model(model.input, model.get_layer("word_tags").output)
    rows = keras.ops.convert_to_numpy(lookup(tf.constant(["GO home Paris"])))[0]
    # "go" (lower-cased, as the vectorizer reads it): VERB twice, NOUN once;
    # "home": NOUN; "Paris" (unseen) and the padding: nothing known.
    np.testing.assert_allclose(rows[:3], [[1 / 3, 2 / 3], [1, 0], [0, 0]], rtol=1e-6)
    assert np.all(rows[3:] == 0)
    assert not model.get_layer("word_tags").trainable
    readers = [layer for layer in model.layers if isinstance(layer, keras.layers.TextVectorization)]
    assert len(readers) == 1  # the word tags are read from the same word indices
    plain = Tagging(word_tag_feature=False, **TINY_TASK).build_model(data, tiny_settings(tmp_path))
    assert "word_tags" not in {layer.name for layer in plain.layers}


def test_early_stopping_watches_the_entity_f1_for_entity_tags(tmp_path):
    path = _entity_file(tmp_path)
    task = Tagging(**TINY_TASK)
    data = task.load_data(str(path))
    assert task.early_stopping_options(data) == {"monitor": "val_entity_f1", "mode": "max"}
    # Entity tags keep the words' case (lowercase="auto"); other tags do not.
    assert not task.lowercases(data)
    assert Tagging(lowercase=True).lowercases(data)
    pos = TaggedData([("Go",)], [np.array([0])], [], [], [], [], ("VERB",))
    assert task.lowercases(pos) and not Tagging(lowercase=False).lowercases(pos)
    for monitor, mode in (("val_loss", "min"), ("val_accuracy", "max")):
        options = Tagging(early_stopping_monitor=monitor).early_stopping_options(data)
        assert options == {"monitor": monitor, "mode": mode}
    settings = tiny_settings(tmp_path / "run", batch_size=8, epochs=3, patience=5)
    result = task.train(settings, source=str(path))
    assert len(result.history["val_entity_f1"]) == 3
    # The best epoch's weights are restored: the model scores the best F1 seen.
    expected = [[data.tag_names[i] for i in sentence] for sentence in data.validation_tags]
    scores = tagging.ValidationEntityScores(data.validation_sentences, expected)
    scores.set_model(result.model)
    logs = {}
    scores.on_epoch_end(0, logs)
    assert logs["val_entity_f1"] == pytest.approx(max(result.history["val_entity_f1"]))
    plain = Tagging(early_stopping_monitor="val_loss", **TINY_TASK)
    history = plain.train(tiny_settings(tmp_path / "plain"), source=str(path)).history
    assert "val_entity_f1" not in history


def test_entity_f1_stopping_resumes_from_backup(tmp_path):
    path = _entity_file(tmp_path)
    task = Tagging(**TINY_TASK)
    settings = tiny_settings(tmp_path / "run", batch_size=8, epochs=3, patience=5)
    with pytest.raises(Interrupt):
        task.train(settings, source=str(path), callbacks=[InterruptAfterFirstEpoch()])
    assert (tmp_path / "run" / "backup").exists()
    result = task.train(settings, source=str(path))
    assert len(result.history["val_entity_f1"]) == len(result.history["loss"]) == 3
    assert not (tmp_path / "run" / "backup").exists()


def test_bad_stopping_and_word_tag_options_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"`early_stopping_monitor` to be one of .*'val_f1'"):
        Tagging(early_stopping_monitor="val_f1")
    with pytest.raises(ValueError, match=r"`word_tag_feature` to be True or False.*'yes'"):
        Tagging(word_tag_feature="yes")
    with pytest.raises(ValueError, match=r"`lowercase` to be True, False or 'auto'.*'upper'"):
        Tagging(lowercase="upper")
    path = tmp_path / "pos.conllu"
    path.write_text(CONLLU * 4)
    task = Tagging(early_stopping_monitor="val_entity_f1", **TINY_TASK)
    with pytest.raises(ValueError, match=r"entity tags .*'val_entity_f1'.*Received: tags"):
        task.train(tiny_settings(tmp_path / "run"), source=str(path))
    assert not (tmp_path / "run").exists()
