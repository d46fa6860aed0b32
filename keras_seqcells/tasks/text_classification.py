"""Text classification (many-to-one): sentence polarity from raw strings.

Data: the sentence polarity data set shipped with the package
(`rt-polarity`), a folder holding `*.pos` and `*.neg` files with one sentence a
line, or TensorFlow Datasets' `imdb_reviews` by name. The model takes raw
strings: its `TextVectorization` layer (adapted on the training split) lives
inside it, so a saved or exported model needs no separate preprocessing.
"""

import dataclasses
import pathlib

import keras
import numpy as np
import tensorflow as tf

from keras_seqcells.cells.base import check_positive_int, check_rate
from keras_seqcells.tasks.base import Task, recurrent_layer
from keras_seqcells.tasks.data import DataError, load_tfds, read_text, shipped_path, split_indices

LABELS = ("negative", "positive")


@dataclasses.dataclass
class TextData:
    """Texts (NumPy arrays of str) and labels (0 negative, 1 positive) per split."""

    train_texts: np.ndarray
    train_labels: np.ndarray
    validation_texts: np.ndarray
    validation_labels: np.ndarray
    test_texts: np.ndarray
    test_labels: np.ndarray


def read_polarity_folder(folder):
    """Reads `*.pos` and `*.neg` files (one sentence a line) from `folder`."""
    folder = pathlib.Path(folder)
    texts, labels = [], []
    for label, suffix in ((1, ".pos"), (0, ".neg")):
        files = sorted(folder.glob(f"*{suffix}"))
        if not files:
            raise DataError(
                f"Expected `source` to be a folder with *.pos and *.neg files. Received: "
                f"source={folder} (no *{suffix} file)"
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
            labels += [label] * len(lines)
    return np.array(texts, dtype=object), np.array(labels, dtype="int32")


def _split(texts, labels, seed, test_fraction=0.1, validation_fraction=0.1):
    train, validation, test = split_indices(len(texts), test_fraction, validation_fraction, seed)
    return TextData(
        texts[train],
        labels[train],
        texts[validation],
        labels[validation],
        texts[test],
        labels[test],
    )


def _as_arrays(pairs):
    """(text, label) pairs from TFDS as a str array and an int32 array."""
    texts, labels = [], []
    for text, label in pairs:
        texts.append(text.decode("utf-8") if isinstance(text, bytes) else text)
        labels.append(label)
    return np.array(texts, dtype=object), np.array(labels, dtype="int32")


class TextClassification(Task):
    """Binary sentiment of sentences or reviews, from raw strings.

    Args:
        max_tokens: Size of the vocabulary (the most frequent training words,
            with the padding and out-of-vocabulary tokens).
        sequence_length: Tokens kept per text (longer texts are truncated;
            the longest rt-polarity sentence has 59).
        embedding_dim: Size of the word embeddings (on rt-polarity, 128
            measured better than 64 and 256 with the recommended settings).
        dropout: Rate of the dropout on the embeddings (whole channels) and
            on the encoder's output.
    """

    name = "text-classification"
    metric = "accuracy"
    default_source = "rt-polarity"
    # The validation loss is lowest after two or three epochs (the model then
    # grows overconfident): early stopping usually ends training after epoch 4 or 5.
    recommended_settings = {"cell": "gru", "units": 64, "epochs": 8, "learning_rate": 1e-3}

    def __init__(self, max_tokens=10000, sequence_length=60, embedding_dim=128, dropout=0.5):
        for name, value in (
            ("max_tokens", max_tokens),
            ("sequence_length", sequence_length),
            ("embedding_dim", embedding_dim),
        ):
            check_positive_int(name, value)
        check_rate("dropout", dropout)
        self.max_tokens = max_tokens
        self.sequence_length = sequence_length
        self.embedding_dim = embedding_dim
        self.dropout = dropout

    def load_data(self, source=None, seed=0, limit=None):
        """Loads `source` and splits it (seeded): 80% train, 10% validation, 10% test.

        Args:
            source: `"rt-polarity"` (shipped, the default), `"imdb_reviews"`
                (TensorFlow Datasets; its own test split is the test split), or
                a folder with `*.pos` and `*.neg` files.
            seed: Seed of the random split.
            limit: Optional number of examples to keep (for quick runs).
        """
        source = source or self.default_source
        if source == "imdb_reviews":
            texts, labels = _as_arrays(load_tfds(source, "train", as_supervised=True))
            validation = np.random.default_rng(seed).permutation(len(texts))
            validation, train = validation[: len(texts) // 10], validation[len(texts) // 10 :]
            # TFDS's own test split stays the held-out set.
            data = TextData(
                texts[train],
                labels[train],
                texts[validation],
                labels[validation],
                *_as_arrays(load_tfds(source, "test", as_supervised=True)),
            )
        else:
            folder = shipped_path("rt-polarity") if source == "rt-polarity" else source
            texts, labels = read_polarity_folder(folder)
            data = _split(texts, labels, seed)
        if limit is not None:
            data = TextData(
                *(array[:limit] for array in dataclasses.astuple(data)),
            )
        return data

    def build_model(self, data, settings):
        vectorizer = keras.layers.TextVectorization(
            max_tokens=self.max_tokens,
            output_sequence_length=self.sequence_length,
            standardize="lower",
            name="vectorizer",
        )
        vectorizer.adapt(tf.constant(list(data.train_texts)))
        texts = keras.Input(shape=(), dtype="string", name="text")
        tokens = vectorizer(texts)
        x = keras.layers.Embedding(
            vectorizer.vocabulary_size(), self.embedding_dim, mask_zero=True, name="embedding"
        )(tokens)
        x = keras.layers.SpatialDropout1D(self.dropout)(x)
        x = keras.layers.Bidirectional(
            recurrent_layer(settings.cell, settings.units, seed=settings.seed), name="encoder"
        )(x)
        x = keras.layers.Dropout(self.dropout)(x)
        probability = keras.layers.Dense(1, activation="sigmoid", name="probability")(x)
        return keras.Model(texts, probability, name=f"text_classifier_{settings.cell}")

    def compile(self, model, settings):
        model.compile(
            optimizer=settings.optimizer(), loss="binary_crossentropy", metrics=["accuracy"]
        )

    def datasets(self, data, batch_size):
        def dataset(texts, labels, shuffle):
            ds = tf.data.Dataset.from_tensor_slices((list(texts), labels.astype("float32")))
            if shuffle:
                ds = ds.shuffle(len(texts), seed=0, reshuffle_each_iteration=True)
            return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

        return (
            dataset(data.train_texts, data.train_labels, shuffle=True),
            dataset(data.validation_texts, data.validation_labels, shuffle=False),
        )

    def evaluate(self, model, data):
        probabilities = predict_probabilities(model, data.test_texts)
        accuracy = float(np.mean((probabilities >= 0.5) == data.test_labels))
        return {"accuracy": accuracy, "test_examples": len(data.test_labels)}

    def baselines(self, data):
        majority = int(np.mean(data.train_labels) >= 0.5)
        return {
            "majority class": {"accuracy": float(np.mean(data.test_labels == majority))},
            "bag-of-words logistic regression": {"accuracy": bag_of_words_accuracy(data)},
        }

    def predict(self, model, texts):
        """Returns `(label, probability of positive)` for each raw text."""
        texts = check_texts(texts)
        probabilities = predict_probabilities(model, texts)
        return [(LABELS[int(p >= 0.5)], float(p)) for p in probabilities]


def check_texts(texts):
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
        raise ValueError(f"Expected one or more non-empty texts. Received: texts={texts!r}")
    return texts


def predict_probabilities(model, texts, batch_size=256):
    return model.predict(tf.constant(list(texts)), batch_size=batch_size, verbose=0).reshape(-1)


def bag_of_words_accuracy(data, epochs=10, seed=0):
    """Held-out accuracy of an L2-regularised logistic regression on TF-IDF uni+bigrams."""
    keras.utils.set_random_seed(seed)
    vectorizer = keras.layers.TextVectorization(
        max_tokens=30000, ngrams=2, output_mode="tf_idf", standardize="lower"
    )
    vectorizer.adapt(tf.constant(list(data.train_texts)))

    def features(texts):
        return vectorizer(tf.constant(list(texts)))

    classifier = keras.Sequential(
        [
            keras.layers.Dense(
                1, activation="sigmoid", kernel_regularizer=keras.regularizers.L2(1e-4)
            )
        ]
    )
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    classifier.fit(
        features(data.train_texts),
        data.train_labels.astype("float32"),
        validation_data=(features(data.validation_texts), data.validation_labels.astype("float32")),
        epochs=epochs,
        batch_size=64,
        callbacks=[keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)],
        verbose=0,
    )
    probabilities = classifier.predict(features(data.test_texts), verbose=0).reshape(-1)
    return float(np.mean((probabilities >= 0.5) == data.test_labels))
