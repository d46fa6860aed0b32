"""Exact conversion with `from_keras` / `to_keras`: outputs, weights, configs and errors."""

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from tests.layer_test_helper import is_keras_reset_after_gru, randomize_weights

BATCH, TIMESTEPS, FEATURES, UNITS = 2, 5, 3, 4
ATOL = 1e-6

# id -> (Keras class, our class, constructor arguments)
KINDS = {
    "simple_rnn": (keras.layers.SimpleRNN, ks.SimpleRNN, {}),
    "lstm": (keras.layers.LSTM, ks.LSTM, {}),
    "gru_reset_after": (keras.layers.GRU, ks.GRU, {"reset_after": True}),
    "gru_reset_before": (keras.layers.GRU, ks.GRU, {"reset_after": False}),
}


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, TIMESTEPS, FEATURES)).astype("float32")


def _built(layer):
    layer.build((None, TIMESTEPS, FEATURES))
    return layer


def _outputs(layer, inputs):
    return keras.ops.convert_to_numpy(layer(inputs))


def _assert_same_weights(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape
        assert np.array_equal(a, e)


def _keras_layer(kind, **overrides):
    keras_class, _, kwargs = KINDS[kind]
    return keras_class(UNITS, return_sequences=True, **{**kwargs, **overrides})


def _our_layer(kind, **overrides):
    _, our_class, kwargs = KINDS[kind]
    return our_class(UNITS, return_sequences=True, **{**kwargs, **overrides})


def _expected_after_round_trip(layer, weights):
    """keras -> ours -> keras keeps every weight bit for bit, except that a reset-after
    GRU's recurrent update/reset bias moves into its input bias: the specification's GRU
    has a single bias, and `to_keras` documents a zero recurrent bias."""
    if not (is_keras_reset_after_gru(layer) and layer.use_bias):
        return weights
    kernel, recurrent_kernel, bias = weights
    return [kernel, recurrent_kernel, np.stack([bias[0] + bias[1], np.zeros_like(bias[1])])]


@pytest.mark.parametrize("kind", KINDS)
def test_from_keras_is_exact_and_round_trips(kind):
    keras.utils.set_random_seed(0)
    for use_bias in (True, False):
        _check_from_keras(kind, use_bias)


def _check_from_keras(kind, use_bias):
    theirs = randomize_weights(_built(_keras_layer(kind, use_bias=use_bias, name="source")), seed=1)
    original = [w.copy() for w in theirs.get_weights()]
    inputs = _inputs()

    ours = ks.from_keras(theirs)
    assert type(ours) is KINDS[kind][1]
    assert ours.built
    assert ours.name == "source"
    np.testing.assert_allclose(_outputs(ours, inputs), _outputs(theirs, inputs), rtol=0, atol=ATOL)

    back = ks.to_keras(ours)
    assert type(back) is type(theirs)
    _assert_same_weights(back.get_weights(), _expected_after_round_trip(theirs, original))
    _assert_same_weights(theirs.get_weights(), original)
    assert back.get_config() == theirs.get_config()


@pytest.mark.parametrize("kind", KINDS)
def test_to_keras_is_exact_and_round_trips(kind):
    keras.utils.set_random_seed(0)
    for use_bias in (True, False):
        _check_to_keras(kind, use_bias)


def _check_to_keras(kind, use_bias):
    ours = randomize_weights(_built(_our_layer(kind, use_bias=use_bias)), seed=1)
    original = [w.copy() for w in ours.get_weights()]
    inputs = _inputs()

    theirs = ks.to_keras(ours)
    assert type(theirs) is KINDS[kind][0]
    assert theirs.built
    np.testing.assert_allclose(_outputs(theirs, inputs), _outputs(ours, inputs), rtol=0, atol=ATOL)

    back = ks.from_keras(theirs)
    _assert_same_weights(back.get_weights(), original)
    _assert_same_weights(ours.get_weights(), original)
    assert back.get_config() == ours.get_config()


def test_keras_reset_after_gru_with_zero_recurrent_bias_round_trips_bit_for_bit():
    keras.utils.set_random_seed(0)
    theirs = randomize_weights(_built(keras.layers.GRU(UNITS, reset_after=True)), seed=1)
    kernel, recurrent_kernel, bias = theirs.get_weights()
    bias[1] = 0.0
    theirs.set_weights([kernel, recurrent_kernel, bias])
    back = ks.to_keras(ks.from_keras(theirs))
    _assert_same_weights(back.get_weights(), [kernel, recurrent_kernel, bias])


def test_gru_to_keras_reset_after_has_zero_recurrent_bias():
    keras.utils.set_random_seed(0)
    ours = randomize_weights(_built(ks.GRU(UNITS, reset_after=True)), seed=1)
    bias = ks.to_keras(ours).get_weights()[2]
    assert bias.shape == (2, 3 * UNITS)
    assert np.array_equal(bias[1], np.zeros(3 * UNITS, dtype="float32"))


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_from_keras_follows_the_update_gate_convention(reset_after):
    """z_t weights the new candidate: the update gate's weights and bias change sign."""
    keras.utils.set_random_seed(0)
    theirs = randomize_weights(_built(keras.layers.GRU(UNITS, reset_after=reset_after)), seed=1)
    kernel, recurrent_kernel, bias = theirs.get_weights()
    if reset_after:
        bias = bias[0] + bias[1]
    blocks = {gate: slice(i * UNITS, (i + 1) * UNITS) for i, gate in enumerate("zrh")}
    sign = {"z": -1.0, "r": 1.0, "h": 1.0}

    named = ks.from_keras(theirs).cell.named_weights()

    for gate, columns in blocks.items():
        np.testing.assert_array_equal(named[f"W_x{gate}"], sign[gate] * kernel[:, columns].T)
        np.testing.assert_array_equal(
            named[f"W_h{gate}"], sign[gate] * recurrent_kernel[:, columns].T
        )
        np.testing.assert_allclose(named[f"b_{gate}"], sign[gate] * bias[columns], rtol=0, atol=0)


def test_gru_with_hard_sigmoid_converts_exactly():
    keras.utils.set_random_seed(0)
    theirs = randomize_weights(
        _built(keras.layers.GRU(UNITS, recurrent_activation="hard_sigmoid")), seed=1
    )
    inputs = _inputs()
    ours = ks.from_keras(theirs)
    np.testing.assert_allclose(_outputs(ours, inputs), _outputs(theirs, inputs), rtol=0, atol=ATOL)


def test_stateful_layer_converts_with_its_batch_size():
    keras.utils.set_random_seed(0)
    theirs = keras.layers.GRU(UNITS, stateful=True, return_sequences=True)
    theirs.build((BATCH, TIMESTEPS, FEATURES))
    randomize_weights(theirs, seed=1)
    ours = ks.from_keras(theirs)
    assert [tuple(s.shape) for s in ours.states] == [(BATCH, UNITS)]
    inputs = _inputs()
    for _ in range(2):
        np.testing.assert_allclose(
            _outputs(ours, inputs), _outputs(theirs, inputs), rtol=0, atol=ATOL
        )


def _assert_config_carried(source, converted):
    source_config, converted_config = source.get_config(), converted.get_config()
    for key in set(source_config) & set(converted_config):
        assert converted_config[key] == source_config[key], key


def test_unbuilt_layers_convert_their_config_only():
    for kind in KINDS:
        overrides = {"use_bias": False, "dropout": 0.25, "go_backwards": True, "name": kind}
        theirs = _keras_layer(kind, **overrides)
        ours = ks.from_keras(theirs)
        assert type(ours) is KINDS[kind][1]
        assert not ours.built and not theirs.built
        _assert_config_carried(theirs, ours)

        mine = _our_layer(kind, **overrides)
        back = ks.to_keras(mine)
        assert type(back) is KINDS[kind][0]
        assert not back.built and not mine.built
        _assert_config_carried(mine, back)

        assert ours(_inputs()).shape == (BATCH, TIMESTEPS, UNITS)


def test_from_keras_refuses_a_non_zero_recurrent_candidate_bias():
    keras.utils.set_random_seed(0)
    theirs = _built(keras.layers.GRU(UNITS, reset_after=True))
    kernel, recurrent_kernel, bias = theirs.get_weights()
    bias[1, :] = 0.5
    theirs.set_weights([kernel, recurrent_kernel, bias])
    with pytest.raises(ValueError, match=r"bias\[1, 2\*units:\].*Received"):
        ks.from_keras(theirs)


def test_from_keras_accepts_non_zero_recurrent_update_and_reset_biases():
    keras.utils.set_random_seed(0)
    theirs = _built(keras.layers.GRU(UNITS, reset_after=True, return_sequences=True))
    kernel, recurrent_kernel, bias = theirs.get_weights()
    bias[1, : 2 * UNITS] = np.linspace(-1.0, 1.0, 2 * UNITS)
    theirs.set_weights([kernel, recurrent_kernel, bias])
    inputs = _inputs()
    ours = ks.from_keras(theirs)
    np.testing.assert_allclose(_outputs(ours, inputs), _outputs(theirs, inputs), rtol=0, atol=ATOL)


def test_to_keras_refuses_a_simple_rnn_with_an_output_head():
    for layer in (ks.SimpleRNN(UNITS, output_units=3), _built(ks.SimpleRNN(UNITS, output_units=3))):
        with pytest.raises(ValueError, match=r"output head.*Received: output_units=3"):
            ks.to_keras(layer)


def test_gru_with_an_asymmetric_recurrent_activation_is_refused():
    keras.utils.set_random_seed(0)
    theirs = _built(keras.layers.GRU(UNITS, recurrent_activation="relu"))
    with pytest.raises(
        ValueError, match=r"recurrent_activation.*Received: recurrent_activation=relu"
    ):
        ks.from_keras(theirs)
    ours = _built(ks.GRU(UNITS, recurrent_activation="relu"))
    with pytest.raises(
        ValueError, match=r"recurrent_activation.*Received: recurrent_activation=relu"
    ):
        ks.to_keras(ours)


def test_unbuilt_gru_with_an_asymmetric_recurrent_activation_is_refused():
    """No weights can map a relu update gate between the two conventions, built or not."""
    with pytest.raises(
        ValueError, match=r"recurrent_activation.*Received: recurrent_activation=relu"
    ):
        ks.from_keras(keras.layers.GRU(UNITS, recurrent_activation="relu"))
    with pytest.raises(
        ValueError, match=r"recurrent_activation.*Received: recurrent_activation=relu"
    ):
        ks.to_keras(ks.GRU(UNITS, recurrent_activation="relu"))


FROM_KERAS_EXPECTED = r"Expected a keras\.layers\.SimpleRNN, LSTM or GRU\. Received: layer=<"
TO_KERAS_EXPECTED = r"Expected a keras_seqcells\.SimpleRNN, LSTM or GRU\. Received: layer=<"


def test_from_keras_refuses_other_layers():
    for layer in (
        keras.layers.Dense(UNITS),
        ks.LSTM(UNITS),
        ks.GRU(UNITS),
        keras.layers.RNN(keras.layers.LSTMCell(UNITS)),
    ):
        with pytest.raises(TypeError, match=FROM_KERAS_EXPECTED):
            ks.from_keras(layer)


def test_to_keras_refuses_other_layers():
    for layer in (
        keras.layers.Dense(UNITS),
        keras.layers.LSTM(UNITS),
        keras.layers.GRU(UNITS),
        keras.layers.RNN(ks.LSTMCell(UNITS)),
    ):
        with pytest.raises(TypeError, match=TO_KERAS_EXPECTED):
            ks.to_keras(layer)
