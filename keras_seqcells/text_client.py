"""Text preprocessing of an exported text model, for clients without Keras or TensorFlow.

This file imports nothing but the Python standard library and numpy: the
ONNX and LiteRT exports of a text model (`keras_seqcells.export_onnx`,
`keras_seqcells.export_litert`) copy it beside the model file as
`<name>.preprocess.py`, next to `<name>.vocabulary.json`, which holds the
vocabulary and settings it reads. It turns raw texts into the token ids
(and, for a tagger with spelling features, the hashed feature ids) that the
exported file takes, as the Keras model's own layers compute them:

- `TextVectorization(output_mode="int")`: `standardize` ("lower" lower-cases
  ASCII letters as `tf.strings.lower` does; "strip_punctuation" removes
  Keras's ASCII punctuation), `split="whitespace"` (ASCII whitespace), the
  vocabulary's index of each token (1, `[UNK]`, for others), cut or padded
  with 0 to `sequence_length`;
- `TokenFeatureHashing` (the tagger's spelling features): each token's
  suffix, prefix or shape, hashed as `tf.strings.to_hash_bucket_fast` does
  (FarmHash's `Fingerprint64` modulo the number of bins, plus one);
- the next-word task's tokeniser (`token_pattern`) and its vocabulary (0 for
  unknown words).

Example:

```python
import onnxruntime
import importlib.util

spec = importlib.util.spec_from_file_location("preprocess", "tagger.preprocess.py")
preprocess = importlib.util.module_from_spec(spec)
spec.loader.exec_module(preprocess)
text = preprocess.TextPreprocessor.from_file("tagger.vocabulary.json")
session = onnxruntime.InferenceSession("tagger.onnx")
(probabilities,) = session.run(None, text(["The cat sat ."]))
print(text.labels)  # the tag (or class) of each output unit
```

Case mappings beyond ASCII (the suffix and prefix features) use Python's
`str.lower` one character at a time, as ICU's simple case mapping in
TensorFlow; the letter and digit classes of the shape feature use
`unicodedata` categories. Characters that a newer Unicode version than
TensorFlow's classifies differently may give other ids.
"""

import json
import re
import unicodedata

import numpy as np

_MASK = (1 << 64) - 1
_K0 = 0xC3A5C85C97CB3127
_K1 = 0xB492B66FBE98F273
_K2 = 0x9AE16A3B2F90404F
# What `tf.strings.split` splits on without a separator, and what
# TextVectorization's "strip_punctuation" removes.
_ASCII_SPACE = re.compile(r"[ \t\n\v\f\r]+")
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')


def _fetch64(data, offset):
    return int.from_bytes(data[offset : offset + 8], "little")


def _fetch32(data, offset):
    return int.from_bytes(data[offset : offset + 4], "little")


def _rotate(value, shift):
    return ((value >> shift) | (value << (64 - shift))) & _MASK if shift else value


def _shift_mix(value):
    return value ^ (value >> 47)


def _hash_len16(u, v, mul):
    a = ((u ^ v) * mul) & _MASK
    a ^= a >> 47
    b = ((v ^ a) * mul) & _MASK
    b ^= b >> 47
    return (b * mul) & _MASK


def _hash_len0to16(data):
    length = len(data)
    if length >= 8:
        mul = _K2 + length * 2
        a = (_fetch64(data, 0) + _K2) & _MASK
        b = _fetch64(data, length - 8)
        c = (_rotate(b, 37) * mul + a) & _MASK
        d = ((_rotate(a, 25) + b) * mul) & _MASK
        return _hash_len16(c, d, mul)
    if length >= 4:
        mul = _K2 + length * 2
        a = _fetch32(data, 0)
        return _hash_len16((length + (a << 3)) & _MASK, _fetch32(data, length - 4), mul)
    if length > 0:
        a, b, c = data[0], data[length >> 1], data[length - 1]
        y = (a + (b << 8)) & 0xFFFFFFFF
        z = (length + (c << 2)) & 0xFFFFFFFF
        return (_shift_mix(((y * _K2) ^ (z * _K0)) & _MASK) * _K2) & _MASK
    return _K2


def _hash_len17to32(data):
    length = len(data)
    mul = _K2 + length * 2
    a = (_fetch64(data, 0) * _K1) & _MASK
    b = _fetch64(data, 8)
    c = (_fetch64(data, length - 8) * mul) & _MASK
    d = (_fetch64(data, length - 16) * _K2) & _MASK
    return _hash_len16(
        (_rotate((a + b) & _MASK, 43) + _rotate(c, 30) + d) & _MASK,
        (a + _rotate((b + _K2) & _MASK, 18) + c) & _MASK,
        mul,
    )


def _hash_len33to64(data):
    length = len(data)
    mul = _K2 + length * 2
    a = (_fetch64(data, 0) * _K2) & _MASK
    b = _fetch64(data, 8)
    c = (_fetch64(data, length - 8) * mul) & _MASK
    d = (_fetch64(data, length - 16) * _K2) & _MASK
    y = (_rotate((a + b) & _MASK, 43) + _rotate(c, 30) + d) & _MASK
    z = _hash_len16(y, (a + _rotate((b + _K2) & _MASK, 18) + c) & _MASK, mul)
    e = (_fetch64(data, 16) * mul) & _MASK
    f = _fetch64(data, 24)
    g = ((y + _fetch64(data, length - 32)) * mul) & _MASK
    h = ((z + _fetch64(data, length - 24)) * mul) & _MASK
    return _hash_len16(
        (_rotate((e + f) & _MASK, 43) + _rotate(g, 30) + h) & _MASK,
        (e + _rotate((f + a) & _MASK, 18) + g) & _MASK,
        mul,
    )


def _weak_hash_len32_with_seeds(data, offset, a, b):
    w, x = _fetch64(data, offset), _fetch64(data, offset + 8)
    y, z = _fetch64(data, offset + 16), _fetch64(data, offset + 24)
    a = (a + w) & _MASK
    b = _rotate((b + a + z) & _MASK, 21)
    c = a
    a = (a + x + y) & _MASK
    b = (b + _rotate(a, 44)) & _MASK
    return (a + z) & _MASK, (b + c) & _MASK


def fingerprint64(data):
    """FarmHash's `Fingerprint64` of `data` (bytes), as TensorFlow's hashing ops use it."""
    length = len(data)
    if length <= 16:
        return _hash_len0to16(data)
    if length <= 32:
        return _hash_len17to32(data)
    if length <= 64:
        return _hash_len33to64(data)
    seed = 81
    x = seed
    y = (seed * _K1 + 113) & _MASK
    z = (_shift_mix((y * _K2 + 113) & _MASK) * _K2) & _MASK
    v = (0, 0)
    w = (0, 0)
    x = (x * _K2 + _fetch64(data, 0)) & _MASK
    offset = 0
    end = ((length - 1) // 64) * 64
    last64 = end + ((length - 1) & 63) - 63
    while True:
        x = (_rotate((x + y + v[0] + _fetch64(data, offset + 8)) & _MASK, 37) * _K1) & _MASK
        y = (_rotate((y + v[1] + _fetch64(data, offset + 48)) & _MASK, 42) * _K1) & _MASK
        x ^= w[1]
        y = (y + v[0] + _fetch64(data, offset + 40)) & _MASK
        z = (_rotate((z + w[0]) & _MASK, 33) * _K1) & _MASK
        v = _weak_hash_len32_with_seeds(data, offset, (v[1] * _K1) & _MASK, (x + w[0]) & _MASK)
        w = _weak_hash_len32_with_seeds(
            data, offset + 32, (z + w[1]) & _MASK, (y + _fetch64(data, offset + 16)) & _MASK
        )
        z, x = x, z
        offset += 64
        if offset == end:
            break
    mul = _K1 + ((z & 0xFF) << 1)
    offset = last64
    w = ((w[0] + ((length - 1) & 63)) & _MASK, w[1])
    v = ((v[0] + w[0]) & _MASK, v[1])
    w = ((w[0] + v[0]) & _MASK, w[1])
    x = (_rotate((x + y + v[0] + _fetch64(data, offset + 8)) & _MASK, 37) * mul) & _MASK
    y = (_rotate((y + v[1] + _fetch64(data, offset + 48)) & _MASK, 42) * mul) & _MASK
    x ^= (w[1] * 9) & _MASK
    y = (y + v[0] * 9 + _fetch64(data, offset + 40)) & _MASK
    z = (_rotate((z + w[0]) & _MASK, 33) * mul) & _MASK
    v = _weak_hash_len32_with_seeds(data, offset, (v[1] * mul) & _MASK, (x + w[0]) & _MASK)
    w = _weak_hash_len32_with_seeds(
        data, offset + 32, (z + w[1]) & _MASK, (y + _fetch64(data, offset + 16)) & _MASK
    )
    z, x = x, z
    return _hash_len16(
        (_hash_len16(v[0], w[0], mul) + _shift_mix(y) * _K0 + z) & _MASK,
        (_hash_len16(v[1], w[1], mul) + x) & _MASK,
        mul,
    )


def hash_bucket(text, num_buckets):
    """`tf.strings.to_hash_bucket_fast(text, num_buckets)` of one string."""
    return fingerprint64(text.encode("utf-8")) % num_buckets


def split_whitespace(text):
    """`tf.strings.split(text)`: the pieces between runs of ASCII whitespace."""
    return [piece for piece in _ASCII_SPACE.split(text) if piece]


def _lower(text):
    """Lower case one character at a time (simple case mapping, as ICU's)."""
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def spelling_feature(word, feature, length=3):
    """The `TokenFeatureHashing` feature of one token: its suffix, prefix or shape."""
    if feature == "suffix":
        return ("^" * length + _lower(word))[-length:]
    if feature == "prefix":
        return (_lower(word) + "$" * length)[:length]
    if feature != "shape":
        raise ValueError(f"Expected a feature among suffix, prefix, shape. Received: {feature!r}")
    # Letters become x (capitals too: the capitals' X is a letter itself),
    # numbers d, and runs of either collapse.
    classes = []
    for character in word:
        category = unicodedata.category(character)
        classes.append("x" if category[0] == "L" else "d" if category[0] == "N" else character)
    return re.sub("d+", "d", re.sub("x+", "x", "".join(classes)))


def _padded(rows, length, dtype):
    length = length if length is not None else max((len(row) for row in rows), default=1)
    array = np.zeros((len(rows), max(length, 1)), dtype)
    for index, row in enumerate(rows):
        row = row[:length]
        array[index, : len(row)] = row
    return array


class TextPreprocessor:
    """Raw texts to the inputs of an exported text model, from its `.vocabulary.json`.

    Args:
        settings: The dict of the model's `<name>.vocabulary.json`.

    Call arguments:
        texts: A list of strings (sentences, documents, or a next-word
            prompt).

    Returns:
        `{input name: integer array (batch, steps)}`, in the dtypes the
        model file takes.
    """

    def __init__(self, settings):
        self.settings = settings
        self.vocabulary = list(settings["vocabulary"])
        self.index = {word: i for i, word in enumerate(self.vocabulary)}
        self.labels = settings.get("labels")
        self.input_dtypes = dict(settings.get("input_dtypes", {}))

    @classmethod
    def from_file(cls, path):
        """The preprocessor of the settings in the JSON file at `path`."""
        with open(path, encoding="utf-8") as file:
            return cls(json.load(file))

    def tokens(self, text):
        """The tokens of one text, as the model's tokeniser gives them."""
        settings = self.settings
        if settings.get("token_pattern"):
            return re.findall(settings["token_pattern"], text.lower())
        standardize = settings.get("standardize")
        if standardize in ("lower", "lower_and_strip_punctuation"):
            text = text.encode("utf-8").lower().decode("utf-8")  # ASCII letters only
        if standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = _PUNCTUATION.sub("", text)
        if settings.get("split", "whitespace") != "whitespace":
            raise ValueError(f"Expected split='whitespace'. Received: {settings.get('split')!r}")
        return split_whitespace(text)

    def token_ids(self, texts):
        """The token ids of each text, padded with 0 (or cut) to the model's length.

        Without a fixed length (a next-word model), the texts of a batch are
        padded to the longest; 0 is then the unknown word, not a mask, so
        read each text's outputs up to its own number of tokens.
        """
        oov = self.settings.get("oov_id", 1)
        rows = [[self.index.get(token, oov) for token in self.tokens(text)] for text in texts]
        return _padded(rows, self.settings.get("sequence_length"), np.int64)

    def feature_ids(self, texts, feature):
        """The hashed spelling-feature ids of each whitespace-separated token of `texts`."""
        rows = [
            [
                hash_bucket(
                    spelling_feature(word, feature["feature"], feature["suffix_length"]),
                    feature["num_bins"],
                )
                + 1
                for word in split_whitespace(text)
            ]
            for text in texts
        ]
        return _padded(rows, feature["sequence_length"], np.int64)

    def __call__(self, texts):
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        inputs = {self.settings["input"]: self.token_ids(texts)}
        for feature in self.settings.get("features", []):
            inputs[feature["input"]] = self.feature_ids(texts, feature)
        return {
            name: array.astype(self.input_dtypes.get(name, "int64"))
            for name, array in inputs.items()
        }
