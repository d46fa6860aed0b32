"""Tag parts of speech with a bidirectional `keras_seqcells.GRU`.

Reads the Universal Dependencies English sentences shipped with the package
(the EWT dev split; or any CoNLL-U file given as the first argument), trains a small tagger on
80% of the sentences and reports its token accuracy on the other 20%, beside
tagging each word with its most frequent training tag.
Run: `python examples/tagging.py [FILE.conllu]`.
"""

import gzip
import importlib.resources
import sys

import keras
import numpy as np

import keras_seqcells

SHIPPED = (
    importlib.resources.files("keras_seqcells") / "data/ud-english-ewt/en_ewt-ud-dev.conllu.gz"
)


def read_conllu(path):
    """Returns a list of sentences, each a list of (word, UPOS tag) pairs."""
    sentences, sentence = [], []
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            columns = line.rstrip("\n").split("\t")
            if len(columns) == 10 and columns[0].isdigit():  # a word, not a range or comment
                sentence.append((columns[1].lower(), columns[3]))
            elif not line.strip() and sentence:
                sentences.append(sentence)
                sentence = []
    return [*sentences, sentence] if sentence else sentences


def pad(sequences, length):
    """Integer sequences as a (len(sequences), length) matrix padded with 0."""
    matrix = np.zeros((len(sequences), length), dtype="int32")
    for row, sequence in enumerate(sequences):
        matrix[row, : len(sequence[:length])] = sequence[:length]
    return matrix


def main(path=SHIPPED, epochs=6, length=48):
    keras.utils.set_random_seed(0)
    sentences = read_conllu(path)
    order = np.random.default_rng(0).permutation(len(sentences))
    held_out = len(sentences) // 5
    test = [sentences[i] for i in order[:held_out]]
    train = [sentences[i] for i in order[held_out:]]

    # Index 0 is padding and 1 an unknown word; tags are 0, 1, ...
    vocabulary = sorted({word for sentence in train for word, _ in sentence})
    words = {word: index for index, word in enumerate(vocabulary, start=2)}
    tag_names = sorted({tag for sentence in sentences for _, tag in sentence})
    tags = {tag: index for index, tag in enumerate(tag_names)}

    def encode(sentences):
        x = pad([[words.get(word, 1) for word, _ in sentence] for sentence in sentences], length)
        y = pad([[tags[tag] for _, tag in sentence] for sentence in sentences], length)
        return x, y

    x_train, y_train = encode(train)
    x_test, y_test = encode(test)

    inputs = keras.Input((length,), dtype="int32")
    x = keras.layers.Embedding(len(words) + 2, 64, mask_zero=True)(inputs)
    x = keras.layers.Bidirectional(keras_seqcells.GRU(64, return_sequences=True))(x)
    outputs = keras.layers.Dense(len(tag_names), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        weighted_metrics=["accuracy"],
    )
    # Padding positions weigh 0: neither the loss nor the accuracy counts them.
    weights = (x_train > 0).astype("float32")
    model.fit(x_train, y_train, sample_weight=weights, epochs=epochs, batch_size=64, verbose=2)

    real = x_test > 0
    predicted = model.predict(x_test, verbose=0).argmax(axis=-1)
    accuracy = np.mean(predicted[real] == y_test[real])

    # Baseline: each word's most frequent training tag (unknown words: the
    # most frequent tag overall).
    counts = np.zeros((len(words) + 2, len(tag_names)), dtype="int64")
    np.add.at(counts, (x_train[x_train > 0], y_train[x_train > 0]), 1)
    most_frequent = counts.argmax(axis=1)
    most_frequent[1] = counts.sum(axis=0).argmax()
    baseline = np.mean(most_frequent[x_test[real]] == y_test[real])
    print(
        f"held-out token accuracy {accuracy:.3f} over {real.sum()} tokens "
        f"(most frequent tag per word: {baseline:.3f})"
    )

    example = ["the", "new", "bus", "stops", "here"]
    x = pad([[words.get(word, 1) for word in example]], length)
    predicted = model.predict(x, verbose=0)[0, : len(example)].argmax(axis=-1)
    print(
        " ".join(f"{word}/{tag_names[tag]}" for word, tag in zip(example, predicted, strict=True))
    )


if __name__ == "__main__":
    main(*sys.argv[1:2])
