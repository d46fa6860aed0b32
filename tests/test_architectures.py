"""The RNN-type model builders and truncated backpropagation through time."""

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from keras_seqcells.tbptt import (
    fit_truncated_bptt,
    predict_truncated_bptt,
    reset_states,
    truncated_bptt_chunks,
)

CELLS = ["simple_rnn", "lstm", "gru"]
LAYERS = {"simple_rnn": ks.SimpleRNN, "lstm": ks.LSTM, "gru": ks.GRU}


def _random(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _rnn_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]


@pytest.mark.parametrize("cell", CELLS)
def test_builder_shapes(cell):
    batch, steps, features, units, out = 2, 5, 3, 4, 6
    models = {
        "one_to_one": (
            ks.one_to_one(cell, input_dim=features, units=units, output_dim=out),
            _random(batch, features),
            (batch, out),
        ),
        "one_to_many": (
            ks.one_to_many(cell, input_dim=features, units=units, output_dim=out, output_steps=7),
            _random(batch, features),
            (batch, 7, out),
        ),
        "many_to_one": (
            ks.many_to_one(cell, input_dim=features, units=units, output_dim=out),
            _random(batch, steps, features),
            (batch, out),
        ),
        "many_to_many": (
            ks.many_to_many(cell, input_dim=features, units=units, output_dim=out),
            _random(batch, steps, features),
            (batch, steps, out),
        ),
        "encoder_decoder": (
            ks.encoder_decoder(
                cell, source_dim=features, target_dim=2, units=units, output_dim=out
            ),
            [_random(batch, steps, features), _random(batch, 8, 2)],
            (batch, 8, out),
        ),
    }
    for name, (model, inputs, expected) in models.items():
        assert isinstance(model, keras.Model), name
        assert not model.compiled, name
        assert tuple(model(inputs).shape) == expected, name
        assert all(isinstance(layer, LAYERS[cell]) for layer in _rnn_layers(model)), name
        assert _rnn_layers(model), name


def test_one_to_one_is_a_single_step():
    model = ks.one_to_one("simple_rnn", input_dim=3, units=4, output_dim=2)
    rnn = _rnn_layers(model)[0]
    x = _random(5, 3)
    kernel, _, bias = (np.asarray(w) for w in rnn.get_weights())
    h = np.tanh(x @ kernel + bias)
    dense = model.get_layer("output")
    expected = h @ dense.kernel.numpy() + dense.bias.numpy()
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-5)


def test_save_load_round_trip_safe_mode(tmp_path):
    model = ks.encoder_decoder("lstm", source_dim=3, target_dim=2, units=4, output_dim=5)
    inputs = [_random(2, 6, 3), _random(2, 4, 2, seed=1)]
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(inputs), model(inputs), rtol=1e-6, atol=1e-6)
    assert isinstance(loaded.get_layer("decoder"), ks.LSTM)


@pytest.mark.parametrize("cell", CELLS)
def test_encoder_decoder_decoder_uses_the_encoder_state(cell):
    model = ks.encoder_decoder(cell, source_dim=3, target_dim=2, units=4, output_dim=2)
    decoder_inputs = _random(2, 4, 2, seed=5)
    first = model([_random(2, 6, 3, seed=1), decoder_inputs])
    second = model([_random(2, 6, 3, seed=2), decoder_inputs])
    assert np.abs(np.asarray(first) - np.asarray(second)).max() > 1e-3
    # Each step's output depends on the source, not only the first step's.
    assert np.abs(np.asarray(first)[:, -1] - np.asarray(second)[:, -1]).max() > 1e-4


@pytest.mark.parametrize("cell", CELLS)
def test_stateful_chunks_equal_one_long_run(cell):
    batch, steps, features, units = 3, 24, 2, 5
    x = _random(batch, steps, features)
    stateful = ks.many_to_many(
        cell, input_dim=features, units=units, output_dim=1, stateful=True, batch_size=batch
    )
    full = ks.many_to_many(cell, input_dim=features, units=units, output_dim=1)
    full.set_weights(stateful.get_weights())

    chunked = predict_truncated_bptt(stateful, x, chunk_length=6)
    np.testing.assert_allclose(chunked, full(x), rtol=1e-5, atol=1e-5)

    # The layer's carried states after the last chunk are the final states of one run.
    layer = LAYERS[cell](units, return_state=True)
    layer(x[:, :1])
    layer.set_weights(_rnn_layers(full)[0].get_weights())
    _, *final_states = layer(x)
    carried = _rnn_layers(stateful)[0].states
    for state, expected in zip(carried, final_states, strict=True):
        np.testing.assert_allclose(state, expected, rtol=1e-5, atol=1e-5)

    # Running again starts from zeros: the states are reset between passes.
    np.testing.assert_allclose(
        predict_truncated_bptt(stateful, x, chunk_length=12), chunked, rtol=1e-5, atol=1e-5
    )
    reset_states(stateful)
    assert all(not np.asarray(state).any() for state in _rnn_layers(stateful)[0].states)


def test_truncated_bptt_chunks():
    x = np.arange(2 * 6 * 1).reshape(2, 6, 1)
    y = -x
    chunks = truncated_bptt_chunks(x, y, chunk_length=2)
    assert len(chunks) == 3
    np.testing.assert_array_equal(np.concatenate([c[0] for c in chunks], axis=1), x)
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks], axis=1), y)
    assert [c.shape for c in truncated_bptt_chunks(x, chunk_length=3)] == [(2, 3, 1)] * 2


def test_fit_truncated_bptt_lowers_the_loss():
    keras.utils.set_random_seed(0)
    batch, steps = 4, 40
    t = np.arange(steps, dtype="float32")
    phase = np.arange(batch, dtype="float32")[:, None]
    x = np.sin(0.3 * t + phase)[..., None].astype("float32")
    y = np.sin(0.3 * (t + 1) + phase)[..., None].astype("float32")
    model = ks.many_to_many(
        "lstm", input_dim=1, units=8, output_dim=1, stateful=True, batch_size=batch
    )
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    history = fit_truncated_bptt(model, x, y, chunk_length=10, epochs=15)
    assert len(history["loss"]) == 15
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < 0.5 * history["loss"][0]


def test_errors():
    with pytest.raises(ValueError, match=r"Expected `cell` to be one of .* Received: cell='rnn'"):
        ks.many_to_one("rnn", input_dim=3, units=4, output_dim=1)
    with pytest.raises(ValueError, match="Expected `units` to be a positive integer"):
        ks.many_to_many("gru", input_dim=3, units=0, output_dim=1)
    with pytest.raises(TypeError, match=r"an integer\. Received: output_steps=2\.5"):
        ks.one_to_many("gru", input_dim=3, units=4, output_dim=1, output_steps=2.5)
    with pytest.raises(ValueError, match="Received: source_steps=-1"):
        ks.encoder_decoder("lstm", 3, 2, 4, 1, source_steps=-1)
    with pytest.raises(TypeError, match="Received: input_dim=True"):
        ks.one_to_one("lstm", input_dim=True, units=4, output_dim=1)
    with pytest.raises(ValueError, match="Expected a fixed `batch_size`"):
        ks.many_to_many("lstm", input_dim=1, units=2, output_dim=1, stateful=True)

    x = np.zeros((2, 6, 1), "float32")
    with pytest.raises(ValueError, match=r"divide the number of timesteps.*chunk_length=4"):
        truncated_bptt_chunks(x, chunk_length=4)
    with pytest.raises(ValueError, match=r"positive integer\. Received: chunk_length=0"):
        truncated_bptt_chunks(x, chunk_length=0)
    with pytest.raises(ValueError, match=r"Received: x.shape=\(2, 6\)"):
        truncated_bptt_chunks(np.zeros((2, 6)), chunk_length=2)
    with pytest.raises(ValueError, match=r"Received: y.shape=\(2, 5, 1\)"):
        truncated_bptt_chunks(x, np.zeros((2, 5, 1)), chunk_length=2)

    plain = ks.many_to_many("gru", input_dim=1, units=2, output_dim=1)
    plain.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"stateful=True.*Received: model with non-stateful"):
        fit_truncated_bptt(plain, x, x, chunk_length=2)
    with pytest.raises(ValueError, match="Received: model with non-stateful"):
        predict_truncated_bptt(plain, x, chunk_length=2)
    stateful = ks.many_to_many(
        "gru", input_dim=1, units=2, output_dim=1, stateful=True, batch_size=3
    )
    with pytest.raises(ValueError, match=r"fixed batch size \(3\). Received: x.shape\[0\]=2"):
        predict_truncated_bptt(stateful, x, chunk_length=2)
    with pytest.raises(ValueError, match=r"Received: model\.optimizer=None"):
        fit_truncated_bptt(stateful, np.zeros((3, 6, 1)), np.zeros((3, 6, 1)), chunk_length=2)
    with pytest.raises(ValueError, match="Received: epochs=0"):
        fit_truncated_bptt(stateful, np.zeros((3, 6, 1)), np.zeros((3, 6, 1)), 2, epochs=0)
