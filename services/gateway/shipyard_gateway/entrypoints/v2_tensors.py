"""The V2 inference protocol's gRPC messages as the REST V2 JSON the model servers speak, and back.

A request's tensors come either in ``contents`` (the typed field of their datatype) or all in
``raw_input_contents`` (little-endian bytes; a BYTES element is a 4-byte little-endian length and its
bytes); each is checked against its shape (its elements times the datatype's size) before anything is
sent, and a mismatch is refused naming the input. The answer's tensors go back the way the request
came: raw when it sent raw (or when a datatype has no typed field: FP16), typed ``contents`` otherwise.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shipyard.contracts.inference import grpc_predict_v2_pb2 as pb
from shipyard.kit.errors import InvalidArgument

# Each datatype's struct format (little-endian) and typed contents field; BYTES has no fixed size.
FORMATS = {"BOOL": "?", "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q", "INT8": "b",
           "INT16": "h", "INT32": "i", "INT64": "q", "FP16": "e", "FP32": "f", "FP64": "d"}
CONTENTS = {"BOOL": "bool_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
            "UINT32": "uint_contents", "UINT64": "uint64_contents", "INT8": "int_contents",
            "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
            "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}
DATATYPES = (*FORMATS, "BYTES")
LENGTH = struct.Struct("<I")  # a BYTES element's length prefix
INT64_MAX = 2**63 - 1

Json = dict[str, Any]


def request_json(request: pb.ModelInferRequest) -> Json:
    """The REST V2 inference request of ``request``; InvalidArgument naming the input whose data does not
    fit its shape and datatype."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument("raw_input_contents", f"has {len(raw)} entries for {len(request.inputs)} "
                                                    "inputs: one per input, in order")
    inputs = [_input_json(i, tensor, raw[i] if raw else None) for i, tensor in enumerate(request.inputs)]
    body: Json = {"inputs": inputs}
    if request.id:
        body["id"] = request.id
    if request.parameters:
        body["parameters"] = parameters_json(request.parameters)
    if request.outputs:
        body["outputs"] = [_requested_json(o) for o in request.outputs]
    return body


def _input_json(index: int, tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | None) -> Json:
    field = f"inputs[{index}]"
    what = f"input {tensor.name!r}"
    if tensor.datatype not in DATATYPES:
        raise InvalidArgument(field, f"{what} has datatype {tensor.datatype!r}; "
                                     f"one of {', '.join(DATATYPES)}")
    if any(d < 0 for d in tensor.shape):
        raise InvalidArgument(field, f"{what} has shape {list(tensor.shape)}: no dimension may be negative")
    count = math.prod(tensor.shape)
    data = (_from_raw(field, what, tensor.datatype, count, raw) if raw is not None
            else _from_contents(field, what, tensor, count))
    body: Json = {"name": tensor.name, "shape": list(tensor.shape), "datatype": tensor.datatype, "data": data}
    if tensor.parameters:
        body["parameters"] = parameters_json(tensor.parameters)
    return body


def _from_raw(field: str, what: str, datatype: str, count: int, raw: bytes) -> list[Any]:
    if datatype == "BYTES":
        elements = _split_bytes(field, what, raw)
        if len(elements) != count:
            raise InvalidArgument(field, f"{what}: its shape holds {count} BYTES elements; "
                                         f"raw_input_contents has {len(elements)}")
        return [_text(field, what, e) for e in elements]
    size = struct.calcsize(FORMATS[datatype])
    if len(raw) != count * size:
        raise InvalidArgument(field, f"{what}: its shape holds {count} {datatype} elements ({count * size} "
                                     f"bytes); raw_input_contents has {len(raw)} bytes")
    return list(struct.unpack(f"<{count}{FORMATS[datatype]}", raw))


def _split_bytes(field: str, what: str, raw: bytes) -> list[bytes]:
    """A raw BYTES tensor's elements: each a 4-byte little-endian length, then that many bytes."""
    elements, at = [], 0
    while at < len(raw):
        if at + LENGTH.size > len(raw):
            raise InvalidArgument(field, f"{what}: raw BYTES data ends inside an element's 4-byte length")
        (length,) = LENGTH.unpack_from(raw, at)
        at += LENGTH.size
        if at + length > len(raw):
            raise InvalidArgument(field, f"{what}: a raw BYTES element says {length} bytes; "
                                         f"{len(raw) - at} are left")
        elements.append(raw[at:at + length])
        at += length
    return elements


def _from_contents(field: str, what: str, tensor: pb.ModelInferRequest.InferInputTensor,
                   count: int) -> list[Any]:
    typed = CONTENTS.get(tensor.datatype)
    if typed is None:
        raise InvalidArgument(field, f"{what}: {tensor.datatype} data has no contents field; "
                                     "send it in raw_input_contents")
    others = [name for name in set(CONTENTS.values()) - {typed} if getattr(tensor.contents, name)]
    if others:
        raise InvalidArgument(field, f"{what}: {tensor.datatype} data goes in contents.{typed}, "
                                     f"not contents.{sorted(others)[0]}")
    values = list(getattr(tensor.contents, typed))
    if len(values) != count:
        raise InvalidArgument(field, f"{what}: its shape {list(tensor.shape)} holds {count} elements; "
                                     f"contents.{typed} has {len(values)}")
    return [_text(field, what, v) for v in values] if tensor.datatype == "BYTES" else values


def _text(field: str, what: str, element: bytes) -> str:
    """A BYTES element as the JSON protocol carries it: text."""
    try:
        return element.decode()
    except UnicodeDecodeError:
        raise InvalidArgument(field, f"{what}: a BYTES element is not UTF-8 text, which the JSON protocol "
                                     "the model servers speak cannot carry") from None


def _requested_json(output: pb.ModelInferRequest.InferRequestedOutputTensor) -> Json:
    body: Json = {"name": output.name}
    if output.parameters:
        body["parameters"] = parameters_json(output.parameters)
    return body


def parameters_json(parameters: Mapping[str, pb.InferParameter]) -> Json:
    """gRPC parameters as JSON values."""
    found: Json = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        if choice is not None:
            found[key] = getattr(parameter, choice)
    return found


def parameter_of(value: Any) -> pb.InferParameter:
    """A JSON value as a gRPC parameter (a list or object as its JSON text)."""
    if isinstance(value, bool):
        return pb.InferParameter(bool_param=value)
    if isinstance(value, int):
        if value > INT64_MAX:
            return pb.InferParameter(uint64_param=value)
        return pb.InferParameter(int64_param=value)
    if isinstance(value, float):
        return pb.InferParameter(double_param=value)
    if isinstance(value, str):
        return pb.InferParameter(string_param=value)
    return pb.InferParameter(string_param=json.dumps(value))


def response_of(answer: Json, model_name: str, raw: bool) -> pb.ModelInferResponse:
    """The gRPC answer of a REST V2 inference answer, naming the model as the caller did; its outputs'
    data raw (``raw``, or when a datatype has no typed field) or in typed contents."""
    outputs = answer.get("outputs")
    if not isinstance(outputs, list):
        raise ValueError("the model server's answer has no outputs list")
    raw = raw or any(o.get("datatype") not in CONTENTS for o in outputs)
    reply = pb.ModelInferResponse(model_name=model_name, model_version=str(answer.get("model_version") or ""),
                                  id=str(answer.get("id") or ""))
    for key, value in (answer.get("parameters") or {}).items():
        reply.parameters[key].CopyFrom(parameter_of(value))
    for output in outputs:
        tensor = reply.outputs.add(name=str(output["name"]), datatype=str(output["datatype"]),
                                   shape=[int(d) for d in output["shape"]])
        for key, value in (output.get("parameters") or {}).items():
            tensor.parameters[key].CopyFrom(parameter_of(value))
        data = list(_flat(output.get("data", [])))
        if raw:
            reply.raw_output_contents.append(raw_bytes(tensor.datatype, data))
        else:
            _fill(tensor.contents, tensor.datatype, data)
    return reply


def raw_bytes(datatype: str, data: Sequence[Any]) -> bytes:
    """Flat data as the V2 protocol's little-endian bytes."""
    if datatype == "BYTES":
        encoded = [e.encode() if isinstance(e, str) else bytes(e) for e in data]
        return b"".join(LENGTH.pack(len(e)) + e for e in encoded)
    if datatype not in FORMATS:
        raise ValueError(f"the model server answered datatype {datatype!r}")
    return struct.pack(f"<{len(data)}{FORMATS[datatype]}", *data)


def _fill(contents: pb.InferTensorContents, datatype: str, data: list[Any]) -> None:
    typed = CONTENTS[datatype]
    values = [e.encode() if isinstance(e, str) else e for e in data] if datatype == "BYTES" else data
    getattr(contents, typed).extend(values)


def _flat(data: Any) -> Iterable[Any]:
    """The elements of V2 JSON data, flat or nested, in row-major order."""
    if isinstance(data, list):
        for item in data:
            yield from _flat(item)
    else:
        yield data


def metadata_of(answer: Json, model_name: str) -> pb.ModelMetadataResponse:
    """The gRPC model metadata of a REST V2 metadata answer, naming the model as the caller did."""
    def tensors(key: str) -> list[pb.ModelMetadataResponse.TensorMetadata]:
        return [pb.ModelMetadataResponse.TensorMetadata(name=str(t.get("name", "")),
                                                        datatype=str(t.get("datatype", "")),
                                                        shape=[int(d) for d in t.get("shape") or []])
                for t in answer.get(key) or []]

    return pb.ModelMetadataResponse(name=model_name, versions=[str(v) for v in answer.get("versions") or []],
                                    platform=str(answer.get("platform") or ""), inputs=tensors("inputs"),
                                    outputs=tensors("outputs"))
