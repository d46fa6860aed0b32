"""Argument checks shared by every public class of the package.

Each check returns the value to store (converted where Keras converts it, for
example an initializer name to an initializer object) or raises a ValueError
or TypeError of the form "Expected ... Received: name=value", naming the
argument. What Keras's own layers accept (`None` for an initializer, a
regularizer or a constraint; an initializer given by name, config dict or
object) is accepted here too, so the layers stay drop-in replacements.
"""

import math
import numbers
import os

import keras
import numpy as np


def is_integer(value):
    """Whether `value` is an integer (a Python or NumPy one; a bool is not)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_number(value):
    """Whether `value` is a real number (a Python or NumPy one; a bool is not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_int_at_least(name, value, minimum):
    """Returns `value` as an int if it is an integer >= `minimum`, else raises.

    Raises:
        TypeError: for a value that is not an integer (a bool is not one).
        ValueError: for an integer below `minimum`.
    """
    if not is_integer(value):
        raise TypeError(f"Expected `{name}` to be an integer. Received: {name}={value!r}")
    if value < minimum:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"Expected `{name}` to be {expected}. Received: {name}={value}")
    return int(value)


def check_positive_int(name, value):
    """Returns `value` as an int if it is a positive integer, else raises.

    Raises:
        TypeError: for a value that is not an integer (a bool is not one).
        ValueError: for an integer below 1.
    """
    return check_int_at_least(name, value, 1)


def check_optional_positive_int(name, value):
    """Returns `value` (None, or as an int) if it is None or a positive integer, else raises."""
    return None if value is None else check_positive_int(name, value)


def check_optional_int(name, value):
    """Returns `value` if it is None or an integer (not a bool), else raises TypeError."""
    if value is not None and not is_integer(value):
        raise TypeError(f"Expected `{name}` to be an integer or None. Received: {name}={value!r}")
    return value


def check_number_above(name, value, bound):
    """Returns `value` as a float if it is a finite number above `bound`, else raises.

    Raises:
        TypeError: for a value that is not a real number (a bool is not one).
        ValueError: for a number at or below `bound`, infinite, or NaN.
    """
    if not is_number(value):
        raise TypeError(f"Expected `{name}` to be a number. Received: {name}={value!r}")
    if not (value > bound and math.isfinite(value)):
        expected = "a positive number" if bound == 0 else f"a finite number above {bound}"
        raise ValueError(f"Expected `{name}` to be {expected}. Received: {name}={value!r}")
    return float(value)


def check_positive_number(name, value):
    """Returns `value` as a float if it is a finite positive number, else raises.

    Raises:
        TypeError: for a value that is not a real number (a bool is not one).
        ValueError: for zero, a negative number, infinity or NaN.
    """
    return check_number_above(name, value, 0)


def check_optional_positive_number(name, value):
    """Returns `value` (None, or as a float) if it is None or a finite positive number."""
    return None if value is None else check_positive_number(name, value)


def check_rate(name, value):
    """Returns `value` as a float if it lies in [0, 1), else raises."""
    if not is_number(value):
        raise TypeError(f"Expected `{name}` to be a float in [0, 1). Received: {name}={value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"Expected `{name}` to be a float in [0, 1). Received: {name}={value}")
    return float(value)


def check_positive_float(name, value):
    """Returns `value` as a float if it is a real number above 0, else raises."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"Expected `{name}` to be a positive float. Received: {name}={value!r}")
    if not value > 0.0:
        raise ValueError(f"Expected `{name}` to be a positive float. Received: {name}={value}")
    return float(value)


def check_bool(name, value):
    """Returns `value` as a Python bool if it is one (or a NumPy bool), else raises TypeError.

    A truthy non-bool (`"False"`, `0.5`, `None`) is refused rather than
    converted: `bool("False")` is True, the opposite of what was meant.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Expected `{name}` to be a boolean. Received: {name}={value!r}")
    return bool(value)


def check_choice(name, value, choices):
    """Returns `value` if it equals one of `choices` (compared with `==`, bools by type)."""
    for choice in choices:
        if type(value) is type(choice) and value == choice:
            return value
    spelled = ", ".join(repr(choice) for choice in choices)
    raise ValueError(f"Expected `{name}` to be one of {{{spelled}}}. Received: {name}={value!r}")


def check_path(name, value):
    """Returns `value` as a str if it is a non-empty path (str or os.PathLike), else raises."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"Expected `{name}` to be a path (a str or os.PathLike). Received: {name}={value!r}"
        )
    path = os.fspath(value)
    if isinstance(path, bytes) or not path.strip():
        raise ValueError(f"Expected `{name}` to be a non-empty path. Received: {name}={value!r}")
    return path


def _resolve(kind, getter, examples, name, value):
    try:
        return getter(value)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Expected `{name}` to be a Keras {kind} ({examples}), or None. "
            f"Received: {name}={value!r}"
        ) from error


def get_activation(name, value):
    """`keras.activations.get(value)`, with an error naming the argument if unknown."""
    try:
        return keras.activations.get(value)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Expected `{name}` to be a Keras activation (a name such as 'tanh' or "
            f"'sigmoid', or a callable). Received: {name}={value!r}"
        ) from error


def get_initializer(name, value):
    """`keras.initializers.get(value)`, with an error naming the argument if unknown."""
    return _resolve(
        "initializer",
        keras.initializers.get,
        "a name such as 'glorot_uniform', a config dict, an Initializer or a callable",
        name,
        value,
    )


def get_regularizer(name, value):
    """`keras.regularizers.get(value)`, with an error naming the argument if unknown."""
    return _resolve(
        "regularizer",
        keras.regularizers.get,
        "a name such as 'l2', a config dict, a Regularizer or a callable",
        name,
        value,
    )


def get_constraint(name, value):
    """`keras.constraints.get(value)`, with an error naming the argument if unknown."""
    return _resolve(
        "constraint",
        keras.constraints.get,
        "a name such as 'non_neg', a config dict, a Constraint or a callable",
        name,
        value,
    )
