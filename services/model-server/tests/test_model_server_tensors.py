"""The V2 data model: parsing inference requests into numpy arrays, encoding outputs, metadata."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from shipyard_model_server.domain.tensors import (
    DATATYPES,
    InferRequest,
    ModelMetadata,
    RequestedOutput,
    TensorError,
    TensorSpec,
    datatype_of,
    encode_output,
    encode_outputs,
    from_bytes,
    infer_response,
    jsonable,
    parse_request,
    select_outputs,
    split_binary,
    to_array,
)


def one_input(datatype: str, shape: list[int], data: Any, name: str = "x") -> dict[str, Any]:
    return {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]}


def parse_one(datatype: str, shape: list[int], data: Any) -> np.ndarray:
    return parse_request(one_input(datatype, shape, data)).inputs[0].array


def error_of(body: object, binary: bytes = b"") -> str:
    with pytest.raises(TensorError) as caught:
        parse_request(body, binary)
    return caught.value.message


EVERY_DATATYPE = [
    ("BOOL", [True, False, True, True], np.bool_),
    ("UINT8", [0, 1, 254, 255], np.uint8),
    ("UINT16", [0, 1, 2, 65535], np.uint16),
    ("UINT32", [0, 1, 2, 4294967295], np.uint32),
    ("UINT64", [0, 1, 2, 18446744073709551615], np.uint64),
    ("INT8", [-128, 0, 1, 127], np.int8),
    ("INT16", [-32768, 0, 1, 32767], np.int16),
    ("INT32", [-2147483648, 0, 1, 2147483647], np.int32),
    ("INT64", [-9223372036854775808, 0, 1, 9223372036854775807], np.int64),
    ("FP16", [0.5, -1.0, 2, 65504.0], np.float16),
    ("FP32", [0.5, -1.25, 3, 2.0**100], np.float32),
    ("FP64", [0.1, -1e300, 7, 2.5], np.float64),
    ("BYTES", ["a", "", "héllo", "4"], object),
]


@pytest.mark.parametrize(
    ("datatype", "data", "dtype"), EVERY_DATATYPE, ids=[row[0] for row in EVERY_DATATYPE]
)
def test_every_datatype_becomes_an_array_of_its_dtype_and_shape(
    datatype: str, data: list[Any], dtype: Any
) -> None:
    flat = parse_one(datatype, [2, 2], data)
    assert flat.dtype == np.dtype(dtype) == DATATYPES[datatype]
    assert flat.shape == (2, 2)
    assert flat.reshape(-1).tolist() == data  # exact, UINT64's top value included
    nested = parse_one(datatype, [2, 2], [data[:2], data[2:]])
    assert nested.dtype == flat.dtype
    assert nested.tolist() == flat.tolist()


def test_nested_data_is_row_major_and_may_differ_from_the_shape_if_the_count_matches() -> None:
    array = parse_one("INT32", [2, 3], [[1, 2, 3], [4, 5, 6]])
    assert array.tolist() == [[1, 2, 3], [4, 5, 6]]
    # Triton flattens nested data row-major, then applies the shape: same here.
    assert parse_one("INT32", [2, 3], [[1, 2], [3, 4], [5, 6]]).tolist() == [[1, 2, 3], [4, 5, 6]]
    assert parse_one("FP32", [1, 2, 2], [[[1, 2], [3, 4]]]).shape == (1, 2, 2)


def test_integers_are_accepted_for_floats_and_scalars_have_an_empty_shape() -> None:
    assert parse_one("FP32", [3], [1, 2, 3]).tolist() == [1.0, 2.0, 3.0]
    scalar = parse_one("FP64", [], [4.5])
    assert scalar.shape == () and float(scalar) == 4.5


def test_an_empty_tensor() -> None:
    array = parse_one("FP32", [0, 4], [])
    assert array.shape == (0, 4) and array.dtype == np.float32


def test_shape_mismatch_names_the_input_shape_and_counts() -> None:
    assert (
        error_of(one_input("FP32", [2, 3], [1, 2, 3, 4, 5]))
        == "input 'x': shape [2, 3] needs 6 elements, got 5"
    )
    nested = one_input("FP32", [2, 3], [[1, 2], [3, 4]])
    assert error_of(nested) == "input 'x': shape [2, 3] needs 6 elements, got 4"
    assert error_of(one_input("BYTES", [3], ["a"])) == "input 'x': shape [3] needs 3 elements, got 1"


def test_unknown_datatype() -> None:
    assert error_of(one_input("FP33", [1], [1.0])) == "input 'x': datatype FP33 is not a V2 datatype"
    assert error_of(one_input("fp32", [1], [1.0])) == "input 'x': datatype fp32 is not a V2 datatype"


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        ("FP32", [1.0, "abc"], "input 'x': expected FP32 values, got 'abc'"),
        ("FP32", [[1.0], [None]], "input 'x': expected FP32 values, got None"),
        ("FP64", [True, False], "input 'x': expected FP64 values, got True"),
        ("INT32", [1, 2.5], "input 'x': expected INT32 values, got 2.5"),
        ("INT64", ["7", 1], "input 'x': expected INT64 values, got '7'"),
        ("UINT8", [1, 300], "input 'x': value 300 is out of range for UINT8"),
        ("UINT64", [-1, 5], "input 'x': value -1 is out of range for UINT64"),
        ("INT8", [-129, 0], "input 'x': value -129 is out of range for INT8"),
        ("INT64", [2**63, 0], "input 'x': value 9223372036854775808 is out of range for INT64"),
        ("FP16", [1.0, 70000.0], "input 'x': value 70000.0 is out of range for FP16"),
        ("FP32", [1e39, 0.0], "input 'x': value 1e+39 is out of range for FP32"),
        ("BOOL", [1, 0], "input 'x': expected BOOL values, got 1"),
        ("BYTES", ["a", 1], "input 'x': expected BYTES values (strings), got 1"),
    ],
)
def test_values_that_do_not_fit_the_datatype_are_named(datatype: str, data: list[Any], message: str) -> None:
    assert error_of(one_input(datatype, [2], data)) == message


def test_ragged_nested_data() -> None:
    assert "ragged" in error_of(one_input("FP32", [2, 2], [[1, 2], [3]]))
    assert "ragged" in error_of(one_input("FP32", [2, 2], [[1, 2], 3]))
    assert "ragged" in error_of(one_input("BYTES", [2, 2], [["a", "b"], ["c"]]))
    assert "ragged" in error_of(one_input("BYTES", [2], ["a", ["b"]]))


def test_bytes_are_strings_in_an_object_array() -> None:
    array = parse_one("BYTES", [2, 1], [["spam"], ["eggs"]])
    assert array.dtype == object and array.shape == (2, 1)
    assert array.tolist() == [["spam"], ["eggs"]]


@pytest.mark.parametrize(
    ("shape", "shown"),
    [([2, -1], "[2, -1]"), (["2"], "['2']"), ([True], "[True]"), (None, "None"), ([1.0], "[1.0]")],
)
def test_bad_shapes(shape: Any, shown: str) -> None:
    message = error_of(one_input("FP32", shape, [1.0]))
    assert message == f"input 'x': shape must be a list of non-negative integers, got {shown}"


def test_request_structure_errors() -> None:
    assert error_of([]) == "the request body must be a JSON object"
    assert error_of({"inputs": []}) == "inputs must be a non-empty list"
    assert error_of({}) == "inputs must be a non-empty list"
    assert error_of({"id": 7, **one_input("FP32", [1], [1])}) == "id must be a string, got 7"
    assert "parameters must be an object" in error_of({"parameters": [1], **one_input("FP32", [1], [1])})
    assert error_of({"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}) == (
        "inputs[0] needs a non-empty string name"
    )
    assert (
        error_of({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]})
        == "input 'x': data is missing"
    )
    assert error_of(one_input("FP32", [1], 1.0)) == "input 'x': data must be a list, got float"
    twice = {"inputs": one_input("FP32", [1], [1])["inputs"] * 2}
    assert error_of(twice) == "input 'x' is given twice"
    assert "each output must be an object" in error_of({**one_input("FP32", [1], [1]), "outputs": [{"n": 1}]})


def test_a_whole_request() -> None:
    body = {
        "id": "req-1",
        "parameters": {"method": "predict_proba"},
        "inputs": [
            {
                "name": "a",
                "shape": [1, 2],
                "datatype": "FP32",
                "data": [1, 2],
                "parameters": {"content_type": "np"},
            },
            {"name": "b", "shape": [1], "datatype": "BYTES", "data": ["z"]},
        ],
        "outputs": [{"name": "predict_proba"}, {"name": "predict", "parameters": {"binary_data": True}}],
    }
    request = parse_request(body)
    assert request.id == "req-1"
    assert request.parameters == {"method": "predict_proba"}
    assert list(request.arrays()) == ["a", "b"]
    assert request.inputs[0].parameters == {"content_type": "np"}
    assert request.output_names() == ["predict_proba", "predict"]
    assert [output.binary for output in request.outputs] == [False, True]


# --- binary tensor data -------------------------------------------------------------------------


def bytes_elements(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def test_binary_inputs_take_their_bytes_in_order() -> None:
    floats = np.array([[1.5, -2.0]], dtype=np.float32)
    strings = bytes_elements(b"ab", b"", b"\xff")
    body = {
        "inputs": [
            {"name": "f", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}},
            {
                "name": "s",
                "shape": [3],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(strings)},
            },
            {"name": "j", "shape": [1], "datatype": "INT8", "data": [3]},
        ]
    }
    request = parse_request(body, floats.tobytes() + strings)
    arrays = request.arrays()
    assert arrays["f"].tolist() == [[1.5, -2.0]] and arrays["f"].dtype == np.float32
    assert arrays["f"].flags.writeable
    assert arrays["s"].tolist() == [b"ab", b"", b"\xff"]
    assert arrays["j"].tolist() == [3]


def test_binary_input_errors() -> None:
    meta = {"name": "f", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}
    assert (
        error_of({"inputs": [meta]}, b"\0" * 4)
        == "input 'f': binary_data_size 8 runs past the end of the body"
    )
    assert error_of({"inputs": [meta]}, b"\0" * 12) == "the binary part has 4 bytes no input claims"
    odd = {**meta, "parameters": {"binary_data_size": 4}}
    assert error_of({"inputs": [odd]}, b"\0" * 4) == "input 'f': shape [2] of FP32 needs 8 bytes, got 4"
    with pytest.raises(TensorError, match="ends inside a length prefix"):
        from_bytes("input 's'", "BYTES", [1], b"\1\0")
    with pytest.raises(TensorError, match="runs past the data"):
        from_bytes("input 's'", "BYTES", [1], b"\5\0\0\0ab")


def test_split_binary() -> None:
    assert split_binary(b'{"a":1}rest', "7") == (b'{"a":1}', b"rest")
    assert split_binary(b"{}", None) == (b"{}", b"")
    with pytest.raises(TensorError, match="is not an integer"):
        split_binary(b"{}", "x")
    with pytest.raises(TensorError, match="outside the body"):
        split_binary(b"{}", "9")


# --- outputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "data", "dtype"), EVERY_DATATYPE, ids=[row[0] for row in EVERY_DATATYPE])
def test_outputs_encode_back_to_their_datatype(name: str, data: list[Any], dtype: Any) -> None:
    array = np.array(data, dtype=dtype).reshape(2, 2)
    encoded, raw = encode_output("y", array)
    assert raw is None
    assert encoded["name"] == "y" and encoded["datatype"] == name and encoded["shape"] == [2, 2]
    assert jsonable(encoded["data"]) == data
    # ... and through the binary extension, back to the same array.
    encoded, raw = encode_output("y", array, binary=True)
    assert (
        raw is not None and encoded["parameters"] == {"binary_data_size": len(raw)} and "data" not in encoded
    )
    back = from_bytes("output 'y'", name, encoded["shape"], raw)
    expected = [item.encode() for item in data] if name == "BYTES" else data
    assert back.reshape(-1).tolist() == expected


def test_output_data_is_flat_row_major_whatever_the_memory_layout() -> None:
    array = np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3))
    encoded, _ = encode_output("y", array)
    assert encoded["shape"] == [2, 3]
    assert jsonable(encoded["data"]) == [0, 1, 2, 3, 4, 5]
    transposed, _ = encode_output("t", np.arange(6).reshape(3, 2).T)
    assert jsonable(transposed["data"]) == [0, 2, 4, 1, 3, 5]


def test_string_and_object_outputs_are_bytes() -> None:
    encoded, _ = encode_output("labels", np.array(["setosa", "virginica"]))
    assert encoded["datatype"] == "BYTES" and encoded["data"] == ["setosa", "virginica"]
    mixed, _ = encode_output("o", np.array([b"raw", "text", 3], dtype=object))
    assert mixed["data"] == ["raw", "text", "3"]
    scalar, _ = encode_output("s", np.float64(2.5))
    assert scalar["shape"] == [] and jsonable(scalar["data"]) == [2.5]


def test_datatype_of_numpy_dtypes() -> None:
    for name, dtype in DATATYPES.items():
        assert datatype_of(dtype) == name
    assert datatype_of(np.dtype("<U5")) == "BYTES"
    with pytest.raises(TensorError, match="has no V2 datatype"):
        datatype_of(np.dtype(np.complex64))


def test_selecting_outputs() -> None:
    produced = {"predict": np.array([1]), "predict_proba": np.array([[0.1, 0.9]])}
    assert [name for name, _, _ in select_outputs(produced, [])] == ["predict", "predict_proba"]
    chosen = select_outputs(produced, [RequestedOutput("predict_proba", binary=True)])
    assert [(name, binary) for name, _, binary in chosen] == [("predict_proba", True)]
    with pytest.raises(TensorError) as caught:
        select_outputs(produced, [RequestedOutput("nope")])
    assert (
        caught.value.message == "output 'nope' is not an output of the model (it has: predict, predict_proba)"
    )


def test_binary_data_output_applies_to_every_output_unless_an_output_says_otherwise() -> None:
    produced = {"a": np.array([1.0]), "b": np.array([2.0])}
    request = parse_request({**one_input("FP32", [1], [1]), "parameters": {"binary_data_output": True}})
    encoded, chunks = encode_outputs(produced, request)
    assert [item["parameters"]["binary_data_size"] for item in encoded] == [8, 8] and len(chunks) == 2
    request = parse_request(
        {
            **one_input("FP32", [1], [1]),
            "parameters": {"binary_data_output": True},
            "outputs": [{"name": "a", "parameters": {"binary_data": False}}, {"name": "b"}],
        }
    )
    encoded, chunks = encode_outputs(produced, request)
    assert "data" in encoded[0] and "parameters" in encoded[1] and len(chunks) == 1


def test_infer_response_and_metadata() -> None:
    outputs = [{"name": "y", "datatype": "FP32", "shape": [1], "data": [1.0]}]
    assert infer_response("m", "2", "id-1", outputs) == {
        "model_name": "m",
        "model_version": "2",
        "id": "id-1",
        "outputs": outputs,
    }
    assert infer_response("m", None, None, []) == {"model_name": "m", "outputs": []}
    metadata = ModelMetadata(
        "m", ("2",), "sklearn", (TensorSpec("x", "FP64", (-1, 4)),), (TensorSpec("y", "INT64", (-1,)),)
    )
    assert metadata.to_json() == {
        "name": "m",
        "versions": ["2"],
        "platform": "sklearn",
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [{"name": "y", "datatype": "INT64", "shape": [-1]}],
    }


def test_to_array_directly() -> None:
    assert to_array("input 'q'", "INT16", (3,), [1, 2, 3]).dtype == np.int16
    with pytest.raises(TensorError, match="datatype XX is not a V2 datatype"):
        to_array("input 'q'", "XX", (1,), [1])
    request = InferRequest(None, {}, [], [])
    assert request.arrays() == {} and request.output_names() == []
