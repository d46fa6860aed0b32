"""Gradient flow (BPTT norms), chrono initialisation, gate heatmaps and their commands."""

import json
import re

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from keras_seqcells import cli
from keras_seqcells.diagnostics.adding import adding_problem
from keras_seqcells.diagnostics.gates import gate_view
from keras_seqcells.diagnostics.long_range import (
    compare_gradient_flow,
    compare_initialisations,
    short_training_run,
    train_adding,
)
from keras_seqcells.diagnostics.plots import plot_gates, plot_initialisations
from keras_seqcells.diagnostics.trace import trace_model
from keras_seqcells.stepping import ModelStepper, recurrent_layers
from keras_seqcells.tasks import Forecasting, NextWord, Tagging, TextClassification, TrainSettings
from keras_seqcells.tasks.tagging import TaggedData
from tests.cases import CASE_IDS, CASE_PARAMS, CASES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _linear_rnn(units, input_dim, rng, **kwargs):
    layer = ks.SimpleRNN(units, activation="linear", dtype="float64", **kwargs)
    layer.build((None, None, input_dim))
    layer.cell.set_named_weights(
        {
            "W_xh": rng.normal(size=(units, input_dim)),
            "W_hh": 0.6 * rng.normal(size=(units, units)),
            "b_h": rng.normal(size=units),
        }
    )
    return layer


@pytest.mark.parametrize("return_sequences", [False, True])
def test_gradient_flow_of_a_linear_rnn_is_a_product_of_recurrent_matrices(return_sequences):
    rng = np.random.default_rng(0)
    units, input_dim, steps = 3, 2, 6
    layer = _linear_rnn(units, input_dim, rng, return_sequences=return_sequences)
    weights = layer.cell.named_weights()
    flow = ks.gradient_flow(layer, rng.normal(size=(2, steps, input_dim)))
    # L_b = sum of the output: h_T alone, or every h_s with return_sequences.
    # h_s = W_hh h_{s-1} + ..., so dh_s/dh_t = W_hh^(s-t) and
    # dL/dh_t = sum over s >= t of (W_hh^T)^(s-t) 1 (the same for every example).
    expected_h = np.zeros((steps, units))
    for t in range(steps):
        later = range(t, steps) if return_sequences else [steps - 1]
        for s in later:
            expected_h[t] += np.linalg.matrix_power(weights["W_hh"].T, s - t) @ np.ones(units)
    expected_x = expected_h @ weights["W_xh"]  # dL/dx_t = W_xh^T dL/dh_t
    np.testing.assert_allclose(flow["h"], np.linalg.norm(expected_h, axis=1), rtol=1e-10)
    np.testing.assert_allclose(flow["x"], np.linalg.norm(expected_x, axis=1), rtol=1e-10)
    assert set(flow) == {"h", "x", "loss"}


def _central_difference_norms(layer, x, targets, eps=1e-6):
    """mean over the batch of ||dL_b/dx_t[b]||, from central differences of the layer's loss."""

    def loss(values):
        out = keras.ops.convert_to_numpy(layer(values))
        return np.mean((out - targets) ** 2, axis=tuple(range(1, out.ndim)))

    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape[1:]):
        shifted = x.copy()
        shifted[(slice(None), *index)] += eps
        plus = loss(shifted)
        shifted[(slice(None), *index)] -= 2 * eps
        grad[(slice(None), *index)] = (plus - loss(shifted)) / (2 * eps)
    return np.linalg.norm(grad, axis=-1).mean(axis=0)


@pytest.mark.parametrize("case", CASE_PARAMS, ids=CASE_IDS)
@pytest.mark.parametrize("go_backwards", [False, True])
def test_gradient_flow_matches_finite_differences(case, go_backwards):
    rng = np.random.default_rng(1)
    layer = case.layer(3, return_sequences=True, go_backwards=go_backwards, dtype="float64")
    x = rng.normal(size=(2, 4, 2))
    layer.build(x.shape)
    targets = rng.normal(size=keras.ops.shape(layer(x)))
    flow = ks.gradient_flow(layer, x, targets, loss="mse")
    expected = _central_difference_norms(layer, x, targets)
    order = slice(None, None, -1) if go_backwards else slice(None)
    np.testing.assert_allclose(flow["x"], expected[order], rtol=1e-6)
    out = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(flow["loss"], np.mean((out - targets) ** 2), rtol=1e-10)


@pytest.mark.parametrize("case", CASE_PARAMS, ids=CASE_IDS)
def test_gradient_flow_is_finite_and_shaped_over_long_sequences(case):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 60, 2)).astype("float32")
    layer = case.layer(5, seed=0)
    # A softmax head's outputs sum to 1, so the default (summed) loss would be flat.
    targets = rng.uniform(size=keras.ops.shape(layer(x)))
    flow = ks.gradient_flow(layer, x, targets)
    expected_keys = {*layer.cell.state_names, "x", "loss"}
    assert set(flow) == expected_keys
    for key in expected_keys - {"loss"}:
        assert flow[key].shape == (60,)
        assert np.all(np.isfinite(flow[key]))
    assert flow["h"][-1] > 0


def test_gradient_flow_of_a_sequential_model_goes_through_its_head():
    rng = np.random.default_rng(3)
    x, targets = rng.normal(size=(4, 10, 2)), rng.normal(size=(4, 1))
    recurrent = ks.GRU(4, seed=0, dtype="float64", name="gru")
    head = keras.layers.Dense(1, dtype="float64")
    model = keras.Sequential([keras.Input((10, 2), dtype="float64"), recurrent, head])
    flows = ks.gradient_flow(model, x, targets)
    assert list(flows) == ["gru"]
    flow = flows["gru"]
    # dL/dh_T is the head's kernel times 2 (prediction - target), per example.
    error = keras.ops.convert_to_numpy(model(x)) - targets
    kernel = keras.ops.convert_to_numpy(head.kernel)[:, 0]
    expected = np.mean(np.abs(2 * error[:, 0]) * np.linalg.norm(kernel))
    np.testing.assert_allclose(flow["h"][-1], expected, rtol=1e-10)


def _set_linear_weights(cell, input_dim, rng):
    units = cell.units
    cell.set_named_weights(
        {
            "W_xh": rng.normal(size=(units, input_dim)),
            "W_hh": 0.6 * rng.normal(size=(units, units)),
            "b_h": rng.normal(size=units),
        }
    )
    return cell.named_weights()


def _linear_bptt(w_hh, upstream, backwards=False):
    """dL/dh_t of a linear RNN whose output at step t receives `upstream[t]`.

    Going forward, h_t reaches h_{t+1} through W_hh, so
    dL/dh_t = upstream[t] + W_hh^T dL/dh_{t+1} (mirrored for a backward layer,
    whose steps are listed in input order).
    """
    gradients = np.zeros_like(upstream)
    carry = np.zeros(upstream.shape[1])
    steps = range(len(upstream)) if backwards else reversed(range(len(upstream)))
    for t in steps:
        carry = upstream[t] + w_hh.T @ carry
        gradients[t] = carry
    return gradients


@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
def test_gradient_flow_of_a_stacked_bidirectional_linear_model(merge_mode):
    rng = np.random.default_rng(4)
    steps, input_dim = 6, 2
    linear = {"activation": "linear", "dtype": "float64"}
    inputs = keras.Input((steps, input_dim), dtype="float64")
    bi = keras.layers.Bidirectional(
        ks.SimpleRNN(3, return_sequences=True, **linear),
        merge_mode=merge_mode,
        name="bi",
        dtype="float64",
    )
    top = ks.SimpleRNN(2, name="top", **linear)
    model = keras.Model(inputs, top(bi(inputs)))
    forward = _set_linear_weights(bi.forward_layer.cell, input_dim, rng)
    backward = _set_linear_weights(bi.backward_layer.cell, input_dim, rng)
    top_weights = _set_linear_weights(top.cell, 6 if merge_mode == "concat" else 3, rng)
    flows = ks.gradient_flow(model, rng.normal(size=(2, steps, input_dim)))
    assert list(flows) == ["bi/forward", "bi/backward", "top"]

    # L_b = sum of top's last output: only h_T of the top layer meets the loss.
    upstream = np.zeros((steps, 2))
    upstream[-1] = 1.0
    expected = {"top": _linear_bptt(top_weights["W_hh"], upstream)}
    top_x = expected["top"] @ top_weights["W_xh"]  # dL/d(bi's output at step t)
    split = {"concat": (top_x[:, :3], top_x[:, 3:]), "sum": (top_x, top_x)}[merge_mode]
    expected["bi/forward"] = _linear_bptt(forward["W_hh"], split[0])
    # The backward layer's output at input step t is its state after reading
    # steps T..t: it reaches the loss through the steps before t.
    expected["bi/backward"] = _linear_bptt(backward["W_hh"], split[1], backwards=True)
    x_weights = {"bi/forward": forward, "bi/backward": backward, "top": top_weights}
    for label, h in expected.items():
        np.testing.assert_allclose(flows[label]["h"], np.linalg.norm(h, axis=1), rtol=1e-10)
        x = h @ x_weights[label]["W_xh"]
        np.testing.assert_allclose(flows[label]["x"], np.linalg.norm(x, axis=1), rtol=1e-10)


def _difference_norms(loss_of, x, eps=1e-6):
    """Mean over the batch of ||dL_b/dx_t[b]||, by central differences.

    `loss_of(x)` returns the per-example losses; the examples do not
    interact, so one perturbation of entry (t, k) of every example at once
    gives every example's derivative. Steps whose input is all zeros are
    padding (masked), so they are not perturbed: their derivative is zero.
    """
    grad = np.zeros_like(x)
    padding = np.all(x == 0, axis=-1)
    for index in np.ndindex(x.shape[1:]):
        shifted = x.copy()
        shifted[(slice(None), *index)] += eps
        shifted[padding] = 0.0
        plus = loss_of(shifted)
        shifted[(slice(None), *index)] -= 2 * eps
        shifted[padding] = 0.0
        grad[(slice(None), *index)] = (plus - loss_of(shifted)) / (2 * eps)
    grad[padding] = 0.0
    return np.linalg.norm(grad, axis=-1).mean(axis=0)


def test_gradient_flow_of_a_masked_stacked_bidirectional_model_matches_finite_differences():
    rng = np.random.default_rng(6)
    batch, steps, input_dim = 2, 5, 2
    inputs = keras.Input((steps, input_dim), dtype="float64")
    bi = keras.layers.Bidirectional(
        ks.LSTM(3, return_sequences=True, dtype="float64"), name="bi", dtype="float64"
    )
    top = ks.GRU(3, return_sequences=True, name="top", dtype="float64")
    head = keras.layers.Dense(1, dtype="float64")
    masked = keras.layers.Masking(dtype="float64")(inputs)
    model = keras.Model(inputs, head(top(bi(masked))))
    for cell in (bi.forward_layer.cell, bi.backward_layer.cell, top.cell):
        cell.set_named_weights(
            {name: 0.7 * rng.normal(size=np.shape(w)) for name, w in cell.named_weights().items()}
        )
    x = rng.normal(size=(batch, steps, input_dim))
    x[1, -2:] = 0.0  # the second sequence is two steps shorter
    targets = rng.normal(size=(batch, steps, 1))
    flows = ks.gradient_flow(model, x, targets, loss="mse")
    assert list(flows) == ["bi/forward", "bi/backward", "top"]

    def per_example(outputs):
        return np.mean((keras.ops.convert_to_numpy(outputs) - targets) ** 2, axis=(1, 2))

    np.testing.assert_allclose(flows["top"]["loss"], per_example(model(x)).mean(), rtol=1e-12)

    def mask_of(values):
        return np.any(values != 0, axis=-1)

    def bi_output(x_forward, x_backward):
        # What Bidirectional computes, with a separate input for each direction.
        forward = bi.forward_layer(x_forward, mask=mask_of(x_forward))
        backward = bi.backward_layer(x_backward, mask=mask_of(x_backward))
        return keras.ops.concatenate([forward, keras.ops.flip(backward, axis=1)], axis=-1)

    def top_loss(y):
        return per_example(head(top(y, mask=mask_of(x))))

    y = keras.ops.convert_to_numpy(bi_output(x, x))
    expected = {
        "bi/forward": _difference_norms(lambda v: top_loss(bi_output(v, x)), x),
        "bi/backward": _difference_norms(lambda v: top_loss(bi_output(x, v)), x),
        "top": _difference_norms(top_loss, np.where(mask_of(x)[..., None], y, 0.0)),
    }
    for label, norms in expected.items():
        np.testing.assert_allclose(flows[label]["x"], norms, rtol=1e-6, atol=1e-12)
    # No later step, no later layer: at the last step the forward LSTM's
    # state reaches the loss only through its output, the top layer's input.
    assert flows["bi/forward"]["x"][-1] > 0
    for label in ("bi/forward", "bi/backward"):
        assert set(flows[label]) == {"h", "c", "x", "loss"}
        assert np.all(flows[label]["h"] > 0)


def test_gradient_flow_errors_are_clear():
    with pytest.raises(TypeError, match=r"Expected `model` to be a keras\.layers\.RNN"):
        ks.gradient_flow(keras.layers.Dense(3), np.zeros((1, 2, 3)))
    dense = keras.Sequential([keras.Input((5, 2)), keras.layers.Dense(1)])
    with pytest.raises(TypeError, match="without one"):
        ks.gradient_flow(dense, np.zeros((1, 5, 2)))
    two = keras.Sequential([keras.Input((5, 2)), ks.LSTM(3, return_sequences=True), ks.GRU(3)])
    with pytest.raises(ValueError, match="only with a single recurrent layer"):
        ks.gradient_flow(two, np.zeros((1, 5, 2)), initial_state=[np.zeros((1, 3))])
    shared = ks.GRU(2, return_sequences=True)
    inputs = keras.Input((5, 2))
    twice = keras.Model(inputs, shared(shared(inputs)))
    with pytest.raises(ValueError, match="called once"):
        ks.gradient_flow(twice, np.zeros((1, 5, 2)))
    assert "inner_loop" not in vars(shared)  # the layer is left as it was
    with pytest.raises(ValueError, match="rank 3"):
        ks.gradient_flow(ks.LSTM(3), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="at least one step"):
        ks.gradient_flow(ks.LSTM(3), np.zeros((1, 0, 2)))


# ------------------------------------------------------------ chrono init
def test_lstm_chrono_init_follows_its_distribution():
    t_max, units = 80, 512
    layer = ks.LSTM(units, chrono_init=t_max, seed=4)
    layer.build((None, None, 3))
    weights = layer.cell.named_weights()
    b_f = weights["b_f"]
    assert np.all((b_f >= 0.0) & (b_f <= np.log(t_max - 1) + 1e-6))
    np.testing.assert_array_equal(weights["b_i"], -b_f)
    # exp(b_f) is uniform on (1, T_max - 1): mean T_max / 2, and it fills the range.
    u = np.exp(b_f)
    assert abs(u.mean() - t_max / 2) < 4.0
    assert u.min() < 3.0 and u.max() > t_max - 3.0
    np.testing.assert_array_equal(weights["b_c"], 0.0)
    np.testing.assert_array_equal(weights["b_o"], 0.0)
    # unit_forget_bias is overridden; the seed makes the draw reproducible.
    again = ks.LSTMCell(units, chrono_init=t_max, seed=4, unit_forget_bias=True)
    again.build((None, 3))
    np.testing.assert_array_equal(again.named_weights()["b_f"], b_f)
    other = ks.LSTMCell(units, chrono_init=t_max, seed=5)
    other.build((None, 3))
    assert not np.array_equal(other.named_weights()["b_f"], b_f)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_chrono_init_keeps_the_state(reset_after):
    t_max, units = 60, 512
    layer = ks.GRU(units, chrono_init=t_max, seed=1, reset_after=reset_after)
    layer.build((None, None, 3))
    weights = layer.cell.named_weights()
    b_z = weights["b_z"]
    assert np.all((b_z <= 0.0) & (b_z >= -np.log(t_max - 1) - 1e-6))
    assert abs(np.exp(-b_z).mean() - t_max / 2) < 4.0
    np.testing.assert_array_equal(weights["b_r"], 0.0)
    np.testing.assert_array_equal(weights["b_h"], 0.0)
    # z_t weights the new candidate: small z keeps h_{t-1}.
    gates = ks.trace(layer, np.zeros((1, 2, 3), dtype="float32"))
    assert gates["z"].mean() < 0.2


@pytest.mark.parametrize("layer_class", [ks.LSTM, ks.GRU])
def test_chrono_init_round_trips_and_converts(layer_class):
    layer = layer_class(4, chrono_init=30, seed=2)
    config = layer.get_config()
    assert config["chrono_init"] == 30
    restored = layer_class.from_config(json.loads(json.dumps(config)))
    assert restored.get_config() == config
    cell = layer.cell
    assert type(cell).from_config(cell.get_config()).chrono_init == 30
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    ours = keras.ops.convert_to_numpy(layer(x))
    theirs = ks.to_keras(layer)
    assert "chrono_init" not in theirs.get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(theirs(x)), ours, atol=1e-6)
    back = ks.from_keras(theirs)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(back(x)), ours, atol=1e-6)


def test_chrono_init_errors_are_clear():
    with pytest.raises(ValueError, match=r"a finite number above 2\. Received: chrono_init=2"):
        ks.LSTM(4, chrono_init=2)
    with pytest.raises(TypeError, match="Received: chrono_init='long'"):
        ks.GRUCell(4, chrono_init="long")
    with pytest.raises(ValueError, match="use_bias=True"):
        ks.LSTMCell(4, chrono_init=10, use_bias=False)


def test_chrono_init_makes_lstm_gradients_reach_far_back():
    x = np.random.default_rng(5).normal(size=(8, 80, 2)).astype("float32")

    def lstm(**kwargs):
        # Seeded weights: the test must not depend on the tests run before it.
        return ks.LSTM(
            16,
            kernel_initializer=keras.initializers.GlorotUniform(seed=0),
            recurrent_initializer=keras.initializers.Orthogonal(seed=1),
            seed=0,
            **kwargs,
        )

    plain = ks.gradient_flow(lstm(), x)
    chrono = ks.gradient_flow(lstm(chrono_init=80), x)
    # Over eight weight seeds the ratios were 970 to 99,000 for h and 3,500
    # to 960,000 for x.
    assert chrono["h"][0] > 100 * plain["h"][0]
    assert chrono["x"][0] / chrono["x"][-1] > 100 * plain["x"][0] / plain["x"][-1]


# ------------------------------------------------- the long-range experiment
def test_adding_problem_and_exploding_gradients():
    inputs, targets = adding_problem(16, 12, seed=0)
    assert inputs.shape == (16, 12, 2) and targets.shape == (16, 1)
    np.testing.assert_array_equal(inputs[..., 1].sum(axis=1), 2.0)
    expected = (inputs[..., 0] * inputs[..., 1]).sum(axis=1)
    np.testing.assert_allclose(targets[:, 0], expected, rtol=1e-6)
    flows = compare_gradient_flow(timesteps=60, units=16, examples=4, recurrent_scale=3.0)
    assert set(flows) == {"simple_rnn", "lstm", "gru", "lstm_chrono", "gru_chrono"}
    assert flows["simple_rnn"]["h"][0] > 1e3 * flows["simple_rnn"]["h"][-1]  # exploding
    options = {"timesteps": 60, "units": 16, "recurrent_scale": 3.0, "steps": 8}
    wild = short_training_run(**options)
    clipped = short_training_run(**options, clipnorm=1.0)
    assert wild.diverged and not clipped.diverged
    assert wild.max_abs_weight > 1e3 > clipped.max_abs_weight


def test_chrono_initialisation_runs_and_plot(tmp_path):
    options = {"timesteps": 40, "units": 8, "steps": 2, "batch_size": 8}
    runs = compare_initialisations(
        ("gru", "gru_chrono"), test_examples=16, flow_examples=8, **options
    )
    for run in runs.values():
        assert len(run.losses) == 2 and np.all(np.isfinite(run.losses))
        assert run.flow_before.shape == run.flow_after.shape == (40,)
        assert 0.0 <= run.test_accuracy <= 1.0 and np.isfinite(run.test_loss)
        assert set(run.summary()) >= {"test_loss", "ratio_before", "ratio_after"}
    # Same seed, same everything else: chrono lets the gradient reach step 1
    # (for the LSTM, see test_chrono_init_makes_lstm_gradients_reach_far_back).
    assert runs["gru_chrono"].ratio_before > 1000 * runs["gru"].ratio_before
    assert runs["gru_chrono"].ratio_after > 1000 * runs["gru"].ratio_after
    path = tmp_path / "initialisations.png"
    plot_initialisations(runs, path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(ValueError, match="Received: label='rnn'"):
        train_adding("rnn", **options)


# ---------------------------------------------------------------- gate plots
@pytest.fixture(scope="module")
def text_model_path(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("text_model")
    task = TextClassification(max_tokens=200, sequence_length=8, embedding_dim=4)
    settings = TrainSettings(units=4, epochs=1, verbose=0, output_dir=str(output_dir))
    task.train(settings, limit=64)
    return output_dir / "model.keras"


def test_trace_model_follows_the_masked_bidirectional_layer(text_model_path):
    model = keras.saving.load_model(text_model_path, safe_mode=True)
    text = "a film about the end"
    traced = trace_model(model, text)
    assert [item["name"] for item in traced] == ["encoder/forward", "encoder/backward"]
    vectorizer = model.get_layer("vectorizer")
    ids = keras.ops.convert_to_numpy(vectorizer(np.array([text])))[0]
    real = int(np.count_nonzero(ids))
    vocabulary = vectorizer.get_vocabulary()
    for item in traced:
        assert item["labels"] == [vocabulary[i] for i in ids[:real]]
        assert set(item["gates"]) == {"z", "r", "h_tilde", "h"}
        assert item["gates"]["z"].shape == (4, real)
    # The encoder's output is the forward h at the last real token and the
    # backward h at the first one (input order): the trace skips the padding
    # exactly as the mask does.
    encoder = keras.Model(model.input, model.get_layer("encoder").output)
    output = keras.ops.convert_to_numpy(encoder(np.array([text])))[0]
    forward, backward = traced
    np.testing.assert_allclose(output[:4], forward["gates"]["h"][:, -1], atol=1e-6)
    np.testing.assert_allclose(output[4:], backward["gates"]["h"][:, 0], atol=1e-6)


def test_plot_gates_writes_a_png(text_model_path, tmp_path):
    model = keras.saving.load_model(text_model_path, safe_mode=True)
    path = tmp_path / "gates.png"
    view = gate_view(model, "a witty film")
    plot_gates(view, path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert len(view.traces) == 2
    assert view.next_words is None and view.values is None
    assert [name for name, _, _ in recurrent_layers(model)] == [
        "encoder/forward",
        "encoder/backward",
    ]


def test_gates_of_a_numeric_stacked_model_use_step_numbers(tmp_path):
    model = keras.Sequential(
        [keras.Input((6, 1)), ks.LSTM(3, return_sequences=True, name="low"), ks.SimpleRNN(2)]
    )
    view = gate_view(model, np.arange(6.0))
    plot_gates(view, tmp_path / "stacked.png")
    traced = view.traces
    assert [item["name"] for item in traced] == ["low", "simple_rnn"]
    np.testing.assert_array_equal(view.values, np.arange(6.0)[:, None])
    assert traced[0]["labels"] == ["1", "2", "3", "4", "5", "6"]
    assert traced[1]["gates"]["h"].shape == (2, 6)


def test_gates_errors_are_clear():
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="at least one keras_seqcells recurrent layer"):
        trace_model(dense, np.zeros(4))
    model = keras.Sequential([keras.Input((5, 1)), ks.GRU(2)])
    with pytest.raises(ValueError, match="non-empty input sequence"):
        trace_model(model, [])
    with pytest.raises(ValueError, match="non-empty input text"):
        trace_model(model, "   ")
    with pytest.raises(ValueError, match="not text"):
        trace_model(model, "a film")


def _softmax(logits):
    logits = np.asarray(logits, dtype="float64")
    probabilities = np.exp(logits - logits.max())
    return probabilities / probabilities.sum()


@pytest.fixture(scope="module")
def next_word_model():
    keras.utils.set_random_seed(0)
    task = NextWord(sequence_length=4, embedding_dim=4)
    data = task.load_data(limit=40)
    return task.build_model(data, TrainSettings(cell="lstm", units=3, seed=1))


def test_next_word_gates_show_the_stepper_s_next_words(next_word_model, tmp_path):
    prompt = "the just man is"
    view = gate_view(next_word_model, prompt, top=3)
    plot_gates(view, tmp_path / "next_word.png")
    assert (tmp_path / "next_word.png").read_bytes()[:8] == PNG_SIGNATURE
    assert view.labels == ["the", "just", "man", "is"]
    assert set(view.traces[0]["gates"]) == {"i", "f", "c_tilde", "c", "o", "h"}
    vocabulary = next_word_model.get_layer("vocabulary")
    ids = vocabulary.ids(view.labels)
    # The words after each step are the stepping core's predictions, one token at a time...
    stepper = ModelStepper(next_word_model)
    states = stepper.initial_state(batch_size=1)
    whole = keras.ops.convert_to_numpy(next_word_model(np.array([ids], dtype="int32")))[0]
    assert len(view.next_words) == len(ids)
    for step, (token_id, words) in enumerate(zip(ids, view.next_words, strict=True)):
        logits, states = stepper.step(keras.ops.convert_to_tensor([token_id], "int32"), states)
        probabilities = _softmax(keras.ops.convert_to_numpy(logits)[0])
        order = np.argsort(-probabilities, kind="stable")
        best = order[order != 0][:3]
        assert [word for word, _ in words] == [vocabulary.vocabulary[i] for i in best]
        np.testing.assert_allclose([p for _, p in words], probabilities[best], rtol=1e-5)
        # ...which are what the whole model predicts after the same words.
        np.testing.assert_allclose(probabilities, _softmax(whole[step]), atol=1e-5)
    # The last hidden state of the trace is the stepper's.
    np.testing.assert_allclose(
        view.traces[-1]["gates"]["h"][:, -1],
        keras.ops.convert_to_numpy(states[0])[0],
        atol=1e-5,
    )


def test_forecasting_gates_show_the_window_values(tmp_path):
    task = Forecasting(window=6, horizon=2, reference="season", min_epoch_windows=1)
    data = task.load_data("airline-passengers")
    model = task.build_model(data, TrainSettings(cell="gru", units=3, output_dir="unused"))
    length = model.inputs[0].shape[1]
    # A season of 12 months before the window of 6: the encoder sees the last
    # 6 rows' changes since a season earlier.
    assert length == 18
    values = np.arange(100.0, 100.0 + length)
    view = gate_view(model, ",".join(f"{value:g}" for value in values))
    plot_gates(view, tmp_path / "forecast.png")
    assert (tmp_path / "forecast.png").read_bytes()[:8] == PNG_SIGNATURE
    assert view.labels == ["1", "2", "3", "4", "5", "6"]
    np.testing.assert_array_equal(view.values, values[-6:, None])
    assert view.next_words is None
    with pytest.raises(ValueError, match=r"Expected one input of shape \(18, 1\)"):
        gate_view(model, "1,2,3")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gates_of_every_cell(case, tmp_path):
    model = keras.Sequential([keras.Input((5, 2)), case.layer(3), keras.layers.Dense(1)])
    inputs = np.linspace(-1.0, 1.0, 10, dtype="float32").reshape(5, 2)
    view = gate_view(model, inputs)
    plot_gates(view, tmp_path / "gates.png")
    assert (tmp_path / "gates.png").read_bytes()[:8] == PNG_SIGNATURE
    gates = ks.trace(model.layers[0], inputs[None])
    assert set(view.traces[0]["gates"]) == set(gates)
    for gate, values in gates.items():
        np.testing.assert_allclose(view.traces[0]["gates"][gate], values[0].T, atol=1e-6)
    np.testing.assert_array_equal(view.values, inputs)


def _tagging_model():
    sentences = [("the", "dog", "runs"), ("a", "cat", "sleeps")]
    tags = [np.array([0, 1, 2], dtype="int32")] * 2
    data = TaggedData(sentences, tags, sentences, tags, sentences, tags, ("DET", "NOUN", "VERB"))
    task = Tagging(max_length=6, embedding_dim=4, feature_bins=8, feature_dim=2)
    return task.build_model(data, TrainSettings(cell="simple_rnn", units=3, output_dir="unused"))


def _forecasting_model():
    task = Forecasting(window=6, horizon=2, reference="last", min_epoch_windows=1)
    data = task.load_data("airline-passengers")
    return task.build_model(data, TrainSettings(cell="lstm", units=3, output_dir="unused"))


def test_gates_command_on_a_tiny_model_of_every_task(
    text_model_path, next_word_model, tmp_path, capsys
):
    models = {"text-classification": keras.saving.load_model(text_model_path, safe_mode=True)}
    models["tagging"] = _tagging_model()
    models["next-word"] = next_word_model
    models["forecasting"] = _forecasting_model()
    inputs = {
        "text-classification": "a witty film",
        "tagging": "the dog sleeps",
        "next-word": "the just man",
        "forecasting": "1,2,3,4,5,6",
    }
    for task, model in models.items():
        model_path = tmp_path / f"{task}.keras"
        model.save(model_path)
        png = tmp_path / f"{task}.png"
        assert cli.main(["gates", str(model_path), inputs[task], "--output", str(png)]) == 0
        out = capsys.readouterr().out
        assert png.read_bytes()[:8] == PNG_SIGNATURE, task
        assert f"gates: {png}" in out
        if task == "next-word":
            assert "steps: the just man" in out and "next words after each step:" in out
            expected = gate_view(model, inputs[task], top=3).next_words
            for token, words in zip(["the", "just", "man"], expected, strict=True):
                line = f"  {token:<12} " + ", ".join(f"{word} {p:.3f}" for word, p in words)
                assert line in out.splitlines()
        elif task == "forecasting":
            assert "input values: 1, 2, 3, 4, 5, 6" in out
        elif task == "tagging":
            assert "steps: the dog sleeps" in out
        else:
            assert re.search(r"steps: a \S+ film\n", out)  # "witty" may be out of vocabulary


def test_gates_input_errors_are_clear(next_word_model):
    with pytest.raises(ValueError, match="Expected a prompt with words"):
        gate_view(next_word_model, " ")
    with pytest.raises(TypeError, match="Expected a prompt"):
        gate_view(next_word_model, [1, 2])
    with pytest.raises(ValueError, match="`top` to be a positive integer"):
        gate_view(next_word_model, "the man", top=0)
    model = keras.Sequential([keras.Input((None, 2)), ks.GRU(2)])
    with pytest.raises(ValueError, match="a multiple of the model's 2 feature"):
        gate_view(model, "1,2,3")
    with pytest.raises(ValueError, match="comma-separated numbers"):
        gate_view(model, "one,two")


# ------------------------------------------------------------------ commands
def test_gates_command_writes_the_heatmaps(text_model_path, tmp_path, capsys):
    path = tmp_path / "gates.png"
    assert cli.main(["gates", str(text_model_path), "a witty film", "--output", str(path)]) == 0
    out = capsys.readouterr().out
    assert "encoder/forward (3 steps)" in out and "encoder/backward" in out
    assert "steps: a " in out
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_gates_command_errors(text_model_path, tmp_path, capsys):
    missing = tmp_path / "missing.keras"
    assert cli.main(["gates", str(missing), "a film", "--output", str(tmp_path / "x.png")]) == 2
    assert "Received: MODEL=" in capsys.readouterr().err
    assert cli.main(["gates", str(text_model_path), " ", "--output", str(tmp_path / "x.png")]) == 2
    assert "non-empty input text" in capsys.readouterr().err
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    dense.save(tmp_path / "dense.keras")
    assert cli.main(["gates", str(tmp_path / "dense.keras"), "1,2,3,4"]) == 2
    assert "recurrent layer" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_gradients_command_on_tiny_settings(tmp_path, capsys):
    path = tmp_path / "gradients.png"
    argv = ["gradients", "--output", str(path), "--timesteps", "60", "--units", "16"]
    argv += ["--examples", "4", "--recurrent-scale", "3", "--train-steps", "8"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    for cell in ("simple_rnn", "lstm", "gru", "lstm_chrono", "gru_chrono"):
        assert f"  {cell} " in out
    assert "no clipping" in out and "clipnorm 1" in out and "DIVERGED" in out
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert cli.main([*argv, "--clipvalue", "0.1", "--train-steps", "0"]) == 0
    assert "no clipping" not in capsys.readouterr().out
    assert cli.main(["gradients", "--timesteps", "1"]) == 2
    assert "Received: --timesteps=1" in capsys.readouterr().err
    assert cli.main(["gradients", "--clipnorm", "0"]) == 2
    assert "Received: --clipnorm=0.0" in capsys.readouterr().err


def test_gradients_command_compares_initialisations(tmp_path, capsys):
    path = tmp_path / "initialisations.png"
    argv = ["gradients", "--output", str(tmp_path / "gradients.png"), "--timesteps", "8"]
    argv += ["--units", "2", "--examples", "2", "--train-steps", "0"]
    assert cli.main([*argv, "--init-steps", "1", "--init-output", str(path)]) == 0
    out = capsys.readouterr().out
    for label in ("lstm_forget_bias_0", "lstm_chrono", "gru_chrono"):
        assert f"  {label} " in out
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert cli.main([*argv, "--init-steps", "-1"]) == 2
    assert "Received: --init-steps=-1" in capsys.readouterr().err


def test_gradients_command_plots_each_layer_of_a_saved_model(text_model_path, tmp_path, capsys):
    path = tmp_path / "layers.png"
    argv = ["gradients", "--model", str(text_model_path), "--output", str(path)]
    assert cli.main([*argv, "--input", "a witty film"]) == 0
    out = capsys.readouterr().out
    assert "  encoder/forward " in out and "  encoder/backward " in out
    assert "3 tokens (the 5 padding steps are left out)" in out
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert cli.main(argv) == 2
    assert "Received: --input=None" in capsys.readouterr().err
