"""Train a small LSTM built from `keras_seqcells.LSTMCell` on the adding problem.

Each input step carries a random number and a marker; the target is the sum of
the two marked numbers. A model that learns it must carry information across
the whole sequence. Run: `python examples/quickstart.py`.
"""

import keras
import numpy as np

import keras_seqcells


def adding_problem(samples, timesteps, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.uniform(size=(samples, timesteps))
    markers = np.zeros((samples, timesteps))
    for row in markers:
        row[rng.choice(timesteps, size=2, replace=False)] = 1.0
    inputs = np.stack([values, markers], axis=-1).astype("float32")
    targets = (values * markers).sum(axis=1, keepdims=True).astype("float32")
    return inputs, targets


def main():
    keras.utils.set_random_seed(0)
    x_train, y_train = adding_problem(4000, timesteps=20, seed=0)
    x_test, y_test = adding_problem(500, timesteps=20, seed=1)

    model = keras.Sequential(
        [
            keras.Input((20, 2)),
            keras.layers.RNN(keras_seqcells.LSTMCell(32)),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2, clipnorm=1.0), loss="mse")
    model.fit(x_train, y_train, epochs=10, batch_size=64, verbose=2)

    mse = model.evaluate(x_test, y_test, verbose=0)
    baseline = float(np.mean((y_test - y_train.mean()) ** 2))
    print(f"held-out MSE {mse:.4f} (predicting the mean: {baseline:.4f})")


if __name__ == "__main__":
    main()
