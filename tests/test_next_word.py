"""The next-word task: data, perplexity, baselines and generation, on tiny settings."""

import json
import math

import keras
import numpy as np
import pytest

from keras_seqcells import cli
from keras_seqcells.tasks import DataError, TrainSettings
from keras_seqcells.tasks.next_word import (
    OOV_TOKEN,
    LanguageData,
    NextWord,
    Vocabulary,
    bigram_cross_entropies,
    detokenize,
    generate,
    strip_gutenberg,
    tokenize,
    unigram_cross_entropies,
)
from tests.task_helpers import tiny_settings

TINY_TASK = {"sequence_length": 8, "embedding_dim": 8}


def tiny_data(vocabulary_size=7, test_length=23, context_length=2, seed=0):
    rng = np.random.default_rng(seed)
    vocabulary = [OOV_TOKEN] + [f"w{i}" for i in range(1, vocabulary_size)]

    def ids(n):
        return rng.integers(0, vocabulary_size, n).astype("int32")

    return LanguageData(vocabulary, ids(200), ids(40), ids(test_length), ids(context_length), 5)


def fixed_model(vocabulary, table):
    """Logits `table[previous token]`: a bigram model as a Keras model."""
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            Vocabulary(vocabulary),
            keras.layers.Embedding(
                len(vocabulary),
                len(vocabulary),
                embeddings_initializer=keras.initializers.Constant(table),
            ),
        ]
    )


@pytest.fixture(scope="module")
def shipped():
    return NextWord().load_data()


@pytest.fixture
def random_model():
    """An untrained two-layer LSTM language model over the first words of the shipped text."""
    keras.utils.set_random_seed(0)
    task = NextWord(layers=2, **TINY_TASK)
    data = task.load_data(limit=60)
    return task.build_model(data, TrainSettings(cell="lstm", units=8, seed=1))


def test_tokenize_strip_and_detokenize():
    book = (
        "Title: The Republic\n\n*** START OF THIS PROJECT GUTENBERG EBOOK ***\n"
        "Is _justice_ good, Socrates -- or isn't it? (Yes.)\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK ***\nLicense text."
    )
    tokens = tokenize(strip_gutenberg(book))
    expected = ["is", "justice", "good", ",", "socrates", "--", "or", "isn't", "it", "?"]
    assert tokens == [*expected, "(", "yes", ".", ")"]
    assert detokenize(tokens) == "is justice good, socrates -- or isn't it? (yes.)"
    assert tokenize(detokenize(tokens)) == tokens
    assert strip_gutenberg("no markers here") == "no markers here"


def test_shipped_text_is_split_contiguously(shipped):
    tokens = NextWord().read_tokens()
    assert tokens[:4] == ["produced", "by", "sue", "asscher"]  # the header is gone
    assert "gutenberg" not in tokens[:50]
    data = shipped
    sizes = [len(data.train_ids), len(data.validation_ids), len(data.test_ids)]
    assert sum(sizes) == len(tokens) and sizes[1] == sizes[2] == round(0.1 * len(tokens))
    index = {word: i for i, word in enumerate(data.vocabulary)}
    everything = [index.get(token, 0) for token in tokens]
    splits = np.concatenate([data.train_ids, data.validation_ids, data.test_ids])
    np.testing.assert_array_equal(splits, everything)  # in order: nothing lost or moved
    np.testing.assert_array_equal(data.test_context, data.validation_ids[-35:])
    assert data.vocabulary[0] == OOV_TOKEN and len(set(data.vocabulary)) == len(data.vocabulary)
    assert 0.0 < np.mean(data.test_ids == 0) < 0.1


def test_baselines_are_finite_normalised_and_ordered(shipped):
    baselines = NextWord().baselines(shipped)
    unigram = baselines["unigram (add-one)"]["perplexity"]
    bigram = baselines["bigram (interpolated Kneser-Ney)"]["perplexity"]
    assert math.isfinite(unigram) and math.isfinite(bigram)
    assert 1.0 < bigram < unigram < shipped.vocabulary_size
    # p(w | v) over all w sums to 1: score a test text "v w0 v w1 v w2 ...".
    data = tiny_data(vocabulary_size=6)
    for previous in range(6):
        data.test_ids = np.ravel([[previous, w] for w in range(6)]).astype("int32")
        nll = bigram_cross_entropies(data)
        assert np.exp(-nll[1::2]).sum() == pytest.approx(1.0)
    assert np.exp(-unigram_cross_entropies(data)[1::2]).sum() == pytest.approx(1.0)


def test_perplexity_of_fixed_models_is_computed_by_hand():
    data = tiny_data()
    size = data.vocabulary_size
    task = NextWord(sequence_length=data.sequence_length)
    uniform = fixed_model(data.vocabulary, np.zeros((size, size)))
    assert task.evaluate(uniform, data)["perplexity"] == pytest.approx(size, rel=1e-5)
    # A bigram table: every test token counts once, predicted from the token before it.
    table = np.random.default_rng(1).dirichlet(np.ones(size), size=size)
    previous = np.concatenate([data.test_context[-1:], data.test_ids[:-1]])
    expected = math.exp(-np.mean(np.log(table[previous, data.test_ids])))
    metrics = task.evaluate(fixed_model(data.vocabulary, np.log(table)), data)
    assert metrics["perplexity"] == pytest.approx(expected, rel=1e-5)
    assert metrics["test_tokens"] == len(data.test_ids)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_tiny_model_trains_evaluates_and_saves(cell, tmp_path):
    task = NextWord(**TINY_TASK)
    result = task.train(tiny_settings(tmp_path, units=8, cell=cell), limit=40)
    assert 1.0 < result.metrics["perplexity"] < 10 * len(task.load_data(limit=40).vocabulary)
    assert set(result.baselines) == {"unigram (add-one)", "bigram (interpolated Kneser-Ney)"}
    for name in ("model.keras", "learning_curve.png", "metrics.json"):
        assert (tmp_path / name).is_file()
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["settings"]["cell"] == cell
    assert summary["metrics"]["perplexity"] == pytest.approx(result.metrics["perplexity"])


def test_generation(random_model):
    words = generate(random_model, "the just man", words=12, seed=3)
    tokens = tokenize(words)
    assert len(tokens) == 12 and OOV_TOKEN.lower() not in words
    assert set(tokens) <= set(random_model.get_layer("vocabulary").vocabulary)
    assert generate(random_model, "the just man", words=12, seed=3) == words
    assert generate(random_model, "the just man", words=12, seed=4) != words
    greedy = generate(random_model, "the just man", words=12, top_k=1, seed=3)
    assert generate(random_model, "the just man", words=12, top_k=1, seed=4) == greedy
    assert len(tokenize(generate(random_model, "unheard-of words", words=3, top_k=2))) == 3


def test_generation_never_emits_the_oov_token():
    vocabulary = [OOV_TOKEN, "yes", "no"]
    table = np.log([[0.98, 0.01, 0.01]] * 3)  # [UNK] is by far the most likely
    model = fixed_model(vocabulary, table)
    assert set(tokenize(generate(model, "yes", words=30, seed=0))) <= {"yes", "no"}
    assert generate(model, "no", words=2, top_k=1) == "yes yes"
    predictions = NextWord().predict(model, ["yes", "no no"])
    assert [word for word, _ in predictions[0]] == ["yes", "no"]
    assert predictions[0][0][1] == pytest.approx(0.01)


def test_saved_model_generates_after_safe_reload(random_model, tmp_path):
    path = tmp_path / "model.keras"
    random_model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    expected = generate(random_model, "the just man", words=8, seed=0)
    assert generate(reloaded, "the just man", words=8, seed=0) == expected
    predictions = NextWord().predict(reloaded, ["socrates said", "the"])
    assert len(predictions) == 2 and all(len(p) == 5 for p in predictions)
    probabilities = [p for _, p in predictions[0]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0


def test_text_file_source(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("header\n*** START OF A BOOK ***\n" + "The cat sat. The dog ran. " * 20)
    data = NextWord(sequence_length=4).load_data(str(path))
    # By frequency in the training text, ties alphabetically; the header is gone.
    assert data.vocabulary == [OOV_TOKEN, ".", "the", "cat", "dog", "ran", "sat"]
    assert len(data.train_ids) + len(data.validation_ids) + len(data.test_ids) == 160


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "existing file"),
        ("", "no words"),
        ("___ \n\n", "no words"),
        (b"\xff\xfe bad bytes", "readable UTF-8"),
        ("too short", "enough text"),
        (" ".join(f"w{i}" for i in range(500)), "at least min_count=2 times"),
    ],
)
def test_bad_sources_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "book.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message):
        NextWord().load_data(str(path))


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"prompt": ""}, ValueError, "`prompt`"),
        ({"prompt": "  _ "}, ValueError, "`prompt`"),
        ({"words": 0}, ValueError, "`words` to be a positive integer"),
        ({"words": 2.5}, TypeError, "`words` to be an integer"),
        ({"temperature": 0}, ValueError, "`temperature` to be a positive number"),
        ({"temperature": -1.0}, ValueError, "`temperature`"),
        ({"temperature": float("inf")}, ValueError, "`temperature`"),
        ({"temperature": "hot"}, TypeError, "`temperature` to be a number"),
        ({"top_k": 0}, ValueError, "`top_k`"),
        ({"top_k": -3}, ValueError, "`top_k`"),
        ({"top_k": True}, TypeError, "`top_k` to be an integer"),
    ],
)
def test_bad_generate_arguments_are_clear_errors(random_model, arguments, error, message):
    with pytest.raises(error, match=message):
        generate(random_model, **{"prompt": "the just man", **arguments})


def test_model_without_vocabulary_is_a_clear_error():
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(5, 5)])
    with pytest.raises(ValueError, match="`Vocabulary` layer"):
        generate(model, "the just man")


def test_cli_generate(tmp_path, capsys):
    output_dir = tmp_path / "run"
    train = ["train", "next-word", "--units", "4", "--epochs", "1", "--limit", "8", "--quiet"]
    assert cli.main([*train, "--output-dir", str(output_dir)]) == 0
    assert "bigram" in capsys.readouterr().out
    model = str(output_dir / "model.keras")
    command = ["generate", "the just man", "--words", "5", "--seed", "1", "--model", model]
    assert cli.main(command) == 0
    line = capsys.readouterr().out.strip()
    # Punctuation counts as a word but attaches to its neighbour when printed.
    assert line.startswith("the just man ") and 3 < len(line.split()) <= 3 + 5
    assert cli.main([*command[:3], "0", *command[4:]]) == 2
    assert "Expected `words`" in capsys.readouterr().err
