"""Model servers as local processes, one per replica, supervised by serving-svc.

Each replica is ``python -m shipyard_serving.model_server`` on a loopback port of its own. The
model version's files are laid out once per manifest (hard links into the local blob store), so
a new replica or a restart never downloads the model again. A replica that exits before it was
ever ready could not load the model: the endpoint fails with the last lines it wrote. One that
exits later (killed, crashed) is started again, with a growing pause, and its restarts are
counted. Replicas die with serving-svc (PR_SET_PDEATHSIG), so a restarted serving-svc never
finds orphans holding ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import logging
import os
import shutil
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from shipyard.kit.blob.checkout import check_out, read_manifest
from shipyard.kit.blob.port import BlobStore
from shipyard_serving.app.ports import Endpoint, ModelServers, Observation, Observer, ReplicaState

log = logging.getLogger(__name__)

READY_POLL_S = 0.1
DRAIN_S = 15.0  # SIGKILL after this; the server is told to finish its requests 5 s sooner
RESTART_PAUSE_S = (0.5, 1.0, 2.0, 5.0)
LOG_TAIL_BYTES = 2000
SWITCH_GRACE_S = 2.0  # > the gateway's route cache: no request reaches a stopped server
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when serving-svc goes (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str) -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def describe_exit(code: int) -> str:
    """``exited with code 3`` or ``killed by signal 9``."""
    return f"killed by signal {-code}" if code < 0 else f"exited with code {code}"


def log_tail(path: Path) -> str:
    """The last lines a replica wrote."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


@dataclass
class _Replica:
    index: int
    log: Path
    address: str = ""
    ready: bool = False
    restarts: int = 0
    last_exit: str = ""
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None

    def state(self, model: str) -> ReplicaState:
        return ReplicaState(self.address, self.ready, self.restarts, self.last_exit, model)


@dataclass
class _Served:
    endpoint: Endpoint
    model_dir: Path
    transformer_dir: Path | None
    replicas: list[_Replica] = field(default_factory=list)
    failure: str = ""
    stopping: bool = False


class LocalModelServers(ModelServers):
    """Replicas as child processes of serving-svc."""

    def __init__(self, blobs: BlobStore, root: Path, host: str = "127.0.0.1",
                 python: str = sys.executable) -> None:
        self._blobs = blobs
        self._root = root
        self._host = host
        self._python = python
        self._served: dict[str, _Served] = {}
        self._observers: list[Observer] = []
        self._layouts: dict[str, asyncio.Lock] = {}
        self._http: aiohttp.ClientSession | None = None
        self._pending: dict[str, _Served] = {}  # the next servers of an endpoint, starting
        self._swap_failures: dict[str, str] = {}
        self._swaps: set[asyncio.Task[None]] = set()
        self._replica_ids = itertools.count()

    def watch(self, observer: Observer) -> None:
        self._observers.append(observer)

    async def ensure(self, endpoint: Endpoint) -> None:
        current = self._served.get(endpoint.name)
        if current is not None and current.endpoint == endpoint and not current.stopping:
            return
        self._swap_failures.pop(endpoint.name, None)
        fresh = await self._start(endpoint)
        if current is None:
            self._served[endpoint.name] = fresh
            return
        old_pending = self._pending.pop(endpoint.name, None)
        if old_pending is not None:
            await self._retire(old_pending)
        self._pending[endpoint.name] = fresh
        task = asyncio.create_task(self._swap(endpoint.name, current, fresh))
        self._swaps.add(task)
        task.add_done_callback(self._swaps.discard)

    async def _start(self, endpoint: Endpoint) -> _Served:
        model_dir = await self._lay_out(endpoint.model.manifest_digest, "models")
        code = endpoint.spec.transformer
        transformer_dir = await self._lay_out(code.manifest_digest, "code") if code.code else None
        served = _Served(endpoint, model_dir, transformer_dir)
        logs = self._root / "logs" / endpoint.name
        logs.mkdir(parents=True, exist_ok=True)
        for index in range(endpoint.spec.min_replicas):
            replica = _Replica(index, logs / f"replica-{next(self._replica_ids)}.log")
            served.replicas.append(replica)
            replica.task = asyncio.create_task(self._supervise(served, replica))
        return served

    async def _swap(self, name: str, old: _Served, fresh: _Served) -> None:
        """Switch the traffic to ``fresh`` once enough of it is ready; keep ``old`` if it fails."""
        needed = fresh.endpoint.spec.min_replicas
        while not fresh.failure and sum(r.ready for r in fresh.replicas) < needed:
            if self._pending.get(name) is not fresh:
                return  # superseded by a later change, or removed
            await asyncio.sleep(READY_POLL_S)
        if self._pending.get(name) is not fresh:
            return
        del self._pending[name]
        if fresh.failure:
            self._swap_failures[name] = fresh.failure
            await self._retire(fresh)
            await self._tell(old)
            return
        self._served[name] = fresh
        await self._tell(fresh)
        # The gateway remembers routes for a second: the old servers keep answering meanwhile,
        # then finish what they have and stop.
        await asyncio.sleep(SWITCH_GRACE_S)
        await self._retire(old)

    async def _retire(self, served: _Served) -> None:
        served.stopping = True
        await asyncio.gather(*(self._stop(r) for r in served.replicas))

    async def remove(self, name: str) -> None:
        pending = self._pending.pop(name, None)
        if pending is not None:
            await self._retire(pending)
        self._swap_failures.pop(name, None)
        served = self._served.pop(name, None)
        if served is not None:
            await self._retire(served)

    def observe(self, name: str) -> Observation:
        served = self._served.get(name)
        if served is None:
            return Observation(ready=0)
        pending = self._pending.get(name)
        replicas = [r.state(served.endpoint.model.label) for r in served.replicas]
        if pending is not None:
            replicas += [r.state(pending.endpoint.model.label) for r in pending.replicas]
        failure = served.failure or (pending.failure if pending else "") or self._swap_failures.get(name, "")
        return Observation(ready=sum(r.ready for r in served.replicas), replicas=replicas, failure=failure,
                           serving=served.endpoint.model.label)

    def addresses(self, name: str) -> list[str]:
        """Where the endpoint's ready replicas listen."""
        served = self._served.get(name)
        return [r.address for r in served.replicas if r.ready] if served else []

    async def close(self) -> None:
        for task in self._swaps:
            task.cancel()
        for name in list(self._served):
            await self.remove(name)
        if self._http is not None:
            await self._http.close()

    async def _lay_out(self, digest: str, kind: str) -> Path:
        """The files of a manifest under root/<kind>/<digest>, laid out once and shared."""
        target = self._root / kind / digest
        lock = self._layouts.setdefault(digest, asyncio.Lock())
        async with lock:
            if not target.exists():
                partial = target.with_name(f".{digest}.partial")
                await asyncio.to_thread(_remove_tree, partial)
                await check_out(self._blobs, await read_manifest(self._blobs, digest), partial)
                await asyncio.to_thread(partial.rename, target)
        return target

    def _argv(self, served: _Served, port: int) -> list[str]:
        endpoint = served.endpoint
        spec = endpoint.spec
        argv = [self._python, "-m", "shipyard_serving.model_server", "--model-dir", str(served.model_dir),
                "--model-name", endpoint.model.model, "--model-version", str(endpoint.model.version),
                "--host", self._host, "--port", str(port), "--framework", spec.framework,
                "--max-concurrency", str(spec.max_concurrency), "--drain-timeout", str(DRAIN_S - 5)]
        if spec.predictor:
            argv += ["--predictor", spec.predictor]
        if served.transformer_dir is not None:
            argv += ["--transformer-dir", str(served.transformer_dir),
                     "--transformer-script", spec.transformer.script]
        return argv

    async def _supervise(self, served: _Served, replica: _Replica) -> None:
        """Keep one replica running until the endpoint stops or the model proves unloadable."""
        while not served.stopping:
            port = free_port(self._host)
            replica.address = f"{self._host}:{port}"
            with replica.log.open("ab") as out:
                replica.process = await asyncio.create_subprocess_exec(
                    *self._argv(served, port), stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                    preexec_fn=_die_with_parent)
            became_ready = await self._until_ready_or_exit(replica)
            if became_ready:
                await self._tell(served)
            code = await replica.process.wait()
            replica.ready = False
            if served.stopping:
                return
            replica.last_exit = describe_exit(code)
            if not became_ready and code != 0:
                served.failure = f"the model server could not start: {log_tail(replica.log)[-1000:]}"
                log.warning("endpoint %s: %s", served.endpoint.name, served.failure)
                await self._tell(served)
                return
            replica.restarts += 1
            log.warning("endpoint %s replica %d %s; starting it again", served.endpoint.name, replica.index,
                        replica.last_exit)
            await self._tell(served)
            await asyncio.sleep(RESTART_PAUSE_S[min(replica.restarts, len(RESTART_PAUSE_S)) - 1])

    async def _until_ready_or_exit(self, replica: _Replica) -> bool:
        assert replica.process is not None
        session = await self._session()
        url = f"http://{replica.address}/v2/health/ready"
        while replica.process.returncode is None:
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with session.get(url) as reply:
                    if reply.status == 200:
                        replica.ready = True
                        return True
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(replica.process.wait(), READY_POLL_S)
        return False

    async def _stop(self, replica: _Replica) -> None:
        """SIGTERM (the server drains its requests), SIGKILL after DRAIN_S."""
        process = replica.process
        replica.ready = False
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), DRAIN_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if replica.task is not None:
            replica.task.cancel()
            await asyncio.gather(replica.task, return_exceptions=True)

    async def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0))
        return self._http

    async def _tell(self, served: _Served) -> None:
        seen = self.observe(served.endpoint.name)
        for observer in self._observers:
            try:
                await observer(served.endpoint.name, seen)
            except Exception:
                log.exception("endpoint %s: recording its servers' state failed", served.endpoint.name)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
