"""Keras's own RNN tests, run against the keras_seqcells layers and cells.

The test files are read from the installed Keras wheel when the tests run
(`keras/src/layers/rnn/*_test.py`), never copied here, so a new Keras release
brings its new tests with it. Each file is executed as a fresh module whose
`layers` global is then replaced by a namespace in which Keras's `SimpleRNN`,
`LSTM`, `GRU`, `SimpleRNNCell`, `LSTMCell` and `GRUCell` are ours; the test
methods look `layers` up when they run, so they build our classes.

`GRU` is the exception: its update gate weights the new candidate where
Keras's weights the old state (see SPEC.md), so the same initial weights mean
something else. Keras's GRU expectations are therefore checked through the
converter: `GRUFromKeras` is our GRU whose weights, when it is built, are
those of Keras's GRU with the same arguments converted by
`keras_seqcells.from_keras`. `rnn_test.py` runs with `layers.RNN` replaced by
the base of our layers (`SeqCellRNN`), which takes any cell, with Keras's test
cells.
"""

import inspect
import pathlib
import types
import unittest

import keras
from keras.src import layers as keras_layers

import keras_seqcells as ks
from keras_seqcells.layers import SeqCellRNN

RNN_TEST_DIR = pathlib.Path(keras_layers.__file__).parent / "rnn"

KERAS_TEST_FILES = (
    "lstm_test.py",
    "simple_rnn_test.py",
    "gru_test.py",
    "bidirectional_test.py",
    "stacked_rnn_cells_test.py",
    "rnn_test.py",
)


@keras.saving.register_keras_serializable(package="keras_seqcells_tests")
class GRUFromKeras(ks.GRU):
    """Our GRU holding, once built, the converted weights of Keras's GRU with the same arguments.

    Keras's GRU tests state their weights through initializers in Keras's
    update-gate convention; this layer builds that Keras GRU, converts it with
    `keras_seqcells.from_keras` and takes the converted weights, so Keras's
    expected outputs must come out of our equations unchanged.

    Args:
        **kwargs: The arguments of `keras_seqcells.GRU` (those of
            `keras.layers.GRU`).

    Example:

    >>> layer = GRUFromKeras(2, bias_initializer="ones", reset_after=False)
    """

    def build(self, sequences_shape, initial_state_shape=None):
        keras_gru = ks.to_keras(self)  # Not built yet: the configuration only.
        batch = sequences_shape[0] if self.stateful else None
        keras_gru.build((batch, None, sequences_shape[-1]))
        super().build(sequences_shape, initial_state_shape)
        self.set_weights(ks.from_keras(keras_gru).get_weights())


def patched_layers(rnn=None):
    """`keras.src.layers` with Keras's recurrent layers and cells replaced by ours."""
    namespace = types.ModuleType("keras_seqcells_patched_layers")
    namespace.__dict__.update(vars(keras_layers))
    namespace.SimpleRNN = ks.SimpleRNN
    namespace.LSTM = ks.LSTM
    namespace.GRU = GRUFromKeras
    namespace.SimpleRNNCell = ks.SimpleRNNCell
    namespace.LSTMCell = ks.LSTMCell
    namespace.GRUCell = ks.GRUCell
    if rnn is not None:
        namespace.RNN = rnn
    return namespace


def load_keras_test_module(file_name):
    """Executes Keras's test file `file_name` with our classes in its `layers`.

    Args:
        file_name: One of `KERAS_TEST_FILES`.

    Returns:
        The module (a `types.ModuleType`) holding the file's test classes.
    """
    path = RNN_TEST_DIR / file_name
    # The module keeps the file's dotted name, not registered in `sys.modules`:
    # Keras deserializes the file's own test cells by importing that name,
    # which gives it the wheel's module, with the same definitions.
    module = types.ModuleType(f"keras.src.layers.rnn.{path.stem}")
    module.__file__ = str(path)
    exec(compile(path.read_text(), str(path), "exec"), module.__dict__)
    module.layers = patched_layers(rnn=SeqCellRNN if file_name == "rnn_test.py" else None)
    return module


def keras_test_methods(module):
    """The `(class_name, method_name)` of every test in a loaded Keras test module."""
    found = []
    for class_name, cls in vars(module).items():
        if not (inspect.isclass(cls) and issubclass(cls, unittest.TestCase)):
            continue
        if cls.__module__ != module.__name__:
            continue  # A test class imported from another Keras file runs there.
        found += [(class_name, name) for name in unittest.TestLoader().getTestCaseNames(cls)]
    return found


def pytest_marks(method):
    """The pytest marks (`skipif`, ...) that decorate a Keras test method."""
    return list(getattr(method, "pytestmark", []))


def run_keras_test(module, class_name, method_name):
    """Runs one Keras test method as unittest would: setUp, the test, tearDown, cleanups.

    Assertion errors and `unittest.SkipTest` propagate, so pytest reports
    them as a failure or a skip.
    """
    case = getattr(module, class_name)(method_name)
    case.setUp()
    try:
        getattr(case, method_name)()
    finally:
        case.tearDown()
        case.doCleanups()
