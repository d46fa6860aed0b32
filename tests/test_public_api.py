"""The public names exist, are documented, and are exercised by the other test files."""

import doctest
import importlib.util
import inspect
import re
from pathlib import Path

import keras
import numpy as np

import keras_seqcells as ks

PUBLIC = {name: getattr(ks, name, None) for name in ks.__all__}
CLASSES = {name: obj for name, obj in PUBLIC.items() if inspect.isclass(obj)}
FUNCTIONS = {name: obj for name, obj in PUBLIC.items() if inspect.isfunction(obj)}
# The concrete cells (the base class `RecurrentCell` has no equations of its own).
CELLS = {
    name: obj
    for name, obj in CLASSES.items()
    if name.endswith("Cell") and obj is not ks.RecurrentCell
}

# Symbols of each family's equations (see the README's "The equations" section).
EQUATION_SYMBOLS = {
    "SimpleRNN": ["h_t", "h_{t-1}", "x_t", "y_t", "W_hh", "W_xh", "b_h"],
    "LSTM": ["i_t", "f_t", "C~_t", "C_t", "o_t", "h_t", "h_{t-1}", "x_t"],
    "GRU": ["z_t", "r_t", "h~_t", "h_t", "h_{t-1}", "x_t"],
    "MinGRU": ["z_t", "h~_t", "h_t", "h_{t-1}", "x_t", "g(a)"],
    "MinLSTM": ["f_t", "i_t", "f'_t", "i'_t", "h~_t", "h_t", "h_{t-1}", "x_t", "g(a)"],
}


# Public names whose docstring examples need an optional extra (torch).
OPTIONAL_DEPENDENCY = {"from_torch": "torch", "to_torch": "torch"}


def _family(name):
    """The cell family a public class belongs to, or None (such as for a callback)."""
    return next((family for family in EQUATION_SYMBOLS if name.startswith(family)), None)


def _own_doc(obj):
    """The object's own docstring (not one inherited), with its whitespace collapsed."""
    return " ".join((obj.__doc__ or "").split())


class _ShapeChecker(doctest.OutputChecker):
    """Reads TensorFlow's `TensorShape([2, 3])` as the tuple `(2, 3)` that the examples show."""

    def check_output(self, want, got, optionflags):
        got = re.sub(r"TensorShape\(\[([^\]]*)\]\)", r"(\1)", got)
        return super().check_output(want, got, optionflags)


def test_all_is_unique_and_names_the_contract():
    assert len(set(ks.__all__)) == len(ks.__all__)
    assert [name for name, obj in PUBLIC.items() if obj is None] == []
    assert set(CLASSES) | set(FUNCTIONS) == set(ks.__all__)
    assert {"SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell"} <= set(CLASSES)
    assert {"from_keras", "to_keras", "trace"} <= set(FUNCTIONS)


def test_every_public_name_has_a_docstring():
    undocumented = [name for name, obj in PUBLIC.items() if len(_own_doc(obj).strip()) < 40]
    assert undocumented == []


def test_class_docstrings_have_args_example_and_equations():
    problems = []
    for name, cls in CLASSES.items():
        doc = _own_doc(cls)
        for required in ("Args:", "Example", *EQUATION_SYMBOLS.get(_family(name), [])):
            if required not in doc:
                problems.append((name, required))
    assert problems == []


def test_class_docstrings_name_every_constructor_argument():
    problems = []
    for name, cls in CLASSES.items():
        doc = _own_doc(cls)
        for parameter in inspect.signature(cls.__init__).parameters.values():
            if parameter.name == "self" or parameter.kind == parameter.VAR_POSITIONAL:
                continue
            if parameter.name not in doc:
                problems.append((name, parameter.name))
    for name in ("LSTM", "GRU"):
        problems += [
            (name, legacy)
            for legacy in ("implementation", "use_cudnn")
            if legacy not in _own_doc(CLASSES[name])
        ]
    assert problems == []


def test_cell_docstrings_name_their_weights():
    problems = []
    for name, cls in CELLS.items():
        kwargs = {"output_units": 3} if cls is ks.SimpleRNNCell else {}
        cell = cls(4, **kwargs)
        cell.build((None, 3))
        weight_names = cell.named_weights()
        assert weight_names
        problems += [(name, weight) for weight in weight_names if weight not in _own_doc(cls)]
    assert problems == []


def test_gru_docstrings_warn_about_keras_weights():
    for cls in (ks.GRU, ks.GRUCell):
        doc = _own_doc(cls)
        assert "raw weights" in doc
        assert "mean something else" in doc
        assert "from_keras" in doc and "to_keras" in doc


def test_function_docstrings_have_args_and_returns_or_example():
    problems = []
    for name, function in FUNCTIONS.items():
        doc = _own_doc(function)
        if "Args:" not in doc:
            problems.append((name, "Args:"))
        if "Returns" not in doc and "Example" not in doc:
            problems.append((name, "Returns or Example"))
    assert problems == []


def test_docstring_examples_run():
    keras.utils.set_random_seed(0)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(
        checker=_ShapeChecker(), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    examples = 0
    for name, obj in PUBLIC.items():
        needed = OPTIONAL_DEPENDENCY.get(name)
        if needed is not None and importlib.util.find_spec(needed) is None:
            continue  # an extra that `pip install -e ".[test]"` leaves out
        for test in finder.find(obj, name, globs={"np": np, "keras": keras, "keras_seqcells": ks}):
            examples += len(test.examples)
            runner.run(test)
    assert examples >= len(PUBLIC) - len(OPTIONAL_DEPENDENCY)
    assert runner.summarize(verbose=False).failed == 0


def test_every_public_name_is_used_by_another_test_file():
    here = Path(__file__)
    texts = [path.read_text() for path in sorted(here.parent.glob("test_*.py")) if path != here]
    unused = [
        name
        for name in ks.__all__
        if not any(re.search(rf"\b(?:ks|keras_seqcells)\.{name}\b", text) for text in texts)
    ]
    assert unused == []
