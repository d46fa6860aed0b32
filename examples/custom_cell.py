"""A cell of your own: IndRNN (Li et al., 2018), `h_t = relu(W x_t + u ⊙ h_{t-1} + b)`.

Its equations are all it states; `keras_seqcells.RNN` gives it the fast loop,
`trace`, `gradient_flow`, saving and the SavedModel `step` signature.
Run: `python examples/custom_cell.py`.
"""

import keras
import numpy as np

import keras_seqcells


@keras.saving.register_keras_serializable(package="examples")
class IndRNNCell(keras_seqcells.RecurrentCell):
    """IndRNN: each unit recurs on itself only, through the vector `u`."""

    gate_names = ("h",)
    recurrent_gate_names = ()  # no recurrent matrix: `u` is declared below

    def __init__(self, units, activation="relu", **kwargs):
        super().__init__(units, activation=activation, **kwargs)

    def extra_weights(self, input_dim):
        return [keras_seqcells.CellWeight("u", (self.units,), initializer="ones")]

    def step(self, projected, states, recurrence):
        (h_prev,) = states
        h = self.activation(projected + self.u * recurrence.dropped(h_prev))
        return h, [h], {"h": h}


def main(epochs=3):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(256, 30, 2)).astype("float32")
    y = x[:, :5, 0].sum(axis=1, keepdims=True)  # needs the first steps at the end
    model = keras.Sequential(
        [keras.Input((30, 2)), keras_seqcells.RNN(IndRNNCell(32)), keras.layers.Dense(1)]
    )
    model.compile("adam", "mse")
    history = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    flow = keras_seqcells.gradient_flow(model.layers[0], x[:4])
    print(f"loss {history.history['loss'][0]:.3f} -> {history.history['loss'][-1]:.3f}")
    print(f"||dL/dh_t||: t=1 {flow['h'][0]:.2e}, t=30 {flow['h'][-1]:.2e}")
    return model


if __name__ == "__main__":
    main(epochs=20)
