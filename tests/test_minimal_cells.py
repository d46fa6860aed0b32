"""MinGRU and MinLSTM: the float64 reference, the parallel scan against the step loop,
and the machinery every cell gets (trace, gradient_flow, saving, the export `step`)."""

import zlib

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from keras_seqcells.cells.minimal import candidate, log_candidate
from keras_seqcells.layers import minimal
from tests import layer_test_helper as helper
from tests import reference_minimal as reference
from tests.cases import FLOAT64, MIN_CASES

BATCH, INPUT_DIM, UNITS = 3, 3, 4
KINDS = {ks.MinGRUCell: "min_gru", ks.MinLSTMCell: "min_lstm"}
with_case = pytest.mark.parametrize("case", MIN_CASES, ids=[case.id for case in MIN_CASES])


def _numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value))


def _rng(*labels):
    return np.random.default_rng(zlib.crc32("/".join(map(str, labels)).encode()))


def _mask(timesteps, go_backwards=False):
    """Leading masked steps (in processing order) in row 0, a gap in row 1, trailing in row 2."""
    mask = np.ones((BATCH, timesteps), bool)
    leading = slice(timesteps - 3, None) if go_backwards else slice(0, 3)
    mask[0, leading] = False
    mask[1, timesteps // 2] = False
    mask[2, -2:] = False
    return mask


def _random_weights(layer, rng, scale=0.8):
    layer.set_weights([rng.normal(scale=scale, size=w.shape) for w in layer.get_weights()])


def _twins(case, timesteps, dtype="float32", **kwargs):
    """The case's layer with the parallel path and with the step loop, same weights."""
    parallel = case.layer(UNITS, parallel=True, dtype=dtype, **kwargs)
    sequential = case.layer(UNITS, parallel=False, dtype=dtype, **kwargs)
    for layer in (parallel, sequential):
        layer.build((BATCH, timesteps, INPUT_DIM))
    _random_weights(parallel, _rng(case.id, timesteps, sorted(kwargs)))
    sequential.set_weights(parallel.get_weights())
    return parallel, sequential


# ------------------------------------------------------------ the reference
@with_case
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dtype", [FLOAT64, "float32"])
def test_cells_and_both_paths_match_the_float64_reference(case, use_bias, dtype):
    kind = KINDS[case.cell_class]
    atol = 1e-10 if dtype == "float64" else 1e-5
    rng = _rng(case.id, use_bias, dtype)
    shapes = reference.weight_shapes(kind, INPUT_DIM, UNITS, use_bias=use_bias)
    weights = {
        name: rng.normal(scale=0.8, size=shape).astype(dtype).astype(np.float64)
        for name, shape in shapes.items()
    }

    def check(actual, expected, what):
        actual = _numpy(actual).astype(np.float64)
        assert actual.shape == expected.shape, what
        np.testing.assert_allclose(actual, expected, rtol=atol, atol=atol, err_msg=what)

    # Keras's JAX scan (not unrolled) repeats the carried state at a masked
    # step, its other loops the previous output; both paths follow the backend.
    masked = "state" if keras.backend.backend() == "jax" else "previous"
    timesteps = 12
    x = rng.normal(size=(BATCH, timesteps, INPUT_DIM)).astype(dtype)
    h_0 = rng.normal(size=(BATCH, UNITS)).astype(dtype)
    layers = {
        f"{case.layer_class.__name__}(parallel={parallel})": case.layer(
            UNITS, parallel=parallel, use_bias=use_bias, dtype=dtype
        )
        for parallel in (True, False)
    }
    layers["keras.layers.RNN(cell)"] = keras.layers.RNN(
        case.cell(UNITS, use_bias=use_bias, dtype=dtype), dtype=dtype
    )
    for name, layer in layers.items():
        layer.return_sequences, layer.return_state = True, True
        layer.build((BATCH, timesteps, INPUT_DIM))
        layer.cell.set_named_weights(weights)
        assert sorted(layer.cell.named_weights()) == sorted(weights)
        for go_backwards in (False, True):
            layer.go_backwards = go_backwards
            mask = _mask(timesteps, go_backwards)
            expected, expected_state, _ = reference.run(
                kind, weights, x, h_0, mask=mask, go_backwards=go_backwards, masked=masked
            )
            outputs, state = layer(x, initial_state=[h_0], mask=mask)
            what = f"{name}, go_backwards={go_backwards}"
            check(outputs, expected, f"{what}: outputs")
            check(state, expected_state, f"{what}: state")
        layer.go_backwards = False

    _, _, expected = reference.run(kind, weights, x, h_0)
    traced = ks.trace(layers[next(iter(layers))], x, initial_state=[h_0])
    assert sorted(traced) == sorted(reference.INTERMEDIATES[kind])
    for name, value in expected.items():
        check(traced[name], value, f"trace: {name!r}")
    cell = layers["keras.layers.RNN(cell)"].cell
    gates = cell.gates(x[:, 0], [h_0])
    for name, value in expected.items():
        check(gates[name], value[:, 0], f"cell.gates: {name!r}")


def test_candidate_is_positive_continuous_and_its_log_is_finite():
    a = np.array([-80.0, -30.0, -3.0, -1e-7, 0.0, 1e-7, 2.0, 1e4], "float32")
    g = _numpy(candidate(a))
    np.testing.assert_allclose(g, reference.g(a.astype(np.float64)), rtol=1e-6)
    assert np.all(g >= 0) and g[4] == 0.5
    log_g = _numpy(log_candidate(a))
    assert np.all(np.isfinite(log_g))
    inside = g > 0
    np.testing.assert_allclose(log_g[inside], np.log(g[inside]), rtol=1e-6, atol=1e-6)


# -------------------------------------------- the parallel scan = the loop
def _outputs_and_gradients(layer, x, h_0, **call_kwargs):
    """The layer's (sequence) output and the gradients of its squared sum.

    Gradients with respect to the trainable weights, the input and `h_0`.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x, h_0 = tf.constant(x), tf.constant(h_0)
        with tf.GradientTape() as tape:
            tape.watch([x, h_0])
            output = layer(x, initial_state=[h_0], **call_kwargs)
            loss = tf.reduce_sum(output**2)
        gradients = tape.gradient(loss, [*layer.trainable_weights, x, h_0])
        return output.numpy(), [g.numpy() for g in gradients]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def loss(trainable, x, h_0):
            output, _ = layer.stateless_call(
                trainable, layer.non_trainable_variables, x, initial_state=[h_0], **call_kwargs
            )
            return jnp.sum(output**2), output

        trainable = [v.value for v in layer.trainable_variables]
        (_, output), (weights, dx, dh) = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(
            trainable, jnp.asarray(x), jnp.asarray(h_0)
        )
        return np.asarray(output), [np.asarray(g) for g in (*weights, dx, dh)]
    import torch

    x, h_0 = torch.tensor(x, requires_grad=True), torch.tensor(h_0, requires_grad=True)
    output = layer(x, initial_state=[h_0], **call_kwargs)
    (output**2).sum().backward()
    gradients = [v.value.grad for v in layer.trainable_variables] + [x.grad, h_0.grad]
    return output.detach().numpy(), [g.numpy() for g in gradients]


SETTINGS = {
    "plain": ({}, False),
    "zero_h0": ({}, False),
    "mask": ({}, True),
    "mask_zero_output": ({"zero_output_for_mask": True}, True),
    "backwards": ({"go_backwards": True}, False),
    "backwards_mask": ({"go_backwards": True}, True),
    "unroll_mask": ({"unroll": True}, True),
    "last_output_mask": ({"return_sequences": False}, True),
    "long": ({}, False),
}


@with_case
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_parallel_scan_equals_the_step_loop_with_gradients(case, setting):
    layer_kwargs, masked = SETTINGS[setting]
    layer_kwargs = {"return_sequences": True, **layer_kwargs}
    timesteps = 100 if setting == "long" else 9
    parallel, sequential = _twins(case, timesteps, **layer_kwargs)
    rng = _rng(case.id, setting)
    x = rng.normal(size=(BATCH, timesteps, INPUT_DIM)).astype("float32")
    h_0 = rng.normal(size=(BATCH, UNITS)).astype("float32")
    if setting == "zero_h0":
        h_0 = np.zeros_like(h_0)
    call_kwargs = {}
    if masked:
        call_kwargs["mask"] = _mask(timesteps, layer_kwargs.get("go_backwards", False))
    got, got_gradients = _outputs_and_gradients(parallel, x, h_0, **call_kwargs)
    want, want_gradients = _outputs_and_gradients(sequential, x, h_0, **call_kwargs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert len(got_gradients) == len(want_gradients)
    for index, (mine, theirs) in enumerate(zip(got_gradients, want_gradients, strict=True)):
        scale = max(1.0, float(np.abs(theirs).max()))
        np.testing.assert_allclose(
            mine / scale, theirs / scale, rtol=1e-5, atol=1e-5, err_msg=f"gradient {index}"
        )


@with_case
def test_parallel_scan_equals_the_step_loop_with_dropout(case):
    parallel, sequential = _twins(case, 8, return_sequences=True, dropout=0.5, seed=3)
    x = _rng(case.id, "dropout").normal(size=(BATCH, 8, INPUT_DIM)).astype("float32")
    dropped = _numpy(parallel(x, training=True))
    np.testing.assert_allclose(dropped, _numpy(sequential(x, training=True)), atol=1e-5)
    assert not np.allclose(dropped, _numpy(parallel(x, training=False)))


@with_case
def test_extreme_preactivations_stay_finite_and_agree(case):
    parallel, sequential = _twins(case, 30, return_sequences=True)
    _random_weights(parallel, _rng(case.id, "extreme"), scale=60.0)
    sequential.set_weights(parallel.get_weights())
    x = _rng(case.id, "extreme x").normal(size=(BATCH, 30, INPUT_DIM)).astype("float32")
    got, gradients = _outputs_and_gradients(parallel, x, np.zeros((BATCH, UNITS), "float32"))
    assert np.all(np.isfinite(got)) and all(np.all(np.isfinite(g)) for g in gradients)
    want = _numpy(sequential(x))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@with_case
def test_the_layer_runs_the_scan_unless_told_or_hooked(case, monkeypatch):
    combined = []

    def counting_combine(earlier, later):
        combined.append(1)
        return minimal_combine(earlier, later)

    minimal_combine = minimal._combine
    monkeypatch.setattr(minimal, "_combine", counting_combine)
    x = _rng(case.id, "paths").normal(size=(BATCH, 6, INPUT_DIM)).astype("float32")
    layer = case.layer(UNITS, return_sequences=True)
    assert layer.parallel == "auto"
    expected = _numpy(layer(x))
    assert bool(combined) == minimal.on_accelerator()
    monkeypatch.setattr(minimal, "on_accelerator", lambda: True)
    combined.clear()
    np.testing.assert_allclose(_numpy(layer(x)), expected, rtol=1e-5, atol=1e-6)
    assert combined, "'auto' on an accelerator did not run the parallel scan"
    combined.clear()
    case.layer(UNITS, parallel=False)(x)
    assert not combined
    monkeypatch.setattr(minimal, "on_accelerator", lambda: False)
    case.layer(UNITS)(x)
    assert not combined, "'auto' on a CPU runs the step loop"
    case.layer(UNITS, parallel=True)(x)
    assert combined
    with pytest.raises(ValueError, match="Expected `parallel` to be one of"):
        case.layer(UNITS, parallel="yes")


@pytest.mark.tensorflow_only(
    reason="input gradients of the parallel path taken with tf.GradientTape"
)
@with_case
def test_gradient_flow_steps_and_equals_the_parallel_paths_input_gradients(case, monkeypatch):
    import tensorflow as tf

    layer = case.layer(UNITS, return_sequences=True, parallel=True)
    x = tf.constant(_rng(case.id, "flow").normal(size=(BATCH, 7, INPUT_DIM)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = layer(x)
        per_example = tf.reduce_sum(outputs, axis=[1, 2])
    input_gradients = tape.gradient(per_example, x).numpy()
    scan = minimal._combine
    monkeypatch.setattr(minimal, "_combine", None)  # the scan must not run under the hooks
    flow = ks.gradient_flow(layer, x.numpy())
    monkeypatch.setattr(minimal, "_combine", scan)
    assert flow["h"].shape == (7,) and np.all(np.isfinite(flow["h"]))
    np.testing.assert_allclose(
        flow["x"], np.linalg.norm(input_gradients, axis=-1).mean(axis=0), rtol=1e-5, atol=1e-6
    )


@pytest.mark.tensorflow_only(reason="a tf.function with an open number of steps")
@with_case
def test_an_unknown_number_of_steps_runs_the_loop_or_is_refused(case, monkeypatch):
    import tensorflow as tf

    monkeypatch.setattr(minimal, "on_accelerator", lambda: True)

    x = _rng(case.id, "open").normal(size=(BATCH, 5, INPUT_DIM)).astype("float32")
    spec = [tf.TensorSpec((None, None, INPUT_DIM))]
    auto = case.layer(UNITS, return_sequences=True)
    expected = _numpy(auto(x))
    np.testing.assert_allclose(tf.function(auto, input_signature=spec)(x), expected, atol=1e-6)
    forced = case.layer(UNITS, parallel=True)
    forced(x)
    with pytest.raises(ValueError, match="Expected a number of timesteps known"):
        tf.function(forced, input_signature=spec)(x)


@with_case
def test_stateful_scan_carries_the_state_from_call_to_call(case):
    _, loop = _twins(case, 8, return_sequences=True)
    stateful = case.layer(UNITS, parallel=True, stateful=True, return_sequences=True)
    stateful.build((BATCH, 8, INPUT_DIM))
    stateful.set_weights(loop.get_weights())
    x = _rng(case.id, "stateful").normal(size=(BATCH, 8, INPUT_DIM)).astype("float32")
    halves = [_numpy(stateful(x[:, :5])), _numpy(stateful(x[:, 5:]))]
    np.testing.assert_allclose(np.concatenate(halves, axis=1), _numpy(loop(x)), atol=1e-5)


def test_mixed_precision_keeps_the_scan_state_in_float32():
    layer = ks.MinLSTM(UNITS, return_sequences=True, return_state=True, dtype="mixed_float16")
    x = _rng("mixed").normal(size=(BATCH, 6, INPUT_DIM)).astype("float32")
    output, state = layer(x)
    dtypes = [keras.backend.standardize_dtype(value.dtype) for value in (output, state)]
    assert dtypes == ["float16", "float32"]
    plain = ks.MinLSTM(UNITS, return_sequences=True)
    plain.build(x.shape)
    plain.set_weights(layer.get_weights())
    np.testing.assert_allclose(_numpy(output), _numpy(plain(x)), atol=5e-3)


# ------------------------------------------------ what every cell gets
@with_case
@pytest.mark.parametrize(
    "check",
    [
        helper.check_build,
        helper.check_call,
        helper.check_masking,
        helper.check_config_round_trip,
    ],
    ids=lambda check: check.__name__,
)
def test_shared_layer_checks(case, check):
    check(case)


@pytest.mark.not_on_backend(
    "torch",
    reason="Keras's SavedModel export of a torch model fails in torch.export, even for Dense",
)
@with_case
def test_shared_saved_model_export(case, tmp_path):
    helper.check_saved_model_export(case, tmp_path / "export")


def test_layers_round_trip_through_keras_saving(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6, INPUT_DIM)),
            ks.MinGRU(UNITS, return_sequences=True, parallel=False, dropout=0.1, seed=2),
            ks.MinLSTM(UNITS, go_backwards=True),
            keras.layers.Dense(2),
        ]
    )
    x = _rng("saving").normal(size=(BATCH, 6, INPUT_DIM)).astype("float32")
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    first, second = loaded.layers[0], loaded.layers[1]
    assert type(first) is ks.MinGRU and type(first.cell) is ks.MinGRUCell
    assert first.parallel is False and first.dropout == 0.1
    assert type(second.cell) is ks.MinLSTMCell and second.parallel == "auto"
    config = first.cell.get_config()
    assert "recurrent_dropout" not in config and "activation" not in config


@pytest.mark.tensorflow_only(reason="SavedModel export")
@with_case
def test_export_step_signature_equals_the_whole_sequence(case, tmp_path, monkeypatch):
    import tensorflow as tf

    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((None, INPUT_DIM), name="features")
    hidden = case.layer(UNITS, return_sequences=True, name="rnn")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="scores")(hidden))
    ks.export(model, "saved_models/min", xla=False)
    loaded = tf.saved_model.load("saved_models/min/1")
    x = _rng(case.id, "export").normal(size=(2, 7, INPUT_DIM)).astype("float32")
    model.get_layer("rnn").parallel = True  # eager, a known number of steps: the scan
    whole = _numpy(model(x))
    state = loaded.signatures["initial_state"](batch_size=tf.constant(2))
    assert sorted(state) == ["state_h"]
    stepped = []
    for t in range(x.shape[1]):
        result = loaded.signatures["step"](features=x[:, t], **state)
        state = {name: result[name] for name in state}
        stepped.append(result["scores"].numpy())
    np.testing.assert_allclose(np.stack(stepped, axis=1), whole, rtol=1e-5, atol=1e-6)
    served = loaded.signatures["serving_default"](features=x)["scores"].numpy()
    np.testing.assert_allclose(served, whole, rtol=1e-5, atol=1e-6)
