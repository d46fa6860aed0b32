"""Train a small word-level LSTM language model on Plato's Republic and let it write.

The model reads word ids and predicts the next word at every position (teacher
forcing); then `generate` continues a prompt one sampled word at a time. Run:
`python examples/next_word.py` (25 to 40 s on 2 CPU cores). After the default
2 epochs the LSTM is about as good as the bigram baseline (held-out
perplexity about 69 against 70.5); `--epochs 3` takes it to about 63.
"""

import argparse

import keras

import keras_seqcells
from keras_seqcells.tasks.next_word import NextWord, Vocabulary, generate, windows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)

    # The shipped text, tokenised into words and punctuation, split 80/10/10
    # (the last 10% held out), with its 2,000 most frequent tokens as vocabulary.
    task = NextWord(sequence_length=25, max_vocabulary=2000)
    data = task.load_data()
    inputs, targets = windows(data.train_ids, task.sequence_length)
    print(f"{len(data.train_ids)} training tokens, {data.vocabulary_size} words")

    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            Vocabulary(data.vocabulary),  # keeps the words, so `generate` can use them
            keras.layers.Embedding(data.vocabulary_size, 64),
            keras_seqcells.LSTM(128, return_sequences=True),
            keras.layers.Dense(data.vocabulary_size),  # logits of the next word
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(inputs, targets, batch_size=32, epochs=args.epochs, verbose=2)

    perplexity = task.evaluate(model, data)["perplexity"]
    baselines = task.baselines(data)
    print(f"held-out perplexity: LSTM {perplexity:.1f}", end="")
    for name, metrics in baselines.items():
        print(f", {name} {metrics['perplexity']:.1f}", end="")
    print()
    continuation = generate(model, "the just man", words=20, temperature=0.8, seed=0)
    print(f"the just man {continuation}")


if __name__ == "__main__":
    main()
