"""Sentence polarity with a bidirectional GRU built from keras_seqcells.

Reads the sentence polarity data shipped with the package, puts the text
preprocessing inside the model (so it takes raw strings), trains, and
classifies two new sentences. Run: `python examples/text_classification.py`.
"""

import pathlib

import keras
import numpy as np
import tensorflow as tf

import keras_seqcells

DATA = pathlib.Path(keras_seqcells.__file__).parent / "data" / "rt-polarity"


def read_sentences():
    texts, labels = [], []
    for label, name in ((1, "rt-polarity.pos"), (0, "rt-polarity.neg")):
        lines = (DATA / name).read_text(encoding="utf-8").splitlines()
        texts += lines
        labels += [label] * len(lines)
    order = np.random.default_rng(0).permutation(len(texts))
    return np.array(texts)[order], np.array(labels, dtype="float32")[order]


def main():
    keras.utils.set_random_seed(0)
    texts, labels = read_sentences()
    n_test = len(texts) // 10
    train_texts, train_labels = texts[n_test:], labels[n_test:]
    test_texts, test_labels = texts[:n_test], labels[:n_test]

    vectorizer = keras.layers.TextVectorization(
        max_tokens=10000, output_sequence_length=60, standardize="lower"
    )
    vectorizer.adapt(train_texts)

    inputs = keras.Input(shape=(), dtype="string")
    x = vectorizer(inputs)
    x = keras.layers.Embedding(vectorizer.vocabulary_size(), 32, mask_zero=True)(x)
    x = keras.layers.SpatialDropout1D(0.5)(x)
    x = keras.layers.Bidirectional(keras_seqcells.GRU(32))(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)

    model.compile(
        optimizer=keras.optimizers.Adam(2e-3, clipnorm=1.0),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        tf.constant(train_texts),
        train_labels,
        validation_split=0.1,
        epochs=3,
        batch_size=64,
        verbose=2,
    )
    _, accuracy = model.evaluate(tf.constant(test_texts), test_labels, verbose=0)
    print(f"held-out accuracy: {accuracy:.3f}")
    for sentence in ["a gorgeous , witty and moving film", "a dull , lifeless mess"]:
        probability = float(model.predict(tf.constant([sentence]), verbose=0)[0, 0])
        print(f"{probability:.2f} positive: {sentence}")


if __name__ == "__main__":
    main()
