"""The cuDNN path of the LSTM and GRU layers, checked on any machine.

Keras's cuDNN kernels (`keras.src.backend.lstm` / `gru`) only run on a GPU.
Here they are stood in for by Keras's own LSTM and GRU layers on their
generic loop, which compute what those kernels compute from the same
weights, so that the layers' use of the kernels (the arguments, the GRU's
update-gate mapping, the states and outputs, when the path is taken at all)
is checked against the layers' fast path.
"""

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from keras_seqcells import _keras_internals
from keras_seqcells import layers as ks_layers

BATCH, TIMESTEPS, FEATURES, UNITS = 3, 5, 4, 6
RNG = np.random.default_rng(0)
X = RNG.normal(size=(BATCH, TIMESTEPS, FEATURES)).astype("float32")
H0 = RNG.normal(size=(BATCH, UNITS)).astype("float32")
C0 = RNG.normal(size=(BATCH, UNITS)).astype("float32")


def _numpy(value):
    return keras.ops.convert_to_numpy(value)


def _through_keras_layer(keras_class, weights, inputs, states, go_backwards, return_sequences):
    """What a cuDNN kernel returns, computed by a Keras layer's generic loop."""
    layer = keras_class(
        UNITS, return_sequences=True, return_state=True, go_backwards=go_backwards, use_cudnn=False
    )
    layer.build(inputs.shape)
    layer.set_weights([_numpy(w) for w in weights])
    whole, *new_states = layer(inputs, initial_state=list(states))
    last = whole[:, -1]
    return last, whole if return_sequences else whole[:, -1:], new_states


@pytest.fixture
def kernel_calls(monkeypatch):
    """Stands in for Keras's cuDNN kernels; yields the list of kernels called."""
    calls = []

    def lstm(inputs, h, c, mask, kernel, recurrent_kernel, bias, **options):
        assert mask is None and not options["unroll"]
        calls.append("lstm")
        return _through_keras_layer(
            keras.layers.LSTM,
            [kernel, recurrent_kernel, bias],
            inputs,
            [h, c],
            options["go_backwards"],
            options["return_sequences"],
        )

    def gru(inputs, h, mask, kernel, recurrent_kernel, bias, reset_after, **options):
        assert mask is None and reset_after and not options["unroll"]
        calls.append("gru")
        return _through_keras_layer(
            keras.layers.GRU,
            [kernel, recurrent_kernel, bias],
            inputs,
            [h],
            options["go_backwards"],
            options["return_sequences"],
        )

    monkeypatch.setattr(_keras_internals.keras_backend, "lstm", lstm)
    monkeypatch.setattr(_keras_internals.keras_backend, "gru", gru)
    return calls


def _pair(layer_class, **kwargs):
    """The same layer twice, with the same weights: cuDNN allowed, and not."""
    with_cudnn = layer_class(UNITS, use_cudnn="auto", **kwargs)
    without = layer_class(UNITS, use_cudnn=False, **kwargs)
    for layer in (with_cudnn, without):
        layer.build((BATCH, TIMESTEPS, FEATURES))
    weights = [RNG.normal(size=w.shape).astype("float32") * 0.5 for w in without.get_weights()]
    with_cudnn.set_weights(weights)
    without.set_weights(weights)
    return with_cudnn, without


TENSORFLOW = keras.backend.backend() == "tensorflow"
# The backends whose kernel of that name is cuDNN's.
KERNELS = [(ks.LSTM, "lstm")] + ([(ks.GRU, "gru")] if TENSORFLOW else [])


@pytest.mark.parametrize("layer_class, kernel", KERNELS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_cudnn_path_matches_the_fast_path(
    kernel_calls, layer_class, kernel, return_sequences, go_backwards
):
    with_cudnn, without = _pair(
        layer_class,
        return_sequences=return_sequences,
        go_backwards=go_backwards,
        return_state=True,
    )
    states = [H0, C0] if layer_class is ks.LSTM else [H0]
    # JAX's kernel orders a backward sequence otherwise: the layer keeps its loop.
    expected_calls = [] if not TENSORFLOW and go_backwards and return_sequences else [kernel]
    got = with_cudnn(X, initial_state=states)
    assert kernel_calls == expected_calls
    want = without(X, initial_state=states)
    assert kernel_calls == expected_calls
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(_numpy(g), _numpy(w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "layer_class, kwargs, call_kwargs",
    [
        (ks.GRU, {"reset_after": False}, {}),
        (ks.LSTM, {"activation": "relu"}, {}),
        (ks.LSTM, {"recurrent_activation": "hard_sigmoid"}, {}),
        (ks.GRU, {"use_bias": False}, {}),
        (ks.LSTM, {"unroll": True}, {}),
        (ks.LSTM, {}, {"mask": np.array([[True] * TIMESTEPS] * BATCH)}),
        (ks.GRU, {"recurrent_dropout": 0.5, "seed": 1}, {"training": True}),
        (ks.SimpleRNN, {}, {}),
    ],
    ids=[
        "gru-reset-before",
        "lstm-relu",
        "lstm-hard-sigmoid",
        "gru-no-bias",
        "lstm-unroll",
        "lstm-mask",
        "gru-recurrent-dropout",
        "simple-rnn",
    ],
)
def test_cudnn_path_is_not_taken_where_its_equations_differ(
    kernel_calls, layer_class, kwargs, call_kwargs
):
    layer_class(UNITS, **kwargs)(X, **call_kwargs)
    assert kernel_calls == []


def test_cudnn_path_takes_input_dropout_and_not_mixed_precision(kernel_calls):
    layer = ks.LSTM(UNITS, dropout=0.5, seed=3)
    layer(X, training=True)
    assert kernel_calls == ["lstm"]
    layer = ks.LSTM(UNITS, dtype="mixed_float16")
    layer(X)
    assert kernel_calls == ["lstm"]


@pytest.mark.skipif(not TENSORFLOW, reason="traced graphs are TensorFlow's")
def test_portable_graphs_never_take_the_cudnn_path(kernel_calls):
    import tensorflow as tf

    layer = ks.LSTM(UNITS)
    layer.build((BATCH, TIMESTEPS, FEATURES))
    with ks_layers.portable_graphs():
        tf.function(lambda x: layer(x)).get_concrete_function(
            tf.TensorSpec((None, TIMESTEPS, FEATURES), tf.float32)
        )
    assert kernel_calls == []


@pytest.mark.parametrize("layer_class", [ks.LSTM, ks.GRU])
def test_use_cudnn_true_without_a_cudnn_kernel_is_refused(layer_class):
    if TENSORFLOW:
        import tensorflow as tf

        if tf.config.list_logical_devices("GPU"):
            pytest.skip("a GPU runs the kernel")
    layer = layer_class(UNITS, use_cudnn=True)
    with pytest.raises(ValueError, match="Received: use_cudnn=True for layer"):
        layer(X)
    # "auto" falls back to the other paths.
    assert layer_class(UNITS)(X).shape == (BATCH, UNITS)


def _bidirectional(layer):
    wrapper = keras.layers.Bidirectional(layer)
    wrapper.build((None, TIMESTEPS, FEATURES))
    return wrapper


def test_bidirectional_may_fuse_an_lstm_only_where_cudnn_computes_its_equations():
    assert isinstance(ks.LSTM(UNITS), keras.layers.LSTM)
    assert _bidirectional(ks.LSTM(UNITS))._can_attempt_fused_lstm(mask=None)
    for kwargs in (
        {"dtype": "mixed_float16"},
        {"activation": "relu"},
        {"recurrent_activation": "hard_sigmoid"},
        {"use_bias": False},
        {"unroll": True},
        {"use_cudnn": False},
    ):
        layer = ks.LSTM(UNITS, **kwargs)
        assert layer.use_cudnn is False, kwargs
        assert not _bidirectional(layer)._can_attempt_fused_lstm(mask=None), kwargs
    wrapper = _bidirectional(ks.LSTM(UNITS))
    with ks_layers.portable_graphs():
        assert not wrapper._can_attempt_fused_lstm(mask=None)
    # Keras's fused GRU would read our update gate in Keras's convention.
    assert not isinstance(ks.GRU(UNITS), keras.layers.GRU)
    assert not _bidirectional(ks.GRU(UNITS))._can_attempt_fused_gru(mask=None)


def test_use_cudnn_keeps_the_setting_where_cudnn_could_run():
    for layer_class in (ks.LSTM, ks.GRU):
        for setting in ("auto", True, False):
            assert layer_class(UNITS, use_cudnn=setting).use_cudnn == setting
    assert not hasattr(ks.SimpleRNN(UNITS), "use_cudnn")


def test_bidirectional_fused_lstm_call_matches_our_layers(monkeypatch):
    from keras.src.layers.rnn import bidirectional

    calls = []

    def bidirectional_lstm(sequences, fwd_h0, fwd_c0, bwd_h0, bwd_c0, mask, **weights):
        calls.append("bidirectional_lstm")
        forward = _through_keras_layer(
            keras.layers.LSTM,
            [weights["fwd_kernel"], weights["fwd_recurrent_kernel"], weights["fwd_bias"]],
            sequences,
            [fwd_h0, fwd_c0],
            go_backwards=False,
            return_sequences=True,
        )
        last, whole, states = _through_keras_layer(
            keras.layers.LSTM,
            [weights["bwd_kernel"], weights["bwd_recurrent_kernel"], weights["bwd_bias"]],
            sequences,
            [bwd_h0, bwd_c0],
            go_backwards=True,
            return_sequences=True,
        )
        # The fused kernel returns the backward sequence in input order.
        return forward, (last, keras.ops.flip(whole, axis=1), states)

    monkeypatch.setattr(bidirectional.backend, "bidirectional_lstm", bidirectional_lstm)
    fused = _bidirectional(ks.LSTM(UNITS, return_sequences=True))
    plain = _bidirectional(ks.LSTM(UNITS, return_sequences=True, use_cudnn=False))
    weights = [RNG.normal(size=w.shape).astype("float32") * 0.5 for w in plain.get_weights()]
    fused.set_weights(weights)
    plain.set_weights(weights)
    np.testing.assert_allclose(_numpy(fused(X)), _numpy(plain(X)), rtol=1e-5, atol=1e-6)
    assert calls == ["bidirectional_lstm"]
