"""Loading models by framework (scikit-learn, ONNX, TorchScript, custom classes) and transformers."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from shipyard_model_server.adapters.predictors import (
    CustomPredictor,
    ModelLoadError,
    OnnxPredictor,
    SklearnPredictor,
    TorchScriptPredictor,
    detect_framework,
    load_predictor,
    load_transformer,
)
from shipyard_model_server.domain.tensors import TensorError, TensorSpec

from tests.support.iris import IRIS_CLASSES, IRIS_ROWS, train_iris, write_module


@pytest.fixture(autouse=True)
def restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loaders put model and checkout directories on sys.path; undo that after each test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


def load_error(*args: object) -> str:
    with pytest.raises(ModelLoadError) as caught:
        load_predictor(*args)  # type: ignore[arg-type]
    return caught.value.message


# --- scikit-learn -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("iris")
    train_iris(directory)
    (directory / "metrics.json").write_text("{}")  # a training run writes more than the model
    return directory


def test_sklearn_is_detected_and_predicts(iris_dir: Path) -> None:
    predictor = load_predictor(iris_dir)
    assert isinstance(predictor, SklearnPredictor)
    assert predictor.framework == "sklearn" and predictor.artifact.endswith("model.joblib")
    out = predictor.predict({"input-0": np.array(IRIS_ROWS)}, {}, [])
    assert list(out) == ["predict"] and out["predict"].tolist() == IRIS_CLASSES
    assert predictor.inputs == (TensorSpec("input-0", "FP64", (-1, 4)),)
    assert TensorSpec("predict", "INT64", (-1,)) in predictor.outputs
    assert TensorSpec("predict_proba", "FP64", (-1, 3)) in predictor.outputs


def test_sklearn_predict_proba_by_parameters_or_outputs(iris_dir: Path) -> None:
    predictor = load_predictor(iris_dir, "sklearn")
    x = {"x": np.array(IRIS_ROWS, dtype=np.float32)}
    by_method = predictor.predict(x, {"method": "predict_proba"}, [])
    by_flag = predictor.predict(x, {"predict_proba": True}, [])
    by_output = predictor.predict(x, {}, ["predict_proba"])
    for out in (by_method, by_flag, by_output):
        assert list(out) == ["predict_proba"]
        assert out["predict_proba"].shape == (2, 3)
        assert out["predict_proba"].argmax(axis=1).tolist() == IRIS_CLASSES
    both = predictor.predict(x, {}, ["predict", "predict_proba"])
    assert list(both) == ["predict", "predict_proba"]
    with pytest.raises(TensorError, match="output 'transform' is not an output of this LogisticRegression"):
        predictor.predict(x, {}, ["transform"])


def test_sklearn_input_layouts(iris_dir: Path) -> None:
    predictor = load_predictor(iris_dir)
    one_row = predictor.predict({"x": np.array(IRIS_ROWS[0])}, {}, [])  # 1-D: one row
    assert one_row["predict"].tolist() == [0]
    columns = {f"f{i}": np.array([row[i] for row in IRIS_ROWS]) for i in range(4)}  # one input per column
    assert predictor.predict(columns, {}, [])["predict"].tolist() == IRIS_CLASSES
    with pytest.raises(ValueError, match="expecting 4 features"):
        predictor.predict({"x": np.array([[1.0, 2.0, 3.0]])}, {}, [])


def test_a_text_pipeline_takes_bytes_as_documents(tmp_path: Path) -> None:
    import joblib
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = ["good great fine", "great good", "bad awful", "awful bad poor"]
    pipeline = make_pipeline(CountVectorizer(), LogisticRegression()).fit(texts, ["pos", "pos", "neg", "neg"])
    joblib.dump(pipeline, tmp_path / "model.joblib")
    predictor = load_predictor(tmp_path)
    documents = np.array(["good fine", "poor awful"], dtype=object)
    assert predictor.predict({"text": documents}, {}, [])["predict"].tolist() == ["pos", "neg"]
    column = np.array([[b"great"], [b"bad"]], dtype=object)  # [N, 1], as binary BYTES
    assert predictor.predict({"text": column}, {}, [])["predict"].tolist() == ["pos", "neg"]
    assert TensorSpec("predict", "BYTES", (-1,)) in predictor.outputs
    assert predictor.inputs == (TensorSpec("input-0", "BYTES", (-1,)),)  # documents, as it takes them


def test_pickle_files_load_with_joblib(tmp_path: Path) -> None:
    train_iris(tmp_path, "classifier.pkl")
    predictor = load_predictor(tmp_path)
    assert predictor.framework == "sklearn" and predictor.artifact.endswith("classifier.pkl")


def test_a_broken_model_file_fails_with_the_loaders_message(tmp_path: Path) -> None:
    import joblib

    (tmp_path / "model.joblib").write_bytes(b"this is not a pickle")
    with pytest.raises(Exception) as direct:  # what joblib itself says about the file
        joblib.load(tmp_path / "model.joblib")
    loaders_message = f"{type(direct.value).__name__}: {direct.value}"
    assert load_error(tmp_path) == f"cannot load sklearn model model.joblib: {loaders_message}"


def test_an_object_without_predict_is_refused(tmp_path: Path) -> None:
    import joblib

    joblib.dump({"not": "a model"}, tmp_path / "model.joblib")
    assert "dict has no predict method" in load_error(tmp_path)


# --- choosing the file --------------------------------------------------------------------------


def test_detection_errors(tmp_path: Path) -> None:
    assert load_error(tmp_path / "missing") == f"model directory {tmp_path / 'missing'} does not exist"
    (tmp_path / "notes.txt").write_text("hi")
    assert load_error(tmp_path).startswith(f"no model file in {tmp_path}")
    (tmp_path / "a.onnx").write_bytes(b"")
    (tmp_path / "b.joblib").write_bytes(b"")
    assert "model files of several frameworks" in load_error(tmp_path)
    assert "pass --framework" in load_error(tmp_path)
    assert load_error(tmp_path, "xgboost") == (
        "unknown framework 'xgboost' (one of: auto, sklearn, onnx, torchscript, custom)"
    )
    assert load_error(tmp_path, "torchscript").startswith("no torchscript model file")


def test_which_file_of_several(tmp_path: Path) -> None:
    for name in ("a.joblib", "model.joblib", ".hidden/c.joblib"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert detect_framework(tmp_path) == ("sklearn", tmp_path / "model.joblib")
    (tmp_path / "model.joblib").unlink()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.joblib").write_bytes(b"")
    assert detect_framework(tmp_path) == ("sklearn", tmp_path / "a.joblib")  # the shallowest
    (tmp_path / "b.joblib").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="several sklearn model files"):
        detect_framework(tmp_path)


# --- custom predictor classes -------------------------------------------------------------------


def custom_module(directory: Path, source: str) -> str:
    name = f"predictor_{uuid.uuid4().hex[:8]}"
    write_module(directory, name, source)
    return name


def test_a_custom_predictor_class_from_the_model_files(tmp_path: Path) -> None:
    (tmp_path / "scale.txt").write_text("3")
    module = custom_module(
        tmp_path,
        """
        from pathlib import Path

        import numpy as np

        class Scaler:
            inputs = [{"name": "x", "datatype": "FP32", "shape": [-1]}]
            outputs = [{"name": "y", "datatype": "FP32", "shape": [-1]}]

            def __init__(self, model_dir):
                self.model_dir = Path(model_dir)
                self.factor = None

            def load(self):
                self.factor = float((self.model_dir / "scale.txt").read_text())

            def predict(self, inputs, parameters):
                return {"y": inputs["x"] * self.factor + parameters.get("offset", 0)}
        """,
    )
    predictor = load_predictor(tmp_path, "auto", f"{module}:Scaler")
    assert isinstance(predictor, CustomPredictor) and predictor.platform == "custom"
    out = predictor.predict({"x": np.array([1.0, 2.0], dtype=np.float32)}, {"offset": 1}, [])
    assert out["y"].tolist() == [4.0, 7.0]
    assert predictor.inputs == (TensorSpec("x", "FP32", (-1,)),)
    assert predictor.outputs == (TensorSpec("y", "FP32", (-1,)),)


def test_a_custom_predictor_returning_an_array_and_loading_with_the_dir(tmp_path: Path) -> None:
    module = custom_module(
        tmp_path,
        """
        class Echo:
            def load(self, model_dir):
                self.loaded_from = model_dir

            def predict(self, inputs, parameters):
                return [len(inputs), 2]
        """,
    )
    predictor = load_predictor(tmp_path, "custom", f"{module}:Echo")
    assert predictor.predict({"a": np.zeros(1)}, {}, [])["output-0"].tolist() == [1, 2]
    assert isinstance(predictor, CustomPredictor) and predictor.instance.loaded_from == str(tmp_path)


def test_custom_predictor_errors(tmp_path: Path) -> None:
    assert load_error(tmp_path, "custom") == "the custom framework needs --predictor module:Class"
    assert load_error(tmp_path, "auto", "nocolon") == "--predictor must be module:Class, got 'nocolon'"
    assert load_error(tmp_path, "sklearn", "m:C") == "--predictor is for the custom framework, not sklearn"
    missing = load_error(tmp_path, "auto", "no_such_module_here:C")
    assert (
        missing == "cannot load custom predictor: ModuleNotFoundError: No module named 'no_such_module_here'"
    )
    module = custom_module(tmp_path, "class NoPredict:\n    pass\n")
    assert load_error(tmp_path, "auto", f"{module}:Missing") == f"module {module} has no Missing"
    assert load_error(tmp_path, "auto", f"{module}:NoPredict") == (
        f"{module}:NoPredict has no predict(inputs, parameters) method"
    )
    failing = custom_module(
        tmp_path,
        """
        class Broken:
            def load(self):
                raise FileNotFoundError("weights.bin is missing")

            def predict(self, inputs, parameters):
                return {}
        """,
    )
    assert load_error(tmp_path, "auto", f"{failing}:Broken") == (
        "cannot load custom predictor: FileNotFoundError: weights.bin is missing"
    )


# --- ONNX and TorchScript -----------------------------------------------------------------------


def test_onnx_without_onnxruntime_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "model.onnx").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    assert load_error(tmp_path) == "onnxruntime is not installed (pip install onnxruntime)"


def test_torchscript_without_torch_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "model.pt").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "torch", None)
    assert load_error(tmp_path) == "torch is not installed (pip install torch)"


def onnx_doubler(path: Path) -> None:
    """y = 2 * x over float32 [N, 3] (built with the onnx package)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"])],
        "doubler",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnxruntime and onnx are not installed",
)
def test_onnx_models_run_with_onnxruntime(tmp_path: Path) -> None:
    onnx_doubler(tmp_path / "model.onnx")
    predictor = load_predictor(tmp_path)
    assert isinstance(predictor, OnnxPredictor) and predictor.platform == "onnxruntime_onnx"
    assert predictor.inputs == (TensorSpec("x", "FP32", (-1, 3)),)
    assert predictor.outputs == (TensorSpec("y", "FP32", (-1, 3)),)
    out = predictor.predict({"x": np.array([[1, 2, 3]], dtype=np.float64)}, {}, [])  # cast to float32
    assert out["y"].tolist() == [[2.0, 4.0, 6.0]] and out["y"].dtype == np.float32
    with pytest.raises(TensorError, match="the model needs input 'x'"):  # by its name only
        predictor.predict({"input-0": np.ones((1, 3), dtype=np.float32)}, {}, ["y"])
    with pytest.raises(TensorError, match="output 'z' is not an output of the model"):
        predictor.predict({"x": np.ones((1, 3), dtype=np.float32)}, {}, ["z"])
    with pytest.raises(TensorError, match="the model needs input 'x'"):
        predictor.predict({"a": np.ones(3), "b": np.ones(3)}, {}, [])


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torchscript_models_run_with_torch(tmp_path: Path) -> None:
    import torch

    class Affine(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x * 2, x + 1

    torch.jit.save(torch.jit.script(Affine()), str(tmp_path / "model.pt"))
    predictor = load_predictor(tmp_path)
    assert isinstance(predictor, TorchScriptPredictor)
    out = predictor.predict({"x": np.array([[1.0, 2.0]], dtype=np.float32)}, {}, [])
    assert out["output__0"].tolist() == [[2.0, 4.0]] and out["output__1"].tolist() == [[2.0, 3.0]]


# --- transformers -------------------------------------------------------------------------------


def test_a_transformer_script_with_both_hooks(tmp_path: Path) -> None:
    write_module(tmp_path, "helpers", "FACTOR = 10\n")
    write_module(
        tmp_path,
        "transform",
        """
        from helpers import FACTOR

        def preprocess(request):
            return {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [request["value"]]}]}

        def postprocess(response):
            return {"value": response["outputs"][0]["data"][0] * FACTOR}
        """,
    )
    transformer = load_transformer(tmp_path, "transform.py")
    assert transformer.preprocess is not None and transformer.postprocess is not None
    assert transformer.preprocess({"value": 2})["inputs"][0]["data"] == [2]
    assert transformer.postprocess({"outputs": [{"data": [3]}]}) == {"value": 30}


def test_transformer_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"transformer script nope\.py is not in"):
        load_transformer(tmp_path, "nope.py")
    write_module(tmp_path, "empty", "X = 1\n")
    with pytest.raises(ModelLoadError, match="defines neither preprocess"):
        load_transformer(tmp_path, "empty.py")
    write_module(tmp_path, "broken", "def preprocess(:\n")
    with pytest.raises(ModelLoadError, match=r"cannot load transformer broken\.py: SyntaxError"):
        load_transformer(tmp_path, "broken.py")
    write_module(tmp_path, "asyncy", "async def preprocess(request):\n    return request\n")
    with pytest.raises(ModelLoadError, match="preprocess must be a plain"):
        load_transformer(tmp_path, "asyncy.py")
    with pytest.raises(ModelLoadError, match=r"transformer directory .* does not exist"):
        load_transformer(tmp_path / "missing", "t.py")
