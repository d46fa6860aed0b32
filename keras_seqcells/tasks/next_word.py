"""Next-word prediction (many-to-many) and text generation (one-to-many).

Data: Plato's *Republic* (Jowett's translation, Project Gutenberg #1497),
shipped with the package as `republic`, or any UTF-8 text file. A Project
Gutenberg header (up to the `*** START OF ...` line) and footer (from
`*** END OF ...`) are stripped. The text is lower-cased and split into words
and punctuation marks (`tokenize`); the vocabulary is every token seen at
least `min_count` times in the training split (at most `max_vocabulary`),
and every other token maps to the out-of-vocabulary token `[UNK]` (id 0).

The token stream is split contiguously: the last 10% is the held-out test
text and the 10% before it the validation text. The model is trained with
teacher forcing on windows of `sequence_length` tokens, predicting the next
token at every position. Its first layer (`Vocabulary`) passes the token ids
through unchanged and keeps the words they stand for, so `generate` and
`predict` work from a saved `.keras` file alone.

Evaluation: perplexity, `exp` of the mean cross-entropy (in nats) of every
held-out next-token prediction, `[UNK]` included. Each test token is
predicted from the `sequence_length - sequence_length // 2 + 1` to
`sequence_length` tokens before it (19 to 35 by default; sliding windows, the
first ones reaching back into the validation text).
The baselines score the same tokens: an add-one unigram model and an
interpolated Kneser-Ney bigram model, both estimated on the training split.

Measured on the shipped text (a vocabulary of 3,000 tokens, `[UNK]` included;
24,908 test tokens, 6.1% of them `[UNK]`) with `NextWord()` and the
recommended settings (192 units, 7 epochs, batch 32, Adam at 1e-2 with cosine
decay, dropout 0.3); training took 161 s on 2 CPU cores shared with other
jobs:

| model | held-out perplexity |
| --- | --- |
| unigram (add-one) | 240.0 |
| bigram (interpolated Kneser-Ney) | 86.1 |
| SimpleRNN (`cell="simple_rnn"`) | 75.4 |
| GRU (`cell="gru"`) | 73.1 |
| LSTM (recommended) | 66.4 |

Example:

```python
task = NextWord()
result = task.train(task.settings(output_dir="runs/next-word"))
print(result.metrics["perplexity"], result.baselines)
print(generate(result.model, "the just man", words=20, seed=0))
```
"""

import dataclasses
import math
import re

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_seqcells._checks import (
    check_int_at_least,
    check_optional_positive_int,
    check_positive_int,
    check_positive_number,
    check_rate,
)
from keras_seqcells.serving.adapters import TaskModel
from keras_seqcells.stepping import ModelStepper, find_layers, layer_names
from keras_seqcells.tasks.base import Task, recurrent_layer
from keras_seqcells.tasks.data import DataError, read_text, shipped_path

OOV_TOKEN = "[UNK]"
SHIPPED_SOURCES = {"republic": ("republic", "republic_clean.txt")}

# Words (letters and digits, with inner apostrophes: "don't", "plato's"),
# the dash "--" and single punctuation marks. Underscores (Project
# Gutenberg's italics) and whitespace are dropped.
TOKEN_PATTERN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|--|[^\w\s]")
_START_MARKER = re.compile(r"^\*{3}\s*START OF.*$", re.MULTILINE | re.IGNORECASE)
_END_MARKER = re.compile(r"^\*{3}\s*END OF", re.MULTILINE | re.IGNORECASE)
# Marks written without a space before them, and those without one after.
_NO_SPACE_BEFORE = frozenset(",.;:!?)]}")
_NO_SPACE_AFTER = frozenset("([{")


def strip_gutenberg(text):
    """Removes a Project Gutenberg header and footer, if there are any.

    Args:
        text: The text of a book.

    Returns:
        The text after the `*** START OF ...` line and before the
        `*** END OF ...` line; `text` unchanged where there is no marker.
    """
    start = _START_MARKER.search(text)
    if start:
        text = text[start.end() :]
    end = _END_MARKER.search(text)
    if end:
        text = text[: end.start()]
    return text


def tokenize(text):
    """Splits text into lower-cased words and punctuation marks.

    Args:
        text: A string.

    Returns:
        A list of tokens (strings).

    Example:

    >>> tokenize("Justice, Socrates -- is it not?")
    ['justice', ',', 'socrates', '--', 'is', 'it', 'not', '?']
    """
    return TOKEN_PATTERN.findall(text.lower())


def detokenize(tokens):
    """Joins tokens into readable text, which `tokenize` splits back into them.

    Args:
        tokens: A list of tokens, as `tokenize` returns them.

    Returns:
        A string: the tokens separated by spaces, except before closing
        punctuation (`, . ; : ! ? )`) and after opening brackets.
    """
    text = ""
    for token in tokens:
        if text and token not in _NO_SPACE_BEFORE and text[-1] not in _NO_SPACE_AFTER:
            text += " "
        text += token
    return text


def build_vocabulary(tokens, min_count=2, max_vocabulary=None):
    """The vocabulary of a token list: `[UNK]` first, then tokens by frequency.

    Args:
        tokens: The training tokens.
        min_count: Minimum number of occurrences of a word in the vocabulary.
        max_vocabulary: Optional maximum vocabulary size (with `[UNK]`).

    Returns:
        A list of words; a word's index is its token id. Ties in frequency
        are broken alphabetically, so the vocabulary is deterministic.
    """
    words, counts = np.unique(np.asarray(tokens, dtype=object), return_counts=True)
    order = sorted(
        (-count, word) for word, count in zip(words, counts, strict=True) if count >= min_count
    )
    vocabulary = [OOV_TOKEN] + [word for _, word in order if word != OOV_TOKEN]
    if max_vocabulary is not None:
        vocabulary = vocabulary[:max_vocabulary]
    return vocabulary


def encode(tokens, vocabulary):
    """Maps tokens to ids (int32 array); unknown tokens map to `[UNK]` (0)."""
    index = {word: i for i, word in enumerate(vocabulary)}
    return np.array([index.get(token, 0) for token in tokens], dtype="int32")


@keras.saving.register_keras_serializable(package="keras_seqcells")
class Vocabulary(keras.layers.Layer):
    """Passes token ids through unchanged and keeps the words they stand for.

    The first layer of a next-word model: saved with the model, it lets
    `generate` and `predict` turn words into ids and back. It is registered
    as `keras_seqcells>Vocabulary` when this module is imported, which must
    happen before a model holding it is loaded.

    Args:
        vocabulary: List of words; a word's index is its id. Index 0 is the
            out-of-vocabulary token, never generated.
        **kwargs: Base layer keyword arguments (`name`, ...).

    Example:

    >>> layer = Vocabulary(["[UNK]", "the", "just", "man"])
    >>> layer.ids(["the", "unjust", "man"])
    [1, 0, 3]
    """

    # Token ids pass through one by one: a model can run it step by step.
    acts_per_step = True

    def __init__(self, vocabulary, **kwargs):
        super().__init__(**kwargs)
        vocabulary = list(vocabulary)
        if len(vocabulary) < 2 or not all(isinstance(word, str) for word in vocabulary):
            raise ValueError(
                "Expected `vocabulary` to be a list of at least 2 words. Received: "
                f"vocabulary={vocabulary[:5]!r}{'...' if len(vocabulary) > 5 else ''}"
            )
        self.vocabulary = vocabulary
        self._index = {word: i for i, word in enumerate(vocabulary)}

    def call(self, ids):
        return ids

    def compute_output_shape(self, input_shape):
        return input_shape

    def ids(self, tokens):
        """Token ids of a list of tokens (unknown tokens: 0)."""
        return [self._index.get(token, 0) for token in tokens]

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary}


def vocabulary_layer(model):
    """The `Vocabulary` layer of a next-word model (ValueError if it has none)."""
    found = find_layers(model, Vocabulary)
    if found:
        return found[0]
    raise ValueError(
        "Expected `model` to be a next-word model with a `Vocabulary` layer. "
        f"Received: model={model.name!r} (layers: {layer_names(model)})"
    )


@dataclasses.dataclass
class LanguageData:
    """A tokenised text split contiguously into training, validation and test ids.

    Attributes:
        vocabulary: List of words; index 0 is `[UNK]`.
        train_ids, validation_ids, test_ids: int32 arrays of token ids.
        test_context: The ids of the tokens just before the test text (as
            many as `sequence_length`), which its first tokens are predicted
            from.
        sequence_length: Length of the training windows.
        seed: Seed of the shuffling of the training windows.
    """

    vocabulary: list
    train_ids: np.ndarray
    validation_ids: np.ndarray
    test_ids: np.ndarray
    test_context: np.ndarray
    sequence_length: int
    seed: int = 0

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)


def windows(ids, sequence_length, stride=None):
    """Training pairs: windows of `sequence_length` ids and the same shifted by one.

    Args:
        ids: A 1D array of token ids.
        sequence_length: Tokens per window.
        stride: Tokens between the starts of consecutive windows
            (`sequence_length` by default: the windows do not overlap).

    Returns:
        `(inputs, targets)`, two int32 arrays of shape
        `(windows, sequence_length)`; `targets[:, t]` is the token after
        `inputs[:, t]`.
    """
    stride = stride or sequence_length
    starts = np.arange(0, len(ids) - sequence_length, stride)
    index = starts[:, None] + np.arange(sequence_length + 1)
    pieces = np.asarray(ids, dtype="int32")[index]
    return pieces[:, :-1], pieces[:, 1:]


class NextWord(Task):
    """A word-level language model: next-word prediction and text generation.

    Args:
        sequence_length: Tokens per training window (and the most context
            evaluation gives a prediction).
        min_count: Minimum number of occurrences in the training text of a
            word in the vocabulary.
        max_vocabulary: Maximum vocabulary size, `[UNK]` included.
        embedding_dim: Size of the word embeddings.
        layers: Number of stacked recurrent layers.
        dropout: Dropout rate on the embeddings and after each recurrent
            layer.
    """

    name = "next-word"
    metric = "perplexity"
    lower_is_better = True
    default_source = "republic"
    recommended_settings = {
        "cell": "lstm",
        "units": 192,
        "epochs": 7,
        "batch_size": 32,
        "learning_rate": 1e-2,
    }

    def __init__(
        self,
        sequence_length=35,
        min_count=2,
        max_vocabulary=3000,
        embedding_dim=128,
        layers=1,
        dropout=0.3,
    ):
        for name, value in (
            ("sequence_length", sequence_length),
            ("min_count", min_count),
            ("max_vocabulary", max_vocabulary),
            ("embedding_dim", embedding_dim),
            ("layers", layers),
        ):
            check_positive_int(name, value)
        check_int_at_least("sequence_length", sequence_length, 2)
        check_int_at_least("max_vocabulary", max_vocabulary, 2)
        check_rate("dropout", dropout)
        self.sequence_length = sequence_length
        self.min_count = min_count
        self.max_vocabulary = max_vocabulary
        self.embedding_dim = embedding_dim
        self.layers = layers
        self.dropout = dropout

    # ------------------------------------------------------------------ data
    def read_tokens(self, source=None):
        """Reads and tokenises `source` (`"republic"` or a text file path)."""
        source = str(source or self.default_source)
        path = shipped_path(*SHIPPED_SOURCES[source]) if source in SHIPPED_SOURCES else source
        tokens = tokenize(strip_gutenberg(read_text(path, "source")))
        if not tokens:
            raise DataError(
                f"Expected `source` to contain words. Received: source={source} (no words)"
            )
        return tokens

    def load_data(self, source=None, seed=0, limit=None):
        """Tokenises `source` and splits it contiguously: 80% train, 10% validation, 10% test.

        Args:
            source: `"republic"` (shipped, the default) or the path of a
                UTF-8 text file.
            seed: Seed of the shuffling of the training windows (the split
                itself is contiguous, not random).
            limit: Optional number of windows of `sequence_length` tokens to
                keep per split (for quick runs); the vocabulary comes from
                the kept training text.

        Returns:
            A `LanguageData`.
        """
        tokens = self.read_tokens(source)
        n = len(tokens)
        n_test = max(1, round(0.1 * n))
        n_validation = max(1, round(0.1 * n))
        n_train = n - n_test - n_validation
        if n_validation <= self.sequence_length:
            raise DataError(
                f"Expected enough text for a window of {self.sequence_length + 1} tokens in the "
                f"validation text (10% of the text; at least {10 * (self.sequence_length + 1)} "
                f"tokens in all). Received: source={source or self.default_source} ({n} tokens)"
            )
        train = tokens[:n_train]
        validation = tokens[n_train : n_train + n_validation]
        test = tokens[n_train + n_validation :]
        context = tokens[max(0, n_train + n_validation - self.sequence_length) : n - n_test]
        if limit is not None:
            keep = check_positive_int("limit", limit) * self.sequence_length + 1
            train, validation, test = train[:keep], validation[:keep], test[:keep]
        vocabulary = build_vocabulary(train, self.min_count, self.max_vocabulary)
        if len(vocabulary) < 2:
            raise DataError(
                f"Expected some token seen at least min_count={self.min_count} times in the "
                f"training text. Received: source={source or self.default_source} (none)"
            )
        return LanguageData(
            vocabulary=vocabulary,
            train_ids=encode(train, vocabulary),
            validation_ids=encode(validation, vocabulary),
            test_ids=encode(test, vocabulary),
            test_context=encode(context, vocabulary),
            sequence_length=self.sequence_length,
            seed=seed,
        )

    def datasets(self, data, batch_size):
        def dataset(ids, shuffle):
            inputs, targets = windows(ids, self.sequence_length)
            ds = tf.data.Dataset.from_tensor_slices((inputs, targets))
            if shuffle:
                ds = ds.shuffle(len(inputs), seed=data.seed, reshuffle_each_iteration=True)
            return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

        return (
            dataset(data.train_ids, shuffle=True),
            dataset(data.validation_ids, shuffle=False),
        )

    # ----------------------------------------------------------------- model
    def build_model(self, data, settings):
        ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        x = Vocabulary(data.vocabulary, name="vocabulary")(ids)
        x = keras.layers.Embedding(data.vocabulary_size, self.embedding_dim, name="embedding")(x)
        x = keras.layers.Dropout(self.dropout, seed=settings.seed)(x)
        for i in range(self.layers):
            x = recurrent_layer(
                settings.cell,
                settings.units,
                return_sequences=True,
                seed=settings.seed + i,
                name=f"recurrent_{i}" if self.layers > 1 else "recurrent",
            )(x)
            x = keras.layers.Dropout(self.dropout, seed=settings.seed + 100 + i)(x)
        # float32 under every dtype policy: the softmax of the loss and of
        # generation reads float32 logits.
        logits = keras.layers.Dense(data.vocabulary_size, name="logits", dtype="float32")(x)
        return TaskModel(ids, logits, name=f"next_word_{settings.cell}", task_name=self.name)

    def train(self, settings, source=None, limit=None, callbacks=(), strategy=None):
        """Trains as `Task.train` does, the learning rate decaying epoch by epoch.

        Epoch `e` (from 0) of `E` trains with `learning_rate * (1 + cos(pi e / E)) / 2`
        (cosine decay): the full rate first, falling smoothly towards 0. The
        schedule depends on the epoch number only, so a resumed run
        continues it. Arguments as for `Task.train`.
        """
        schedule = keras.callbacks.LearningRateScheduler(
            lambda epoch, _: cosine_learning_rate(settings.learning_rate, epoch, settings.epochs)
        )
        return super().train(
            settings,
            source=source,
            limit=limit,
            callbacks=[schedule, *callbacks],
            strategy=strategy,
        )

    def compile(self, model, settings):
        model.compile(
            optimizer=settings.optimizer(),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )

    # ------------------------------------------------------------ evaluation
    def evaluate(self, model, data):
        """Held-out perplexity of `model` on the test text.

        Returns:
            A dict: `perplexity`, `cross_entropy` (mean, in nats),
            `test_tokens` and `oov_rate` (the share of `[UNK]` test tokens).
        """
        _check_vocabulary_size(model, data)
        nll = token_cross_entropies(model, data.test_context, data.test_ids, self.sequence_length)
        return perplexity_summary(nll, data)

    def baselines(self, data):
        return {
            "unigram (add-one)": perplexity_summary(
                unigram_cross_entropies(data), data, details=False
            ),
            "bigram (interpolated Kneser-Ney)": perplexity_summary(
                bigram_cross_entropies(data), data, details=False
            ),
        }

    def predict(self, model, inputs, top=5):
        """The `top` most likely next words after each prompt, with their probabilities.

        Args:
            model: A next-word model.
            inputs: A prompt or a list of prompts (strings).
            top: Number of words per prompt.

        Returns:
            One list per prompt of `(word, probability)` pairs, most likely
            first; `[UNK]` is left out.
        """
        check_positive_int("top", top)
        if isinstance(inputs, str):
            inputs = [inputs]
        stepper = _Stepper(model)
        return [
            _likely_words(
                stepper.vocabulary, stepper.feed(_prompt_ids(stepper.vocabulary, prompt)), top
            )
            for prompt in inputs
        ]


# ------------------------------------------------------------------ scoring
def _check_vocabulary_size(model, data):
    size = model.output_shape[-1]
    if size != data.vocabulary_size:
        raise ValueError(
            f"Expected a model over the data's vocabulary of {data.vocabulary_size} words. "
            f"Received: a model with {size} outputs (trained on other data or settings?)"
        )


def cosine_learning_rate(learning_rate, epoch, epochs):
    """The learning rate of epoch `epoch` (from 0) of `epochs` under cosine decay."""
    return float(learning_rate * (1.0 + math.cos(math.pi * epoch / epochs)) / 2.0)


def perplexity_summary(nll, data, details=True):
    """`{"perplexity": exp(mean nll), ...}` for per-token cross-entropies `nll`."""
    mean = float(np.mean(nll))
    summary = {"perplexity": math.exp(mean), "cross_entropy": mean}
    if details:
        summary["test_tokens"] = len(nll)
        summary["oov_rate"] = float(np.mean(data.test_ids == 0))
    return summary


def token_cross_entropies(model, context, ids, sequence_length, stride=None, batch_size=256):
    """Cross-entropy (nats) of a model's prediction of each token of `ids`.

    Each token is predicted from the tokens before it (the end of `context`,
    then `ids`), in windows of `sequence_length` tokens that advance by
    `stride`; only the last `stride` predictions of each window count, so
    every token is predicted from `sequence_length - stride + 1` to
    `sequence_length` tokens of context (fewer where `context` is shorter).

    Args:
        model: Maps token ids `(batch, time)` to logits `(batch, time, vocabulary)`.
        context: Ids of the tokens before `ids`.
        ids: Ids of the tokens to predict.
        sequence_length: Window length.
        stride: Predictions counted per window (`sequence_length // 2` by default).
        batch_size: Windows per model call.

    Returns:
        A float64 array with one cross-entropy per token of `ids`.
    """
    stride = stride or max(1, sequence_length // 2)
    if not 1 <= stride <= sequence_length:
        raise ValueError(
            f"Expected `stride` in [1, sequence_length={sequence_length}]. "
            f"Received: stride={stride}"
        )
    context, ids = np.asarray(context, "int32"), np.asarray(ids, "int32")
    if len(ids) == 0:
        raise ValueError("Expected at least one token to predict. Received: ids=[]")
    # Padded on the left (id 0) so that the first window is whole, and on the
    # right to end on a whole window; padded targets are not counted.
    pad_left = max(0, sequence_length - len(context))
    stream = np.concatenate([np.zeros(pad_left, "int32"), context, ids])
    first = pad_left + len(context)  # stream index of ids[0]
    n_windows = -(-len(ids) // stride)
    stream = np.concatenate([stream, np.zeros(n_windows * stride, "int32")])
    # Window k predicts stream[start + 1 : start + sequence_length + 1]; its
    # last `stride` targets are ids[k * stride : (k + 1) * stride].
    starts = first + stride - 1 - sequence_length + stride * np.arange(n_windows)
    index = starts[:, None] + np.arange(sequence_length + 1)
    pieces = stream[index]
    inputs, targets = pieces[:, :-1], pieces[:, 1:]

    @tf.function(reduce_retracing=True, autograph=False)
    def cross_entropy(inputs, targets):
        logits = ops.cast(model(inputs, training=False), "float32")
        return ops.sparse_categorical_crossentropy(targets, logits, from_logits=True)

    scores = [
        cross_entropy(inputs[i : i + batch_size], targets[i : i + batch_size]).numpy()
        for i in range(0, len(inputs), batch_size)
    ]
    counted = np.concatenate(scores)[:, -stride:].reshape(-1)[: len(ids)]
    return counted.astype("float64")


def unigram_cross_entropies(data):
    """Per-token cross-entropy of the add-one unigram model of the training text."""
    counts = np.bincount(data.train_ids, minlength=data.vocabulary_size).astype("float64")
    probabilities = (counts + 1.0) / (counts.sum() + data.vocabulary_size)
    return -np.log(probabilities[data.test_ids])


def bigram_cross_entropies(data, discount=0.75):
    """Per-token cross-entropy of the interpolated Kneser-Ney bigram model.

    Estimated on the training text:

        p(w | v) = max(c(v, w) - d, 0) / c(v) + d N(v •) / c(v) p_cont(w)
        p_cont(w) = (N(• w) + 1) / (N(• •) + V)

    where `c` counts bigrams and their first words, `N(v •)` is the number of
    distinct words seen after `v`, `N(• w)` the number of distinct words seen
    before `w`, `N(• •)` the number of distinct bigrams and `V` the
    vocabulary size (the add-one keeps every word possible). For a `v` never
    seen first in a bigram, `p(w | v) = p_cont(w)`.
    """
    size = data.vocabulary_size
    train = data.train_ids.astype("int64")
    pairs, pair_counts = np.unique(train[:-1] * size + train[1:], return_counts=True)
    first, second = pairs // size, pairs % size
    history_counts = np.bincount(first, weights=pair_counts, minlength=size)
    followers = np.bincount(first, minlength=size)
    continuation = (np.bincount(second, minlength=size) + 1.0) / (len(pairs) + size)

    previous = np.concatenate([data.test_context[-1:], data.test_ids[:-1]]).astype("int64")
    if len(previous) < len(data.test_ids):  # no context: the first token gets p_cont
        previous = np.concatenate([[-1], previous])
    current = data.test_ids.astype("int64")
    probabilities = continuation[current].copy()
    known = previous >= 0
    seen = np.zeros(len(current), bool)
    seen[known] = history_counts[previous[known]] > 0
    v, w = previous[seen], current[seen]
    position = np.searchsorted(pairs, v * size + w)
    position = np.minimum(position, len(pairs) - 1)
    count = np.where(pairs[position] == v * size + w, pair_counts[position], 0)
    probabilities[seen] = (
        np.maximum(count - discount, 0.0) + discount * followers[v] * continuation[w]
    ) / history_counts[v]
    return -np.log(probabilities)


# --------------------------------------------------------------- generation
class _Stepper:
    """Runs a next-word model one token at a time, carrying the recurrent states."""

    def __init__(self, model):
        self.vocabulary = vocabulary_layer(model)
        # A model without a recurrent layer (a bigram table) generates too.
        self.model_stepper = ModelStepper(model, require_recurrent=False)
        self.reset()

    def reset(self):
        self.states = self.model_stepper.initial_state(batch_size=1)

    def step(self, token_id):
        """Feeds one token id; returns the next token's logits (float64 NumPy)."""
        x = ops.convert_to_tensor([token_id], dtype="int32")
        logits, self.states = self.model_stepper.step(x, self.states)
        return np.asarray(ops.convert_to_numpy(logits), dtype="float64").reshape(-1)

    def feed(self, ids):
        """Feeds token ids from fresh states; returns the logits after the last."""
        self.reset()
        for token_id in ids:
            logits = self.step(int(token_id))
        return logits


def next_words_by_step(model, prompt, top=3):
    """The `top` likeliest next words after each token of a prompt.

    The model runs one token at a time (see `keras_seqcells.stepping.ModelStepper`)
    from fresh states, so the words after token `t` are what the model
    predicts from the prompt's first `t + 1` tokens.

    Args:
        model: A next-word model (with a `Vocabulary` layer).
        prompt: A string with at least one word or punctuation mark.
        top: Number of words per step.

    Returns:
        `(tokens, predictions)`: the prompt's tokens, and one list per token
        of `(word, probability)` pairs, most likely first (`[UNK]` left out).

    Example:

    >>> tokens, predictions = next_words_by_step(model, "the just man", top=2)
    >>> tokens
    ['the', 'just', 'man']
    >>> len(predictions), len(predictions[0])
    (3, 2)
    """
    check_positive_int("top", top)
    stepper = _Stepper(model)
    ids = _prompt_ids(stepper.vocabulary, prompt)
    predictions = []
    for token_id in ids:
        predictions.append(_likely_words(stepper.vocabulary, stepper.step(token_id), top))
    return tokenize(prompt), predictions


def _likely_words(vocabulary, logits, top):
    """The `top` likeliest words (without `[UNK]`) after `logits`, with their probabilities."""
    probabilities = _softmax(logits)
    order = np.argsort(-probabilities, kind="stable")
    return [(vocabulary.vocabulary[i], float(probabilities[i])) for i in order[order != 0][:top]]


def _softmax(logits):
    shifted = logits - np.max(logits[np.isfinite(logits)])
    probabilities = np.exp(shifted)
    return probabilities / probabilities.sum()


def _prompt_ids(vocabulary, prompt):
    if not isinstance(prompt, str) or not tokenize(prompt):
        raise ValueError(
            f"Expected `prompt` to be a string with words. Received: prompt={prompt!r}"
        )
    return vocabulary.ids(tokenize(prompt))


def generate(model, prompt, words=20, temperature=1.0, top_k=None, seed=None):
    """Continues a prompt, sampling one word at a time (one-to-many).

    The prompt is fed to the model token by token; then each sampled word is
    fed back in, the recurrent states carried from step to step. The
    out-of-vocabulary token is never sampled.

    Args:
        model: A next-word model (with a `Vocabulary` layer), e.g. a
            `NextWord` model or one loaded from its `.keras` file.
        prompt: The text to continue (at least one word or punctuation mark).
        words: Number of tokens (words or punctuation marks) to generate.
        temperature: Positive float; the logits are divided by it before
            sampling (below 1: more conservative, above 1: more varied).
        top_k: Optional positive integer: sample among the `top_k` most
            likely words only (`top_k=1` is greedy decoding, deterministic).
        seed: Optional integer seed of the sampling, for reproducible text.

    Returns:
        The continuation (without the prompt) as a string; `tokenize` splits
        it into `words` tokens.

    Example:

    >>> model = keras.saving.load_model("runs/next-word/model.keras")
    >>> generate(model, "the just man", words=20, temperature=0.8, seed=3)
    ', and must not be able to be left, and they will have been gained as one who is'
    >>> generate(model, "the just man", words=12, top_k=1)
    ', and the other, and the other, and the other'
    """
    check_positive_int("words", words)
    check_positive_number("temperature", temperature)
    check_optional_positive_int("top_k", top_k)
    stepper = _Stepper(model)
    logits = stepper.feed(_prompt_ids(stepper.vocabulary, prompt))
    rng = np.random.default_rng(seed)
    tokens = []
    for _ in range(words):
        token_id = _sample(logits, temperature, top_k, rng)
        tokens.append(stepper.vocabulary.vocabulary[token_id])
        logits = stepper.step(token_id)
    return detokenize(tokens)


def _sample(logits, temperature, top_k, rng):
    """Samples an id from logits, never 0 (`[UNK]`)."""
    logits = logits.copy()
    logits[0] = -np.inf
    if top_k is not None and top_k < len(logits) - 1:
        threshold = np.partition(logits, -top_k)[-top_k]
        candidates = np.flatnonzero(logits >= threshold)
        if top_k == 1 or len(candidates) == 1:
            return int(np.argmax(logits))
        logits[logits < threshold] = -np.inf
    return int(rng.choice(len(logits), p=_softmax(logits / temperature)))
