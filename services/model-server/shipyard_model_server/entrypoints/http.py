"""The model server's HTTP application: one model version over the Open Inference Protocol (KServe V2).

Endpoints: GET ``/v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/metrics`` (Prometheus text: requests
in flight, accepted and refused — what serving-svc scales replicas by),
``/v2/models/{name}[/versions/{v}]`` (metadata), ``/v2/models/{name}[/versions/{v}]/ready``; POST
``/v2/models/{name}[/versions/{v}]/infer``. Errors are ``{"error": "..."}``: 400 for a bad request,
404 for an unknown model or version, 413 for a body over ``--max-body-bytes``, 429 (with
``Retry-After: 1``) above ``--max-concurrency`` requests in flight, 503 while not ready.

Speed: one small predict (a scikit-learn model on a row) costs about as much as the HTTP around it,
so the request path is lean: orjson when installed (numpy arrays serialized natively), no model
objects per request, no middleware, no access log (and uvloop, see :mod:`.process`). A predict runs
on the event loop while it is cheap (an average under ``--inline-budget-ms``), in a thread pool
otherwise, so slow models neither block health checks nor serialize behind the loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from aiohttp import web

from shipyard.kit.replica_load import ReplicaLoad, format_load
from shipyard_model_server.adapters.predictors import Predictor, Transformer
from shipyard_model_server.domain.tensors import (
    ModelMetadata,
    TensorError,
    check_inputs,
    encode_outputs,
    infer_response,
    jsonable,
    parse_request,
    split_binary,
)

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is in the model-server extra
    orjson = None  # type: ignore[assignment]

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_THREADS = max(1, min(4, os.cpu_count() or 1))
SERVER_NAME = "shipyard-model-server"
BINARY_HEADER = "Inference-Header-Content-Length"
_JSON = "application/json"
_DUMPS_OPTIONS = 0 if orjson is None else orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """JSON bytes; numpy arrays and scalars become lists and numbers."""
    if orjson is not None:
        return orjson.dumps(value, default=_numpy_default, option=_DUMPS_OPTIONS)
    return json.dumps(value, default=_numpy_default, separators=(",", ":")).encode()


def loads(data: bytes) -> Any:
    """Decoded JSON; raises ValueError for anything that is not (orjson also refuses NaN)."""
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data)


def _numpy_default(value: Any) -> Any:
    converted = jsonable(value)
    if converted is value:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return converted


def _package_version() -> str:
    try:
        return metadata.version("shipyard")
    except metadata.PackageNotFoundError:
        return "0"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What one model server serves and its limits."""

    model_name: str
    model_version: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrency: int = 0  # requests in flight; 0 = unlimited
    predict_in_thread: str = "auto"  # auto | always | never
    inline_budget_ms: float = 2.0
    threads: int = DEFAULT_THREADS


class _HookError(Exception):
    def __init__(self, stage: str, error: Exception) -> None:
        super().__init__(f"{stage} failed: {_describe(error)}")
        self.error = error


def _describe(error: BaseException) -> str:
    if isinstance(error, TensorError):
        return error.message
    if type(error) is ValueError:
        return str(error)
    return f"{type(error).__name__}: {error}"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=dumps({"error": message}), content_type=_JSON, headers=headers)


def _ok(value: Any) -> web.Response:
    return web.Response(body=dumps(value), content_type=_JSON)


def log_event(stream: Any, event: str, **fields: Any) -> None:
    """One JSON line on ``stream``: what the process says of itself (serving-svc keeps the tail)."""
    stream.write(json.dumps({"event": event, **fields}, default=str) + "\n")
    stream.flush()


class ModelServer:
    """The HTTP application around one predictor. Until :meth:`set_ready` gives it the loaded model,
    it is live but not ready."""

    def __init__(
        self, config: ServerConfig, predictor: Predictor | None = None, transformer: Transformer | None = None
    ) -> None:
        if config.predict_in_thread not in ("auto", "always", "never"):
            raise ValueError(f"predict_in_thread must be auto, always or never: {config.predict_in_thread!r}")
        self.config = config
        self.predictor: Predictor | None = None
        self.transformer: Transformer | None = None
        self.draining = False
        self.in_flight = 0
        self.accepted = 0
        self.rejected = 0  # 429s: at the concurrency limit
        self._limit = config.max_concurrency
        self._budget = config.inline_budget_ms / 1000.0
        self._cost = 0.0  # moving average of a request's work (wall time), in seconds
        self._threaded = False  # auto: whether predicts run in the thread pool now
        self._executor: ThreadPoolExecutor | None = None
        self._metadata: bytes = b""
        self._server_metadata_json = dumps(
            {"name": SERVER_NAME, "version": _package_version(), "extensions": ["binary_tensor_data"]}
        )
        if predictor is not None:
            self.set_ready(predictor, transformer)

    # --- state ------------------------------------------------------------------------------

    def set_ready(self, predictor: Predictor, transformer: Transformer | None = None) -> None:
        self.predictor = predictor
        self.transformer = transformer
        self._metadata = dumps(self.metadata().to_json())

    @property
    def ready(self) -> bool:
        return self.predictor is not None and not self.draining

    def metadata(self) -> ModelMetadata:
        predictor = self.predictor
        if predictor is None:
            raise RuntimeError("no model loaded yet")
        version = self.config.model_version
        return ModelMetadata(
            self.config.model_name,
            (version,) if version is not None else (),
            predictor.platform,
            predictor.inputs,
            predictor.outputs,
        )

    def close(self) -> None:
        """Stop the predict threads (after the HTTP server has drained)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # --- the application ----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes, handler_args={"access_log": None})
        routes = app.router
        routes.add_get("/v2", self._server_metadata)
        routes.add_get("/v2/health/live", self._live)
        routes.add_get("/v2/health/ready", self._server_ready)
        routes.add_get("/metrics", self._metrics)
        for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
            routes.add_get(prefix, self._model_metadata)
            routes.add_get(prefix + "/ready", self._model_ready)
            routes.add_post(prefix + "/infer", self._infer)
        routes.add_route("*", "/{tail:.*}", self._unknown)
        return app

    async def _server_metadata(self, request: web.Request) -> web.Response:
        return web.Response(body=self._server_metadata_json, content_type=_JSON)

    async def _live(self, request: web.Request) -> web.Response:
        return _ok({"live": True})

    async def _server_ready(self, request: web.Request) -> web.Response:
        if self.ready:
            return _ok({"ready": True})
        return web.Response(status=503, body=dumps({"ready": False}), content_type=_JSON)

    async def _metrics(self, request: web.Request) -> web.Response:
        load = ReplicaLoad(self.in_flight, self.accepted, self.rejected)
        return web.Response(text=format_load(load), content_type="text/plain", charset="utf-8")

    async def _unknown(self, request: web.Request) -> web.Response:
        return _error(404, f"no such endpoint: {request.method} {request.path}")

    def _not_served(self, request: web.Request) -> web.Response | None:
        """404 unless the path names the served model (and version); 503 unless it is loaded."""
        info = request.match_info
        name = info["name"]
        if name != self.config.model_name:
            served = self.config.model_name
            return _error(404, f"model {name!r} is not served here (this server serves {served!r})")
        version = info.get("version")
        if version is not None and version != self.config.model_version:
            at = self.config.model_version
            have = f"version {at!r}" if at is not None else "no versions"
            return _error(404, f"model {name!r} has no version {version!r} here (it serves {have})")
        if self.predictor is None:
            return _error(503, f"model {name!r} is not ready (loading)", {"Retry-After": "1"})
        return None

    async def _model_metadata(self, request: web.Request) -> web.Response:
        refused = self._not_served(request)
        if refused is not None:
            return refused
        return web.Response(body=self._metadata, content_type=_JSON)

    async def _model_ready(self, request: web.Request) -> web.Response:
        refused = self._not_served(request)
        if refused is not None:
            return refused if refused.status != 503 else self._model_state(False)
        return self._model_state(not self.draining)

    def _model_state(self, ready: bool) -> web.Response:
        body = dumps({"name": self.config.model_name, "ready": ready})
        return web.Response(status=200 if ready else 503, body=body, content_type=_JSON)

    async def _infer(self, request: web.Request) -> web.Response:
        refused = self._not_served(request)
        if refused is not None:
            return refused
        if self._limit and self.in_flight >= self._limit:
            self.rejected += 1
            return _error(429, f"too many requests in flight (limit {self._limit})", {"Retry-After": "1"})
        self.accepted += 1
        self.in_flight += 1
        try:
            return await self._infer_counted(request)
        finally:
            self.in_flight -= 1

    async def _infer_counted(self, request: web.Request) -> web.Response:
        limit = self.config.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            return self._too_large(length)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(None)
        header_length = request.headers.get(BINARY_HEADER)
        try:
            if not self._use_thread():
                started = time.perf_counter()
                try:
                    payload, json_length = self._work(body, header_length)
                finally:
                    self._cost += (time.perf_counter() - started - self._cost) * 0.1
            else:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(self.config.threads, thread_name_prefix="predict")
                loop = asyncio.get_running_loop()
                work = loop.run_in_executor(self._executor, self._timed_work, body, header_length)
                payload, json_length = await work
        except (ValueError, KeyError) as error:  # TensorError included
            return _error(400, _describe(error))
        except _HookError as error:
            if isinstance(error.error, ValueError | KeyError):
                return _error(400, str(error))
            self._log_failure(error.error)
            return _error(500, str(error))
        except Exception as error:
            self._log_failure(error)
            return _error(500, f"prediction failed: {_describe(error)}")
        if json_length is None:
            return web.Response(body=payload, content_type=_JSON)
        return web.Response(
            body=payload, content_type="application/octet-stream", headers={BINARY_HEADER: json_length}
        )

    def _too_large(self, length: int | None) -> web.Response:
        size = f"{length} bytes" if length is not None else "more"
        limit = self.config.max_body_bytes
        response = _error(413, f"request body of {size} is over the limit of {limit} bytes")
        response.force_close()  # do not read the rest of it
        return response

    def _use_thread(self) -> bool:
        """auto: to the threads once the average work is over the budget, back below half of it
        (the hysteresis keeps a cost near the budget from flapping between the two)."""
        mode = self.config.predict_in_thread
        if mode != "auto":
            return mode == "always"
        if self._threaded:
            self._threaded = self._cost >= self._budget / 2
        else:
            self._threaded = self._cost > self._budget
        return self._threaded

    def _timed_work(self, body: bytes, header_length: str | None) -> tuple[bytes, str | None]:
        started = time.perf_counter()
        try:
            return self._work(body, header_length)
        finally:
            self._cost += (time.perf_counter() - started - self._cost) * 0.1

    def _work(self, body: bytes, header_length: str | None) -> tuple[bytes, str | None]:
        """Decode, transform, predict, encode: the response body, and the length of its JSON part
        when binary outputs follow it."""
        predictor = self.predictor
        assert predictor is not None
        text, binary = split_binary(body, header_length)
        try:
            raw = loads(text)
        except ValueError as error:
            raise TensorError(f"the request body is not valid JSON: {error}") from None
        transformer = self.transformer
        if transformer is not None and transformer.preprocess is not None:
            raw = _run_hook("preprocess", transformer.preprocess, raw)
        request = parse_request(raw, binary)
        check_inputs(predictor.inputs, request)
        produced = predictor.predict(request.arrays(), request.parameters, request.output_names())
        outputs, chunks = encode_outputs(produced, request)
        response = infer_response(self.config.model_name, self.config.model_version, request.id, outputs)
        if transformer is not None and transformer.postprocess is not None:
            response = _run_hook("postprocess", transformer.postprocess, jsonable(response))
        payload = dumps(response)
        if chunks:
            return payload + b"".join(chunks), str(len(payload))
        return payload, None

    def _log_failure(self, error: BaseException) -> None:
        trace = "".join(traceback.format_exception(error))
        model = self.config.model_name
        log_event(sys.stderr, "model_server_error", model=model, error=_describe(error), traceback=trace)


def _run_hook(stage: str, hook: Callable[[dict[str, Any]], dict[str, Any]], value: Any) -> Any:
    try:
        result = hook(value)
    except Exception as error:
        raise _HookError(stage, error) from error
    if not isinstance(result, dict):
        raise _HookError(stage, TypeError(f"{stage} must return a dict, not {type(result).__name__}"))
    return result
