"""Checks every cell must pass, run by `test_common.py` over `tests.cases.CASES`.

Each check takes a `CellCase` and builds what it needs, so a new cell gets all
of them by being listed once in `tests/cases.py`.
"""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np

import keras_seqcells as ks

BATCH, TIMESTEPS, FEATURES, UNITS = 3, 5, 2, 4


def random_sequences(seed=0, batch=BATCH, timesteps=TIMESTEPS, features=FEATURES):
    return np.random.default_rng(seed).normal(size=(batch, timesteps, features)).astype("float32")


def output_width(case, units=UNITS):
    return case.output_units or units


def wrapped_layers(case, **rnn_kwargs):
    """The case's own layer and `keras.layers.RNN` around the case's cell."""
    return {
        "layer": case.layer(UNITS, **rnn_kwargs),
        "rnn(cell)": keras.layers.RNN(case.cell(UNITS), **rnn_kwargs),
    }


def is_keras_reset_after_gru(layer):
    """Keras's reset-after GRU, whose recurrent candidate bias has no counterpart here."""
    return type(layer) is keras.layers.GRU and layer.reset_after


def randomize_weights(layer, seed):
    """Gives every weight (biases included) random non-zero values.

    A Keras reset-after GRU keeps a zero recurrent candidate bias, the only
    value the specification's equations can express.
    """
    rng = np.random.default_rng(seed)
    weights = [rng.normal(scale=0.6, size=w.shape).astype("float32") for w in layer.get_weights()]
    if is_keras_reset_after_gru(layer) and layer.use_bias:
        weights[-1][1, 2 * layer.units :] = 0.0
    layer.set_weights(weights)
    return layer


def check_build(case):
    cell = case.cell(UNITS)
    keras.layers.RNN(cell)(random_sequences())
    blocks = len(cell.gate_names) * UNITS
    recurrent_gates = cell._recurrent_blocks()
    shapes = {w.path.split("/")[-1]: tuple(w.shape) for w in cell.weights}
    assert shapes["kernel"] == (FEATURES, blocks)
    if recurrent_gates:
        assert shapes["recurrent_kernel"] == (UNITS, len(recurrent_gates) * UNITS)
    else:
        assert "recurrent_kernel" not in shapes
    assert shapes["bias"] == (blocks,)
    assert all(str(w.dtype) == "float32" for w in cell.weights)
    state_sizes = cell.state_size if isinstance(cell.state_size, list) else [cell.state_size]
    assert all(size == UNITS for size in state_sizes)
    assert len(state_sizes) == len(cell.state_names)
    assert cell.output_size == output_width(case)
    named = cell.named_weights()
    for gate in cell.gate_names:
        assert named[f"W_x{gate}"].shape == (UNITS, FEATURES)
        assert named[f"b_{gate}"].shape == (UNITS,)
    for gate in recurrent_gates:
        assert named[f"W_h{gate}"].shape == (UNITS, UNITS)


def check_call(case):
    x = random_sequences()
    for name, layer in wrapped_layers(case, return_sequences=True, return_state=True).items():
        output, *states = layer(x)
        assert tuple(output.shape) == (BATCH, TIMESTEPS, output_width(case)), name
        assert [tuple(s.shape) for s in states] == [(BATCH, UNITS)] * len(states), name
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(output))), name
    cell = case.cell(UNITS)
    step_output, new_states = cell(x[:, 0, :], cell.get_initial_state(BATCH))
    assert tuple(step_output.shape) == (BATCH, output_width(case))
    assert len(new_states) == len(cell.get_initial_state(BATCH))


def check_masking(case):
    """A Masking layer's mask reaches the RNN, which passes it on with sequences."""
    x = random_sequences()
    x[0, 3:] = 0.0
    layer = case.layer(UNITS, return_sequences=True)
    inputs = keras.Input((TIMESTEPS, FEATURES))
    model = keras.Model(inputs, layer(keras.layers.Masking(0.0)(inputs)))
    outputs = keras.ops.convert_to_numpy(model(x))
    # Steps after the padding repeat the last real output.
    np.testing.assert_array_equal(outputs[0, 3:], np.repeat(outputs[0, 2:3], 2, axis=0))
    assert not np.allclose(outputs[1, 3:], outputs[1, 2:3])
    mask = np.any(x != 0.0, axis=-1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.compute_mask(x, mask)), mask)


def check_config_round_trip(case):
    for layer in wrapped_layers(case).values():
        config = layer.get_config()
        restored = type(layer).from_config(json.loads(json.dumps(config)))
        assert restored.get_config() == config
    cell = case.cell(UNITS, dropout=0.25, seed=7)
    config = cell.get_config()
    assert type(cell).from_config(config).get_config() == config


def check_saved_model_export(case, directory):
    """Keras's SavedModel export of a model with the layer serves the same outputs."""
    x = random_sequences()
    model = keras.Sequential([keras.Input((TIMESTEPS, FEATURES)), case.layer(UNITS)])
    expected = model.predict(x, verbose=0)
    model.export(str(directory), verbose=False)
    # Imported here so that the other checks run on backends without TensorFlow.
    import tensorflow as tf

    loaded = tf.saved_model.load(str(directory))  # keeps the variables alive
    served = loaded.serve(tf.constant(x))
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-6)


def check_trace_and_gradient_flow(case):
    """`trace` reports every step's values; `gradient_flow` every state's gradient norms."""
    layer = case.layer(UNITS)
    x = random_sequences()
    gates = ks.trace(layer, x)
    assert "h" in gates
    assert all(values.shape[:2] == (BATCH, TIMESTEPS) for values in gates.values())
    assert np.all(np.isfinite(np.concatenate([v.reshape(-1) for v in gates.values()])))
    # A loss with targets: the sum of a softmax head's outputs is constant.
    targets = np.random.default_rng(1).uniform(size=(BATCH, output_width(case)))
    flow = ks.gradient_flow(layer, x, targets.astype("float32"))
    assert sorted(flow) == sorted([*layer.cell.state_names, "x", "loss"])
    assert all(flow[name].shape == (TIMESTEPS,) for name in layer.cell.state_names)
    assert flow["h"][-1] > 0


def check_step_export(case, directory):
    """The exported `step` signature, fed a sequence step by step, gives the whole sequence."""
    import tensorflow as tf

    model = keras.Sequential(
        [
            keras.Input((TIMESTEPS, FEATURES), name="features"),
            case.layer(UNITS, return_sequences=True),
            keras.layers.Dense(2, name="scores"),
        ]
    )
    path = ks.export(model, directory, xla=False)
    loaded = tf.saved_model.load(str(path))
    x = random_sequences(seed=3)
    whole = model.predict(x, verbose=0)
    state = loaded.signatures["initial_state"](batch_size=tf.constant(BATCH))
    outputs = []
    for t in range(TIMESTEPS):
        result = loaded.signatures["step"](features=x[:, t], **state)
        state = {name: result[name] for name in state}
        outputs.append(next(v for k, v in result.items() if k not in state).numpy())
    np.testing.assert_allclose(np.stack(outputs, axis=1), whole, rtol=1e-5, atol=1e-6)
    assert sorted(state) == sorted(f"state_{name}" for name in model.layers[0].cell.state_names)


def save_models_for_fresh_process(cases, directory):
    """Saves one `.keras` model per case and wrapper; returns what a reload must give."""
    x = random_sequences(seed=1)
    np.save(directory / "inputs.npy", x)
    expected = {}
    for case in cases:
        for wrapper, layer in wrapped_layers(case, return_sequences=True).items():
            model = keras.Sequential([keras.Input((TIMESTEPS, FEATURES)), layer])
            name = f"{case.id}-{'layer' if wrapper == 'layer' else 'cell'}"
            model.save(directory / f"{name}.keras")
            expected[name] = model.predict(x, verbose=0)
    return expected


def predictions_in_fresh_process(directory):
    """Loads every `.keras` file of `directory` in a new Python process."""
    script = textwrap.dedent(
        """
        import pathlib, sys
        import numpy as np
        import keras
        import keras_seqcells  # registers the serializable classes

        directory = pathlib.Path(sys.argv[1])
        x = np.load(directory / "inputs.npy")
        for path in sorted(directory.glob("*.keras")):
            model = keras.saving.load_model(path, safe_mode=True)
            np.save(directory / (path.stem + ".out.npy"), model.predict(x, verbose=0))
        """
    )
    subprocess.run([sys.executable, "-c", script, str(directory)], check=True)
    return {
        path.name.removesuffix(".out.npy"): np.load(path) for path in directory.glob("*.out.npy")
    }
