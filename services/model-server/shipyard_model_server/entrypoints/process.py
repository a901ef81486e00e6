"""The model server's process: ``python -m shipyard_model_server`` (see :mod:`.http` for what it serves).

serving-svc starts one per replica of a test inference or a deployment::

    python -m shipyard_model_server --model-dir DIR --model-name NAME [--model-version N]
        --port PORT [--host 127.0.0.1] [--framework auto|sklearn|onnx|torchscript|custom]
        [--predictor module:Class] [--max-body-bytes N] [--max-concurrency N]
        [--transformer-dir DIR --transformer-script transform.py]

The process listens first (``/v2/health/live`` answers at once, ``/v2/health/ready`` says 503), loads
the model, then prints one JSON line on stdout with the port and the model and turns ready. If the
model cannot load, the loader's message goes to stderr and the process exits 1. SIGTERM (or SIGINT)
stops accepting connections, lets the requests in flight finish (``--drain-timeout``), and exits 0.
uvloop runs the event loop when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from shipyard.kit.lifetime import die_with_parent
from shipyard_model_server.adapters.predictors import (
    FRAMEWORKS,
    ModelLoadError,
    Predictor,
    Transformer,
    load_predictor,
    load_transformer,
)
from shipyard_model_server.entrypoints.http import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_THREADS,
    ModelServer,
    ServerConfig,
    log_event,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (``sys.argv[1:]`` when ``argv`` is None); exits 2 naming a bad flag."""
    parser = argparse.ArgumentParser(
        prog="python -m shipyard_model_server",
        description="Serve one model version over the Open Inference Protocol (KServe V2) on HTTP.",
    )
    parser.add_argument("--model-dir", required=True, help="the model version's files")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--model-version", default=None)
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port (printed at start)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--framework", default="auto", choices=FRAMEWORKS)
    parser.add_argument("--predictor", default=None, help="module:Class of a custom predictor in --model-dir")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument("--max-concurrency", type=int, default=0, help="requests in flight; 0 = unlimited")
    parser.add_argument("--transformer-dir", default=None, help="checkout holding the transformer script")
    parser.add_argument("--transformer-script", default=None, help="script with preprocess/postprocess")
    parser.add_argument("--predict-in-thread", default="auto", choices=("auto", "always", "never"))
    parser.add_argument("--inline-budget-ms", type=float, default=2.0, help="auto: predict inline below this")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="predict threads")
    parser.add_argument(
        "--drain-timeout", type=float, default=30.0, help="seconds to finish requests in flight on SIGTERM"
    )
    args = parser.parse_args(argv)
    if (args.transformer_dir is None) != (args.transformer_script is None):
        parser.error("--transformer-dir and --transformer-script go together")
    if args.max_body_bytes <= 0 or args.threads <= 0:
        parser.error("--max-body-bytes and --threads must be positive")
    if args.max_concurrency < 0 or not (math.isfinite(args.drain_timeout) and args.drain_timeout >= 0):
        parser.error("--max-concurrency and --drain-timeout must not be negative")
    return args


def _listen(host: str, port: int) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    return socket.create_server((host, port), family=family, backlog=1024)


def _load(args: argparse.Namespace) -> tuple[Predictor, Transformer | None]:
    predictor = load_predictor(args.model_dir, args.framework, args.predictor)
    transformer = None
    if args.transformer_dir is not None:
        transformer = load_transformer(args.transformer_dir, args.transformer_script)
    return predictor, transformer


async def serve(args: argparse.Namespace) -> int:
    """Listen, load, serve until SIGTERM/SIGINT, drain; the process's exit status."""
    config = ServerConfig(
        model_name=args.model_name,
        model_version=args.model_version,
        max_body_bytes=args.max_body_bytes,
        max_concurrency=args.max_concurrency,
        predict_in_thread=args.predict_in_thread,
        inline_budget_ms=args.inline_budget_ms,
        threads=args.threads,
    )
    server = ModelServer(config)
    try:
        sock = _listen(args.host, args.port)
    except OSError as error:
        print(f"cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr, flush=True)
        return 1
    port = sock.getsockname()[1]
    runner = web.AppRunner(
        server.app(), handle_signals=False, access_log=None, shutdown_timeout=args.drain_timeout
    )
    await runner.setup()
    await web.SockSite(runner, sock).start()

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loaded: asyncio.Future[tuple[Predictor, Transformer | None]] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not loaded.done():
            outcome()

    def load_in_thread() -> None:  # a daemon thread: SIGTERM while loading need not wait for it
        try:
            result = _load(args)
        except ModelLoadError as error:
            failure: BaseException = error
        except BaseException as error:
            failure = ModelLoadError(f"{type(error).__name__}: {error}")
        else:
            loop.call_soon_threadsafe(settle, lambda: loaded.set_result(result))
            return
        loop.call_soon_threadsafe(settle, lambda: loaded.set_exception(failure))

    threading.Thread(target=load_in_thread, name="load-model", daemon=True).start()
    stopping = asyncio.ensure_future(stop.wait())
    waiting: set[asyncio.Future[Any]] = {loaded, stopping}
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    status = 0
    if loaded.done() and not stopping.done():
        problem = loaded.exception()
        if problem is not None:
            message = problem.message if isinstance(problem, ModelLoadError) else str(problem)
            print(message, file=sys.stderr, flush=True)
            status = 1
        else:
            predictor, transformer = loaded.result()
            server.set_ready(predictor, transformer)
            log_event(
                sys.stdout,
                "model_server_started",
                host=args.host,
                port=port,
                pid=os.getpid(),
                model={
                    "name": args.model_name,
                    "version": args.model_version,
                    "framework": predictor.framework,
                    "artifact": predictor.artifact,
                    **server.metadata().to_json(),
                },
                transformer=transformer.script if transformer is not None else None,
                max_concurrency=args.max_concurrency,
                max_body_bytes=args.max_body_bytes,
            )
            await stopping
    else:
        loaded.cancel()
    stopping.cancel()
    server.draining = True
    await runner.cleanup()  # closes the listener, then waits for requests in flight (drain)
    server.close()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the model server until it is stopped; the process's exit status."""
    if not die_with_parent():
        return 0  # serving-svc went away while this server was starting: nobody needs it
    args = parse_args(argv)
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(serve(args))
