"""The public cell API: a cell written by a user gets the layers' machinery from its step alone."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_seqcells as ks
from keras_seqcells.stepping import ModelStepper


@keras.saving.register_keras_serializable(package="cell_api_test")
class LeakyCell(ks.RecurrentCell):
    """`h_t = (1 - g) ⊙ h_{t-1} + g ⊙ tanh(W_xh x + W_hh h_{t-1} + b_h)`, g a sigmoid gate."""

    gate_names = ("g", "h")

    def step(self, projected, states, recurrence):
        (h_prev,) = states
        z_g, z_h = ops.split(projected + recurrence(h_prev), 2, axis=-1)
        g = ops.sigmoid(z_g)
        h = (1 - g) * h_prev + g * self.activation(z_h)
        return h, [h], {"g": g, "h": h}


@keras.saving.register_keras_serializable(package="cell_api_test")
class ScaledTwoStateCell(ks.RecurrentCell):
    """Two states, a declared per-gate scale, and the bias added after the scale."""

    gate_names = ("a", "b")
    state_names = ("h", "m")
    bias_in_projection = False

    def extra_weights(self, input_dim):
        return [
            ks.CellWeight(
                "scale", (2 * self.units,), initializer="ones", document_name="s", gates=("a", "b")
            )
        ]

    def step(self, projected, states, recurrence):
        h_prev, m_prev = states
        z = (projected + recurrence(h_prev)) * self.scale + self.bias
        z_a, z_b = ops.split(z, 2, axis=-1)
        a = ops.sigmoid(z_a)
        m = a * m_prev + (1 - a) * ops.tanh(z_b)
        h = ops.tanh(m)
        return h, [h, m], {"a": a, "m": m, "h": h}


@keras.saving.register_keras_serializable(package="cell_api_test")
class InputOnlyCell(ks.RecurrentCell):
    """A gate that does not read `h_{t-1}`: no recurrent kernel."""

    gate_names = ("z", "h")
    recurrent_gate_names = ()

    def step(self, projected, states, recurrence):
        (h_prev,) = states
        z_z, z_h = ops.split(projected, 2, axis=-1)
        z = ops.sigmoid(z_z)
        h = (1 - z) * h_prev + z * z_h
        return h, [h], {"z": z, "h": h}


USER_CELLS = [LeakyCell, ScaledTwoStateCell, InputOnlyCell]
IDS = [cls.__name__ for cls in USER_CELLS]


def _sequences(seed=0, batch=3, timesteps=6, features=5):
    return np.random.default_rng(seed).normal(size=(batch, timesteps, features)).astype("float32")


def _randomize(cell, seed):
    rng = np.random.default_rng(seed)
    for variable in cell.weights:
        variable.assign(rng.normal(scale=0.5, size=variable.shape).astype("float32"))


def _twin_layers(cell_class, **rnn_kwargs):
    """Our layer and `keras.layers.RNN` on cells with the same weights."""
    ours = ks.RNN(cell_class(4), **rnn_kwargs)
    generic = keras.layers.RNN(cell_class(4), **rnn_kwargs)
    x = _sequences()
    ours(x)
    generic(x)
    _randomize(ours.cell, seed=1)
    generic.set_weights(ours.get_weights())
    return ours, generic, x


@pytest.mark.parametrize("cell_class", USER_CELLS, ids=IDS)
@pytest.mark.parametrize(
    "rnn_kwargs",
    [{}, {"return_sequences": True}, {"go_backwards": True, "return_sequences": True}],
    ids=["last", "sequences", "backwards"],
)
def test_user_cell_on_the_fast_path_equals_the_generic_loop(cell_class, rnn_kwargs):
    ours, generic, x = _twin_layers(cell_class, **rnn_kwargs)
    mask = np.ones(x.shape[:2], bool)
    mask[0, 4:] = False
    for kwargs in ({}, {"mask": mask}):
        np.testing.assert_allclose(
            ops.convert_to_numpy(ours(x, **kwargs)),
            ops.convert_to_numpy(generic(x, **kwargs)),
            rtol=1e-5,
            atol=1e-6,
        )


@pytest.mark.tensorflow_only(reason="gradients taken with tf.GradientTape")
@pytest.mark.parametrize("cell_class", USER_CELLS, ids=IDS)
def test_user_cell_gradients_equal_the_generic_loop(cell_class):
    import tensorflow as tf

    ours, generic, x = _twin_layers(cell_class, return_sequences=True)
    gradients = []
    for layer in (ours, generic):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x) ** 2)
        gradients.append(tape.gradient(loss, layer.trainable_weights))
    for mine, theirs in zip(*gradients, strict=True):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-5)


def test_declared_weights_are_created_and_named():
    cell = ScaledTwoStateCell(4)
    cell.build((None, 3))
    names = cell.named_weights()
    assert names["s_a"].shape == (4,) and names["s_b"].shape == (4,)
    np.testing.assert_array_equal(names["s_a"], np.ones(4))
    assert {"W_xa", "W_xb", "W_ha", "W_hb", "b_a", "b_b"} <= set(names)
    cell.set_named_weights({"s_b": np.full(4, 2.0)})
    np.testing.assert_array_equal(ops.convert_to_numpy(cell.scale)[4:], np.full(4, 2.0))
    assert cell.state_size == [4, 4]


def test_a_cell_without_recurrent_gates_has_no_recurrent_kernel():
    cell = InputOnlyCell(4, recurrent_dropout=0.5)
    layer = ks.RNN(cell, return_sequences=True)
    x = _sequences()
    layer(x, training=True)
    assert cell.recurrent_kernel is None
    assert not any(name.startswith("W_h") for name in cell.named_weights())


def test_trace_reports_the_user_cells_intermediate_values():
    layer = ks.RNN(ScaledTwoStateCell(4))
    gates = ks.trace(layer, _sequences(timesteps=7))
    assert sorted(gates) == ["a", "h", "m"]
    assert gates["a"].shape == (3, 7, 4)
    assert np.all((gates["a"] > 0) & (gates["a"] < 1))


@pytest.mark.tensorflow_only(reason="gradient_flow differentiates with tf.GradientTape")
def test_gradient_flow_measures_every_state_of_a_user_cell():
    layer = ks.RNN(ScaledTwoStateCell(4), return_sequences=True)
    flow = ks.gradient_flow(layer, _sequences(timesteps=8))
    assert sorted(flow) == ["h", "loss", "m", "x"]
    assert flow["m"].shape == (8,)
    assert np.all(flow["h"] > 0)


@pytest.mark.parametrize("cell_class", USER_CELLS, ids=IDS)
def test_user_cell_layer_round_trips_through_keras_saving(cell_class, tmp_path):
    model = keras.Sequential([keras.Input((6, 5)), ks.RNN(cell_class(4)), keras.layers.Dense(2)])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = _sequences()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert type(loaded.layers[0].cell) is cell_class


@pytest.mark.parametrize("cell_class", USER_CELLS, ids=IDS)
def test_model_stepper_runs_a_user_cell_step_by_step(cell_class):
    model = keras.Sequential(
        [
            keras.Input((6, 5)),
            ks.RNN(cell_class(4), return_sequences=True),
            keras.layers.Dense(2),
        ]
    )
    x = _sequences()
    stepper = ModelStepper(model)
    states = stepper.initial_state(batch_size=3)
    outputs = []
    for t in range(x.shape[1]):
        y, states = stepper.step(x[:, t], states)
        outputs.append(ops.convert_to_numpy(y))
    np.testing.assert_allclose(
        np.stack(outputs, axis=1), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    assert stepper.state_names == [f"state_{name}" for name in cell_class.state_names]


def test_mixed_precision_keeps_a_user_cells_states_in_float32():
    cell = ScaledTwoStateCell(4, dtype="mixed_float16")
    layer = ks.RNN(cell, return_state=True, dtype="mixed_float16")
    output, h, m = layer(_sequences())
    dtypes = [keras.backend.standardize_dtype(t.dtype) for t in (output, h, m)]
    assert dtypes == ["float16", "float32", "float32"]


def test_a_cell_must_declare_gates_and_implement_step():
    class NoGates(ks.RecurrentCell):
        pass

    with pytest.raises(TypeError, match="Expected NoGates to declare its gate blocks"):
        NoGates(4).build((None, 3))

    class NoStep(ks.RecurrentCell):
        gate_names = ("h",)

    with pytest.raises(NotImplementedError, match="Expected NoStep to implement `step"):
        ks.RNN(NoStep(4))(_sequences())


def test_recurrence_multiplies_by_consecutive_blocks_only():
    cell = ks.GRUCell(4)
    cell.build((None, 3))
    recurrence = cell.recurrence()
    assert isinstance(recurrence, ks.Recurrence)
    with pytest.raises(ValueError, match="Expected consecutive gate blocks"):
        recurrence(np.ones((2, 4), "float32"), gates=("z", "h"))


@keras.saving.register_keras_serializable(package="cell_api_test")
class Scaled(ks.layers.CellLayer):
    """A layer class for `ScaledTwoStateCell`."""

    cell_class = ScaledTwoStateCell


def test_cell_layer_takes_cell_and_rnn_arguments_and_round_trips(tmp_path):
    layer = Scaled(4, return_sequences=True, dropout=0.25, go_backwards=True, name="scaled")
    assert layer.cell.dropout == 0.25 and layer.dropout == 0.25
    assert layer.go_backwards and layer.cell.name == "scaled_two_state_cell"
    config = layer.get_config()
    assert config["dropout"] == 0.25 and "cell" not in config
    model = keras.Sequential([keras.Input((6, 5)), layer])
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    x = _sequences()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    with pytest.raises(TypeError, match="Expected CellLayer to set `cell_class`"):
        ks.layers.CellLayer(4)


def test_benchmarked_user_cells_compute_our_gru():
    """`benchmarks/cell_api.py` compares cells of one set of equations (so of the same FLOPs)."""
    from benchmarks import cell_api

    x = _sequences()
    reference = ks.GRU(4, return_sequences=True)
    reference(x)
    _randomize(reference.cell, seed=2)
    for cell in (cell_api.UserGRUCell(4), cell_api.PlainGRUCell(4)):
        layer = keras.layers.RNN(cell, return_sequences=True)
        layer(x)
        layer.set_weights(reference.get_weights())
        np.testing.assert_allclose(
            ops.convert_to_numpy(layer(x)),
            ops.convert_to_numpy(reference(x)),
            rtol=1e-5,
            atol=1e-6,
        )
    train = {name: 0.01 * (i + 1) for i, name in enumerate(cell_api.LAYERS)}
    infer = {name: 0.001 for name in cell_api.LAYERS}
    table = cell_api.markdown({"train": train, "infer": infer}, "description")
    assert f"| {cell_api.USER} | 30.0 | 1.00 | 1.00 | 1.00 |" in table
    assert "| keras.layers.GRU | 10.0 | 3.00 | 1.00 | 1.00 |" in table
