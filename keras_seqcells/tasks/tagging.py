"""Sequence tagging (many-to-many): a tag for each token of a sentence.

Data: the Universal Dependencies English Web Treebank shipped with the
package (`ud-english-ewt`: its train split to learn from, the documents of its
dev split alternately to validate and to test; the UPOS tags), the tagged
files users have by path (CoNLL-U, see `read_conllu`; CoNLL-2003 and any
IOB/BIO column file, see `read_columns`; gzip-compressed or not), or
TensorFlow Datasets' `universal_dependencies/en_ewt` (its `upos` feature) and
`conll2003` (its `pos` feature, or `ner`) by name. Entity tags (`O`, `B-PER`,
`I-PER`, ...) can be rewritten in another scheme (`tag_scheme`: IOB1, IOB2
also called BIO, IOBES; see `convert_tags`), and are scored by entity
precision, recall and F1 as conlleval computes them (`entity_scores`) beside
token accuracy.

The model takes a batch of sentences as strings of space-separated tokens: its
`TextVectorization` layer (adapted on the training tokens) lives inside it,
followed by an `Embedding` with `mask_zero=True`, a bidirectional recurrent
layer returning sequences and a softmax over the tags. The mask carries the
padding through the model; the loss and the accuracy count real tokens only
(their sample weights are 1, the padding's 0), and `evaluate` compares the
tags of every held-out token (a sentence longer than the model's
`max_length` is tagged in consecutive pieces). Each token's word embedding
is concatenated with embeddings of its hashed suffix and shape
(`TokenFeatureHashing`) and with the share of each tag among that word's
occurrences in the training split (`word_tag_distributions`: what the
per-word baseline knows, read from the vectorizer's word indices; zeros for
an unseen word), and training replaces a
few words by an unknown word (word dropout), both for the words unseen in
training. Early stopping restores the weights of the best validation epoch:
by the validation loss for part-of-speech and other tags, by the validation
entity F1 (`ValidationEntityScores`) for entity tags. The tag names travel
with the model, in its output layer (`TagProbabilities`). Both layers are
registered Keras objects, so a saved tagger loads with
`keras.saving.load_model(path, safe_mode=True)` once this module is imported.

The README's task table gives the held-out accuracy on the shipped treebank
(`benchmarks/task_results.py`), and its `tagging-unseen` table the accuracy
and entity F1 on corpora from the Python Package Index, those that chose the
defaults (tuning) and those that chose nothing (unseen)
(`benchmarks/tagging_unseen.py`), each against the most frequent tag per word.

For `universal_dependencies/en_ewt` the untagged (`_`) tokens are dropped;
the TFDS corpora keep their own train, validation and test splits.
"""

import dataclasses
import gzip
import pathlib
import re

import keras
import numpy as np
import tensorflow as tf

from keras_seqcells._checks import check_rate, is_integer
from keras_seqcells.serving.adapters import TaskModel
from keras_seqcells.stepping import last_layer_of
from keras_seqcells.tasks.base import Task, recurrent_layer
from keras_seqcells.tasks.data import DataError, load_tfds, shipped_path, split_indices

UD_EWT = "ud-english-ewt"
UD_EWT_TRAIN = shipped_path(UD_EWT, "en_ewt-ud-train.conllu.gz")
UD_EWT_DEV = shipped_path(UD_EWT, "en_ewt-ud-dev.conllu.gz")
TFDS_UD_EWT = "universal_dependencies/en_ewt"
TFDS_CONLL2003 = "conll2003"
CONLL2003_FEATURES = ("pos", "ner")
FILE_FORMATS = ("auto", "conllu", "columns")
#: The ten columns of a CoNLL-U file, by the names its specification gives them.
CONLLU_COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
#: The 17 universal part-of-speech tags, in the Universal Dependencies order.
UPOS_TAGS = (
    "ADJ",
    "ADP",
    "ADV",
    "AUX",
    "CCONJ",
    "DET",
    "INTJ",
    "NOUN",
    "NUM",
    "PART",
    "PRON",
    "PROPN",
    "PUNCT",
    "SCONJ",
    "SYM",
    "VERB",
    "X",
)
#: Stands for the words hidden by word dropout; outside every vocabulary.
UNKNOWN_WORD = "[UNK]"
TOKEN_FEATURES = ("suffix", "shape", "prefix")
#: The spelling features of `spelling_features=True`.
DEFAULT_TOKEN_FEATURES = ("suffix", "shape")
#: What early stopping may watch; `"auto"` is `val_entity_f1` for entity tags,
#: else `val_loss`.
EARLY_STOPPING_MONITORS = ("auto", "val_loss", "val_accuracy", "val_entity_f1")


@dataclasses.dataclass
class TaggedData:
    """Sentences (tuples of tokens) and their tags (int32 arrays) per split.

    `tags[i]` is the index in `tag_names` of the tag of the i-th token.
    """

    train_sentences: list
    train_tags: list
    validation_sentences: list
    validation_tags: list
    test_sentences: list
    test_tags: list
    tag_names: tuple


@keras.saving.register_keras_serializable(package="keras_seqcells")
class TagProbabilities(keras.layers.Dense):
    """A softmax `Dense` layer whose outputs are named tags.

    The names are part of the layer's config, so a saved tagger knows its
    tags.

    Args:
        tags: The tag names, one per output unit.
        **kwargs: `keras.layers.Dense` arguments other than `units` (the
            activation defaults to softmax).

    Example:

    >>> layer = TagProbabilities(["NOUN", "VERB"])
    >>> tuple(layer(np.zeros((1, 3, 4))).shape)
    (1, 3, 2)
    """

    def __init__(self, tags, **kwargs):
        tags = tuple(str(tag) for tag in tags)
        if not tags:
            raise ValueError(f"Expected one or more tags. Received: tags={tags}")
        kwargs.setdefault("activation", "softmax")
        super().__init__(len(tags), **kwargs)
        self.tags = tags

    def get_config(self):
        config = super().get_config()
        del config["units"]
        return {**config, "tags": list(self.tags)}


@keras.saving.register_keras_serializable(package="keras_seqcells")
class TokenFeatureHashing(keras.layers.Layer):
    """Hashes a spelling feature of each whitespace-separated token of sentences.

    The features help to tag words that are rare or unseen in training:
    `"suffix"` is the token's last `suffix_length` characters (lower-cased,
    padded on the left with `^` in shorter tokens), `"prefix"` its first
    `suffix_length` characters (padded on the right with `$`) and `"shape"` its
    character classes with repeats collapsed (`"x"` for "Paris": the capitals'
    `X` is itself a letter that the next replacement makes `x`, so capitals
    are not told apart; `"d.d"` for "3.50", `"x-x"` for "well-known"). Each
    token's feature is hashed into
    `[1, num_bins]`; padding positions are 0, so an `Embedding` with
    `mask_zero=True` masks the same positions as the word embeddings.

    Args:
        feature: `"suffix"`, `"prefix"` or `"shape"`.
        num_bins: Number of hash bins.
        output_sequence_length: Tokens per output row (padded or truncated).
        suffix_length: Characters of the suffix and prefix features.
        **kwargs: Base layer keyword arguments, such as `name`.

    Example:

    >>> layer = TokenFeatureHashing("shape", num_bins=50, output_sequence_length=4)
    >>> tuple(layer(tf.constant(["Paris in 2024"])).shape)
    (1, 4)
    """

    def __init__(self, feature, num_bins, output_sequence_length, suffix_length=3, **kwargs):
        if feature not in TOKEN_FEATURES:
            raise ValueError(
                f"Expected `feature` to be one of {TOKEN_FEATURES}. Received: feature={feature!r}"
            )
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.supports_jit = False  # string ops
        self.feature = feature
        self.num_bins = int(num_bins)
        self.output_sequence_length = int(output_sequence_length)
        self.suffix_length = int(suffix_length)

    def _feature(self, words):
        if self.feature == "prefix":
            words = tf.strings.lower(words, encoding="utf-8")
            padded = tf.strings.join([words, "$" * self.suffix_length])
            return tf.strings.substr(padded, 0, self.suffix_length, unit="UTF8_CHAR")
        if self.feature == "suffix":
            words = tf.strings.lower(words, encoding="utf-8")
            padded = tf.strings.join(["^" * self.suffix_length, words])
            return tf.strings.substr(
                padded, -self.suffix_length, self.suffix_length, unit="UTF8_CHAR"
            )
        shape = tf.strings.regex_replace(words, r"\p{Lu}", "X")
        shape = tf.strings.regex_replace(shape, r"\p{L}", "x")
        shape = tf.strings.regex_replace(shape, r"\p{N}", "d")
        for symbol in "Xxd":
            shape = tf.strings.regex_replace(shape, f"{symbol}+", symbol)
        return shape

    def call(self, sentences):
        words = tf.strings.split(tf.convert_to_tensor(sentences, dtype=tf.string))
        ids = tf.strings.to_hash_bucket_fast(self._feature(words), self.num_bins) + 1
        return ids.to_tensor(0, shape=[None, self.output_sequence_length])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_sequence_length)

    def compute_output_spec(self, sentences):
        return keras.KerasTensor(self.compute_output_shape(sentences.shape), dtype="int64")

    def get_config(self):
        return {
            **super().get_config(),
            "feature": self.feature,
            "num_bins": self.num_bins,
            "output_sequence_length": self.output_sequence_length,
            "suffix_length": self.suffix_length,
        }


class ValidationEntityScores(keras.callbacks.Callback):
    """Adds the validation split's entity scores to each epoch's logs.

    `val_entity_f1`, `val_entity_precision` and `val_entity_recall`, as
    `entity_scores` computes them from the tags the model predicts for the
    validation sentences, so that early stopping can watch the entity F1.

    Args:
        sentences: The validation sentences (sequences of tokens).
        tags: Their true tag strings, one sequence per sentence.
    """

    def __init__(self, sentences, tags):
        super().__init__()
        self.sentences = list(sentences)
        self.tags = [list(sentence) for sentence in tags]

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        names = tag_names(self.model)
        predicted = [
            [names[i] for i in sentence] for sentence in predict_tags(self.model, self.sentences)
        ]
        scores = entity_scores(self.tags, predicted)
        for name in ("entity_f1", "entity_precision", "entity_recall"):
            logs[f"val_{name}"] = scores[name]


def word_tag_distributions(token_ids, tags, vocabulary_size, tag_count):
    """Each word's tags in training as a distribution: the per-word baseline's knowledge.

    Args:
        token_ids: The training tokens' vocabulary indices (0 for padding, 1
            for an unknown word; neither gets a distribution), any shape.
        tags: Their tag indices, the same shape.
        vocabulary_size: The number of vocabulary indices.
        tag_count: The number of tags.

    Returns:
        A float32 matrix whose row `i` holds the fraction of the occurrences
        of word `i` that carry each tag (zeros for a word never seen).

    Example:

    >>> word_tag_distributions([[2, 3, 2, 0]], [[0, 1, 1, 0]], 4, 2).tolist()
    [[0.0, 0.0], [0.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    """
    token_ids = np.asarray(token_ids).reshape(-1)
    tags = np.asarray(tags).reshape(-1)
    known = token_ids > 1
    counts = np.zeros((vocabulary_size, tag_count), "float32")
    np.add.at(counts, (token_ids[known], tags[known]), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def clean_token(token):
    """A token as one whitespace-free word (inner whitespace becomes `_`)."""
    return "_".join(str(token).split()) or "_"


def read_lines(path, argument="source"):
    """The lines of a UTF-8 text file (gzip-compressed when it ends in `.gz`).

    Raises:
        DataError: if the file is missing, unreadable or not UTF-8,
            naming the file (and the first line that is not UTF-8).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(
            f"Expected `{argument}` to be an existing file. Received: {argument}={path}"
        )
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(
            f"Expected `{argument}` to be a readable file. Received: {argument}={path} ({error})"
        ) from error
    lines = raw.split(b"\n")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        for number, line in enumerate(lines, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(
                    f"Expected `{argument}` to be UTF-8 text. Received: {path}, line {number}: "
                    f"{error.reason} at byte {error.start} (a file saved in another encoding, "
                    "or in several)"
                ) from None
        raise
    return [line.rstrip("\r") for line in text.split("\n")]


@dataclasses.dataclass
class TaggedFile:
    """The sentences of a tagged file: tokens, tags and each sentence's document."""

    sentences: list
    tags: list
    documents: list


def _column_index(value, names, argument):
    """A column given by number (0-based, negative from the end) or by name."""
    if isinstance(value, str) and names is not None and value in names:
        return names.index(value)
    if not is_integer(value):
        raise ValueError(
            f"Expected `{argument}` to be a column number or one of the column names "
            f"{list(names) if names is not None else '(none given: set `column_names`)'}. "
            f"Received: {argument}={value!r}"
        )
    return value


def read_conllu(path, argument="source", tag_column="upos", token_column="form", documents=False):
    """Reads the (token, tag) pairs of each sentence of a CoNLL-U file.

    Comment lines, multiword token ranges (`1-2`) and empty nodes (`8.1`) are
    skipped; a `# newdoc` comment starts a new document. The file may be
    gzip-compressed (`.gz`).

    Args:
        path: Path of the CoNLL-U file.
        argument: The argument name quoted in error messages.
        tag_column: The column of the tags, by name (one of `CONLLU_COLUMNS`,
            such as `"upos"` or `"xpos"`) or 0-based number.
        token_column: The column of the tokens, likewise.
        documents: Whether to return a `TaggedFile` with each sentence's
            document number rather than a pair.

    Returns:
        A pair `(sentences, tags)` of lists of tuples of strings (or a
        `TaggedFile` with `documents=True`).

    Raises:
        DataError: if the file is missing, unreadable or malformed, naming the
            file and line.
    """
    token_index = _column_index(token_column, CONLLU_COLUMNS, "token_column")
    tag_index = _column_index(tag_column, CONLLU_COLUMNS, "tag_column")
    sentences, tags, document_ids = [], [], []
    tokens, labels = [], []
    document = 0

    def error(number, what):
        return DataError(
            f"Expected a CoNLL-U file in `{argument}`. Received: {path}, line {number}: {what}"
        )

    def end_sentence():
        if tokens:
            sentences.append(tuple(tokens))
            tags.append(tuple(labels))
            document_ids.append(document)
            tokens.clear()
            labels.clear()

    for number, line in enumerate(read_lines(path, argument), start=1):
        if not line.strip():
            end_sentence()
            continue
        if line.startswith("#"):
            if line.startswith("# newdoc") and sentences:
                end_sentence()
                document += 1
            continue
        columns = line.split("\t")
        if len(columns) != 10:
            raise error(number, f"expected 10 tab-separated columns, found {len(columns)}")
        word_id, form, tag = columns[0], columns[token_index], columns[tag_index]
        if "-" in word_id or "." in word_id:
            continue  # a multiword token range or an empty node
        if not word_id.isdigit():
            raise error(number, f"expected an integer word ID in column 1, found {word_id!r}")
        if not form or not tag or tag == "_":
            raise error(
                number,
                f"expected a word form and a {CONLLU_COLUMNS[tag_index].upper()} tag, found "
                f"{form!r}, {tag!r}",
            )
        tokens.append(clean_token(form))
        labels.append(tag)
    end_sentence()
    if not sentences:
        raise DataError(f"Expected a CoNLL-U file in `{argument}`. Received: {path} (no sentence)")
    if documents:
        return TaggedFile(sentences, tags, document_ids)
    return sentences, tags


def read_columns(path, token_column=0, tag_column=-1, column_names=None, argument="source"):
    """Reads the (token, tag) pairs of each sentence of a column file.

    The layout of CoNLL-2003 and of most IOB/BIO-tagged files: one token a
    line, its columns separated by tabs (or by spaces and tabs when a line has
    no tab), a blank line between sentences. A `-DOCSTART-` line starts a new
    document. Lines may have different numbers of columns as long as each has
    the token's and the tag's. The file may be gzip-compressed (`.gz`).

    Args:
        path: Path of the file.
        token_column: The column of the tokens: a 0-based number (negative
            counts from the end) or a name of `column_names`.
        tag_column: The column of the tags, likewise (the last by default).
        column_names: Optional names of the columns, in order.
        argument: The argument name quoted in error messages.

    Returns:
        A `TaggedFile`.

    Raises:
        DataError: if the file is missing, unreadable or malformed, naming the
            file and line.
    """
    names = _check_column_names(column_names)
    token_index = _column_index(token_column, names, "token_column")
    tag_index = _column_index(tag_column, names, "tag_column")
    # A token and its tag: never the same column, whatever the line's length.
    needed = max(2, *(i + 1 if i >= 0 else -i for i in (token_index, tag_index)))
    sentences, tags, document_ids = [], [], []
    tokens, labels = [], []
    document = 0

    def end_sentence():
        if tokens:
            sentences.append(tuple(tokens))
            tags.append(tuple(labels))
            document_ids.append(document)
            tokens.clear()
            labels.clear()

    for number, line in enumerate(read_lines(path, argument), start=1):
        if not line.strip():
            end_sentence()
            continue
        # A token may be a whitespace character itself (an ideographic space
        # in Japanese text): it becomes `_`, as inner whitespace does.
        columns = line.split("\t") if "\t" in line else line.split()
        if columns[0].strip() == "-DOCSTART-":
            end_sentence()
            document += 1
            continue
        if len(columns) < needed or token_index % len(columns) == tag_index % len(columns):
            raise DataError(
                f"Expected a column file in `{argument}` with at least {needed} column(s) per "
                f"token line (token_column={token_column!r}, tag_column={tag_column!r}). "
                f"Received: {path}, line {number}: {len(columns)} column(s) in {line!r}"
            )
        token, tag = columns[token_index], columns[tag_index].strip()
        if not token or not tag:
            raise DataError(
                f"Expected a token and a tag on each token line of `{argument}`. Received: "
                f"{path}, line {number}: token {token!r}, tag {tag!r}"
            )
        tokens.append(clean_token(token))
        labels.append(tag)
    end_sentence()
    if not sentences:
        raise DataError(
            f"Expected a column file of tagged sentences in `{argument}`. Received: {path} "
            "(no sentence)"
        )
    return TaggedFile(sentences, tags, document_ids)


def _check_column_names(column_names):
    """Column names as a tuple of unique non-empty strings (or None)."""
    if column_names is None:
        return None
    names = column_names.split(",") if isinstance(column_names, str) else column_names
    names = tuple(str(name).strip() for name in names)
    if not names or not all(names) or len(set(names)) != len(names):
        raise ValueError(
            "Expected `column_names` to be unique non-empty names, as a list or a "
            f"comma-separated string. Received: column_names={column_names!r}"
        )
    return names


def _sniff_format(path):
    """`"conllu"` for a CoNLL-U file, else `"columns"`.

    A CoNLL-U file is known by its name (`.conllu`, `.conllu.gz`) or by its
    first sentence: 10 tab-separated columns on every word line, and word IDs
    1, 2, 3, ... (a column file whose first column holds numbers has other
    numbers there).
    """
    path = pathlib.Path(path)
    if path.name.endswith((".conllu", ".conllu.gz")):
        return "conllu"
    if not path.is_file():
        return "columns"  # the reader says that the file is missing
    word_ids = []
    for line in read_lines(path):
        if not line.strip():
            if word_ids:
                break
            continue
        if line.startswith("#") and not word_ids:
            continue
        columns = line.split("\t")
        if len(columns) != 10:
            return "columns"
        if "-" not in columns[0] and "." not in columns[0]:
            word_ids.append(columns[0])
    expected = [str(number) for number in range(1, len(word_ids) + 1)]
    return "conllu" if word_ids and word_ids == expected else "columns"


# Tag schemes of entity tags. In every scheme a tag is `O` (outside any
# entity) or a prefix and the entity type (`B-PER`); entities are read from
# tags by the conlleval rules, whatever the scheme, so that a model's output
# (which may break its scheme's rules) is scored the way CoNLL scores it.
TAG_SCHEMES = ("iob1", "iob2", "bio", "iobes")
ENTITY_TAG = re.compile(r"^([BIES])-(.+)$")


def is_entity_tag_set(tag_names):
    """Whether every tag is `O` or `B-`/`I-`/`E-`/`S-` and a type (and one is)."""
    return any(name != "O" for name in tag_names) and all(
        name == "O" or ENTITY_TAG.match(name) for name in tag_names
    )


def _split_tag(tag):
    match = ENTITY_TAG.match(tag)
    return (match.group(1), match.group(2)) if match else ("O", "")


def entity_spans(tags):
    """The entities of one sentence's tags, as `(type, first, last)` token indices.

    The conlleval (and seqeval's default) rules: an entity starts at a `B-`
    or `S-` tag, at an `I-`/`E-` tag after `O`, after an `E-`/`S-` tag or after
    a tag of another type, and ends before a tag that starts another entity
    or after an `E-`/`S-` tag. So IOB1, IOB2 (BIO) and IOBES tags all read
    correctly, and an `I-PER` after `O` starts a person.

    Args:
        tags: The tag strings of one sentence.

    Returns:
        A list of `(type, first, last)` tuples, `last` included.

    Example:

    >>> entity_spans(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "S-ORG"])
    [('PER', 0, 1), ('LOC', 3, 3), ('LOC', 4, 4), ('ORG', 5, 5)]
    """
    spans = []
    start, previous, previous_type = None, "O", ""
    for index, tag in enumerate([*tags, "O"]):
        prefix, entity_type = _split_tag(tag)
        ends = (
            previous in ("E", "S")
            or (previous in ("B", "I") and prefix in ("B", "S", "O"))
            or (previous != "O" and previous_type != entity_type)
        )
        if start is not None and ends:
            spans.append((previous_type, start, index - 1))
            start = None
        starts = (
            prefix in ("B", "S")
            or (prefix in ("I", "E") and previous in ("O", "E", "S"))
            or (prefix != "O" and previous_type != entity_type)
        )
        if starts:
            start = index
        previous, previous_type = prefix, entity_type
    return spans


def convert_tags(tags, scheme):
    """One sentence's entity tags rewritten in another tag scheme.

    Args:
        tags: The tag strings of one sentence, in any scheme.
        scheme: `"iob1"` (`B-` only where an entity follows one of its type),
            `"iob2"` or `"bio"` (`B-` at each entity's first token) or
            `"iobes"` (`S-` for one-token entities, `E-` at the last token).

    Returns:
        A tuple of tags of the same entities.

    Example:

    >>> convert_tags(["I-PER", "I-PER", "B-PER", "O", "I-LOC"], "iobes")
    ('B-PER', 'E-PER', 'S-PER', 'O', 'S-LOC')
    """
    scheme = _check_scheme(scheme)
    converted = ["O"] * len(tags)
    previous_end, previous_type = None, None
    for entity_type, first, last in entity_spans(tags):
        for index in range(first, last + 1):
            converted[index] = f"I-{entity_type}"
        if scheme == "iob2" or (
            scheme == "iob1" and previous_end == first - 1 and previous_type == entity_type
        ):
            converted[first] = f"B-{entity_type}"
        elif scheme == "iobes":
            if first == last:
                converted[first] = f"S-{entity_type}"
            else:
                converted[first], converted[last] = f"B-{entity_type}", f"E-{entity_type}"
        previous_end, previous_type = last, entity_type
    return tuple(converted)


def _check_scheme(scheme):
    if scheme not in TAG_SCHEMES:
        raise ValueError(
            f"Expected `tag_scheme` to be one of {TAG_SCHEMES}. Received: tag_scheme={scheme!r}"
        )
    return "iob2" if scheme == "bio" else scheme


def entity_scores(expected, predicted):
    """Entity-level precision, recall and F1 (micro-averaged), as conlleval computes them.

    An entity counts as found only when its type and both ends match.

    Args:
        expected: The true tag strings, one sequence per sentence.
        predicted: The predicted tag strings, likewise.

    Returns:
        A dict of `entity_precision`, `entity_recall`, `entity_f1` and the
        counts `entities` (true) and `predicted_entities`.

    Example:

    >>> scores = entity_scores([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    >>> scores["entity_f1"], scores["entities"]
    (0.0, 1)
    """
    found = true_count = predicted_count = 0
    for true_tags, predicted_tags in zip(expected, predicted, strict=True):
        true_spans = set(entity_spans(true_tags))
        predicted_spans = set(entity_spans(predicted_tags))
        found += len(true_spans & predicted_spans)
        true_count += len(true_spans)
        predicted_count += len(predicted_spans)
    precision = found / predicted_count if predicted_count else 0.0
    recall = found / true_count if true_count else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "entity_precision": precision,
        "entity_recall": recall,
        "entity_f1": f1,
        "entities": true_count,
        "predicted_entities": predicted_count,
    }


def _tfds_split(name, split, feature, tag_names):
    """(sentences, tag indices) of a TFDS split, dropping untagged (`_`) tokens.

    Tokens and tags are paired up to the shorter of the two sequences.
    """
    sentences, tags = [], []
    for example in load_tfds(name, split):
        tokens, labels = example["tokens"], example[feature]
        pairs = [
            (clean_token(token.decode("utf-8") if isinstance(token, bytes) else token), int(tag))
            for token, tag in zip(tokens, labels, strict=False)
            if tag_names[int(tag)] != "_"
        ]
        if pairs:
            sentences.append(tuple(token for token, _ in pairs))
            tags.append(np.array([tag for _, tag in pairs], dtype="int32"))
    if not sentences:
        raise DataError(
            f"Expected tagged sentences in the TensorFlow Datasets corpus {name!r} (split "
            f"{split!r}). Received: none"
        )
    return sentences, tags


def _tag_vocabulary(tags):
    """The UPOS tags in their usual order, then any other tag of `tags` sorted."""
    seen = {tag for sentence in tags for tag in sentence}
    return tuple(t for t in UPOS_TAGS if t in seen) + tuple(sorted(seen - set(UPOS_TAGS)))


def _chunks(sentences, length):
    """Each sentence cut into consecutive pieces of at most `length` tokens."""
    return [
        sentence[start : start + length]
        for sentence in sentences
        for start in range(0, len(sentence), length)
    ]


def _padded(tags, length):
    """Tag index arrays as an int32 matrix padded with 0 and its 0/1 weights."""
    labels = np.zeros((len(tags), length), dtype="int32")
    weights = np.zeros((len(tags), length), dtype="float32")
    for row, sentence in enumerate(tags):
        labels[row, : len(sentence)] = sentence
        weights[row, : len(sentence)] = 1.0
    return labels, weights


def sentence_strings(sentences):
    """Sentences (sequences of tokens) as strings of space-separated tokens."""
    return [" ".join(sentence) for sentence in sentences]


def tag_names(model):
    """The tag names of a tagger (those of its `TagProbabilities` layer)."""
    probabilities = last_layer_of(model, TagProbabilities)
    if probabilities is not None:
        return probabilities.tags
    raise ValueError(
        "Expected a tagging model with a `TagProbabilities` output layer. Received: "
        f"model={model.name!r} (no such layer)"
    )


def predict_tags(model, sentences, batch_size=256):
    """Tag indices (int32 arrays) of each sentence (a sequence of tokens).

    A sentence longer than the model's sequence length is tagged in pieces.
    """
    length = model.output_shape[1]
    pieces = _chunks(sentences, length)
    if not pieces:
        return [np.zeros((0,), "int32") for _ in sentences]
    probabilities = model.predict(
        tf.constant(sentence_strings(pieces)), batch_size=batch_size, verbose=0
    )
    best = np.argmax(probabilities, axis=-1).astype("int32")
    flat = np.concatenate([row[: len(piece)] for row, piece in zip(best, pieces, strict=True)])
    ends = np.cumsum([len(sentence) for sentence in sentences])
    return np.split(flat, ends[:-1])


def _check_token_features(spelling_features):
    """The spelling features named by `spelling_features` (True: the default ones)."""
    if spelling_features is True:
        return DEFAULT_TOKEN_FEATURES
    if spelling_features is False or spelling_features is None:
        return ()
    names = spelling_features
    if isinstance(names, str):
        names = names.split(",")
    names = tuple(str(name).strip() for name in names)
    if not names or not set(names) <= set(TOKEN_FEATURES) or len(set(names)) < len(names):
        raise ValueError(
            f"Expected `spelling_features` to be True, False or some of {TOKEN_FEATURES}. "
            f"Received: spelling_features={spelling_features!r}"
        )
    return names


def _as_number(value):
    """A column given as a string of digits (from the command line) as an int."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def _tagged_data(sentences, tags, train, validation, test):
    """`TaggedData` of the given sentence indices, tags numbered by name."""
    names = _tag_vocabulary(tags)
    index = {name: position for position, name in enumerate(names)}
    numbered = [np.array([index[tag] for tag in sentence], dtype="int32") for sentence in tags]
    return TaggedData(
        [sentences[i] for i in train],
        [numbered[i] for i in train],
        [sentences[i] for i in validation],
        [numbered[i] for i in validation],
        [sentences[i] for i in test],
        [numbered[i] for i in test],
        tag_names=names,
    )


def _converted(data, scheme, source):
    """`data` with its entity tags rewritten in `scheme`."""
    if not is_entity_tag_set(data.tag_names):
        unfit = [name for name in data.tag_names if name != "O" and not ENTITY_TAG.match(name)]
        raise DataError(
            f"Expected entity tags (O, or B-/I-/E-/S- and a type, such as B-PER) in `source` "
            f"for tag_scheme={scheme!r}. Received: source={source!r} with tags such as "
            f"{unfit[:5]}"
        )
    splits = ("train", "validation", "test")
    tags = {
        split: [
            convert_tags([data.tag_names[i] for i in sentence], scheme)
            for sentence in getattr(data, f"{split}_tags")
        ]
        for split in splits
    }
    names = _tag_vocabulary([sentence for split in splits for sentence in tags[split]])
    index = {name: position for position, name in enumerate(names)}
    return dataclasses.replace(
        data,
        tag_names=names,
        **{
            f"{split}_tags": [
                np.array([index[tag] for tag in sentence], dtype="int32")
                for sentence in tags[split]
            ]
            for split in splits
        },
    )


class Tagging(Task):
    """Tagging of each token of a sentence (parts of speech, entities...), from raw tokens.

    Args:
        max_tokens: Vocabulary size of the `TextVectorization` layer (None:
            every training word).
        max_length: Tokens per sequence (longer sentences are cut into
            pieces of this length).
        embedding_dim: Size of the word embeddings.
        dropout: Dropout rate of the embeddings and the recurrent outputs.
        word_dropout: Probability that a training token is replaced by an
            unknown word, so that the model learns to tag unseen words from
            their context.
        lowercase: Whether the vectorizer lower-cases the tokens; `"auto"`
            (the default) keeps the case of entity tags' words (a capital
            often marks a name) and lower-cases the others.
        spelling_features: Whether each token's embedding is concatenated
            with embeddings of its suffix and shape (see
            `TokenFeatureHashing`), or which spelling features to use, as a
            list or a comma-separated string of `TOKEN_FEATURES`.
        feature_bins: Hash bins of each spelling feature.
        feature_dim: Embedding size of each spelling feature.
        conll2003_tags: The `conll2003` feature to tag, `"pos"` or `"ner"`.
        file_format: How a `source` file is read: `"conllu"`, `"columns"`
            (CoNLL-2003 and IOB/BIO files: one token a line, columns
            separated by tabs or spaces, blank lines between sentences) or
            `"auto"` (CoNLL-U when the name ends in `.conllu` or the first
            token line has CoNLL-U's 10 tab-separated columns).
        token_column: The column of the tokens: a 0-based number (negative
            from the end), a name of `column_names`, or for CoNLL-U one of
            `CONLLU_COLUMNS` (default: the first column; CoNLL-U's `form`).
        tag_column: The column of the tags, likewise (default: the last
            column; CoNLL-U's `upos`, or for example `xpos`).
        column_names: Names of a column file's columns (a list or a
            comma-separated string such as `"word,pos,chunk,ner"`), so that
            `token_column` and `tag_column` can name them.
        tag_scheme: None to keep the tags as they are, or the entity tag
            scheme to train in: `"iob1"`, `"iob2"` (also `"bio"`) or
            `"iobes"`; the tags of any of these schemes are converted.
        word_tag_feature: Whether each token's features include the share of
            each tag among the occurrences of the word (as the vectorizer
            reads it: lower-cased with `lowercase`) in the training split
            (see `word_tag_distributions`; zeros for a word unseen in
            training or hidden by word dropout).
        early_stopping_monitor: What early stopping watches on the
            validation split, keeping the best epoch's weights: one of
            `EARLY_STOPPING_MONITORS`. `"auto"` watches `"val_entity_f1"`
            (the entity F1 of `entity_scores`, computed after each epoch) for
            entity tags and `"val_loss"` for other tags.

    Example:

    ```python
    ner = Tagging(column_names="word,pos,chunk,ner", tag_column="ner", tag_scheme="iobes")
    result = ner.train(ner.settings(output_dir="runs/ner"), source="eng.train")
    result.metrics["entity_f1"]

    task = Tagging()
    result = task.train(task.settings(output_dir="runs/tagging"))
    task.predict(result.model, ["I love New York in the spring ."])
    # [[["I", "PRON"], ["love", "VERB"], ["New", "ADJ"], ["York", "PROPN"], ...]]
    ```
    """

    name = "tagging"
    metric = "accuracy"
    default_source = UD_EWT
    recommended_settings = {
        "cell": "gru",
        "units": 64,
        "epochs": 15,
        "patience": 4,
        "learning_rate": 3e-3,
    }

    def __init__(
        self,
        max_tokens=None,
        max_length=48,
        embedding_dim=64,
        dropout=0.3,
        word_dropout=0.1,
        lowercase="auto",
        spelling_features=True,
        feature_bins=1000,
        feature_dim=16,
        conll2003_tags="pos",
        file_format="auto",
        token_column=None,
        tag_column=None,
        column_names=None,
        tag_scheme=None,
        word_tag_feature=True,
        early_stopping_monitor="auto",
    ):
        if early_stopping_monitor not in EARLY_STOPPING_MONITORS:
            raise ValueError(
                f"Expected `early_stopping_monitor` to be one of {EARLY_STOPPING_MONITORS}. "
                f"Received: early_stopping_monitor={early_stopping_monitor!r}"
            )
        if lowercase not in (True, False, "auto"):
            raise ValueError(
                "Expected `lowercase` to be True, False or 'auto'. Received: "
                f"lowercase={lowercase!r}"
            )
        if not isinstance(word_tag_feature, bool):
            raise ValueError(
                "Expected `word_tag_feature` to be True or False. Received: "
                f"word_tag_feature={word_tag_feature!r}"
            )
        if conll2003_tags not in CONLL2003_FEATURES:
            raise ValueError(
                f"Expected `conll2003_tags` to be one of {CONLL2003_FEATURES}. Received: "
                f"conll2003_tags={conll2003_tags!r}"
            )
        if file_format not in FILE_FORMATS:
            raise ValueError(
                f"Expected `file_format` to be one of {FILE_FORMATS}. Received: "
                f"file_format={file_format!r}"
            )
        if tag_scheme is not None:
            _check_scheme(tag_scheme)
        names = _check_column_names(column_names)
        if names is not None and file_format == "conllu":
            raise ValueError(
                "Expected no `column_names` with file_format='conllu' (its columns are "
                f"{list(CONLLU_COLUMNS)}). Received: column_names={column_names!r}"
            )
        for argument, value in (("token_column", token_column), ("tag_column", tag_column)):
            if value is None:
                continue
            known = CONLLU_COLUMNS if file_format == "conllu" else names
            if file_format == "auto" and names is None and isinstance(value, str):
                known = CONLLU_COLUMNS
            _column_index(_as_number(value), known, argument)
        if token_column is not None and token_column == tag_column:
            raise ValueError(
                "Expected `token_column` and `tag_column` to be different columns. Received: "
                f"token_column={token_column!r}, tag_column={tag_column!r}"
            )
        check_rate("word_dropout", word_dropout)
        self.max_tokens = max_tokens
        self.max_length = max_length
        self.embedding_dim = embedding_dim
        self.dropout = dropout
        self.word_dropout = word_dropout
        self.lowercase = lowercase
        self.spelling_features = spelling_features
        self.token_features = _check_token_features(spelling_features)
        self.feature_bins = feature_bins
        self.feature_dim = feature_dim
        self.conll2003_tags = conll2003_tags
        self.file_format = file_format
        self.token_column = _as_number(token_column)
        self.tag_column = _as_number(tag_column)
        self.column_names = names
        self.tag_scheme = tag_scheme
        self.word_tag_feature = word_tag_feature
        self.early_stopping_monitor = early_stopping_monitor

    def read_file(self, path):
        """The sentences of a tagged file, read with the task's file options.

        Args:
            path: A CoNLL-U file or a column file (see `read_columns`).

        Returns:
            A `TaggedFile`.
        """
        file_format = self.file_format
        if file_format == "auto":
            file_format = _sniff_format(path)
        if file_format == "conllu":
            return read_conllu(
                path,
                tag_column="upos" if self.tag_column is None else self.tag_column,
                token_column="form" if self.token_column is None else self.token_column,
                documents=True,
            )
        return read_columns(
            path,
            token_column=0 if self.token_column is None else self.token_column,
            tag_column=-1 if self.tag_column is None else self.tag_column,
            column_names=self.column_names,
        )

    def load_data(self, source=None, seed=0, limit=None):
        """Loads `source` and splits its sentences.

        The shipped treebank keeps its own split: the model learns from the
        EWT train split (12,544 sentences), and the EWT dev split's documents
        alternate between validation (early stopping, and the data the
        defaults were chosen on) and testing (never used to choose anything).
        A file given by path is split at random (seeded): 20% of the sentences
        are held out for testing and 10% of the rest for validation. The TFDS
        corpora keep their own train, validation and test splits. With
        `tag_scheme`, entity tags are rewritten in that scheme.

        Args:
            source: `"ud-english-ewt"` (shipped, the default), the path of a
                CoNLL-U file or of a column file (CoNLL-2003, IOB/BIO; see
                `read_columns` and the `file_format`, `token_column`,
                `tag_column` and `column_names` options),
                `"universal_dependencies/en_ewt"` or `"conll2003"`
                (TensorFlow Datasets).
            seed: Seed of the random split.
            limit: Optional number of sentences to keep per split.

        Returns:
            A `TaggedData`.
        """
        source = str(source or self.default_source)
        if source in (TFDS_UD_EWT, TFDS_CONLL2003):
            data = self._load_tfds(source)
        elif source == UD_EWT:
            train = read_conllu(UD_EWT_TRAIN)
            development = read_conllu(UD_EWT_DEV, documents=True)
            validation = [i for i, d in enumerate(development.documents) if d % 2 == 0]
            test = [i for i, d in enumerate(development.documents) if d % 2 == 1]
            sentences = [*train[0], *development.sentences]
            tags = [*train[1], *development.tags]
            offset = len(train[0])
            data = _tagged_data(
                sentences,
                tags,
                range(offset),
                [offset + i for i in validation],
                [offset + i for i in test],
            )
        else:
            tagged = self.read_file(source)
            train, validation, test = split_indices(len(tagged.sentences), 0.2, 0.08, seed)
            data = _tagged_data(tagged.sentences, tagged.tags, train, validation, test)
        if self.tag_scheme is not None:
            data = _converted(data, self.tag_scheme, source)
        if limit is not None:
            data = dataclasses.replace(
                data,
                **{
                    field.name: getattr(data, field.name)[:limit]
                    for field in dataclasses.fields(data)
                    if field.name != "tag_names"
                },
            )
        return data

    def _load_tfds(self, source):
        import tensorflow_datasets as tfds

        feature = "upos" if source == TFDS_UD_EWT else self.conll2003_tags
        names = tfds.builder(source).info.features[feature].feature.names
        kept = [index for index, name in enumerate(names) if name != "_"]
        renumber = np.zeros(len(names), dtype="int32")
        renumber[kept] = np.arange(len(kept), dtype="int32")
        splits = {}
        for split in ("train", "validation", "test"):
            sentences, tags = _tfds_split(source, split, feature, names)
            splits[split] = (sentences, [renumber[sentence] for sentence in tags])
        return TaggedData(
            *splits["train"],
            *splits["validation"],
            *splits["test"],
            tag_names=tuple(names[index] for index in kept),
        )

    def build_model(self, data, settings):
        vectorizer = keras.layers.TextVectorization(
            max_tokens=self.max_tokens,
            standardize="lower" if self.lowercases(data) else None,
            split="whitespace",
            output_sequence_length=self.max_length,
            name="vectorizer",
        )
        vectorizer.adapt(tf.constant(sentence_strings(data.train_sentences)))
        sentences = keras.Input(shape=(), dtype="string", name="sentence")
        tokens = vectorizer(sentences)
        x = keras.layers.Embedding(
            vectorizer.vocabulary_size(), self.embedding_dim, mask_zero=True, name="embedding"
        )(tokens)
        features = [x]
        if self.token_features:
            for feature in self.token_features:
                ids = TokenFeatureHashing(
                    feature, self.feature_bins, self.max_length, name=f"{feature}_hashing"
                )(sentences)
                features.append(
                    keras.layers.Embedding(
                        self.feature_bins + 1,
                        self.feature_dim,
                        mask_zero=True,
                        name=f"{feature}_embedding",
                    )(ids)
                )
        if self.word_tag_feature:
            # Read from the word indices, the words are the vectorizer's own
            # (lower-cased by default), so the model keeps one text reader.
            pieces = _chunks(data.train_sentences, self.max_length)
            labels, _ = _padded(_chunks(data.train_tags, self.max_length), self.max_length)
            token_ids = vectorizer(tf.constant(sentence_strings(pieces)))
            table = keras.layers.Embedding(
                vectorizer.vocabulary_size(),
                len(data.tag_names),
                mask_zero=True,
                trainable=False,
                name="word_tags",
            )
            features.append(table(tokens))
            distributions = word_tag_distributions(
                keras.ops.convert_to_numpy(token_ids),
                labels,
                vectorizer.vocabulary_size(),
                len(data.tag_names),
            )
            table.set_weights([distributions])
        if len(features) > 1:
            x = keras.layers.Concatenate(name="token_features")(features)
        x = keras.layers.Dropout(self.dropout, seed=settings.seed)(x)
        x = keras.layers.Bidirectional(
            recurrent_layer(
                settings.cell, settings.units, return_sequences=True, seed=settings.seed
            ),
            name="encoder",
        )(x)
        x = keras.layers.Dropout(self.dropout, seed=settings.seed)(x)
        # float32 under every dtype policy: probabilities, loss and exports stay float32.
        probabilities = TagProbabilities(data.tag_names, name="tags", dtype="float32")(x)
        return TaskModel(
            sentences, probabilities, name=f"tagger_{settings.cell}", task_name=self.name
        )

    def lowercases(self, data):
        """Whether the vectorizer lower-cases the tokens of `data` (see `lowercase`)."""
        if self.lowercase == "auto":
            return not is_entity_tag_set(data.tag_names)
        return bool(self.lowercase)

    def early_stopping_options(self, data):
        """Early stopping on `early_stopping_monitor` (`"auto"`: entity F1 for entity tags).

        Raises:
            ValueError: for `val_entity_f1` when the tags are not entity tags.
        """
        entities = is_entity_tag_set(data.tag_names)
        monitor = self.early_stopping_monitor
        if monitor == "auto":
            monitor = "val_entity_f1" if entities else "val_loss"
        if monitor == "val_entity_f1" and not entities:
            raise ValueError(
                "Expected entity tags (O, or B-/I-/E-/S- and a type) for "
                "early_stopping_monitor='val_entity_f1'. Received: tags such as "
                f"{list(data.tag_names[:5])}"
            )
        return {"monitor": monitor, "mode": "min" if monitor == "val_loss" else "max"}

    def epoch_callbacks(self, data):
        """The validation entity scores, each epoch, when early stopping watches them."""
        if self.early_stopping_options(data)["monitor"] != "val_entity_f1":
            return []
        expected = [[data.tag_names[i] for i in sentence] for sentence in data.validation_tags]
        return [ValidationEntityScores(data.validation_sentences, expected)]

    def compile(self, model, settings):
        model.compile(
            optimizer=settings.optimizer(),
            loss="sparse_categorical_crossentropy",
            weighted_metrics=["accuracy"],
        )

    def datasets(self, data, batch_size):
        """Training and validation datasets of (sentence string, tags, token weights).

        The token weights are 1 for real tokens and 0 for the padding, so that
        neither the loss nor the accuracy counts the padding.
        """

        def dataset(sentences, tags, training):
            sentences = _chunks(sentences, self.max_length)
            labels, weights = _padded(_chunks(tags, self.max_length), self.max_length)
            ds = tf.data.Dataset.from_tensor_slices((sentence_strings(sentences), labels, weights))
            if training:
                ds = ds.shuffle(len(sentences), seed=0, reshuffle_each_iteration=True)
                if self.word_dropout:
                    ds = ds.map(self._drop_words, num_parallel_calls=tf.data.AUTOTUNE)
            return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

        return (
            dataset(data.train_sentences, data.train_tags, training=True),
            dataset(data.validation_sentences, data.validation_tags, training=False),
        )

    def _drop_words(self, sentence, labels, weights):
        words = tf.strings.split(sentence)
        dropped = tf.random.uniform(tf.shape(words), seed=1) < self.word_dropout
        words = tf.where(dropped, UNKNOWN_WORD, words)
        return tf.strings.reduce_join(words, separator=" "), labels, weights

    def evaluate(self, model, data):
        """Held-out token accuracy, over every token of the test sentences.

        For entity tags (see `is_entity_tag_set`) also the entity-level
        precision, recall and F1 of `entity_scores`.
        """
        predicted = predict_tags(model, data.test_sentences)
        names = tag_names(model)
        predicted_names = [[names[i] for i in sentence] for sentence in predicted]
        expected_names = [[data.tag_names[i] for i in sentence] for sentence in data.test_tags]
        metrics = {
            "accuracy": _token_accuracy(expected_names, predicted_names),
            "test_tokens": sum(len(sentence) for sentence in data.test_tags),
            "test_sentences": len(data.test_sentences),
        }
        if is_entity_tag_set(data.tag_names):
            metrics.update(entity_scores(expected_names, predicted_names))
        return metrics

    def baselines(self, data):
        """Most frequent tag overall, and per word (learned on the training split).

        For entity tags, the per-word baseline's entity scores too (the
        overall most frequent tag, `O`, finds no entity).
        """
        expected = [[data.tag_names[i] for i in sentence] for sentence in data.test_tags]
        per_word = [
            [data.tag_names[i] for i in sentence]
            for sentence in most_frequent_tag_predictions(data)
        ]
        baselines = {
            "most frequent tag": {"accuracy": majority_tag_accuracy(data)},
            "most frequent tag per word": {"accuracy": _token_accuracy(expected, per_word)},
        }
        if is_entity_tag_set(data.tag_names):
            baselines["most frequent tag per word"].update(entity_scores(expected, per_word))
        return baselines

    def predict(self, model, inputs):
        """Tags each sentence (a string of whitespace-separated tokens).

        Args:
            model: A trained tagger.
            inputs: A sentence string or a list of them.

        Returns:
            One list of `[token, tag]` pairs per sentence.
        """
        sentences = check_sentences(inputs)
        names = tag_names(model)
        return [
            [[token, names[tag]] for token, tag in zip(sentence, tags, strict=True)]
            for sentence, tags in zip(sentences, predict_tags(model, sentences), strict=True)
        ]


def check_sentences(inputs):
    """Non-empty sentence strings as tuples of tokens, or a clear `ValueError`."""
    if isinstance(inputs, str):
        inputs = [inputs]
    inputs = list(inputs)
    if not inputs or any(not isinstance(text, str) or not text.strip() for text in inputs):
        raise ValueError(
            f"Expected one or more non-empty sentences (whitespace-separated tokens). "
            f"Received: inputs={inputs!r}"
        )
    return [tuple(text.split()) for text in inputs]


def majority_tag_accuracy(data):
    """Held-out accuracy of tagging every token with the most frequent training tag."""
    majority = np.bincount(np.concatenate(data.train_tags)).argmax()
    return float(np.mean(np.concatenate(data.test_tags) == majority))


def _token_accuracy(expected, predicted):
    """The fraction of tokens whose predicted tag (by name) is the true one."""
    pairs = [
        (true, guess)
        for true_tags, predicted_tags in zip(expected, predicted, strict=True)
        for true, guess in zip(true_tags, predicted_tags, strict=True)
    ]
    return float(np.mean([true == guess for true, guess in pairs]))


def most_frequent_tag_predictions(data):
    """Each held-out token's most frequent training tag (int32 arrays per sentence).

    Words unseen in training get the most frequent tag overall.
    """
    counts = {}
    for sentence, tags in zip(data.train_sentences, data.train_tags, strict=True):
        for token, tag in zip(sentence, tags, strict=True):
            counts.setdefault(token, np.zeros(len(data.tag_names), "int64"))[tag] += 1
    best = {token: int(np.argmax(row)) for token, row in counts.items()}
    fallback = int(np.bincount(np.concatenate(data.train_tags)).argmax())
    return [
        np.array([best.get(token, fallback) for token in sentence], dtype="int32")
        for sentence in data.test_sentences
    ]


def most_frequent_tag_accuracy(data):
    """Held-out accuracy of each word's most frequent training tag.

    Words unseen in training get the most frequent tag overall.
    """
    predicted = np.concatenate(most_frequent_tag_predictions(data))
    return float(np.mean(predicted == np.concatenate(data.test_tags)))
