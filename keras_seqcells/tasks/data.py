"""Data loading shared by the tasks: shipped files, seeded splits, TFDS by name."""

import importlib.resources
import pathlib

import numpy as np


class DataError(ValueError):
    """A data file or data set is missing, unreadable or malformed."""


def shipped_path(*parts):
    """Path of a file shipped in `keras_seqcells/data/`."""
    return pathlib.Path(str(importlib.resources.files("keras_seqcells") / "data")).joinpath(*parts)


def read_text(path, argument="path"):
    """Reads a UTF-8 text file, with a clear error when it is missing or unreadable."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(
            f"Expected `{argument}` to be an existing file. Received: {argument}={path}"
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(
            f"Expected `{argument}` to be a readable UTF-8 text file. Received: "
            f"{argument}={path} ({error})"
        ) from error


def split_indices(count, test_fraction, validation_fraction, seed, order=None):
    """Seeded random split of `range(count)` into train, validation and test indices.

    `order`, a permutation of `range(count)`, replaces the seeded shuffle (a
    stratified order keeps each class's share in every split).
    """
    for name, fraction in (
        ("test_fraction", test_fraction),
        ("validation_fraction", validation_fraction),
    ):
        if not 0.0 < fraction < 0.5:
            raise ValueError(f"Expected `{name}` in (0, 0.5). Received: {name}={fraction}")
    if order is None:
        order = np.random.default_rng(seed).permutation(count)
    n_test = max(1, round(count * test_fraction))
    n_validation = max(1, round(count * validation_fraction))
    if count - n_test - n_validation < 1:
        raise DataError(f"Expected enough examples to split. Received: {count} example(s)")
    return (
        order[n_test + n_validation :],
        order[n_test : n_test + n_validation],
        order[:n_test],
    )


def load_tfds(name, split, **kwargs):
    """Loads a TensorFlow Datasets split as NumPy, with a clear error if unavailable."""
    import tensorflow_datasets as tfds

    try:
        return tfds.as_numpy(tfds.load(name, split=split, **kwargs))
    except Exception as error:  # TFDS raises many types for a missing download
        raise DataError(
            f"Expected the TensorFlow Datasets corpus {name!r} (split {split!r}) to be "
            f"downloadable or already prepared. Received: {type(error).__name__}: {error}"
        ) from error
