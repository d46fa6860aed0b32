"""Every fast path of the layers computes the specification's equations exactly.

The layers run the cells through `SeqCellRNN.inner_loop`'s fast path: eagerly,
in a traced function (plain operations) and XLA-compiled (TensorFlow,
inference). Each is checked
against the float64 NumPy reference (masks with fully masked rows,
`go_backwards`, `unroll`, stateful layers, `return_state`) and against the
generic `keras.layers.RNN` loop where the reference has no counterpart
(dropout masks, mixed precision, gradients). `portable_graphs()` must keep
XLA-compiled functions out of traced graphs.
"""

import contextlib

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from keras_seqcells.layers import loops as ks_loops
from tests.cases import CASE_IDS, CASE_PARAMS, FLOAT64
from tests.test_reference import BATCH, INPUT_DIM, UNITS, Problem

TENSORFLOW = keras.backend.backend() == "tensorflow"
JAX = keras.backend.backend() == "jax"
TORCH = keras.backend.backend() == "torch"
# "keras-loop": the fast path through Keras's torch `rnn` loop, not `torch_loop`.
PATHS = (
    ["eager", "generic"]
    + (["graph", "xla"] if TENSORFLOW else [])
    + (["keras-loop"] if TORCH else [])
)
# Sample 0 skips middle steps, sample 1 is fully masked, sample 2 skips the end.
MASK = np.array(
    [
        [True, False, True, True, False, True, True],
        [False] * 7,
        [True, True, True, True, True, False, False],
    ]
)

with_case = pytest.mark.parametrize("case", CASE_PARAMS, ids=CASE_IDS)
with_path = pytest.mark.parametrize("path", PATHS)


@contextlib.contextmanager
def switches(fast=True, xla=True, torch_loop=True):
    saved = (ks_loops._FAST_PATH[0], ks_loops._XLA_LOOP[0], ks_loops._TORCH_LOOP[0])
    ks_loops._FAST_PATH[0], ks_loops._XLA_LOOP[0], ks_loops._TORCH_LOOP[0] = (
        fast,
        xla,
        torch_loop,
    )
    try:
        yield
    finally:
        ks_loops._FAST_PATH[0], ks_loops._XLA_LOOP[0], ks_loops._TORCH_LOOP[0] = saved


def call(layer, path, *args, **kwargs):
    """Calls `layer` on the given path; "graph" and "xla" trace a `tf.function`."""
    settings = {
        "eager": {},
        "generic": {"fast": False},
        "graph": {"xla": False},
        "xla": {},
        "keras-loop": {"torch_loop": False},
    }[path]
    with switches(**settings):
        if path in ("graph", "xla"):
            import tensorflow as tf

            return tf.function(lambda: layer(*args, **kwargs))()
        return layer(*args, **kwargs)


def xla_compiled(function, *args):
    """Whether the traced graph of `function(*args)` holds an XLA must-compile function."""
    import tensorflow as tf

    graph_def = tf.function(function).get_concrete_function(*args).graph.as_graph_def()
    nodes = list(graph_def.node)
    attrs = [function_def.attr for function_def in graph_def.library.function]
    for function_def in graph_def.library.function:
        nodes.extend(function_def.node_def)
    attrs.extend(node.attr for node in nodes)
    return any("_XlaMustCompile" in attr and attr["_XlaMustCompile"].b for attr in attrs)


def built_layer(case, p, **kwargs):
    layer = case.layer(UNITS, dtype=p.dtype, **p.options, **kwargs)
    layer.build((BATCH, None, INPUT_DIM))
    layer.cell.set_named_weights(p.weights)
    return layer


def output_width(case):
    return case.output_units or UNITS


def masked_expected(p, case, inputs, states, mask, zero_output_for_mask):
    """The reference with Keras's masking rule: a masked step carries the state
    and the previous output (zeros with `zero_output_for_mask`)."""
    batch, timesteps = mask.shape
    outputs = np.zeros((batch, timesteps, output_width(case)))
    finals = [np.array(s) for s in states]
    for b in range(batch):
        kept = np.flatnonzero(mask[b])
        if len(kept):
            seq, last_states, _ = p.expected(
                inputs[b : b + 1, kept], [s[b : b + 1] for s in states]
            )
            for k, s in enumerate(last_states):
                finals[k][b] = s[0]
        previous, j = np.zeros(output_width(case)), 0
        for t in range(timesteps):
            if mask[b, t]:
                previous, j = seq[0, j], j + 1
                outputs[b, t] = previous
            elif not zero_output_for_mask:
                outputs[b, t] = previous
    return outputs, finals


@with_case
@with_path
@pytest.mark.parametrize("dtype", ["float32", FLOAT64])
def test_fast_paths_match_reference(case, path, dtype):
    p = Problem(case, "default", dtype)
    layer = built_layer(case, p, return_sequences=True, return_state=True)
    inputs, states = p.sequence(7)
    result = call(layer, path, p.feed(inputs), initial_state=[p.feed(s) for s in states])
    p.check_run(result, p.expected(inputs, states), f"{path}: plain")

    backwards = built_layer(case, p, return_sequences=True, return_state=True, go_backwards=True)
    result = call(backwards, path, p.feed(inputs), initial_state=[p.feed(s) for s in states])
    p.check_run(result, p.expected(inputs[:, ::-1], states), f"{path}: go_backwards")

    unrolled = built_layer(case, p, return_sequences=True, return_state=True, unroll=True)
    result = call(unrolled, path, p.feed(inputs), initial_state=[p.feed(s) for s in states])
    p.check_run(result, p.expected(inputs, states), f"{path}: unroll")


@with_case
@with_path
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
def test_fast_paths_with_masks_match_reference(case, path, zero_output_for_mask):
    jax_keeps_first_state = JAX and not zero_output_for_mask
    # The last-output check below runs without zero_output_for_mask.
    if JAX and path == "generic" and case.output_units:
        pytest.skip(
            "Keras's JAX loop repeats the first state as a masked step's output, "
            "which is not the output of a cell with a head"
        )
    p = Problem(case, "no_bias", "float32")
    layer = built_layer(
        case,
        p,
        return_sequences=True,
        return_state=True,
        zero_output_for_mask=zero_output_for_mask,
    )
    inputs, states = p.sequence(MASK.shape[1])
    result = call(layer, path, p.feed(inputs), initial_state=[p.feed(s) for s in states], mask=MASK)
    outputs, finals = masked_expected(p, case, inputs, states, MASK, zero_output_for_mask)
    if jax_keeps_first_state and not case.output_units:
        # Keras's JAX loop carries the initial state, not zeros, as the output
        # of masked steps before the first unmasked one: follow the backend.
        generic = call(
            layer, "generic", p.feed(inputs), initial_state=[p.feed(s) for s in states], mask=MASK
        )
        outputs = np.asarray(keras.ops.convert_to_numpy(generic[0]), dtype=np.float64)
    p.check(result[0], outputs, f"{path}: masked outputs")
    for k, (state, value) in enumerate(zip(result[1:], finals, strict=True)):
        p.check(state, value, f"{path}: masked final state {k}")

    last = built_layer(case, p, return_state=True)
    result = call(last, path, p.feed(inputs), initial_state=[p.feed(s) for s in states], mask=MASK)
    # The last output is the last unmasked step's, even with zero_output_for_mask.
    carried = masked_expected(p, case, inputs, states, MASK, zero_output_for_mask=False)[0]
    if JAX and not case.output_units:
        generic = call(
            last, "generic", p.feed(inputs), initial_state=[p.feed(s) for s in states], mask=MASK
        )
        carried = np.asarray(keras.ops.convert_to_numpy(generic[0]), dtype=np.float64)[:, None]
    p.check(result[0], carried[:, -1], f"{path}: masked last output")


@with_case
@with_path
def test_stateful_fast_paths_match_reference(case, path):
    p = Problem(case, "default", "float32")
    layer = case.layer(UNITS, stateful=True, return_sequences=True)
    layer.build((BATCH, 4, INPUT_DIM))
    layer.cell.set_named_weights(p.weights)
    inputs, _ = p.sequence(8)
    zeros = [np.zeros((BATCH, UNITS)) for _ in layer.states]
    expected, _, _ = p.expected(inputs, zeros)
    first = call(layer, path, p.feed(inputs[:, :4]))
    second = call(layer, path, p.feed(inputs[:, 4:]))
    p.check(first, expected[:, :4], f"{path}: first chunk")
    p.check(second, expected[:, 4:], f"{path}: second chunk")


@with_case
@pytest.mark.parametrize("path", ["eager"] + (["graph"] if TENSORFLOW else []))
def test_dropout_fast_paths_match_generic_loop(case, path):
    """Same seed, same per-sequence masks: the fast path equals the generic loop."""
    kwargs = {"dropout": 0.3, "recurrent_dropout": 0.4, "seed": 7, "return_sequences": True}
    x = np.random.default_rng(0).normal(size=(BATCH, 6, INPUT_DIM)).astype("float32")
    results = []
    for this_path in (path, "generic"):
        keras.utils.set_random_seed(11)
        layer = case.layer(UNITS, **kwargs)
        layer.build((BATCH, None, INPUT_DIM))
        rng = np.random.default_rng(2)
        layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
        results.append(call(layer, this_path, x, training=True))
    fast, generic = (keras.ops.convert_to_numpy(r) for r in results)
    np.testing.assert_allclose(fast, generic, rtol=1e-6, atol=1e-6)
    without = call(layer, "eager", x, training=False)
    assert not np.allclose(keras.ops.convert_to_numpy(without), generic, atol=1e-3)


@with_case
@with_path
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_fast_paths_match_float32(case, path, policy):
    tolerance = {"mixed_float16": 5e-3, "mixed_bfloat16": 3e-2}[policy]
    x = np.random.default_rng(0).normal(size=(BATCH, 6, INPUT_DIM)).astype("float32")
    rng = np.random.default_rng(1)
    layer = case.layer(UNITS, return_sequences=True, return_state=True)
    layer.build((BATCH, None, INPUT_DIM))
    weights = [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights(weights)
    # Keras's JAX loop with a mask needs outputs as wide as the state.
    mask = MASK[:, :6] if TENSORFLOW or not case.output_units else None
    expected = call(layer, "generic", x, mask=mask)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        mixed = case.layer(UNITS, return_sequences=True, return_state=True)
        mixed.build((BATCH, None, INPUT_DIM))
        mixed.set_weights(weights)
        result = call(mixed, path, x, mask=mask)
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.backend.standardize_dtype(result[0].dtype) == policy.split("_")[1]
    for state in result[1:]:
        assert keras.backend.standardize_dtype(state.dtype) == "float32"
    for got, want in zip(result, expected, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(keras.ops.cast(got, "float32")),
            keras.ops.convert_to_numpy(want),
            atol=tolerance,
        )


@pytest.mark.tensorflow_only(reason="the XLA-compiled loop is TensorFlow's")
@pytest.mark.parametrize("tape", ["inside", "outside"])
@with_case
def test_gradients_through_the_xla_loop(case, tape):
    """A tape inside the traced function, or around a call of it."""
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(size=(BATCH, 6, INPUT_DIM)), tf.float32)
    h0 = tf.constant(np.random.default_rng(1).normal(size=(BATCH, UNITS)), tf.float32)
    layer = case.layer(UNITS, return_sequences=True)
    layer.build((BATCH, None, INPUT_DIM))

    def loss(x, h0):
        initial = [h0] * len(layer.cell._state_sizes())
        return tf.reduce_sum(layer(x, initial_state=initial, mask=MASK[:, :6]) ** 2)

    def gradients_inside(x, h0):
        with tf.GradientTape() as tape:
            tape.watch([x, h0])
            value = loss(x, h0)
        return tape.gradient(value, [x, h0, *layer.trainable_variables])

    def gradients(traced_loss):
        if tape == "inside":
            return tf.function(gradients_inside)(x, h0)
        with tf.GradientTape() as outer_tape:
            outer_tape.watch([x, h0])
            value = traced_loss(x, h0)
        return outer_tape.gradient(value, [x, h0, *layer.trainable_variables])

    with switches(xla=True):
        assert xla_compiled(gradients_inside, x, h0)
        compiled = gradients(tf.function(loss))
    with switches(xla=False):
        assert not xla_compiled(gradients_inside, x, h0)
        plain = gradients(tf.function(loss))
    for got, want in zip(compiled, plain, strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.tensorflow_only(reason="the XLA-compiled loop is TensorFlow's")
@with_case
def test_portable_graphs_have_no_xla_functions(case):
    import tensorflow as tf

    layer = case.layer(UNITS, return_sequences=True)
    spec = tf.TensorSpec((None, 5, INPUT_DIM), tf.float32)

    def serve(x):
        return layer(x, training=False)

    assert xla_compiled(serve, spec), "the fast path outside portable_graphs() uses XLA"
    with ks.layers.portable_graphs():
        assert not xla_compiled(serve, spec)
    # Training steps never use the XLA loop (its gradient cannot leave XLA).
    assert not xla_compiled(lambda x: layer(x, training=True), spec)


@pytest.mark.tensorflow_only(reason="input signatures are TensorFlow's")
@with_case
@pytest.mark.parametrize("unknown", ["batch", "timesteps"])
def test_traced_with_unknown_sizes_matches_eager(case, unknown):
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(BATCH, 12, INPUT_DIM)).astype("float32")
    layer = case.layer(UNITS, return_sequences=True, return_state=True)
    eager = layer(x)
    shape = (None, 12, INPUT_DIM) if unknown == "batch" else (BATCH, None, INPUT_DIM)
    traced = tf.function(lambda x: layer(x), input_signature=[tf.TensorSpec(shape, tf.float32)])
    for got, want in zip(traced(x), eager, strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.tensorflow_only(reason="the XLA-compiled loop is TensorFlow's")
@pytest.mark.parametrize(
    ("cell_class", "batch", "units", "compiled"),
    [
        (ks.LSTMCell, 256, 512, True),
        (ks.LSTMCell, None, 1024, True),
        (ks.GRUCell, 256, 1024, True),
        (ks.LSTMCell, 256, 1024, False),
        (ks.LSTMCell, None, 2048, False),
    ],
)
def test_xla_loop_covers_the_measured_sizes(cell_class, batch, units, compiled):
    """Inference uses the XLA loop up to the largest sizes measured faster with it."""
    import tensorflow as tf

    cell = cell_class(units)
    cell.build((None, 32))
    decisions = []

    @tf.function(input_signature=[tf.TensorSpec((batch, 100, 32))])
    def trace(sequences):
        decisions.append(ks_loops.use_xla_loop(sequences, cell))
        return sequences

    trace.get_concrete_function()
    assert decisions == [compiled]


@pytest.mark.not_on_backend("tensorflow", "jax", reason="the torch loop is the torch backend's")
@with_case
def test_torch_loop_is_the_fast_path_on_torch(case, monkeypatch):
    calls = []
    original = ks_loops.torch_loop

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    def unused_rnn(*args, **kwargs):
        raise AssertionError("Keras's torch `rnn` loop ran instead of `torch_loop`")

    monkeypatch.setattr(ks_loops, "torch_loop", counted)
    monkeypatch.setattr(ks_loops.keras_backend, "rnn", unused_rnn)
    layer = case.layer(UNITS, return_sequences=True)
    layer(np.zeros((BATCH, 3, INPUT_DIM), "float32"))
    assert calls


@pytest.mark.not_on_backend("tensorflow", "jax", reason="the torch loop is the torch backend's")
@with_case
@pytest.mark.parametrize("go_backwards", [False, True])
def test_torch_loop_gradients_match_generic_loop(case, go_backwards):
    """Autograd through `torch_loop` (masked, dropout) equals it through the generic loop.

    In float32: Keras's torch `matmul` computes float64 operands in float32,
    so float64 gradients differ by float32 rounding wherever the products'
    shapes differ (one input projection for all steps here).
    """
    import torch

    rng = np.random.default_rng(3)
    x0 = rng.normal(size=(BATCH, MASK.shape[1], INPUT_DIM))
    h0 = rng.normal(scale=0.5, size=(BATCH, UNITS))
    weights = None
    results = []
    for path in ("eager", "generic"):
        # A fresh layer per path: the same seed gives the same dropout masks.
        keras.utils.set_random_seed(11)
        layer = case.layer(
            UNITS,
            return_sequences=True,
            return_state=True,
            go_backwards=go_backwards,
            dropout=0.3,
            recurrent_dropout=0.2,
            seed=5,
        )
        layer.build((BATCH, None, INPUT_DIM))
        if weights is None:
            weights = [
                rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()
            ]
        layer.set_weights(weights)
        x = torch.tensor(x0, dtype=torch.float32, requires_grad=True)
        h = torch.tensor(h0, dtype=torch.float32, requires_grad=True)
        initial = [h] * len(layer.cell._state_sizes())
        with switches(fast=path == "eager"):
            outputs, *states = layer(x, initial_state=initial, mask=MASK, training=True)
        loss = (outputs**2).sum() + sum((s**3).sum() for s in states)
        variables = [v.value for v in layer.trainable_variables]
        results.append(torch.autograd.grad(loss, [x, h, *variables]))
    for got, want in zip(*results, strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
