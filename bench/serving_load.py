"""The model and the HTTP load of ``python -m bench.serving``.

One fitted model (LogisticRegression on scikit-learn's bundled iris, saved with joblib) and one set of
request bodies: a V2 JSON infer request per iris row (1 row of 4 FP32), pre-serialized, each with the
class the model predicts for it. Every row — MLServer, Shipyard's model server directly, the gateway —
is driven by the same closed loop (``bench.load.drive``) through one aiohttp session in the benchmark's
process: N requests in flight, keep-alive connections, the same headers (plus the bearer token through
the gateway), response bodies read in full; every ``check_every``-th answer is parsed and its
predicted class compared with the model's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from bench.load import LoadResult, drive

T = TypeVar("T")

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson is in the dev extra
    _loads = json.loads


@dataclass(frozen=True)
class Model:
    """The fitted model's file and the requests: body → the class it must answer."""

    artifact: Path
    bodies: tuple[bytes, ...]
    expected: dict[bytes, int]


def body(row: list[float]) -> bytes:
    """A V2 JSON infer request of one row of 4 FP32."""
    return json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": row}]},
                      separators=(",", ":")).encode()


def fit_model(folder: Path) -> Model:
    """Fit LogisticRegression on iris, save it as ``folder/model.joblib``; one request per row whose class
    does not depend on float32 vs float64 (the servers read FP32)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = load_iris()
    fitted = LogisticRegression(max_iter=500).fit(data.data, data.target)
    artifact = folder / "model.joblib"
    joblib.dump(fitted, artifact)
    rows32 = data.data.astype(np.float32)
    as32, as64 = fitted.predict(rows32), fitted.predict(rows32.astype(np.float64))
    bodies, expected = [], {}
    for row, c32, c64 in zip(rows32, as32, as64, strict=True):
        if c32 != c64:
            continue
        encoded = body([float(x) for x in row])
        bodies.append(encoded)
        expected[encoded] = int(c32)
    return Model(artifact, tuple(bodies), expected)


def predicted_class(payload: bytes) -> int:
    """The class in a V2 infer response (the first output's first value): Shipyard names it ``predict``
    with shape [1], MLServer ``predict`` with shape [1, 1]."""
    reply = _loads(payload)
    data = reply["outputs"][0]["data"]
    while isinstance(data, list):
        data = data[0]
    return int(data)


class WrongAnswer(Exception):
    """A checked response with another class than the model's (or an unreadable one)."""


@dataclass
class HttpRate:
    """One measured row: the closed loop's result, and how many answers were checked / wrong."""

    load: LoadResult
    concurrency: int
    checked: int = 0
    wrong: int = 0
    statuses: dict[int, int] = field(default_factory=dict)  # non-200 statuses seen, counted


class Target:
    """The requests of one row: where they go, with which headers, and their check."""

    def __init__(self, session: aiohttp.ClientSession, url: str, model: Model, token: str | None,
                 check_every: int) -> None:
        self._session = session
        self._url = url
        self._expected = model.expected
        self._headers = {"Content-Type": "application/json"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        self._check_every = max(1, check_every)
        self._n = 0
        self.checked = 0
        self.wrong = 0
        self.statuses: dict[int, int] = {}

    def check(self, request: bytes, payload: bytes) -> None:
        """Raise WrongAnswer unless the payload answers the request's class."""
        self.checked += 1
        try:
            got = predicted_class(payload)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            self.wrong += 1
            raise WrongAnswer(f"unreadable answer {payload[:200]!r}: {exc}") from None
        if got != self._expected[request]:
            self.wrong += 1
            raise WrongAnswer(f"class {got} instead of {self._expected[request]} for {request!r}")

    async def call(self, request: bytes) -> bytes:
        """One request; raises on a non-200 status or a wrong (checked) answer."""
        async with self._session.post(self._url, data=request, headers=self._headers) as reply:
            payload = await reply.read()
            if reply.status != 200:
                self.statuses[reply.status] = self.statuses.get(reply.status, 0) + 1
                raise RuntimeError(f"HTTP {reply.status}: {payload[:200]!r}")
        self._n += 1
        if self._n % self._check_every == 0:
            self.check(request, payload)
        return payload


def session(concurrency: int) -> aiohttp.ClientSession:
    """The load generator's session: up to ``concurrency`` keep-alive connections."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                 timeout=aiohttp.ClientTimeout(total=60))


async def verify(url: str, model: Model, token: str | None) -> int:
    """Every distinct request once, one after another, each answer checked; the number checked.
    Raises WrongAnswer or RuntimeError at the first bad one (before anything is measured)."""
    async with session(1) as http:
        target = Target(http, url, model, token, check_every=1)
        for request in model.bodies:
            await target.call(request)
        return target.checked


async def measure(url: str, model: Model, token: str | None, concurrency: int, duration: float,
                  warmup: float, check_every: int) -> HttpRate:
    """Warm up for ``warmup`` seconds, then ``concurrency`` requests in flight for ``duration`` seconds."""
    async with session(concurrency) as http:
        if warmup > 0:
            await drive(Target(http, url, model, token, check_every).call, model.bodies, concurrency,
                        duration=warmup)
        target = Target(http, url, model, token, check_every)
        load = await drive(target.call, model.bodies, concurrency, duration=duration)
    return HttpRate(load, concurrency, target.checked, target.wrong, target.statuses)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when installed (for every row alike: it lowers the load generator's own cost)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)
