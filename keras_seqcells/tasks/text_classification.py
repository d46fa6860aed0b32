"""Text classification (many-to-one): labelled texts of any length, two or more classes.

Data (`source`):

- `"rt-polarity"` (shipped, the default): sentence polarity, one sentence a line.
- `"imdb_reviews"`: TensorFlow Datasets' movie reviews, by name.
- A CSV, TSV or JSON-lines file (`.csv`, `.tsv`/`.tab`, `.jsonl`/`.ndjson`)
  with a text column and a label column (task options `text_column` and
  `label_column`, `"text"` and `"label"` by default); labels are any strings.
- A folder with one sub-folder per class and one document per `.txt` file
  (the layout of `keras.utils.text_dataset_from_directory`, as in aclImdb).
- A folder of `*.pos` and `*.neg` files with one sentence a line.

The model takes raw strings and returns class probabilities: its
`TextVectorization` layer (adapted on the training split) and its class names
(a `ClassProbabilities` output layer) live inside it, so a saved or exported
model needs no separate preprocessing and answers with label names. Two
classes get one sigmoid unit, more get a softmax. Unless set, the sequence
length is chosen from the training texts' token counts, and long texts are
read in chunks (`TextChunks`) whose encodings are pooled (`ChunkPooling`).
The default batch size, epochs and patience are sized to the training split
(`TextClassification.adapted_settings`): small sets get smaller batches and
more epochs.
"""

import csv
import dataclasses
import io
import json
import math
import pathlib

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_seqcells._checks import check_int_at_least, check_positive_int, check_rate, is_integer
from keras_seqcells.serving.adapters import TaskModel
from keras_seqcells.stepping import find_layers, last_layer_of
from keras_seqcells.tasks.base import Task, recurrent_layer
from keras_seqcells.tasks.data import (
    DataError,
    load_tfds,
    read_text,
    shipped_path,
    split_indices,
)
from keras_seqcells.tasks.files import save_figure

#: The class names of the polarity data (rt-polarity, `*.pos`/`*.neg`, imdb_reviews).
LABELS = ("negative", "positive")
TABLE_FORMATS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".jsonl": "json", ".ndjson": "json"}
#: Texts up to this percentile of the training token counts are kept whole.
LENGTH_PERCENTILE = 99.0
#: Tokens per chunk when a long text is read in chunks (`chunk_length="auto"`).
CHUNK_LENGTH = 64
#: Texts are read in chunks when the chosen sequence length exceeds this.
CHUNKING_THRESHOLD = 2 * CHUNK_LENGTH
#: Small training sets train in batches down to this size (see `adapted_settings`).
MIN_BATCH_SIZE = 16
#: Early stopping waits at least this many optimizer steps (as whole epochs).
MIN_PATIENCE_STEPS = 100


@dataclasses.dataclass
class TextData:
    """Texts (NumPy arrays of str) and labels (int32 indices into `classes`) per split."""

    train_texts: np.ndarray
    train_labels: np.ndarray
    validation_texts: np.ndarray
    validation_labels: np.ndarray
    test_texts: np.ndarray
    test_labels: np.ndarray
    classes: tuple = LABELS

    def limited(self, limit):
        """The first `limit` examples of each split."""
        arrays = (getattr(self, field.name)[:limit] for field in dataclasses.fields(self)[:-1])
        return TextData(*arrays, classes=self.classes)


@keras.saving.register_keras_serializable(package="keras_seqcells")
class ClassProbabilities(keras.layers.Dense):
    """A `Dense` output layer whose outputs are the probabilities of named classes.

    Two classes get one sigmoid unit (the probability of the second class);
    more get one softmax unit per class. The names are part of the layer's
    config, so a saved or exported classifier answers with label names.

    Args:
        classes: The class names, two or more, in the order of the outputs.
        **kwargs: `keras.layers.Dense` arguments other than `units` and
            `activation`.

    Example:

    >>> layer = ClassProbabilities(["ham", "spam"])
    >>> tuple(layer(np.zeros((2, 3))).shape)
    (2, 1)
    >>> tuple(ClassProbabilities(["a", "b", "c"])(np.zeros((2, 3))).shape)
    (2, 3)
    """

    def __init__(self, classes, **kwargs):
        classes = tuple(str(name) for name in classes)
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ValueError(
                f"Expected two or more distinct class names. Received: classes={list(classes)}"
            )
        binary = len(classes) == 2
        kwargs.pop("units", None)
        kwargs["activation"] = "sigmoid" if binary else "softmax"
        super().__init__(1 if binary else len(classes), **kwargs)
        self.classes = classes

    def get_config(self):
        config = super().get_config()
        del config["units"]
        return {**config, "classes": list(self.classes)}


@keras.saving.register_keras_serializable(package="keras_seqcells")
class TextChunks(keras.layers.Layer):
    """Cuts each text's token ids into chunks, one row per chunk.

    Token ids of shape `(batch, chunks * chunk_length)` become rows of shape
    `(batch * chunks, chunk_length)`, so a recurrent layer reads every chunk
    of a long text separately (and in parallel); `ChunkPooling` gathers the
    chunks' encodings back into one vector per text.

    Args:
        chunk_length: Tokens per chunk; the input's length is a multiple of it.
        **kwargs: `keras.layers.Layer` arguments.

    Example:

    >>> tuple(TextChunks(4)(np.arange(24).reshape(2, 12)).shape)
    (6, 4)
    """

    def __init__(self, chunk_length, **kwargs):
        super().__init__(**kwargs)
        self.chunk_length = check_positive_int("chunk_length", chunk_length)

    def call(self, tokens):
        return ops.reshape(tokens, (-1, self.chunk_length))

    def compute_output_shape(self, input_shape):
        batch, length = input_shape
        rows = None if batch is None or length is None else batch * length // self.chunk_length
        return (rows, self.chunk_length)

    def get_config(self):
        return {**super().get_config(), "chunk_length": self.chunk_length}


@keras.saving.register_keras_serializable(package="keras_seqcells")
class ChunkPooling(keras.layers.Layer):
    """The mean and the maximum of each text's chunk encodings, over its non-empty chunks.

    Takes the encodings of the chunks (`(batch * chunks, features)`, in the
    order of `TextChunks`) and the texts' token ids (`(batch, chunks *
    chunk_length)`, 0 for padding): a chunk of padding alone is left out of
    both the mean and the maximum. Returns `(batch, 2 * features)`.

    Args:
        chunk_length: Tokens per chunk, as in `TextChunks`.
        **kwargs: `keras.layers.Layer` arguments.

    Example:

    >>> tokens = np.array([[5, 6, 0, 0], [7, 8, 9, 0]])  # two texts, two chunks of 2
    >>> encodings = np.array([[1.0], [9.0], [2.0], [4.0]])
    >>> ChunkPooling(2)(encodings, tokens).numpy().tolist()
    [[1.0, 1.0], [3.0, 4.0]]
    """

    def __init__(self, chunk_length, **kwargs):
        super().__init__(**kwargs)
        self.chunk_length = check_positive_int("chunk_length", chunk_length)

    def call(self, encodings, tokens):
        chunks = tokens.shape[1] // self.chunk_length
        features = encodings.shape[-1]
        present = ops.any(
            ops.not_equal(ops.reshape(tokens, (-1, chunks, self.chunk_length)), 0), axis=-1
        )
        encodings = ops.reshape(encodings, (-1, chunks, features))
        weights = ops.expand_dims(ops.cast(present, encodings.dtype), -1)
        mean = ops.sum(encodings * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
        # Padding chunks take the lowest value of the text's own chunks, so they never win.
        lowest = ops.min(encodings, axis=1, keepdims=True)
        maximum = ops.max(ops.where(weights > 0, encodings, lowest), axis=1)
        return ops.concatenate([mean, maximum], axis=-1)

    def compute_output_shape(self, encodings_shape, tokens_shape):
        return (tokens_shape[0], 2 * encodings_shape[-1])

    def get_config(self):
        return {**super().get_config(), "chunk_length": self.chunk_length}


def class_names(model):
    """The class names of a text classifier, in the order of its probabilities.

    A model without a `ClassProbabilities` layer (saved by an earlier version)
    has one sigmoid output: negative or positive.
    """
    probabilities = last_layer_of(model, ClassProbabilities)
    if probabilities is not None:
        return probabilities.classes
    if model.output_shape[-1] == 1:
        return LABELS
    raise ValueError(
        "Expected a text classifier with a `ClassProbabilities` output layer. Received: "
        f"model={model.name!r} (no such layer, {model.output_shape[-1]} outputs)"
    )


# ------------------------------------------------------------------ reading
def decode(data, path, encoding="utf-8"):
    """`data` (bytes of the file `path`) as text, or an error naming the line."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"Expected `source` to be text in the {encoding} encoding (task option "
            f"`encoding`). Received: {path} (byte {data[error.start]:#x} on line {line} "
            f"cannot be decoded: mixed or other encoding)"
        ) from None
    except LookupError:
        raise ValueError(
            f"Expected `encoding` to name a text encoding, such as 'utf-8' or 'latin-1'. "
            f"Received: encoding={encoding!r}"
        ) from None
    return text.removeprefix("\ufeff")


def read_polarity_folder(folder):
    """Reads `*.pos` and `*.neg` files (one sentence a line) from `folder`."""
    folder = pathlib.Path(folder)
    texts, labels = [], []
    for label, suffix in ((1, ".pos"), (0, ".neg")):
        files = sorted(folder.glob(f"*{suffix}"))
        if not files:
            raise DataError(
                "Expected `source` to be a folder with *.pos and *.neg files (or one "
                f"sub-folder per class). Received: source={folder} (no *{suffix} file)"
            )
        for path in files:
            lines = [line.strip() for line in read_text(path, "source").splitlines()]
            lines = [line for line in lines if line]
            if not lines:
                raise DataError(
                    f"Expected one sentence a line in `source` files. Received: {path} "
                    "(no sentence)"
                )
            texts += lines
            labels += [LABELS[label]] * len(lines)
    return np.array(texts, dtype=object), np.array(labels, dtype=object)


def _label_text(value, path, line, column):
    if value is None or isinstance(value, (dict, list)):
        raise DataError(
            f"Expected a label (a string or number) in column {column!r} of `source`. "
            f"Received: {value!r} on line {line} of {path}"
        )
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON's 1.0 and 1 are one class
    label = str(value).strip()
    if not label:
        raise DataError(
            f"Expected a label in column {column!r} of `source`. Received: an empty label "
            f"on line {line} of {path}"
        )
    return label


def _text_value(value, path, line, column):
    if not isinstance(value, str) or not value.strip():
        raise DataError(
            f"Expected a non-empty text in column {column!r} of `source`. Received: "
            f"{value!r} on line {line} of {path}"
        )
    return value.strip()


def _missing_column(argument, column, path, columns):
    return DataError(
        f"Expected `{argument}` to name a column of `source`. Received: {argument}={column!r} "
        f"(the columns of {path} are {list(columns)}; set the task option `{argument}`)"
    )


def read_table(path, text_column="text", label_column="label", encoding="utf-8"):
    """Reads texts and labels from a CSV, TSV or JSON-lines file.

    Args:
        path: The file; its suffix says the format (`.csv`, `.tsv`/`.tab`,
            `.jsonl`/`.ndjson`). CSV and TSV files start with a header row.
        text_column: The column (or JSON key) of the texts.
        label_column: The column (or JSON key) of the labels.
        encoding: The file's text encoding.

    Returns:
        Texts and labels (as strings), two NumPy object arrays.
    """
    path = pathlib.Path(path)
    delimiter = TABLE_FORMATS.get(path.suffix.lower())
    if delimiter is None:
        raise DataError(
            f"Expected `source` to be a {', '.join(TABLE_FORMATS)} file or a folder. "
            f"Received: source={path}"
        )
    if not path.is_file():
        raise DataError(f"Expected `source` to be an existing file. Received: source={path}")
    text = decode(path.read_bytes(), path, encoding)
    texts, labels = [], []
    if delimiter == "json":
        for line, row in enumerate(text.splitlines(), start=1):
            if not row.strip():
                continue
            try:
                record = json.loads(row)
            except json.JSONDecodeError as error:
                raise DataError(
                    f"Expected one JSON object a line in `source`. Received: line {line} of "
                    f"{path} ({error.msg})"
                ) from None
            if not isinstance(record, dict):
                raise DataError(
                    f"Expected one JSON object a line in `source`. Received: a "
                    f"{type(record).__name__} on line {line} of {path}"
                )
            for argument, column in (("text_column", text_column), ("label_column", label_column)):
                if column not in record:
                    raise DataError(
                        f"Expected `{argument}` to name a key of every record of `source`. "
                        f"Received: {argument}={column!r} (line {line} of {path} has the keys "
                        f"{list(record)}; set the task option `{argument}`)"
                    )
            texts.append(_text_value(record[text_column], path, line, text_column))
            labels.append(_label_text(record[label_column], path, line, label_column))
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            columns = reader.fieldnames or []
            for argument, column in (("text_column", text_column), ("label_column", label_column)):
                if column not in columns:
                    raise _missing_column(argument, column, path, columns)
            for record in reader:
                line = reader.line_num
                texts.append(_text_value(record[text_column], path, line, text_column))
                labels.append(_label_text(record[label_column], path, line, label_column))
        except csv.Error as error:
            raise DataError(
                f"Expected a well-formed table in `source`. Received: line {reader.line_num} "
                f"of {path} ({error})"
            ) from None
    if not texts:
        raise DataError(
            f"Expected labelled texts in `source`. Received: source={path} (no data rows)"
        )
    return np.array(texts, dtype=object), np.array(labels, dtype=object)


def read_class_folders(folder, encoding="utf-8", class_names=None):
    """Reads one document per `.txt` file from one sub-folder per class.

    The layout of `keras.utils.text_dataset_from_directory`: the sub-folders'
    names are the labels, and the `.txt` files anywhere under a sub-folder
    are its documents (other files are ignored).

    Args:
        folder: The folder of class sub-folders.
        encoding: The files' text encoding.
        class_names: Optional sub-folders to read (others are ignored, as
            aclImdb's `unsup`); by default, all.

    Returns:
        Texts and labels (as strings), two NumPy object arrays.
    """
    folder = pathlib.Path(folder)
    if class_names is None:
        class_folders = sorted(p for p in folder.iterdir() if p.is_dir())
    else:
        class_folders = [folder / name for name in class_names]
        for class_folder in class_folders:
            if not class_folder.is_dir():
                raise DataError(
                    f"Expected a sub-folder of `source` for each of class_names="
                    f"{list(class_names)}. Received: source={folder} (no folder "
                    f"{class_folder.name!r})"
                )
    if not class_folders:
        raise DataError(
            f"Expected one sub-folder per class in `source`. Received: source={folder} "
            "(no sub-folder)"
        )
    texts, labels = [], []
    for class_folder in class_folders:
        files = sorted(p for p in class_folder.rglob("*.txt") if p.is_file())
        if not files:
            raise DataError(
                f"Expected each class folder of `source` to hold .txt files, one document "
                f"each. Received: {class_folder} (no .txt file; the task option "
                "`class_names` chooses the classes)"
            )
        for path in files:
            text = decode(path.read_bytes(), path, encoding).strip()
            if not text:
                raise DataError(
                    f"Expected a document in each .txt file of `source`. Received: {path} (empty)"
                )
            texts.append(text)
            labels.append(class_folder.name)
    return np.array(texts, dtype=object), np.array(labels, dtype=object)


# ---------------------------------------------------------------- splitting
def stratified_order(labels, seed):
    """A seeded order of `range(len(labels))` whose every prefix holds each class in proportion.

    Each example's key is its rank within its class (in a seeded random
    order) as a fraction of the class's size; sorting by key interleaves
    the classes, so the first `n` examples hold each class's share of `n`
    to within one example.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keys = np.empty(len(labels))
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        ranks = rng.permutation(len(members))
        keys[members] = (ranks + rng.random(len(members))) / len(members)
    return np.argsort(keys, kind="stable")


def stratified_split(labels, seed, test_fraction=0.1, validation_fraction=0.1):
    """Seeded split of `range(len(labels))` keeping each class's share in every split.

    Returns:
        Train, validation and test indices (see `stratified_order`).
    """
    return split_indices(
        len(labels), test_fraction, validation_fraction, seed, order=stratified_order(labels, seed)
    )


def _as_arrays(pairs):
    """(text, label) pairs from TFDS as a str array and an array of label names."""
    texts, labels = [], []
    for text, label in pairs:
        texts.append(text.decode("utf-8") if isinstance(text, bytes) else text)
        labels.append(LABELS[int(label)])
    return np.array(texts, dtype=object), np.array(labels, dtype=object)


def _class_list(class_names):
    """The `class_names` option as a tuple of names (or None)."""
    if class_names is None:
        return None
    if isinstance(class_names, str):
        class_names = class_names.split(",")
    if not isinstance(class_names, (list, tuple)):
        raise TypeError(
            "Expected `class_names` to be a list of names or a comma-separated string. "
            f"Received: class_names={class_names!r}"
        )
    names = tuple(str(name).strip() for name in class_names)
    if len(names) < 2 or len(set(names)) != len(names) or not all(names):
        raise ValueError(
            f"Expected `class_names` to be two or more distinct names. Received: "
            f"class_names={class_names!r}"
        )
    return names


def _sort_key(name):
    """Numeric labels in numeric order ("2" before "10"), then the others by name."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def encode_labels(labels, class_names=None, source=None, training=True):
    """Label names as int32 indices into the classes, and the classes.

    Args:
        labels: Label names (strings).
        class_names: Optional classes in order; a label not among them is an
            error. By default, the sorted distinct labels.
        source: Named in errors.
        training: Whether `labels` are training labels, which need two
            classes or more.
    """
    found = sorted(set(labels), key=_sort_key)
    classes = class_names or tuple(found)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(
            f"Expected the labels of `source` among class_names={list(classes)}. Received: "
            f"unknown label(s) {unknown} in source={source}"
        )
    if training and len(found) < 2:
        raise DataError(
            f"Expected two or more classes in `source`. Received: source={source} (only "
            f"the label(s) {found})"
        )
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index[label] for label in labels], dtype="int32"), tuple(classes)


# ------------------------------------------------------------------- lengths
def token_counts(texts):
    """Tokens per text as the model's `TextVectorization` splits them (on whitespace)."""
    return np.array([len(text.split()) for text in texts], dtype="int64")


def choose_sequence_length(texts, maximum, percentile=LENGTH_PERCENTILE):
    """The sequence length that keeps `percentile`% of `texts` whole, at most `maximum`."""
    counts = token_counts(texts)
    if not len(counts):
        raise DataError("Expected training texts. Received: an empty training split")
    return int(min(maximum, max(1, math.ceil(np.percentile(counts, percentile)))))


def choose_chunk_length(sequence_length, threshold=CHUNKING_THRESHOLD, chunk_length=CHUNK_LENGTH):
    """The chunk length for texts of `sequence_length` tokens, or None to read them whole.

    Texts longer than `threshold` tokens are read in chunks of `chunk_length`.

    Example:

    >>> choose_chunk_length(45) is None, choose_chunk_length(400)
    (True, 64)
    """
    return chunk_length if sequence_length > threshold else None


def chunk_length_of(model):
    """Tokens per chunk of a text classifier that reads texts in chunks, else None."""
    chunks = find_layers(model, TextChunks)
    return chunks[0].chunk_length if chunks else None


# --------------------------------------------------------------------- task
class TextClassification(Task):
    """Classifies raw texts into two or more named classes.

    Args:
        max_tokens: Size of the vocabulary (the most frequent training words,
            with the padding and out-of-vocabulary tokens).
        sequence_length: Tokens kept per text (longer texts are truncated).
            By default (`None` or `"auto"`), the 99th percentile of the
            training texts' token counts, at most `max_sequence_length`
            (45 on rt-polarity, whose longest sentence has 59).
        max_sequence_length: The most tokens the chosen length may keep.
        chunk_length: How texts are read. `"auto"` (default): texts of more
            than 128 tokens (the sequence length) are read in chunks of 64
            tokens, shorter ones whole. A positive integer: chunks of that
            many tokens when the sequence length exceeds it. `0`: always
            whole. In chunks, the encoder reads each chunk on its own and
            the chunks' final states are pooled (mean and maximum over the
            text's non-empty chunks); the sequence length is rounded up to
            whole chunks.
        min_batches: Batches an epoch should have at least: the default
            batch size (64) is halved, down to 16, until the training split
            fills this many (`0`: batches of 64).
        min_steps: Optimizer steps training may take at least: the default
            epochs (8) are raised to reach them, and early stopping then
            waits at least 100 steps (whole epochs) for the validation loss
            to improve (`0`: 8 epochs, patience 2). Early stopping restores
            the best epoch's weights. A batch size, epochs or patience given
            by hand (not `adaptable` in the `TrainSettings`) are used as given.

    Example:

    >>> task = TextClassification(text_column="review", label_column="stars")
    >>> data = task.load_data("reviews.csv")  # doctest: +SKIP
    """

    name = "text-classification"
    metric = "accuracy"
    default_source = "rt-polarity"
    # On rt-polarity the validation loss is lowest after two or three epochs (the
    # model then grows overconfident): early stopping usually ends training after
    # epoch 4 or 5. Smaller sets get more epochs (see `adapted_settings`).
    recommended_settings = {"cell": "gru", "units": 64, "epochs": 8, "learning_rate": 1e-3}

    def __init__(
        self,
        max_tokens=10000,
        sequence_length=None,
        max_sequence_length=2000,
        chunk_length="auto",
        embedding_dim=128,
        dropout=0.5,
        text_column="text",
        label_column="label",
        class_names=None,
        class_folders=None,
        encoding="utf-8",
        min_batches=20,
        min_steps=1000,
    ):
        for name, value in (
            ("max_tokens", max_tokens),
            ("max_sequence_length", max_sequence_length),
            ("embedding_dim", embedding_dim),
        ):
            check_positive_int(name, value)
        if sequence_length == "auto":
            sequence_length = None
        if sequence_length is not None:
            check_positive_int("sequence_length", sequence_length)
        check_rate("dropout", dropout)
        if chunk_length in ("auto", None):
            chunk_length = None
        elif is_integer(chunk_length) and chunk_length >= 0:
            chunk_length = int(chunk_length)
        else:
            raise ValueError(
                "Expected `chunk_length` to be 'auto', a positive number of tokens, or 0 "
                f"(read texts whole). Received: chunk_length={chunk_length!r}"
            )
        min_batches = check_int_at_least("min_batches", min_batches, 0)
        min_steps = check_int_at_least("min_steps", min_steps, 0)
        columns = {}
        for name, value in (
            ("text_column", text_column),
            ("label_column", label_column),
            ("encoding", encoding),
        ):
            if is_integer(value):
                value = str(value)  # `--task-option label_column=2` parses as a number
            if not isinstance(value, str) or not value:
                raise ValueError(
                    f"Expected `{name}` to be a non-empty string. Received: {name}={value!r}"
                )
            columns[name] = value
        text_column, label_column, encoding = columns.values()
        if text_column == label_column:
            raise ValueError(
                "Expected `text_column` and `label_column` to differ. Received: "
                f"text_column={text_column!r}, label_column={label_column!r}"
            )
        if class_folders not in (None, True, False):
            raise ValueError(
                f"Expected `class_folders` to be true, false or null. Received: "
                f"class_folders={class_folders!r}"
            )
        self.max_tokens = max_tokens
        self.sequence_length = sequence_length
        self.max_sequence_length = max_sequence_length
        self.chunk_length = chunk_length
        self.min_batches = min_batches
        self.min_steps = min_steps
        self.embedding_dim = embedding_dim
        self.dropout = dropout
        self.text_column = text_column
        self.label_column = label_column
        self.class_names = _class_list(class_names)
        self.class_folders = class_folders
        self.encoding = encoding

    # -------------------------------------------------------------- data
    def read(self, source):
        """Texts and label names (string arrays) of a file or folder `source`."""
        path = pathlib.Path(source)
        if path.is_dir():
            polarity = any(path.glob("*.pos")) or any(path.glob("*.neg"))
            class_folders = self.class_folders
            if class_folders is None:
                class_folders = not polarity and any(p.is_dir() for p in path.iterdir())
            if not class_folders:
                return read_polarity_folder(path)
            return read_class_folders(path, self.encoding, self.class_names)
        if path.suffix.lower() in TABLE_FORMATS:
            return read_table(path, self.text_column, self.label_column, self.encoding)
        raise DataError(
            "Expected `source` to be 'rt-polarity', 'imdb_reviews', a "
            f"{'/'.join(TABLE_FORMATS)} file, a folder of class sub-folders or a folder of "
            f"*.pos and *.neg files. Received: source={source}"
            + ("" if path.exists() else " (not found)")
        )

    def load_data(self, source=None, seed=0, limit=None):
        """Loads `source` and splits it, stratified by class and seeded: 80/10/10%.

        Args:
            source: `"rt-polarity"` (shipped, the default), `"imdb_reviews"`
                (TensorFlow Datasets; its own test split is the test split), a
                CSV/TSV/JSON-lines file, a folder of class sub-folders, or a
                folder with `*.pos` and `*.neg` files.
            seed: Seed of the random split.
            limit: Optional number of examples to keep per split (for quick runs).

        Returns:
            A `TextData`.
        """
        source = source or self.default_source
        if source == "imdb_reviews":
            texts, labels = _as_arrays(load_tfds(source, "train", as_supervised=True))
            test_texts, test_labels = _as_arrays(load_tfds(source, "test", as_supervised=True))
            indices, classes = encode_labels(labels, self.class_names or LABELS, source)
            test_indices, _ = encode_labels(test_labels, classes, source, training=False)
            # TFDS's own test split stays the held-out set; validation comes from train.
            order = stratified_order(indices, seed)
            validation, train = order[: len(order) // 10], order[len(order) // 10 :]
            data = TextData(
                texts[train],
                indices[train],
                texts[validation],
                indices[validation],
                test_texts,
                test_indices,
                classes,
            )
        else:
            path = shipped_path("rt-polarity") if source == "rt-polarity" else source
            texts, labels = self.read(path)
            default = LABELS if set(labels) <= set(LABELS) else None
            indices, classes = encode_labels(labels, self.class_names or default, source)
            train, validation, test = stratified_split(indices, seed)
            data = TextData(
                texts[train],
                indices[train],
                texts[validation],
                indices[validation],
                texts[test],
                indices[test],
                classes,
            )
        return data if limit is None else data.limited(limit)

    # ------------------------------------------------------------- model
    def chosen_sequence_length(self, data):
        """The sequence length of a model trained on `data` (see the class docstring)."""
        length = self.sequence_length
        if length is None:
            length = choose_sequence_length(data.train_texts, self.max_sequence_length)
        chunk_length = self.chosen_chunk_length(length)
        if chunk_length is not None:
            length = chunk_length * math.ceil(length / chunk_length)
        return length

    def chosen_chunk_length(self, sequence_length):
        """Tokens per chunk for texts of `sequence_length` tokens, or None to read them whole."""
        if self.chunk_length is None:
            return choose_chunk_length(sequence_length)
        if self.chunk_length and sequence_length > self.chunk_length:
            return self.chunk_length
        return None

    def adapted_settings(self, settings, data):
        """`settings` for a training split of this size (see `min_batches` and `min_steps`).

        Example:

        >>> task = TextClassification()
        >>> small = task.adapted_settings(task.settings(), task.load_data(limit=150))
        >>> small.batch_size, small.epochs, small.patience
        (16, 100, 10)
        """
        examples = len(data.train_texts)
        batch_size, epochs, patience = settings.batch_size, settings.epochs, settings.patience
        if "batch_size" in settings.adaptable:
            while (
                batch_size > MIN_BATCH_SIZE and math.ceil(examples / batch_size) < self.min_batches
            ):
                batch_size = max(MIN_BATCH_SIZE, batch_size // 2)
        steps = math.ceil(examples / batch_size)
        if self.min_steps and "epochs" in settings.adaptable:
            epochs = max(epochs, math.ceil(self.min_steps / steps))
        if self.min_steps and "patience" in settings.adaptable:
            patience = max(patience, math.ceil(MIN_PATIENCE_STEPS / steps))
        return dataclasses.replace(
            settings, batch_size=batch_size, epochs=epochs, patience=patience
        )

    def build_model(self, data, settings):
        sequence_length = self.chosen_sequence_length(data)
        chunk_length = self.chosen_chunk_length(sequence_length)
        vectorizer = keras.layers.TextVectorization(
            max_tokens=self.max_tokens,
            output_sequence_length=sequence_length,
            standardize="lower",
            name="vectorizer",
        )
        vectorizer.adapt(tf.constant(list(data.train_texts)))
        texts = keras.Input(shape=(), dtype="string", name="text")
        tokens = vectorizer(texts)
        x = tokens if chunk_length is None else TextChunks(chunk_length, name="chunks")(tokens)
        x = keras.layers.Embedding(
            vectorizer.vocabulary_size(), self.embedding_dim, mask_zero=True, name="embedding"
        )(x)
        x = keras.layers.SpatialDropout1D(self.dropout)(x)
        x = keras.layers.Bidirectional(
            recurrent_layer(settings.cell, settings.units, seed=settings.seed), name="encoder"
        )(x)
        if chunk_length is not None:
            x = ChunkPooling(chunk_length, name="chunk_pooling")(x, tokens)
        x = keras.layers.Dropout(self.dropout)(x)
        # float32 under every dtype policy: probabilities, loss and exports stay float32.
        probability = ClassProbabilities(data.classes, name="probability", dtype="float32")(x)
        return TaskModel(
            texts, probability, name=f"text_classifier_{settings.cell}", task_name=self.name
        )

    def compile(self, model, settings):
        binary = model.output_shape[-1] == 1
        model.compile(
            optimizer=settings.optimizer(),
            loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )

    def datasets(self, data, batch_size):
        binary = len(data.classes) == 2

        def dataset(texts, labels, shuffle):
            labels = labels.astype("float32" if binary else "int32")
            ds = tf.data.Dataset.from_tensor_slices((list(texts), labels))
            if shuffle:
                ds = ds.shuffle(len(texts), seed=0, reshuffle_each_iteration=True)
            return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

        return (
            dataset(data.train_texts, data.train_labels, shuffle=True),
            dataset(data.validation_texts, data.validation_labels, shuffle=False),
        )

    # -------------------------------------------------------- evaluation
    def evaluate(self, model, data):
        """Held-out accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix.

        The data's labels are matched to the model's classes by name; a label
        the model does not know is an error.
        """
        classes = class_names(model)
        unknown = sorted(set(data.classes[i] for i in np.unique(data.test_labels)) - set(classes))
        if unknown:
            raise DataError(
                f"Expected the test labels among the model's classes {list(classes)}. "
                f"Received: unknown label(s) {unknown}"
            )
        position = {name: i for i, name in enumerate(classes)}
        truth = np.array([position[data.classes[i]] for i in data.test_labels], dtype="int64")
        predicted = np.argmax(class_probabilities(model, data.test_texts), axis=-1)
        return {
            **classification_report(truth, predicted, classes),
            "sequence_length": sequence_length_of(model),
            "chunk_length": chunk_length_of(model),
            "test_texts_truncated": float(
                np.mean(token_counts(data.test_texts) > sequence_length_of(model))
            ),
        }

    def baselines(self, data):
        majority = np.full(len(data.test_labels), np.bincount(data.train_labels).argmax())
        summary = ("accuracy", "macro_f1")

        def pick(report):
            return {name: report[name] for name in summary}

        return {
            "majority class": pick(classification_report(data.test_labels, majority, data.classes)),
            "bag-of-words logistic regression": pick(
                classification_report(
                    data.test_labels, bag_of_words_predictions(data), data.classes
                )
            ),
        }

    def train(self, settings, source=None, limit=None, callbacks=(), strategy=None):
        """`Task.train`, then the confusion matrix's PNG in the run folder."""
        result = super().train(
            settings, source=source, limit=limit, callbacks=callbacks, strategy=strategy
        )
        plot_confusion_matrix(
            result.metrics["confusion_matrix"],
            list(result.metrics["per_class"]),
            pathlib.Path(settings.output_dir) / "confusion_matrix.png",
        )
        return result

    def predict(self, model, texts):
        """Returns `(label, {class: probability})` for each raw text."""
        texts = check_texts(texts)
        classes = class_names(model)
        probabilities = class_probabilities(model, texts)
        return [
            (
                classes[int(np.argmax(row))],
                {name: float(p) for name, p in zip(classes, row, strict=True)},
            )
            for row in probabilities
        ]


def check_texts(texts):
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
        raise ValueError(f"Expected one or more non-empty texts. Received: texts={texts!r}")
    return texts


def sequence_length_of(model):
    """Tokens a text classifier keeps per text (its vectorizer's output length)."""
    vectorizers = find_layers(model, keras.layers.TextVectorization)
    if not vectorizers:
        return None
    return int(vectorizers[0].get_config()["output_sequence_length"])


def class_probabilities(model, texts, batch_size=256):
    """The probability of each class (columns in `class_names(model)`'s order) per text.

    A two-class model's one sigmoid output `p` is the columns `1 - p`, `p`.
    """
    outputs = model.predict(tf.constant(list(texts)), batch_size=batch_size, verbose=0)
    outputs = np.asarray(outputs, dtype="float32").reshape(len(texts), -1)
    if outputs.shape[1] == 1:
        return np.concatenate([1.0 - outputs, outputs], axis=1)
    return outputs


def classification_report(truth, predicted, classes):
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Args:
        truth: True class indices.
        predicted: Predicted class indices.
        classes: The class names, by index.

    Returns:
        A JSON-serialisable dict. A class never predicted has precision 0,
        one absent from `truth` recall 0 (and F1 0 in both cases).

    Example:

    >>> classification_report([0, 1, 1], [0, 1, 0], ["a", "b"])["per_class"]["b"]["recall"]
    0.5
    """
    truth = np.asarray(truth, dtype="int64")
    predicted = np.asarray(predicted, dtype="int64")
    k = len(classes)
    matrix = np.zeros((k, k), dtype="int64")
    np.add.at(matrix, (truth, predicted), 1)
    per_class = {}
    for i, name in enumerate(classes):
        hits = matrix[i, i]
        predicted_count, actual = matrix[:, i].sum(), matrix[i].sum()
        precision = hits / predicted_count if predicted_count else 0.0
        recall = hits / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(actual),
        }
    present = [name for i, name in enumerate(classes) if matrix[i].sum()]
    return {
        "accuracy": float(np.trace(matrix) / max(1, matrix.sum())),
        # Over the classes present in the test split (as scikit-learn's labels=).
        "macro_f1": float(np.mean([per_class[name]["f1"] for name in present])),
        "test_examples": int(matrix.sum()),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def plot_confusion_matrix(matrix, classes, path):
    """Writes the confusion matrix (rows: true class, columns: predicted) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    size = 2.5 + 0.45 * len(classes)
    figure, axis = plt.subplots(figsize=(size + 1.0, size))
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis)
    axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axis.set_yticks(range(len(classes)), classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > threshold else "black"
        axis.text(column, row, str(count), ha="center", va="center", color=color, fontsize=8)
    axis.set_title("confusion matrix (test split)")
    figure.tight_layout()
    save_figure(figure, path)


def bag_of_words_predictions(data, epochs=10, seed=0):
    """Held-out class predictions of an L2-regularised logistic regression on TF-IDF uni+bigrams."""
    keras.utils.set_random_seed(seed)
    vectorizer = keras.layers.TextVectorization(
        max_tokens=30000, ngrams=2, output_mode="tf_idf", standardize="lower"
    )
    vectorizer.adapt(tf.constant(list(data.train_texts)))

    def features(texts):
        return vectorizer(tf.constant(list(texts)))

    classes = len(data.classes)
    binary = classes == 2
    classifier = keras.Sequential(
        [
            keras.layers.Dense(
                1 if binary else classes,
                activation="sigmoid" if binary else "softmax",
                kernel_regularizer=keras.regularizers.L2(1e-4),
            )
        ]
    )
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
    )
    dtype = "float32" if binary else "int32"
    classifier.fit(
        features(data.train_texts),
        data.train_labels.astype(dtype),
        validation_data=(features(data.validation_texts), data.validation_labels.astype(dtype)),
        epochs=epochs,
        batch_size=64,
        callbacks=[keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)],
        verbose=0,
    )
    outputs = classifier.predict(features(data.test_texts), verbose=0).reshape(
        len(data.test_texts), -1
    )
    if binary:
        outputs = np.concatenate([1.0 - outputs, outputs], axis=1)
    return np.argmax(outputs, axis=-1)
