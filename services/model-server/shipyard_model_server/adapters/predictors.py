"""Loading a model version's files into something that predicts, and the optional transformer.

:func:`load_predictor` picks the framework from ``--framework`` or, with ``auto``, from the files in
the model directory: ``*.joblib`` / ``*.pkl`` / ``*.pickle`` (scikit-learn, loaded with joblib),
``*.onnx`` (onnxruntime), ``*.pt`` / ``*.torchscript`` (TorchScript), or a custom predictor class
(``--predictor module:Class``, the module imported from the model directory). Every predictor takes
``inputs`` (numpy arrays by name), the request's ``parameters`` and the names of the outputs the
request asks for, and returns numpy arrays by output name.

Any failure to load raises :class:`ModelLoadError` carrying the loader's own message; serving-svc
shows it as the deployment's failure reason.

:func:`load_transformer` loads a python script (from a code repo checkout) defining
``preprocess(request: dict) -> dict`` and/or ``postprocess(response: dict) -> dict``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from shipyard_model_server.domain.tensors import DATATYPES, TensorError, TensorSpec, datatype_of

FRAMEWORKS = ("auto", "sklearn", "onnx", "torchscript", "custom")
_SUFFIXES: Mapping[str, tuple[str, ...]] = {
    "sklearn": (".joblib", ".pkl", ".pickle"),
    "onnx": (".onnx",),
    "torchscript": (".pt", ".torchscript"),
}


class ModelLoadError(Exception):
    """The model could not be loaded; the message is the loader's, fit to show a user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Predictor(Protocol):
    """A loaded model."""

    framework: str
    platform: str
    artifact: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """The outputs by name. ``outputs`` names those the request asks for (empty: the defaults);
        a predictor may compute only those. Raises ``ValueError`` (e.g. :class:`TensorError`) for
        inputs the model cannot take."""
        ...


# --- choosing and loading ---------------------------------------------------------------------


def load_predictor(model_dir: str | Path, framework: str = "auto", predictor: str | None = None) -> Predictor:
    """Load the model in ``model_dir``; raises :class:`ModelLoadError`."""
    directory = Path(model_dir)
    if not directory.is_dir():
        raise ModelLoadError(f"model directory {directory} does not exist")
    if framework not in FRAMEWORKS:
        raise ModelLoadError(f"unknown framework {framework!r} (one of: {', '.join(FRAMEWORKS)})")
    if predictor is not None and framework not in ("auto", "custom"):
        raise ModelLoadError(f"--predictor is for the custom framework, not {framework}")
    if framework == "custom" or predictor is not None:
        if predictor is None:
            raise ModelLoadError("the custom framework needs --predictor module:Class")
        return _guard("custom predictor", lambda: CustomPredictor.load(directory, predictor))
    if framework == "auto":
        framework, artifact = detect_framework(directory)
    else:
        artifact = find_artifact(directory, framework)
    loaders: dict[str, Callable[[Path], Predictor]] = {
        "sklearn": SklearnPredictor.load,
        "onnx": OnnxPredictor.load,
        "torchscript": TorchScriptPredictor.load,
    }
    return _guard(f"{framework} model {artifact.name}", lambda: loaders[framework](artifact))


def _guard(what: str, load: Callable[[], Predictor]) -> Predictor:
    try:
        return load()
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError(f"cannot load {what}: {type(error).__name__}: {error}") from error


def _candidates(directory: Path) -> dict[str, list[Path]]:
    """The model files under ``directory`` by framework, shallowest first (hidden paths skipped)."""
    found: dict[str, list[Path]] = {name: [] for name in _SUFFIXES}
    for path in sorted(directory.rglob("*"), key=lambda p: (len(p.relative_to(directory).parts), str(p))):
        if any(part.startswith(".") for part in path.relative_to(directory).parts) or not path.is_file():
            continue
        for name, suffixes in _SUFFIXES.items():
            if path.suffix.lower() in suffixes:
                found[name].append(path)
    return found


def detect_framework(directory: Path) -> tuple[str, Path]:
    """The framework and the file to load, from the files in ``directory``."""
    found = {name: paths for name, paths in _candidates(directory).items() if paths}
    if not found:
        known = ", ".join(suffix for suffixes in _SUFFIXES.values() for suffix in suffixes)
        raise ModelLoadError(
            f"no model file in {directory} (looked for {known}; a custom predictor needs --predictor)"
        )
    if len(found) > 1:
        listing = "; ".join(f"{name}: {', '.join(p.name for p in paths)}" for name, paths in found.items())
        raise ModelLoadError(
            f"model files of several frameworks in {directory} ({listing}); pass --framework"
        )
    framework, paths = next(iter(found.items()))
    return framework, _pick(directory, framework, paths)


def find_artifact(directory: Path, framework: str) -> Path:
    paths = _candidates(directory)[framework]
    if not paths:
        raise ModelLoadError(f"no {framework} model file ({', '.join(_SUFFIXES[framework])}) in {directory}")
    return _pick(directory, framework, paths)


def _pick(directory: Path, framework: str, paths: list[Path]) -> Path:
    """One file: the only one, else the only one named ``model.*``, else the only shallowest one."""
    if len(paths) == 1:
        return paths[0]
    named = [path for path in paths if path.stem == "model"]
    if len(named) == 1:
        return named[0]
    depth = len(paths[0].relative_to(directory).parts)
    shallowest = [path for path in paths if len(path.relative_to(directory).parts) == depth]
    if len(shallowest) == 1:
        return shallowest[0]
    names = ", ".join(str(path.relative_to(directory)) for path in paths)
    raise ModelLoadError(
        f"several {framework} model files in {directory} ({names}); name the one to serve model.*"
    )


def _specs(raw: object, where: str) -> tuple[TensorSpec, ...]:
    """Tensor specs declared by a custom predictor: ``[{name, datatype, shape}]``."""
    if raw is None:
        return ()
    specs: list[TensorSpec] = []
    for item in raw if isinstance(raw, list | tuple) else [raw]:
        if isinstance(item, TensorSpec):
            specs.append(item)
            continue
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ModelLoadError(f"{where}: each entry must be {{name, datatype, shape}}, got {item!r}")
        datatype = str(item.get("datatype", "FP32"))
        if datatype not in DATATYPES:
            raise ModelLoadError(f"{where}: datatype {datatype} of {item['name']!r} is not a V2 datatype")
        specs.append(TensorSpec(item["name"], datatype, tuple(int(dim) for dim in item.get("shape", []))))
    return tuple(specs)


# --- scikit-learn -----------------------------------------------------------------------------

_SKLEARN_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")


class SklearnPredictor:
    """A scikit-learn estimator (or anything joblib-pickled with ``predict``).

    Its inputs (the metadata's, which the server holds requests to) are ``input-0``, the feature
    matrix (a 1-D input is one row, or one column for a one-feature model), FP64 — or BYTES, N
    documents of shape [N] or [N, 1], when the model does not count its features, as text pipelines
    do not; or, for a model fitted on named columns (``feature_names_in_``), one input per column.
    The methods run are the requested outputs' names (``predict``, ``predict_proba``,
    ``predict_log_proba``, ``decision_function``, ``transform``), else the request's
    ``parameters.method``, else ``predict_proba`` when ``parameters.predict_proba`` is true, else
    ``predict``.
    """

    framework = "sklearn"
    platform = "sklearn"

    def __init__(self, model: Any, artifact: str) -> None:
        self.model = model
        self.artifact = artifact
        self.methods = tuple(name for name in _SKLEARN_METHODS if callable(getattr(model, name, None)))
        if "predict" not in self.methods:
            raise ModelLoadError(f"{artifact}: {type(model).__name__} has no predict method")
        features = getattr(model, "n_features_in_", None)
        self.n_features: int | None = int(features) if isinstance(features, int | np.integer) else None
        names = getattr(model, "feature_names_in_", None)
        self.feature_names: tuple[str, ...] | None = None
        if names is not None:
            self.feature_names = tuple(str(name) for name in names)
        self._pandas: Any = None
        if self.feature_names is not None:
            try:
                import pandas

                self._pandas = pandas
            except ImportError:  # without pandas, feed arrays and silence sklearn's per-call warning
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
        self.inputs: tuple[TensorSpec, ...] = (
            tuple(TensorSpec(name, "FP64", (-1,)) for name in self.feature_names) if self.feature_names
            else (TensorSpec("input-0", "FP64", (-1, self.n_features)),) if self.n_features
            else (TensorSpec("input-0", "BYTES", (-1,)),)
        )
        self.outputs: tuple[TensorSpec, ...] = tuple(self._output_spec(name) for name in self.methods)

    @classmethod
    def load(cls, artifact: Path) -> SklearnPredictor:
        import joblib

        return cls(joblib.load(artifact), str(artifact))

    def _output_spec(self, method: str) -> TensorSpec:
        classes = getattr(self.model, "classes_", None)
        if method == "predict":
            datatype = "FP64"
            if classes is not None:
                try:
                    datatype = datatype_of(np.asarray(classes).dtype)
                except TensorError:
                    datatype = "BYTES"
            return TensorSpec(method, datatype, (-1,))
        width = len(classes) if classes is not None and method != "transform" else -1
        return TensorSpec(method, "FP64", (-1, width))

    def _methods(self, parameters: dict[str, Any], outputs: Sequence[str]) -> Sequence[str]:
        if outputs:
            wanted: Sequence[str] = outputs
        else:
            method = parameters.get("method")
            if isinstance(method, str):
                wanted = (method,)
            elif parameters.get("predict_proba") is True:
                wanted = ("predict_proba",)
            else:
                return ("predict",)
        for name in wanted:
            if name not in self.methods:
                raise TensorError(
                    f"output {name!r} is not an output of this {type(self.model).__name__} "
                    f"(it has: {', '.join(self.methods)})"
                )
        return wanted

    def _matrix(self, inputs: dict[str, np.ndarray]) -> Any:
        named = self.feature_names is not None and set(self.feature_names) <= set(inputs)
        if self._pandas is not None and named and self.feature_names is not None:
            return self._pandas.DataFrame({name: inputs[name].reshape(-1) for name in self.feature_names})
        if len(inputs) == 1:
            (x,) = inputs.values()
            if x.dtype == object and self.n_features is None:  # documents for a text pipeline
                return x.reshape(-1) if x.ndim == 1 or (x.ndim == 2 and x.shape[1] == 1) else x
            if x.ndim == 1:
                return x.reshape(-1, 1) if self.n_features == 1 else x.reshape(1, -1)
            return x
        names = list(inputs)
        if named and self.feature_names is not None:
            names = list(self.feature_names)
        columns = [inputs[n].reshape(len(inputs[n]), -1) if inputs[n].ndim else None for n in names]
        if any(column is None for column in columns) or len({len(c) for c in columns if c is not None}) != 1:
            raise TensorError(f"inputs {', '.join(names)} must have the same number of rows to be stacked")
        matrix = np.hstack([column for column in columns if column is not None])
        if self._pandas is not None and self.feature_names is not None:
            return self._pandas.DataFrame(matrix, columns=list(self.feature_names))
        return matrix

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        x = self._matrix(inputs)
        return {name: np.asarray(getattr(self.model, name)(x)) for name in self._methods(parameters, outputs)}


# --- ONNX ---------------------------------------------------------------------------------------

_ONNX_TYPES: Mapping[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def _dims(shape: Sequence[object]) -> tuple[int, ...]:
    return tuple(dim if isinstance(dim, int) and dim >= 0 else -1 for dim in shape)


class OnnxPredictor:
    """An ONNX model run by onnxruntime on the CPU. Inputs are matched by name and cast to the
    model's input types; only tensor outputs are sent by default."""

    framework = "onnx"
    platform = "onnxruntime_onnx"

    def __init__(self, session: Any, artifact: str) -> None:
        self.session = session
        self.artifact = artifact
        self._inputs = list(session.get_inputs())
        self._outputs = list(session.get_outputs())
        self.inputs = tuple(
            TensorSpec(i.name, _ONNX_TYPES.get(i.type, "BYTES"), _dims(i.shape or ())) for i in self._inputs
        )
        self.outputs = tuple(
            TensorSpec(o.name, _ONNX_TYPES[o.type], _dims(o.shape or ()))
            for o in self._outputs
            if o.type in _ONNX_TYPES
        )
        self._default_outputs = [spec.name for spec in self.outputs]
        self._all_outputs = {o.name for o in self._outputs}

    @classmethod
    def load(cls, artifact: Path) -> OnnxPredictor:
        try:
            import onnxruntime
        except ImportError:
            raise ModelLoadError("onnxruntime is not installed (pip install onnxruntime)") from None
        session = onnxruntime.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
        return cls(session, str(artifact))

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        feed: dict[str, np.ndarray] = {}
        for index, spec in enumerate(self.inputs):
            array = inputs.get(spec.name)
            if array is None:
                raise TensorError(f"the model needs input {spec.name!r} (got: {', '.join(inputs)})")
            dtype = DATATYPES[spec.datatype] if spec.datatype != "BYTES" else np.dtype(object)
            if spec.datatype == "BYTES" and self._inputs[index].type != "tensor(string)":
                raise TensorError(f"input {spec.name!r}: the model takes {self._inputs[index].type}")
            feed[spec.name] = array if array.dtype == dtype else array.astype(dtype)
        names = list(outputs) or self._default_outputs
        for name in names:
            if name not in self._all_outputs:
                have = ", ".join(sorted(self._all_outputs))
                raise TensorError(f"output {name!r} is not an output of the model (it has: {have})")
        results = self.session.run(names, feed)
        return dict(zip(names, (np.asarray(result) for result in results), strict=True))


# --- TorchScript ------------------------------------------------------------------------------


class TorchScriptPredictor:
    """A TorchScript module (``torch.jit.save``) run on the CPU under ``torch.inference_mode``.

    Inputs go to ``forward`` by argument name when the names match, else in request order. A tensor
    result is the output ``output__0``; a tuple or list gives ``output__0``, ``output__1``, ...; a
    dict gives its keys.
    """

    framework = "torchscript"
    platform = "pytorch_torchscript"

    def __init__(self, torch: Any, module: Any, artifact: str) -> None:
        self.torch = torch
        self.module = module
        self.artifact = artifact
        try:
            arguments = [arg.name for arg in module.forward.schema.arguments][1:]  # skip self
        except (AttributeError, RuntimeError):
            arguments = []
        self.arguments = arguments
        self.inputs: tuple[TensorSpec, ...] = tuple(TensorSpec(name, "FP32", ()) for name in arguments)
        self.outputs: tuple[TensorSpec, ...] = ()

    @classmethod
    def load(cls, artifact: Path) -> TorchScriptPredictor:
        try:
            import torch
        except ImportError:
            raise ModelLoadError("torch is not installed (pip install torch)") from None
        module = torch.jit.load(str(artifact), map_location="cpu")
        module.eval()
        return cls(torch, module, str(artifact))

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        for name, array in inputs.items():
            if array.dtype == object:
                raise TensorError(f"input {name!r}: TorchScript models take numeric tensors, not BYTES")
        if self.arguments and set(inputs) == set(self.arguments):
            ordered = [inputs[name] for name in self.arguments]
        else:
            ordered = list(inputs.values())
        tensors = [self.torch.from_numpy(np.ascontiguousarray(array)) for array in ordered]
        with self.torch.inference_mode():
            result = self.module(*tensors)
        return self._unpack(result)

    def _unpack(self, result: Any) -> dict[str, np.ndarray]:
        if isinstance(result, dict):
            return {str(key): self._numpy(value) for key, value in result.items()}
        if isinstance(result, list | tuple):
            return {f"output__{index}": self._numpy(value) for index, value in enumerate(result)}
        return {"output__0": self._numpy(result)}

    def _numpy(self, value: Any) -> np.ndarray:
        if isinstance(value, self.torch.Tensor):
            return np.asarray(value.detach().cpu().numpy())
        return np.asarray(value)


# --- custom predictor classes -----------------------------------------------------------------


def _call_with_dir(function: Callable[..., Any], model_dir: Path) -> Any:
    """Call ``function`` with the model directory if it takes an argument, else with none."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return function()
    wants = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return function(str(model_dir)) if wants or "model_dir" in signature.parameters else function()


def _import_from(directory: Path, module_name: str) -> Any:
    """Import ``module_name`` with ``directory`` first on ``sys.path`` (for its siblings too)."""
    path = str(directory)
    if path not in sys.path:
        sys.path.insert(0, path)
    importlib.invalidate_caches()
    return importlib.import_module(module_name)


class CustomPredictor:
    """A class from the model's own files: ``--predictor module:Class``, ``module`` imported from
    the model directory. ``Class()`` (or ``Class(model_dir)`` when its constructor takes an argument),
    then ``load()`` if it has one (``load(model_dir)`` likewise), then per request
    ``predict(inputs: dict[str, np.ndarray], parameters: dict) -> dict[str, np.ndarray] | np.ndarray``
    (an array alone is the output ``output-0``). Optional class attributes ``inputs`` / ``outputs``
    (``[{name, datatype, shape}]``) fill the model metadata."""

    framework = "custom"
    platform = "custom"

    def __init__(self, instance: Any, artifact: str) -> None:
        self.instance = instance
        self.artifact = artifact
        self._predict: Callable[[dict[str, np.ndarray], dict[str, Any]], Any] = instance.predict
        self.inputs = _specs(getattr(instance, "inputs", None), f"{artifact}.inputs")
        self.outputs = _specs(getattr(instance, "outputs", None), f"{artifact}.outputs")

    @classmethod
    def load(cls, model_dir: Path, reference: str) -> CustomPredictor:
        module_name, _, class_name = reference.partition(":")
        if not module_name or not class_name:
            raise ModelLoadError(f"--predictor must be module:Class, got {reference!r}")
        module = _import_from(model_dir, module_name)
        target: Any = module
        for part in class_name.split("."):
            target = getattr(target, part, None)
            if target is None:
                raise ModelLoadError(f"module {module_name} has no {class_name}")
        instance = _call_with_dir(target, model_dir) if inspect.isclass(target) else target
        if not callable(getattr(instance, "predict", None)):
            raise ModelLoadError(f"{reference} has no predict(inputs, parameters) method")
        load = getattr(instance, "load", None)
        if callable(load):
            _call_with_dir(load, model_dir)
        return cls(instance, reference)

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        result = self._predict(inputs, parameters)
        if isinstance(result, dict):
            return {str(name): np.asarray(value) for name, value in result.items()}
        return {"output-0": np.asarray(result)}


# --- the transformer --------------------------------------------------------------------------

JsonTransform = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Transformer:
    """Request and response hooks from a code repo's script, run in the request path."""

    script: str
    preprocess: JsonTransform | None
    postprocess: JsonTransform | None


def load_transformer(directory: str | Path, script: str) -> Transformer:
    """Load ``script`` (a path inside ``directory``, the checkout) and its hooks; raises
    :class:`ModelLoadError`."""
    root = Path(directory)
    path = (root / script).resolve()
    if not root.is_dir():
        raise ModelLoadError(f"transformer directory {root} does not exist")
    if not path.is_file():
        raise ModelLoadError(f"transformer script {script} is not in {root}")
    if str(root.resolve()) not in sys.path:
        sys.path.insert(0, str(root.resolve()))
    spec = importlib.util.spec_from_file_location(f"shipyard_transformer_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"transformer script {script} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise ModelLoadError(f"cannot load transformer {script}: {type(error).__name__}: {error}") from error
    hooks: dict[str, JsonTransform | None] = {}
    for name in ("preprocess", "postprocess"):
        hook = getattr(module, name, None)
        if hook is not None and (not callable(hook) or inspect.iscoroutinefunction(hook)):
            raise ModelLoadError(f"transformer {script}: {name} must be a plain (not async) function")
        hooks[name] = hook
    if hooks["preprocess"] is None and hooks["postprocess"] is None:
        raise ModelLoadError(
            f"transformer {script} defines neither preprocess(request) nor postprocess(response)"
        )
    return Transformer(script, hooks["preprocess"], hooks["postprocess"])
