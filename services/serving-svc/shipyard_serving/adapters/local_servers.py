"""Model servers as local processes, one per replica, supervised by serving-svc.

Each replica is ``python -m shipyard_model_server`` on a loopback port of its own. The
model version's files are laid out once per manifest (hard links into the local blob store), so
a new replica or a restart never downloads the model again. A replica that exits before it was
ever ready could not load the model: the endpoint fails with the last lines it wrote. One that
exits later (killed, crashed) is started again, with a growing pause, and its restarts are
counted. Replicas die with serving-svc (bwrap's ``--die-with-parent``; unsandboxed, they ask for
PR_SET_PDEATHSIG themselves, see ``shipyard.kit.lifetime``), so a restarted serving-svc never finds
orphans holding ports.

A replica runs users' code (a custom predictor, a transformer, a pickled model), so it runs in a
sandbox of its own, as runs do (``adapters.server_sandbox``): it sees its model's files read-only
and nothing of the platform's data or processes. Where the machine cannot isolate it, it runs as
serving-svc's own user, with an environment of its own still (the app layer lets only operators
start model servers then, unless in single-user mode).

An endpoint whose ``max_replicas`` is above its ``min_replicas`` is scaled by its load: twice a
second every ready replica's ``/metrics`` says how many requests it has in flight and how many it
refused, and ``domain.scaling`` says how many replicas that needs. New replicas join the routes
once ready; a replica that is no longer needed leaves the routes first, then drains and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import signal
import socket
import stat
import sys
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from shipyard.kit.blob.checkout import check_out, read_manifest
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.bubblewrap import Bubblewrap, sandboxed_pid
from shipyard_serving.adapters import server_sandbox
from shipyard_serving.adapters.load_metrics import fetch_load
from shipyard_serving.app.ports import Endpoint, ModelServers, Observer
from shipyard_serving.domain.scaling import UP_WINDOW_S, LoadSample, ScaleRule, desired_replicas
from shipyard_serving.domain.serving import Observation, ReplicaState

log = logging.getLogger(__name__)

READY_POLL_S = 0.1
DRAIN_S = 15.0  # SIGKILL after this; the server is told to finish its requests 5 s sooner
RESTART_PAUSE_S = (0.5, 1.0, 2.0, 5.0)
LOG_TAIL_BYTES = 2000
SWITCH_GRACE_S = 2.0  # > the gateway's route cache: no request reaches a stopped server
SCALE_SAMPLE_S = 0.5
SCALE_DOWN_DELAY_S = 30.0


def free_port(host: str) -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def describe_exit(code: int, sandboxed: bool = False) -> str:
    """``exited with code 3`` or ``killed by signal 9``; bwrap says a signal as 128 + its number."""
    if sandboxed and 128 < code < 128 + signal.NSIG:
        code = 128 - code
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
    stopping: bool = False
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
    scaling: asyncio.Task[None] | None = None


class LocalModelServers(ModelServers):
    """Replicas as child processes of serving-svc, each in a sandbox of its own (``isolation``), or
    unsandboxed where the machine cannot isolate them (``isolation`` says why)."""

    def __init__(self, blobs: BlobStore, root: Path, isolation: Bubblewrap | str, host: str = "127.0.0.1",
                 python: str = sys.executable, scale_down_delay_s: float = SCALE_DOWN_DELAY_S) -> None:
        self._blobs = blobs
        self._isolation = isolation
        self._root = root
        self._host = host
        self._python = python
        self._served: dict[str, _Served] = {}
        self._observers: list[Observer] = []
        self._layouts: dict[str, asyncio.Lock] = {}
        self._http: aiohttp.ClientSession | None = None
        self._pending: dict[str, _Served] = {}  # the next servers of an endpoint, starting
        self._swap_failures: dict[str, str] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._replica_ids = itertools.count()
        self._scale_down_delay_s = scale_down_delay_s

    def watch(self, observer: Observer) -> None:
        self._observers.append(observer)

    def isolation_missing(self) -> str:
        return self._isolation if isinstance(self._isolation, str) else ""

    async def ensure(self, endpoint: Endpoint) -> None:
        current = self._served.get(endpoint.name)
        if current is not None and current.endpoint == endpoint and not current.stopping:
            return
        self._swap_failures.pop(endpoint.name, None)
        spec = endpoint.spec
        # A swap under load starts as many new replicas as serve now, within the new bounds.
        count = min(max(len(current.replicas), spec.min_replicas), spec.max_replicas) if current else 0
        fresh = await self._start(endpoint, count or spec.min_replicas)
        if current is None:
            self._put_in_service(fresh)
            return
        old_pending = self._pending.pop(endpoint.name, None)
        if old_pending is not None:
            await self._retire(old_pending)
        self._pending[endpoint.name] = fresh
        self._in_background(self._swap(endpoint.name, current, fresh))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _start(self, endpoint: Endpoint, replicas: int) -> _Served:
        model_dir = await self._lay_out(endpoint.model.manifest_digest, "models")
        code = endpoint.spec.transformer
        transformer_dir = await self._lay_out(code.manifest_digest, "code") if code.code else None
        served = _Served(endpoint, model_dir, transformer_dir)
        for _ in range(replicas):
            self._add_replica(served)
        return served

    def _add_replica(self, served: _Served) -> None:
        logs = self._root / "logs" / served.endpoint.name
        logs.mkdir(parents=True, exist_ok=True)
        replica = _Replica(len(served.replicas), logs / f"replica-{next(self._replica_ids)}.log")
        served.replicas.append(replica)
        replica.task = asyncio.create_task(self._supervise(served, replica))

    def _put_in_service(self, served: _Served) -> None:
        """Route the endpoint's traffic to ``served``; scale it with its load if its spec asks."""
        self._served[served.endpoint.name] = served
        spec = served.endpoint.spec
        rule = ScaleRule.of(spec.min_replicas, spec.max_replicas, spec.max_concurrency,
                            self._scale_down_delay_s)
        if rule.scales:
            served.scaling = asyncio.create_task(self._autoscale(served, rule))

    async def _autoscale(self, served: _Served, rule: ScaleRule) -> None:
        """Sample the replicas' load and resize, until the endpoint stops (see ``domain.scaling``)."""
        samples: deque[LoadSample] = deque()
        refused: dict[str, int] = {}  # by replica address: a restarted replica counts from 0 again
        last_change = time.monotonic()
        session = await self._session()
        while not served.stopping:
            await asyncio.sleep(SCALE_SAMPLE_S)
            ready = [r for r in served.replicas if r.ready]
            loads = await asyncio.gather(*(fetch_load(session, r.address) for r in ready))
            in_flight = rejected = 0
            for replica, load in zip(ready, loads, strict=True):
                if load is not None:
                    in_flight += load.in_flight
                    rejected += max(0, load.rejected - refused.get(replica.address, 0))
                    refused[replica.address] = load.rejected
            now = time.monotonic()
            samples.append(LoadSample(now, in_flight, rejected))
            while samples[0].at < now - max(rule.down_delay_s, UP_WINDOW_S) - SCALE_SAMPLE_S:
                samples.popleft()
            count = len(served.replicas)
            starting = sum(not r.ready for r in served.replicas)
            wanted = desired_replicas(rule, samples, count, starting, last_change, now)
            if wanted != count and not served.stopping:
                await self._resize(served, wanted)
                last_change = now

    async def _resize(self, served: _Served, wanted: int) -> None:
        name = served.endpoint.name
        count = len(served.replicas)
        log.info("endpoint %s: %d → %d replicas (load)", name, count, wanted)
        for _ in range(count, wanted):
            self._add_replica(served)
        leaving = served.replicas[wanted:]
        del served.replicas[wanted:]
        await self._tell(served)
        for replica in leaving:
            replica.stopping = True
            self._in_background(self._stop_after_grace(replica))

    async def _stop_after_grace(self, replica: _Replica) -> None:
        """Stop a replica once the gateway no longer routes to it (it left the routes just now)."""
        try:
            await asyncio.sleep(SWITCH_GRACE_S)
        finally:  # also when serving-svc closes meanwhile: the replica is in no endpoint's list now
            await self._stop(replica)

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
        self._put_in_service(fresh)
        await self._stop_scaling(old)
        await self._tell(fresh)
        # The gateway remembers routes for a second: the old servers keep answering meanwhile,
        # then finish what they have and stop.
        await asyncio.sleep(SWITCH_GRACE_S)
        await self._retire(old)

    async def _retire(self, served: _Served) -> None:
        served.stopping = True
        await self._stop_scaling(served)
        await asyncio.gather(*(self._stop(r) for r in served.replicas))

    @staticmethod
    async def _stop_scaling(served: _Served) -> None:
        if served.scaling is not None:
            served.scaling.cancel()
            await asyncio.gather(served.scaling, return_exceptions=True)
            served.scaling = None

    async def remove(self, name: str, cluster: str = "") -> None:
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
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
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
            # Also a layout made before replicas were sandboxed (under a 077 umask).
            await asyncio.to_thread(_let_read, target)
        return target

    def _command(self, served: _Served, port: int) -> list[str]:
        """The replica's command line: the model server in its sandbox, or as it is where there is none."""
        sandbox = self._isolation
        if isinstance(sandbox, str):
            return self._argv(served, port, served.model_dir, served.transformer_dir)
        transformer = Path(server_sandbox.TRANSFORMER) if served.transformer_dir is not None else None
        argv = self._argv(served, port, Path(server_sandbox.MODEL), transformer)
        gpus = served.endpoint.spec.gpus > 0
        view = server_sandbox.plan(sandbox, served.model_dir, served.transformer_dir, gpus)
        return [*view, *sandbox.command(argv)]

    def _argv(self, served: _Served, port: int, model_dir: Path, transformer_dir: Path | None) -> list[str]:
        endpoint = served.endpoint
        spec = endpoint.spec
        argv = [self._python, "-m", server_sandbox.MODEL_SERVER, "--model-dir", str(model_dir),
                "--model-name", endpoint.model.model, "--model-version", str(endpoint.model.version),
                "--host", self._host, "--port", str(port), "--framework", spec.framework,
                "--max-concurrency", str(spec.max_concurrency), "--drain-timeout", str(DRAIN_S - 5)]
        if spec.predictor:
            argv += ["--predictor", spec.predictor]
        if transformer_dir is not None:
            argv += ["--transformer-dir", str(transformer_dir),
                     "--transformer-script", spec.transformer.script]
        return argv

    async def _supervise(self, served: _Served, replica: _Replica) -> None:
        """Keep one replica running until the endpoint stops or the model proves unloadable."""
        while not served.stopping and not replica.stopping:
            port = free_port(self._host)
            replica.address = f"{self._host}:{port}"
            with replica.log.open("ab") as out:
                replica.process = await asyncio.create_subprocess_exec(
                    *self._command(served, port), stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                    env=server_sandbox.environment(self._python, sandboxed=not self.isolation_missing()))
            became_ready = await self._until_ready_or_exit(replica)
            if became_ready:
                await self._tell(served)
            code = await replica.process.wait()
            replica.ready = False
            if served.stopping or replica.stopping:
                return
            replica.last_exit = describe_exit(code, sandboxed=not self.isolation_missing())
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
                self._terminate(process)
            try:
                await asyncio.wait_for(process.wait(), DRAIN_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if replica.task is not None:
            replica.task.cancel()
            await asyncio.gather(replica.task, return_exceptions=True)

    def _terminate(self, process: asyncio.subprocess.Process) -> None:
        """SIGTERM to the model server: inside its sandbox (bwrap forwards no signals; a sandbox whose
        server has not started yet has nothing to drain and is ended as a whole)."""
        server = None if isinstance(self._isolation, str) else sandboxed_pid(process.pid)
        if server is None:
            process.terminate()
        else:
            os.kill(server, signal.SIGTERM)

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


def _let_read(top: Path) -> None:
    """Let a sandboxed replica's user read a laid-out version whatever serving-svc's umask: directories
    passable, copied files readable; a hard link to a blob (several links) is the store's, read-only
    already, and left as it is."""
    for directory, _, files in os.walk(top):
        Path(directory).chmod(0o755)
        for name in files:
            path = Path(directory, name)
            st = path.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and not st.st_mode & stat.S_IROTH:
                path.chmod((st.st_mode | 0o444) & ~0o222)
