"""Fast NumPy <-> ``array.array`` transfer for the sequence fields of generated messages.

rosidl's Python setters accept an ``array.array`` of the right type code without inspecting
every element; anything else is checked element by element in Python, which is far too
slow for images, clouds and meshes.
"""

from __future__ import annotations

import array

import numpy as np

_TYPECODES = {
    np.dtype(np.uint8): "B",
    np.dtype(np.int8): "b",
    np.dtype(np.uint16): "H",
    np.dtype(np.int16): "h",
    np.dtype(np.uint32): "I",
    np.dtype(np.int32): "i",
    np.dtype(np.float32): "f",
    np.dtype(np.float64): "d",
}


def to_array(values: np.ndarray, dtype: np.dtype | type) -> array.array:
    """Flattened ``values`` cast to ``dtype`` as an ``array.array`` (copied)."""
    dtype = np.dtype(dtype)
    out = array.array(_TYPECODES[dtype])
    if out.itemsize != dtype.itemsize:  # pragma: no cover - exotic platforms only
        return array.array(_TYPECODES[dtype], np.asarray(values, dtype=dtype).reshape(-1).tolist())
    out.frombytes(np.ascontiguousarray(values, dtype=dtype).reshape(-1).tobytes())
    return out


def from_array(values, dtype: np.dtype | type) -> np.ndarray:
    """1-D NumPy copy of a message sequence field (``array.array``, bytes or list)."""
    dtype = np.dtype(dtype)
    if isinstance(values, (array.array, bytes, bytearray, memoryview)):
        return np.frombuffer(values, dtype=dtype).copy() if len(values) else np.zeros(0, dtype)
    return np.asarray(values, dtype=dtype).reshape(-1)
