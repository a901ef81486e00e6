"""The V2 gRPC protocol's messages as the REST V2 JSON the model servers speak, and back: typed contents
and raw little-endian bytes, parameters, and tensors whose data does not fit their shape refused naming
the input."""

from __future__ import annotations

import numpy as np
import pytest
from shipyard_gateway.entrypoints.v2_tensors import metadata_of, raw_bytes, request_json, response_of

from shipyard.contracts.inference import grpc_predict_v2_pb2 as pb
from shipyard.kit.errors import InvalidArgument

Input = pb.ModelInferRequest.InferInputTensor


def _bytes_tensor(*elements: bytes) -> bytes:
    return b"".join(len(e).to_bytes(4, "little") + e for e in elements)


def test_typed_contents_become_the_json_request_with_its_parameters() -> None:
    request = pb.ModelInferRequest(
        model_name="iris-test", id="r1",
        parameters={"priority": pb.InferParameter(int64_param=2), "tag": pb.InferParameter(string_param="a")},
        inputs=[Input(name="input-0", datatype="FP64", shape=[1, 4],
                      contents=pb.InferTensorContents(fp64_contents=[5.1, 3.5, 1.4, 0.2]),
                      parameters={"binary_data": pb.InferParameter(bool_param=False)})],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="output-0")])
    assert request_json(request) == {
        "id": "r1", "parameters": {"priority": 2, "tag": "a"},
        "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2],
                    "parameters": {"binary_data": False}}],
        "outputs": [{"name": "output-0"}]}


def test_raw_contents_are_read_little_endian_per_datatype() -> None:
    floats = np.array([[5.1, 3.5], [1.4, 0.2]], dtype="<f4")
    counts = np.array([1, -2, 3], dtype="<i8")
    request = pb.ModelInferRequest(
        model_name="m",
        inputs=[Input(name="x", datatype="FP32", shape=[2, 2]), Input(name="n", datatype="INT64", shape=[3]),
                Input(name="text", datatype="BYTES", shape=[2]),
                Input(name="half", datatype="FP16", shape=[1])],
        raw_input_contents=[floats.tobytes(), counts.tobytes(), _bytes_tensor(b"good", "café".encode()),
                            np.array([0.5], dtype="<f2").tobytes()])
    inputs = request_json(request)["inputs"]
    assert inputs[0]["data"] == pytest.approx(floats.ravel().tolist())
    assert inputs[1]["data"] == [1, -2, 3]
    assert inputs[2]["data"] == ["good", "café"]
    assert inputs[3]["data"] == [0.5]


@pytest.mark.parametrize(("tensor", "raw", "says"), [
    (Input(name="x", datatype="FP32", shape=[2, 4]), [b"\0" * 30], "holds 8 FP32 elements (32 bytes)"),
    (Input(name="x", datatype="BYTES", shape=[2]), [_bytes_tensor(b"one")], "holds 2 BYTES elements"),
    (Input(name="x", datatype="BYTES", shape=[1]), [b"\x09\0\0\0abc"], "says 9 bytes"),
    (Input(name="x", datatype="FP32", shape=[2],
           contents=pb.InferTensorContents(fp32_contents=[1.0, 2.0, 3.0])), [],
     "contents.fp32_contents has 3"),
    (Input(name="x", datatype="FP32", shape=[1],
           contents=pb.InferTensorContents(fp64_contents=[1.0])), [], "goes in contents.fp32_contents"),
    (Input(name="x", datatype="FP16", shape=[1]), [], "send it in raw_input_contents"),
    (Input(name="x", datatype="FLOAT", shape=[1]), [], "has datatype 'FLOAT'"),
    (Input(name="x", datatype="FP32", shape=[-1, 4]), [], "no dimension may be negative"),
])
def test_a_tensor_whose_data_does_not_fit_is_refused_naming_the_input(
        tensor: pb.ModelInferRequest.InferInputTensor, raw: list[bytes], says: str) -> None:
    first = Input(name="fine", datatype="INT32", shape=[1])
    fine = [np.array([7], dtype="<i4").tobytes()] if raw else []
    if not raw:
        first.contents.int_contents.append(7)
    request = pb.ModelInferRequest(model_name="m", inputs=[first, tensor], raw_input_contents=[*fine, *raw])
    with pytest.raises(InvalidArgument) as refused:
        request_json(request)
    assert refused.value.field == "inputs[1]" and "input 'x'" in refused.value.problem
    assert says in refused.value.problem


def test_raw_contents_must_come_for_every_input() -> None:
    request = pb.ModelInferRequest(model_name="m", inputs=[Input(name="a", datatype="INT8", shape=[1]),
                                                           Input(name="b", datatype="INT8", shape=[1])],
                                   raw_input_contents=[b"\1"])
    with pytest.raises(InvalidArgument, match="raw_input_contents: has 1 entries for 2 inputs"):
        request_json(request)


ANSWER = {"model_name": "iris", "model_version": "2", "id": "r1", "parameters": {"took_ms": 1.5},
          "outputs": [{"name": "label", "shape": [2], "datatype": "INT64", "data": [0, 2]},
                      {"name": "proba", "shape": [2, 2], "datatype": "FP64",
                       "data": [[0.9, 0.1], [0.2, 0.8]]},
                      {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["setosa"]}]}


def test_an_answer_comes_back_in_typed_contents_naming_the_model_as_the_caller_did() -> None:
    reply = response_of(ANSWER, "iris-test", raw=False)
    assert (reply.model_name, reply.model_version, reply.id) == ("iris-test", "2", "r1")
    assert reply.parameters["took_ms"].double_param == 1.5
    label, proba, text = reply.outputs
    assert (label.name, label.datatype, list(label.shape), list(label.contents.int64_contents)) == (
        "label", "INT64", [2], [0, 2])
    assert list(proba.contents.fp64_contents) == [0.9, 0.1, 0.2, 0.8]  # nested data, row-major
    assert list(text.contents.bytes_contents) == [b"setosa"]
    assert not reply.raw_output_contents


def test_an_answer_to_a_raw_request_comes_back_raw() -> None:
    reply = response_of(ANSWER, "iris-test", raw=True)
    label, proba, text = reply.raw_output_contents
    assert np.frombuffer(label, dtype="<i8").tolist() == [0, 2]
    assert np.frombuffer(proba, dtype="<f8").tolist() == [0.9, 0.1, 0.2, 0.8]
    assert text == _bytes_tensor(b"setosa")
    assert not any(o.HasField("contents") for o in reply.outputs)


def test_a_datatype_without_a_typed_field_makes_the_whole_answer_raw() -> None:
    answer = {"outputs": [{"name": "h", "shape": [2], "datatype": "FP16", "data": [0.5, 1.0]},
                          {"name": "b", "shape": [1], "datatype": "BOOL", "data": [True]}]}
    reply = response_of(answer, "m", raw=False)
    assert np.frombuffer(reply.raw_output_contents[0], dtype="<f2").tolist() == [0.5, 1.0]
    assert reply.raw_output_contents[1] == b"\x01"


def test_parameters_keep_their_kind() -> None:
    reply = response_of({"parameters": {"b": True, "i": -3, "big": 2**63, "s": "x", "obj": {"k": 1}},
                         "outputs": []}, "m", raw=False)
    kinds = {k: p.WhichOneof("parameter_choice") for k, p in reply.parameters.items()}
    assert kinds == {"b": "bool_param", "i": "int64_param", "big": "uint64_param", "s": "string_param",
                     "obj": "string_param"}
    assert reply.parameters["obj"].string_param == '{"k": 1}'


def test_raw_bytes_are_what_numpy_writes() -> None:
    assert raw_bytes("UINT16", [1, 65535]) == np.array([1, 65535], dtype="<u2").tobytes()
    assert raw_bytes("INT8", [-1]) == b"\xff"


def test_metadata_names_the_model_as_the_caller_did() -> None:
    said = {"name": "iris", "versions": ["2"], "platform": "sklearn",
            "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
            "outputs": [{"name": "output-0", "datatype": "INT64", "shape": [-1]}]}
    found = metadata_of(said, "iris-test")
    assert (found.name, list(found.versions), found.platform) == ("iris-test", ["2"], "sklearn")
    assert [(t.name, t.datatype, list(t.shape)) for t in found.inputs] == [("input-0", "FP64", [-1, 4])]
    assert [(t.name, list(t.shape)) for t in found.outputs] == [("output-0", [-1])]
