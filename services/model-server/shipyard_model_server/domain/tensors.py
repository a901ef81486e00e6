"""The Open Inference Protocol (KServe V2) data model: requests, tensors, responses, metadata.

Pure: JSON-shaped values in, numpy arrays out, and back. A request body
``{id?, parameters?, inputs: [{name, shape, datatype, parameters?, data}], outputs?: [{name, parameters?}]}``
becomes an :class:`InferRequest` whose inputs hold numpy arrays of the datatype's dtype and the
declared shape; ``data`` may be flat or nested (row-major) and must hold exactly ``prod(shape)``
elements. Output arrays become ``{name, datatype, shape, data}`` with ``data`` flat, row-major.

Triton's binary tensor extension is understood too: an input whose ``parameters.binary_data_size``
is set takes its bytes from the part of the body after the JSON header, in input order, and an
output asked for with ``parameters.binary_data: true`` (or every output, when the request's
``parameters.binary_data_output`` is true) is sent raw after the JSON (:func:`encode_outputs`).

Every problem with a request raises :class:`TensorError`, whose message names the input and what is
wrong, e.g. ``input 'x': shape [2, 3] needs 6 elements, got 5``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Every V2 datatype and the numpy dtype an input of it becomes (BYTES: an object array of ``str``,
#: or of ``bytes`` when the tensor came as binary data).
DATATYPES: Mapping[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}

_INTEGER = frozenset({"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"})
_FLOAT = frozenset({"FP16", "FP32", "FP64"})
_NARROW_FLOAT = {"FP16": float(np.finfo(np.float16).max), "FP32": float(np.finfo(np.float32).max)}
_INT_RANGE = {
    name: (int(np.iinfo(DATATYPES[name]).min), int(np.iinfo(DATATYPES[name]).max)) for name in _INTEGER
}
_BY_KIND_SIZE: Mapping[tuple[str, int], str] = {
    (DATATYPES[name].kind, DATATYPES[name].itemsize): name for name in DATATYPES if name != "BYTES"
}
_LENGTH = struct.Struct("<I")


class TensorError(ValueError):
    """A request (or a model's output) does not fit the protocol; the message says what and where."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(slots=True)
class InputTensor:
    """One request input, as a numpy array of its datatype's dtype and its declared shape."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    array: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RequestedOutput:
    """An output the request names; ``binary`` when it is to be sent as raw bytes."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    binary: bool = False


@dataclass(slots=True)
class InferRequest:
    """A parsed inference request."""

    id: str | None
    parameters: dict[str, Any]
    inputs: list[InputTensor]
    outputs: list[RequestedOutput]
    binary_output: bool = False

    def arrays(self) -> dict[str, np.ndarray]:
        """The inputs by name, as a predictor takes them."""
        return {tensor.name: tensor.array for tensor in self.inputs}

    def output_names(self) -> list[str]:
        return [output.name for output in self.outputs]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """An input or output in model metadata; -1 in ``shape`` is a dimension of any size."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    """The answer to GET /v2/models/{name}[/versions/{v}]."""

    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": list(self.versions),
            "platform": self.platform,
            "inputs": [spec.to_json() for spec in self.inputs],
            "outputs": [spec.to_json() for spec in self.outputs],
        }


# --- requests ---------------------------------------------------------------------------------


def split_binary(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON part and the binary part of a body (the ``Inference-Header-Content-Length`` header
    says where the JSON ends; without it the whole body is JSON)."""
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        raise TensorError(f"Inference-Header-Content-Length {header_length!r} is not an integer") from None
    if not 0 <= length <= len(body):
        raise TensorError(f"Inference-Header-Content-Length {length} is outside the body ({len(body)} bytes)")
    return body[:length], body[length:]


def parse_request(body: object, binary: bytes = b"") -> InferRequest:
    """An inference request from its decoded JSON (and the binary part, if any)."""
    if not isinstance(body, dict):
        raise TensorError("the request body must be a JSON object")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise TensorError(f"id must be a string, got {request_id!r}")
    parameters = _parameters(body.get("parameters"), "the request")
    raw_inputs = body.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise TensorError("inputs must be a non-empty list")
    inputs: list[InputTensor] = []
    seen: set[str] = set()
    offset = 0
    for index, raw in enumerate(raw_inputs):
        tensor, offset = _parse_input(raw, index, binary, offset)
        if tensor.name in seen:
            raise TensorError(f"input {tensor.name!r} is given twice")
        seen.add(tensor.name)
        inputs.append(tensor)
    if offset != len(binary):
        raise TensorError(f"the binary part has {len(binary) - offset} bytes no input claims")
    binary_output = parameters.get("binary_data_output") is True
    outputs: list[RequestedOutput] = []
    raw_outputs = body.get("outputs")
    if raw_outputs is not None:
        if not isinstance(raw_outputs, list):
            raise TensorError("outputs must be a list")
        for raw in raw_outputs:
            if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
                raise TensorError(f"each output must be an object with a string name, got {raw!r}")
            name = raw["name"]
            out_parameters = _parameters(raw.get("parameters"), f"output {name!r}")
            wants = out_parameters.get("binary_data")
            as_binary = binary_output if wants is None else wants is True
            outputs.append(RequestedOutput(name, out_parameters, as_binary))
    return InferRequest(request_id, parameters, inputs, outputs, binary_output)


def check_inputs(model_inputs: Sequence[TensorSpec], request: InferRequest) -> None:
    """Refuse a request whose inputs are not the model's inputs, as its metadata lists them: every
    input the request names must be one of them, each of them must come, and text (BYTES) cannot
    stand for numbers nor numbers for text (numbers of another type are cast, as the predictors
    do). A model that declares no inputs (a custom predictor without ``inputs``) takes any."""
    if not model_inputs:
        return
    declared = {spec.name: spec for spec in model_inputs}
    takes = ", ".join(f"{spec.name} ({spec.datatype})" for spec in model_inputs)
    for tensor in request.inputs:
        spec = declared.get(tensor.name)
        if spec is None:
            raise TensorError(f"input {tensor.name!r} is not an input of this model: it takes {takes} "
                              "(the model's metadata, GET /v2/models/<name>, lists them)")
        if (tensor.datatype == "BYTES") != (spec.datatype == "BYTES"):
            raise TensorError(f"input {tensor.name!r} is {tensor.datatype}, but the model takes "
                              f"{spec.datatype}")
    given = {tensor.name for tensor in request.inputs}
    missing = [spec.name for spec in model_inputs if spec.name not in given]
    if missing:
        raise TensorError(f"input {missing[0]!r} is missing: the model takes {takes}")


def _parameters(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TensorError(f"{where}: parameters must be an object, got {value!r}")
    return value


def _parse_input(raw: object, index: int, binary: bytes, offset: int) -> tuple[InputTensor, int]:
    if not isinstance(raw, dict):
        raise TensorError(f"inputs[{index}] must be an object, got {raw!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise TensorError(f"inputs[{index}] needs a non-empty string name")
    where = f"input {name!r}"
    datatype = raw.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise TensorError(f"{where}: datatype {datatype} is not a V2 datatype")
    shape = parse_shape(raw.get("shape"), where)
    parameters = _parameters(raw.get("parameters"), where)
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise TensorError(f"{where}: binary_data_size must be a non-negative integer, got {size!r}")
        if offset + size > len(binary):
            raise TensorError(f"{where}: binary_data_size {size} runs past the end of the body")
        array = from_bytes(where, datatype, shape, binary[offset : offset + size])
        return InputTensor(name, datatype, shape, array, parameters), offset + size
    if "data" not in raw:
        raise TensorError(f"{where}: data is missing")
    array = to_array(where, datatype, shape, raw["data"])
    return InputTensor(name, datatype, shape, array, parameters), offset


def parse_shape(value: object, where: str) -> tuple[int, ...]:
    """A request shape: a list of non-negative integers."""
    if isinstance(value, list) and all(type(dim) is int and dim >= 0 for dim in value):
        return tuple(value)
    raise TensorError(f"{where}: shape must be a list of non-negative integers, got {value!r}")


def to_array(where: str, datatype: str, shape: Sequence[int], data: object) -> np.ndarray:
    """``data`` (flat or nested, row-major) as an array of ``datatype``'s dtype and ``shape``."""
    dtype = DATATYPES.get(datatype)
    if dtype is None:
        raise TensorError(f"{where}: datatype {datatype} is not a V2 datatype")
    count = math.prod(shape)
    if not isinstance(data, list):
        raise TensorError(f"{where}: data must be a list, got {type(data).__name__}")
    if datatype == "BYTES":
        return _bytes_array(where, shape, count, data)
    try:
        raw = np.array(data)
    except (ValueError, TypeError, OverflowError):
        flat = _flatten(where, data)  # raises for ragged data; else the values are mixed
        raw = np.array(flat, dtype=object)
    if raw.size != count:
        raise TensorError(f"{where}: shape {list(shape)} needs {count} elements, got {raw.size}")
    if count == 0:
        return np.zeros(shape, dtype=dtype)
    kind = raw.dtype.kind
    if datatype in _FLOAT:
        limit = _NARROW_FLOAT.get(datatype)
        fits = kind in "iuf" and (limit is None or max(-float(raw.min()), float(raw.max())) <= limit)
    elif datatype in _INTEGER:
        low, high = _INT_RANGE[datatype]
        fits = kind in "iu" and int(raw.min()) >= low and int(raw.max()) <= high
    else:  # BOOL
        fits = kind == "b"
    if not fits:
        # The slow path: name the first value that does not fit, or (numpy having guessed a dtype
        # that loses precision, e.g. float64 for big UINT64 values) convert value by value.
        _check_values(where, datatype, data)
        return np.array(list(_iter_flat(data)), dtype=dtype).reshape(shape)
    return raw.astype(dtype, copy=False).reshape(shape)


def _bytes_array(where: str, shape: Sequence[int], count: int, data: list[Any]) -> np.ndarray:
    flat = _flatten(where, data)
    if len(flat) != count:
        raise TensorError(f"{where}: shape {list(shape)} needs {count} elements, got {len(flat)}")
    for value in flat:
        if not isinstance(value, str):
            raise TensorError(f"{where}: expected BYTES values (strings), got {value!r}")
    array = np.empty(count, dtype=object)
    array[:] = flat
    return array.reshape(shape)


def _flatten(where: str, data: list[Any]) -> list[Any]:
    """Nested lists, row-major, checked to be regular (every sub-list at a depth equally long)."""
    if not data or not isinstance(data[0], list):
        for value in data:
            if isinstance(value, list):
                raise TensorError(f"{where}: data is ragged (nested lists of different depths)")
        return data
    width = len(data[0])
    flat: list[Any] = []
    for row in data:
        if not isinstance(row, list) or len(row) != width:
            raise TensorError(f"{where}: data is ragged (nested lists of different lengths)")
        flat.extend(_flatten(where, row))
    return flat


def _iter_flat(data: object) -> Iterator[object]:
    if isinstance(data, list):
        for value in data:
            yield from _iter_flat(value)
    else:
        yield data


def _check_values(where: str, datatype: str, data: list[Any]) -> None:
    """Raise for the first element of ``data`` that ``datatype`` cannot hold."""
    limit = _NARROW_FLOAT.get(datatype)
    for value in _iter_flat(data):
        if datatype == "BOOL":
            ok = isinstance(value, bool)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            ok = False
        elif datatype in _INTEGER:
            if not isinstance(value, int):
                ok = False
            else:
                low, high = _INT_RANGE[datatype]
                if not low <= value <= high:
                    raise TensorError(f"{where}: value {value} is out of range for {datatype}")
                ok = True
        else:
            if limit is not None and math.isfinite(value) and abs(value) > limit:
                raise TensorError(f"{where}: value {value} is out of range for {datatype}")
            ok = True
        if not ok:
            raise TensorError(f"{where}: expected {datatype} values, got {value!r}")


def from_bytes(where: str, datatype: str, shape: Sequence[int], raw: bytes) -> np.ndarray:
    """A tensor sent as binary data (little-endian, row-major; BYTES as 4-byte length + bytes)."""
    count = math.prod(shape)
    if datatype == "BYTES":
        items: list[bytes] = []
        position = 0
        while position < len(raw):
            if position + 4 > len(raw):
                raise TensorError(f"{where}: binary BYTES data ends inside a length prefix")
            (length,) = _LENGTH.unpack_from(raw, position)
            position += 4
            if position + length > len(raw):
                raise TensorError(f"{where}: binary BYTES element of {length} bytes runs past the data")
            items.append(raw[position : position + length])
            position += length
        if len(items) != count:
            raise TensorError(f"{where}: shape {list(shape)} needs {count} elements, got {len(items)}")
        array = np.empty(count, dtype=object)
        array[:] = items
        return array.reshape(shape)
    dtype = DATATYPES[datatype].newbyteorder("<")
    if len(raw) != count * dtype.itemsize:
        raise TensorError(
            f"{where}: shape {list(shape)} of {datatype} needs {count * dtype.itemsize} bytes, got {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(DATATYPES[datatype], copy=True)


# --- responses --------------------------------------------------------------------------------


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The V2 datatype of a numpy dtype (strings, bytes and objects are BYTES)."""
    if dtype.kind in "USO":
        return "BYTES"
    name = _BY_KIND_SIZE.get((dtype.kind, dtype.itemsize))
    if name is None:
        raise TensorError(f"numpy dtype {dtype} has no V2 datatype")
    return name


def select_outputs(
    produced: Mapping[str, np.ndarray], requested: Sequence[RequestedOutput]
) -> list[tuple[str, np.ndarray, bool]]:
    """The outputs to send: those the request names, in its order, else all the model produced."""
    if not requested:
        return [(name, array, False) for name, array in produced.items()]
    chosen: list[tuple[str, np.ndarray, bool]] = []
    for output in requested:
        array = produced.get(output.name)
        if array is None:
            have = ", ".join(produced) or "none"
            raise TensorError(f"output {output.name!r} is not an output of the model (it has: {have})")
        chosen.append((output.name, array, output.binary))
    return chosen


def encode_output(name: str, value: object, binary: bool = False) -> tuple[dict[str, Any], bytes | None]:
    """One output tensor as ``{name, datatype, shape, data}``; ``data`` is a flat, row-major numpy
    array for numbers (a JSON encoder must serialize it, or call ``tolist()``), a list of ``str`` for
    BYTES. With ``binary``, the data is returned as raw bytes instead and the JSON carries
    ``parameters.binary_data_size``."""
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    datatype = datatype_of(array.dtype)
    shape = list(array.shape)
    if datatype == "BYTES":
        items = [_bytes_item(item) for item in array.reshape(-1).tolist()]
        if binary:
            raw = b"".join(_LENGTH.pack(len(item)) + item for item in (_as_bytes(i) for i in items))
            return _binary_json(name, datatype, shape, len(raw)), raw
        return {"name": name, "datatype": datatype, "shape": shape, "data": [_as_str(i) for i in items]}, None
    flat = np.ascontiguousarray(array).reshape(-1)
    if binary:
        raw = flat.astype(flat.dtype.newbyteorder("<"), copy=False).tobytes()
        return _binary_json(name, datatype, shape, len(raw)), raw
    return {"name": name, "datatype": datatype, "shape": shape, "data": flat}, None


def _binary_json(name: str, datatype: str, shape: list[int], size: int) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": size}}


def _bytes_item(item: object) -> str | bytes:
    return item if isinstance(item, str | bytes) else str(item)


def _as_bytes(item: str | bytes) -> bytes:
    return item.encode() if isinstance(item, str) else item


def _as_str(item: str | bytes) -> str:
    return item.decode("utf-8", "replace") if isinstance(item, bytes) else item


def encode_outputs(
    produced: Mapping[str, np.ndarray], request: InferRequest
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The request's outputs as JSON objects, and the raw bytes of those sent as binary data."""
    encoded: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, array, binary in select_outputs(produced, request.outputs):
        as_json, raw = encode_output(name, array, binary or (request.binary_output and not request.outputs))
        encoded.append(as_json)
        if raw is not None:
            chunks.append(raw)
    return encoded, chunks


def infer_response(
    model_name: str, model_version: str | None, request_id: str | None, outputs: list[dict[str, Any]]
) -> dict[str, Any]:
    """The inference response object around the encoded outputs."""
    response: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        response["model_version"] = model_version
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = outputs
    return response


def jsonable(value: Any) -> Any:
    """``value`` with numpy arrays and scalars turned into lists and Python numbers (for encoders
    that do not know numpy, and for code that wants plain JSON values)."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value
