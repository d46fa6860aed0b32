"""Under a mixed precision policy: float32 variables and states, half-precision outputs."""

import keras
import numpy as np
import pytest

BATCH, TIMESTEPS, FEATURES, UNITS = 2, 5, 3, 4

# Largest absolute difference allowed from the float32 result: float16 keeps 11
# significant bits, bfloat16 only 8.
POLICIES = {"mixed_float16": 5e-3, "mixed_bfloat16": 3e-2}
# Epochs beyond the first three that training may take to change the weights.
MORE_EPOCHS = 5


def _dtype(x):
    return keras.backend.standardize_dtype(x.dtype)


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, TIMESTEPS, FEATURES)).astype("float32")


def _numpy(x):
    return keras.ops.convert_to_numpy(keras.ops.cast(x, "float32"))


def _layer(case, policy, **kwargs):
    """A built layer under `policy`, with the same random weights for every policy."""
    keras.config.set_dtype_policy(policy)
    layer = case.layer(UNITS, **kwargs)
    layer.build((BATCH, TIMESTEPS, FEATURES))
    rng = np.random.default_rng(1)
    layer.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()]
    )
    return layer


def _assert_float32_variables(layer):
    assert layer.weights
    assert {_dtype(v) for v in layer.weights} == {"float32"}


def _assert_close(actual, expected, policy):
    np.testing.assert_allclose(_numpy(actual), _numpy(expected), rtol=0, atol=POLICIES[policy])


@pytest.mark.parametrize("policy", POLICIES)
def test_outputs_are_half_precision_and_states_float32(case, policy):
    compute_dtype = keras.mixed_precision.Policy(policy).compute_dtype
    _check_returned_states(case, policy, compute_dtype)
    _check_stateful(case, policy, compute_dtype)


def _check_returned_states(case, policy, compute_dtype):
    half = _layer(case, policy, return_sequences=True, return_state=True)
    _assert_float32_variables(half)
    assert half.cell.compute_dtype == compute_dtype
    output, *states = half(_inputs())
    assert _dtype(output) == compute_dtype
    assert output.shape == (BATCH, TIMESTEPS, case.output_units or UNITS)
    assert states
    assert [_dtype(s) for s in states] == ["float32"] * len(states)

    full = _layer(case, "float32", return_sequences=True, return_state=True)
    full_output, *full_states = full(_inputs())
    _assert_close(output, full_output, policy)
    for state, full_state in zip(states, full_states, strict=True):
        _assert_close(state, full_state, policy)


def _check_stateful(case, policy, compute_dtype):
    half = _layer(case, policy, stateful=True)
    full = _layer(case, "float32", stateful=True)
    for seed in (2, 3):
        output = half(_inputs(seed))
        assert _dtype(output) == compute_dtype
        assert [_dtype(s) for s in half.states] == ["float32"] * len(half.states)
        _assert_float32_variables(half)
        _assert_close(output, full(_inputs(seed)), policy)
        for state, full_state in zip(half.states, full.states, strict=True):
            _assert_close(state, full_state, policy)


@pytest.mark.parametrize("policy", POLICIES)
def test_stateful_layer_stores_its_float32_states(case, policy):
    """The states a stateful layer keeps are exactly the float32 states it returns."""
    stateful = _layer(case, policy, stateful=True, return_state=True)
    for seed in (2, 3):
        _, *states = stateful(_inputs(seed))
        assert [_dtype(s) for s in stateful.states] == ["float32"] * len(states)
        for stored, returned in zip(stateful.states, states, strict=True):
            np.testing.assert_array_equal(_numpy(stored), _numpy(returned))


@pytest.mark.parametrize("policy", POLICIES)
def test_small_model_trains_with_finite_loss(case, policy):
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy(policy)
    recurrent = case.layer(UNITS)
    model = keras.Sequential([keras.Input((TIMESTEPS, FEATURES)), recurrent, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", run_eagerly=True)
    before = [w.copy() for w in recurrent.get_weights()]
    targets = np.random.default_rng(4).standard_normal((BATCH, 1)).astype("float32")

    losses = model.fit(_inputs(), targets, batch_size=BATCH, epochs=3, verbose=0).history["loss"]
    # Under mixed_float16 Keras's dynamic loss scaling skips the steps whose
    # scaled gradients overflow float16 while it halves the scale. A layer norm
    # of W_h h_0 = 0 (zero variance) scales gradients by 1/sqrt(epsilon), about
    # 32, so the layer-normalised cells skip a few more first steps.
    for _ in range(MORE_EPOCHS):
        if _changed(recurrent.get_weights(), before):
            break
        losses += model.fit(_inputs(), targets, batch_size=BATCH, verbose=0).history["loss"]

    assert np.all(np.isfinite(losses))
    _assert_float32_variables(recurrent)
    after = recurrent.get_weights()
    assert all(np.all(np.isfinite(w)) for w in after)
    assert _changed(after, before)


def _changed(weights, before):
    return any(not np.array_equal(a, b) for a, b in zip(weights, before, strict=True))
