"""GradientNormLogger: per-gate and per-step gradient norms written to TensorBoard."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_seqcells as ks

STEPS, FEATURES, BATCH = 5, 3, 4


def _dense_model(recurrent):
    model = keras.Sequential(
        [keras.Input((STEPS, FEATURES)), recurrent, keras.layers.Dense(2)], name="dense_model"
    )
    model.compile(optimizer="sgd", loss="mse")
    return model


def _embedding_model():
    inputs = keras.Input((STEPS,), dtype="int32")
    x = keras.layers.Embedding(7, FEATURES)(inputs)
    x = ks.GRU(3, name="gru")(x)
    outputs = keras.layers.Dense(2)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    return model


def _data(integer=False):
    rng = np.random.default_rng(0)
    if integer:
        x = rng.integers(1, 7, size=(BATCH, STEPS)).astype("int32")
    else:
        x = rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32")
    return x, rng.normal(size=(BATCH, 2)).astype("float32")


def _independent_gate_norms(model, x, y, rnn):
    cell = rnn.cell
    with tf.GradientTape() as tape:
        loss = keras.losses.mean_squared_error(y, model(x, training=False))
        loss = tf.reduce_mean(loss)
    gradients = tape.gradient(loss, model.trainable_variables)
    by_path = {v.path: g.numpy() for v, g in zip(model.trainable_variables, gradients, strict=True)}
    expected = {}
    for block, gate in enumerate(cell.gate_names):
        columns = slice(block * cell.units, (block + 1) * cell.units)
        expected[gate] = {
            weight: np.linalg.norm(by_path[getattr(cell, weight).path][..., columns])
            for weight in ("kernel", "recurrent_kernel", "bias")
        }
    return expected


@pytest.mark.parametrize(
    "make",
    [
        lambda: ks.LSTM(3, name="rnn"),
        lambda: ks.GRU(3, name="rnn"),
        lambda: keras.layers.Bidirectional(ks.SimpleRNN(3), name="rnn"),
    ],
    ids=["lstm", "gru", "bidirectional_simple_rnn"],
)
def test_gate_and_step_norms_match_an_independent_computation(tmp_path, make):
    keras.utils.set_random_seed(0)
    model = _dense_model(make())
    x, y = _data()
    logger = ks.GradientNormLogger(tmp_path / "logs", x, y)
    model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=[logger])

    assert sorted(logger.history) == [0, 1]
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))
    values = logger.history[1]
    labels = [label for label, _, _ in ks.stepping.recurrent_layers(model)]
    assert sorted(values["gates"]) == sorted(labels)
    for label, rnn, _ in ks.stepping.recurrent_layers(model):
        expected = _independent_gate_norms(model, x, y, rnn)
        for gate, per_weight in expected.items():
            for weight, norm in per_weight.items():
                assert values["gates"][label][gate][weight] == pytest.approx(norm, rel=1e-5)

    x_tensor = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x_tensor)
        loss = tf.reduce_mean(keras.losses.mean_squared_error(y, model(x_tensor)))
    gradient = tape.gradient(loss, x_tensor).numpy()
    expected_steps = np.sqrt(np.sum(gradient**2, axis=(0, 2)))
    assert list(values["steps"]) == ["rnn"]
    np.testing.assert_allclose(values["steps"]["rnn"], expected_steps, rtol=1e-5)
    assert values["loss"] == pytest.approx(float(loss), rel=1e-5)


def test_embedding_model_every_n_epochs_and_event_contents(tmp_path):
    keras.utils.set_random_seed(1)
    model = _embedding_model()
    x, y = _data(integer=True)
    logger = ks.GradientNormLogger(str(tmp_path), x, y, every_n_epochs=2)
    model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=[logger])

    assert sorted(logger.history) == [1]
    values = logger.history[1]
    assert sorted(values["gates"]["gru"]) == ["h", "r", "z"]
    assert values["steps"]["gru"].shape == (STEPS,)
    assert np.all(values["steps"]["gru"] > 0)

    tags = set()
    for path in tmp_path.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {value.tag for value in event.summary.value}
    assert {
        "gradients/loss",
        "gradients/gru/z/kernel",
        "gradients/gru/r/recurrent_kernel",
        "gradients/gru/h/bias",
        "gradients/gru/step_0",
        f"gradients/gru/step_{STEPS - 1}",
        "gradients/gru/steps",
    } <= tags


def test_model_without_recurrent_layer_is_refused(tmp_path):
    model = keras.Sequential(
        [keras.Input((STEPS, FEATURES)), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    model.compile(optimizer="sgd", loss="mse")
    x, y = _data()
    logger = ks.GradientNormLogger(tmp_path, x, y)
    with pytest.raises(ValueError, match=r"Expected a model with at least one .*Received: model="):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[logger])


def test_mismatched_probe_shapes_are_refused(tmp_path):
    x, y = _data()
    with pytest.raises(ValueError, match=r"Expected `probe_inputs` and .*Received: probe_inputs"):
        ks.GradientNormLogger(tmp_path, x, y[:2])
    model = _dense_model(ks.LSTM(3))
    logger = ks.GradientNormLogger(tmp_path, x[:, :, :2], y)
    with pytest.raises(ValueError, match=r"Expected `probe_inputs` of .*Received: probe_inputs"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[logger])
    with pytest.raises(ValueError, match=r"every_n_epochs"):
        ks.GradientNormLogger(tmp_path, x, y, every_n_epochs=0)


def test_sequential_without_input_and_without_bias(tmp_path):
    model = keras.Sequential([ks.GRU(3, use_bias=False, name="gru"), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = _data()
    logger = ks.GradientNormLogger(tmp_path, x, y)
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0, callbacks=[logger])
    assert sorted(logger.history[0]["gates"]["gru"]["z"]) == ["kernel", "recurrent_kernel"]
    assert logger.history[0]["steps"]["gru"].shape == (STEPS,)


def _event_tags(folder):
    tags = set()
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {value.tag for value in event.summary.value}
    return tags


class _StopGradient(keras.layers.Layer):
    def call(self, inputs):
        return keras.ops.stop_gradient(inputs)


def test_a_gate_without_gradient_is_missing_not_zero(tmp_path):
    """A layer behind a stop_gradient gets no gradient: None in `history` and no
    scalar in TensorBoard, while the layer after it has real norms."""
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            ks.LSTM(3, return_sequences=True, name="cut_off"),
            _StopGradient(),
            ks.GRU(3, name="gru"),
            keras.layers.Dense(2),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    x, y = _data()
    logger = ks.GradientNormLogger(str(tmp_path), x, y)
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0, callbacks=[logger])

    values = logger.history[0]
    assert values["gates"]["cut_off"] == {
        gate: {"kernel": None, "recurrent_kernel": None, "bias": None}
        for gate in ("i", "f", "c", "o")
    }
    assert values["steps"]["cut_off"] is None
    gru = values["gates"]["gru"]
    assert all(norm > 0 for per_weight in gru.values() for norm in per_weight.values())
    assert np.all(values["steps"]["gru"] > 0)
    tags = _event_tags(tmp_path)
    assert {"gradients/gru/z/kernel", "gradients/gru/step_0"} <= tags
    assert not any(tag.startswith("gradients/cut_off/") for tag in tags), sorted(tags)


def test_a_zero_gradient_is_reported_as_zero(tmp_path):
    """With one step, C_0 = 0 makes the forget gate's gradient exactly zero; it
    exists, so it is 0.0 (and written), not missing."""
    model = keras.Sequential(
        [keras.Input((1, FEATURES)), ks.LSTM(3, name="lstm"), keras.layers.Dense(2)]
    )
    model.compile(optimizer="sgd", loss="mse")
    x, y = _data()
    logger = ks.GradientNormLogger(str(tmp_path), x[:, :1], y)
    model.fit(x[:, :1], y, epochs=1, batch_size=BATCH, verbose=0, callbacks=[logger])
    gates = logger.history[0]["gates"]["lstm"]
    assert gates["f"] == {"kernel": 0.0, "recurrent_kernel": 0.0, "bias": 0.0}
    assert gates["i"]["kernel"] > 0
    assert "gradients/lstm/f/kernel" in _event_tags(tmp_path)
