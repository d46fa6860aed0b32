"""The layers agree with Keras's built-in SimpleRNN, LSTM and GRU to float32 rounding."""

import inspect

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from tests.layer_test_helper import randomize_weights

BATCH, TIMESTEPS, FEATURES, UNITS = 3, 5, 3, 4
ATOL = 1e-6

# Layers whose weight variables are Keras's own: weights copy unchanged.
SHARED_PAIRS = [
    pytest.param(keras.layers.SimpleRNN, ks.SimpleRNN, id="simple_rnn"),
    pytest.param(keras.layers.LSTM, ks.LSTM, id="lstm"),
]
ALL_PAIRS = [
    *SHARED_PAIRS,
    pytest.param(keras.layers.GRU, ks.GRU, id="gru"),
]

# (id, layer arguments, whether the call gets a mask, whether it gets an initial state)
CALL_VARIANTS = [
    ("last", {}, False, False),
    ("sequences", {"return_sequences": True}, False, False),
    ("backwards", {"return_sequences": True, "go_backwards": True}, False, False),
    ("mask-state", {"return_sequences": True, "return_state": True}, True, False),
    (
        "mask-backwards-zero",
        {"return_sequences": True, "go_backwards": True, "zero_output_for_mask": True},
        True,
        False,
    ),
    ("initial-unroll", {"return_state": True, "unroll": True}, False, True),
]


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, TIMESTEPS, FEATURES)).astype("float32")


def _mask():
    """Right padding in one sample, a masked step in the middle of another."""
    mask = np.ones((BATCH, TIMESTEPS), dtype=bool)
    mask[0, 3:] = False
    mask[1, 2] = False
    return mask


def _initial_state(layer, seed=1):
    rng = np.random.default_rng(seed)
    sizes = layer.cell.state_size
    sizes = sizes if isinstance(sizes, (list, tuple)) else [sizes]
    return [rng.standard_normal((BATCH, size)).astype("float32") for size in sizes]


def _run(layer, inputs, use_mask=False, initial_state=None):
    kwargs = {}
    if use_mask:
        kwargs["mask"] = _mask()
    if initial_state is not None:
        kwargs["initial_state"] = initial_state
    outputs = layer(inputs, **kwargs)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [keras.ops.convert_to_numpy(o) for o in outputs]


def _assert_outputs_close(actual, expected, label=""):
    assert len(actual) == len(expected), label
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape, label
        np.testing.assert_allclose(a, e, rtol=0, atol=ATOL, err_msg=label)


def _build(layer):
    layer.build((None, TIMESTEPS, FEATURES))
    return layer


def _check_call_variants(make_pair):
    """`make_pair(layer_kwargs)` returns (reference, candidate) layers that must agree."""
    inputs = _inputs()
    for label, layer_kwargs, use_mask, use_initial_state in CALL_VARIANTS:
        reference, candidate = make_pair(layer_kwargs)
        state = _initial_state(reference) if use_initial_state else None
        expected = _run(reference, inputs, use_mask, state)
        actual = _run(candidate, inputs, use_mask, state)
        _assert_outputs_close(actual, expected, label)


def _copy_keras_into_ours(keras_class, our_class):
    def make_pair(layer_kwargs):
        theirs = _build(keras_class(UNITS, **layer_kwargs))
        randomize_weights(theirs, seed=2)
        ours = _build(our_class(UNITS, **layer_kwargs))
        ours.set_weights(theirs.get_weights())
        return theirs, ours

    return make_pair


def _copy_ours_into_keras(keras_class, our_class):
    def make_pair(layer_kwargs):
        ours = _build(our_class(UNITS, **layer_kwargs))
        randomize_weights(ours, seed=2)
        theirs = _build(keras_class(UNITS, **layer_kwargs))
        theirs.set_weights(ours.get_weights())
        return theirs, ours

    return make_pair


@pytest.mark.parametrize(("keras_class", "our_class"), SHARED_PAIRS)
def test_keras_weights_copied_into_our_layer(keras_class, our_class):
    keras.utils.set_random_seed(0)
    _check_call_variants(_copy_keras_into_ours(keras_class, our_class))


@pytest.mark.parametrize(("keras_class", "our_class"), SHARED_PAIRS)
def test_our_weights_copied_into_keras_layer(keras_class, our_class):
    keras.utils.set_random_seed(0)
    _check_call_variants(_copy_ours_into_keras(keras_class, our_class))


def test_weight_variables_match_keras():
    for keras_class, our_class in (p.values for p in SHARED_PAIRS):
        theirs = _build(keras_class(UNITS))
        ours = _build(our_class(UNITS))
        assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
        assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]


@pytest.mark.parametrize(("keras_class", "our_class"), SHARED_PAIRS)
def test_stateful_layers_agree_across_batches(keras_class, our_class):
    keras.utils.set_random_seed(0)
    theirs = keras_class(UNITS, stateful=True, return_sequences=True)
    ours = our_class(UNITS, stateful=True, return_sequences=True)
    for layer in (theirs, ours):
        layer.build((BATCH, TIMESTEPS, FEATURES))
    randomize_weights(theirs, seed=2)
    ours.set_weights(theirs.get_weights())
    for batch in (_inputs(seed=3), _inputs(seed=4)):
        _assert_outputs_close(_run(ours, batch), _run(theirs, batch))
        _assert_outputs_close(
            [keras.ops.convert_to_numpy(s) for s in ours.states],
            [keras.ops.convert_to_numpy(s) for s in theirs.states],
        )


def _stacked_model(layer_class):
    """Two recurrent layers of one class (so that their names differ) and a head."""
    return keras.Sequential(
        [
            keras.Input((TIMESTEPS, FEATURES)),
            layer_class(UNITS, return_sequences=True),
            layer_class(UNITS, go_backwards=True),
            keras.layers.Dense(2),
        ]
    )


def _randomize_model(model, seed=5):
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.normal(scale=0.6, size=w.shape).astype("float32") for w in model.get_weights()]
    )


def _predict(model):
    return keras.ops.convert_to_numpy(model(_inputs()))


@pytest.mark.parametrize(("keras_class", "our_class"), SHARED_PAIRS)
@pytest.mark.parametrize("saved_by", ["keras", "ours"])
def test_checkpoints_interchange(tmp_path, keras_class, our_class, saved_by):
    keras.utils.set_random_seed(0)
    source_class, target_class = (
        (keras_class, our_class) if saved_by == "keras" else (our_class, keras_class)
    )
    source = _stacked_model(source_class)
    _randomize_model(source)
    path = tmp_path / "x.weights.h5"
    source.save_weights(path)

    target = _stacked_model(target_class)
    target.load_weights(path)

    for loaded, saved in zip(target.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(loaded, saved)
    np.testing.assert_allclose(_predict(target), _predict(source), rtol=0, atol=ATOL)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_equals_keras_gru_after_from_keras(reset_after):
    keras.utils.set_random_seed(0)

    def make_pair(layer_kwargs):
        theirs = _build(keras.layers.GRU(UNITS, reset_after=reset_after, **layer_kwargs))
        randomize_weights(theirs, seed=2)
        ours = ks.from_keras(theirs)
        assert type(ours) is ks.GRU
        return theirs, ours

    _check_call_variants(make_pair)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_equals_keras_gru_after_to_keras(reset_after):
    keras.utils.set_random_seed(0)

    def make_pair(layer_kwargs):
        ours = _build(ks.GRU(UNITS, reset_after=reset_after, **layer_kwargs))
        randomize_weights(ours, seed=2)
        theirs = ks.to_keras(ours)
        assert type(theirs) is keras.layers.GRU
        return theirs, ours

    _check_call_variants(make_pair)


def test_gru_raw_keras_weights_mean_something_else():
    """Copying a Keras GRU's raw weights (rather than converting) changes the outputs."""
    keras.utils.set_random_seed(0)
    theirs = _build(keras.layers.GRU(UNITS, reset_after=False))
    randomize_weights(theirs, seed=2)
    ours = _build(ks.GRU(UNITS, reset_after=False))
    ours.set_weights(theirs.get_weights())
    inputs = _inputs()
    assert np.abs(_run(ours, inputs)[0] - _run(theirs, inputs)[0]).max() > 1e-2


NON_DEFAULT_KWARGS = {
    "activation": "relu",
    "use_bias": False,
    "kernel_initializer": "he_normal",
    "recurrent_initializer": "glorot_normal",
    "bias_initializer": "ones",
    "kernel_regularizer": "l2",
    "recurrent_regularizer": "l1",
    "bias_regularizer": "l1",
    "kernel_constraint": "non_neg",
    "recurrent_constraint": "unit_norm",
    "bias_constraint": "max_norm",
    "dropout": 0.25,
    "recurrent_dropout": 0.5,
    "seed": 7,
    "return_sequences": True,
    "return_state": True,
    "go_backwards": True,
    "stateful": True,
    "unroll": True,
    "name": "renamed",
}
# keras.layers.SimpleRNN ignores `activity_regularizer`, so it is compared on the others.
EXTRA_KWARGS = {
    "simple_rnn": {},
    "lstm": {
        "recurrent_activation": "hard_sigmoid",
        "unit_forget_bias": False,
        "activity_regularizer": "l2",
    },
    "gru": {
        "recurrent_activation": "hard_sigmoid",
        "reset_after": False,
        "activity_regularizer": "l2",
    },
}


def _non_default_kwargs(keras_class):
    kind = {keras.layers.SimpleRNN: "simple_rnn", keras.layers.LSTM: "lstm"}.get(keras_class, "gru")
    return {**NON_DEFAULT_KWARGS, **EXTRA_KWARGS[kind]}


def _assert_config_matches_keras(keras_class, our_class, kwargs):
    theirs = keras_class(UNITS, **kwargs)
    keras_config = theirs.get_config()
    ours = our_class(UNITS, **kwargs)
    our_config = ours.get_config()
    assert set(keras_config) <= set(our_config)
    for key, value in keras_config.items():
        assert our_config[key] == value, key

    restored = our_class.from_config(keras_config)
    assert type(restored) is our_class
    restored_config = restored.get_config()
    for key, value in keras_config.items():
        assert restored_config[key] == value, key
    assert our_class.from_config(our_config).get_config() == our_config

    for name in ("units", "use_bias", "dropout", "recurrent_dropout", "return_sequences"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.activation is theirs.activation


@pytest.mark.parametrize(("keras_class", "our_class"), ALL_PAIRS)
def test_config_matches_keras(keras_class, our_class):
    _assert_config_matches_keras(keras_class, our_class, {"name": "defaults"})
    _assert_config_matches_keras(keras_class, our_class, _non_default_kwargs(keras_class))


CONSTRUCTOR_PAIRS = [
    (keras.layers.SimpleRNN, ks.SimpleRNN),
    (keras.layers.LSTM, ks.LSTM),
    (keras.layers.GRU, ks.GRU),
    (keras.layers.SimpleRNNCell, ks.SimpleRNNCell),
    (keras.layers.LSTMCell, ks.LSTMCell),
    (keras.layers.GRUCell, ks.GRUCell),
]


def test_constructors_take_keras_arguments_with_keras_defaults():
    for keras_class, our_class in CONSTRUCTOR_PAIRS:
        keras_parameters = inspect.signature(keras_class.__init__).parameters
        our_parameters = inspect.signature(our_class.__init__).parameters
        for name, parameter in keras_parameters.items():
            if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                continue
            assert name in our_parameters, (our_class.__name__, name)
            assert our_parameters[name].default == parameter.default, (our_class.__name__, name)


def test_legacy_arguments_are_accepted_and_change_nothing():
    keras.utils.set_random_seed(0)
    inputs = _inputs()
    for our_class in (ks.LSTM, ks.GRU):
        plain = _build(our_class(UNITS))
        legacy = _build(our_class(UNITS, implementation=1, use_cudnn=False))
        assert legacy.use_cudnn is False
        legacy.set_weights(plain.get_weights())
        _assert_outputs_close(_run(legacy, inputs), _run(plain, inputs), our_class.__name__)
