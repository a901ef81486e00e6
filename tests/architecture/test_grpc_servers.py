"""Every gRPC server the platform runs authenticates every call (issue 14).

- a gRPC server is made only by ``shipyard.kit.grpcio.new_server`` (no other ``grpc.server(`` or
  ``grpc.aio.server(`` in src/ or services/);
- ``new_server`` cannot be called without an Authentication, and its servers refuse a call
  without a caller on every method of every platform service (health checks excepted);
- services register their servicers on the runtime's server, which ``build_runtime`` makes with
  ``new_server``.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor

from shipyard.contracts.common.v1 import health_pb2
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.lineage.v1 import lineage_pb2
from shipyard.contracts.repo.v1 import credentials_pb2, projects_pb2, repos_pb2
from shipyard.contracts.run.v1 import runs_pb2
from shipyard.contracts.serving.v1 import serving_pb2
from shipyard.kit import grpcio, service
from shipyard.kit.assertions import CallerAssertions, new_key
from shipyard.kit.grpcio import Authentication, assertion_authenticator, new_server

ROOT = Path(__file__).resolve().parents[2]
WHERE_SERVERS_ARE_MADE = ("src/shipyard/kit/grpcio.py", "new_server")
SERVICES = [s for module in (projects_pb2, repos_pb2, credentials_pb2, runs_pb2, serving_pb2, lineage_pb2,
                             gateway_pb2, health_pb2)
            for s in module.DESCRIPTOR.services_by_name.values()]


def _is_server_factory(func: ast.expr) -> bool:
    """``grpc.server``, ``grpc.aio.server``, ``aio.server`` (and ``server`` imported from them)."""
    if isinstance(func, ast.Attribute) and func.attr == "server":
        base = ast.unparse(func.value)
        return base in ("grpc", "grpc.aio", "aio")
    return False


def server_constructions(source: str, path: str) -> list[str]:
    """Each place in ``source`` that makes a gRPC server, as ``path:line (in function)``."""
    tree = ast.parse(source)
    imported_as: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("grpc", "grpc.aio"):
            imported_as.update(a.asname or a.name for a in node.names if a.name == "server")
    found: list[str] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if isinstance(child, ast.Call) and (
                    _is_server_factory(child.func)
                    or (isinstance(child.func, ast.Name) and child.func.id in imported_as)):
                found.append(f"{path}:{child.lineno} (in {function or 'the module'})")
            visit(child, inner)

    visit(tree, "")
    return found


def python_sources() -> list[Path]:
    return sorted(p for top in ("src", "services") for p in (ROOT / top).rglob("*.py")
                  if "__pycache__" not in p.parts and "contracts" not in p.parts and "tests" not in p.parts)


# --- the rules on the real code ----------------------------------------------------------


def test_grpc_servers_are_made_only_by_new_server() -> None:
    places = [place for file in python_sources()
              for place in server_constructions(file.read_text(), str(file.relative_to(ROOT)))]
    path, function = WHERE_SERVERS_ARE_MADE
    allowed = [p for p in places if p.startswith(f"{path}:") and p.endswith(f"(in {function})")]
    assert len(allowed) == 1, f"new_server no longer makes the server? {places}"
    others = [p for p in places if p not in allowed]
    assert not others, ("gRPC servers made without kit.grpcio.new_server (so without its "
                        "authentication):\n" + "\n".join(others))


def test_new_server_cannot_be_called_without_authentication() -> None:
    parameter = inspect.signature(new_server).parameters["authentication"]
    assert parameter.default is inspect.Parameter.empty
    assert parameter.annotation in (Authentication, "Authentication")


def test_the_runtime_server_comes_from_new_server() -> None:
    source = inspect.getsource(service.build_runtime)
    assert "new_server(" in source and "Authentication(" in source


def test_services_register_only_on_the_runtime_server() -> None:
    problems = []
    registrations = 0
    for file in (ROOT / "services").rglob("*.py"):
        if "tests" in file.parts:
            continue
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
                target = ""
                if name.endswith("_to_server") and len(node.args) == 2:
                    target = ast.unparse(node.args[1])
                elif name == "add_generic_rpc_handlers" and isinstance(node.func, ast.Attribute):
                    target = ast.unparse(node.func.value)
                else:
                    continue
                registrations += 1
                if target != "runtime.server":
                    problems.append(f"{file.relative_to(ROOT)}:{node.lineno}: registers on {target}")
    assert registrations >= 7, "the checker found too few registrations to be looking in the right place"
    assert not problems, "\n".join(problems)


@pytest.fixture
async def platform_server() -> AsyncIterator[grpc.aio.Channel]:
    """A server from new_server serving every method of every platform service (each would answer)."""
    server = new_server(tracing=False, authentication=Authentication(
        assertion_authenticator(CallerAssertions(new_key(), "repo"))))

    async def answer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b""

    async def answer_stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        yield b""

    handlers = {}
    for described in SERVICES:
        for method in described.methods:
            path = f"/{described.full_name}/{method.name}"
            handlers[path] = (grpc.unary_stream_rpc_method_handler(answer_stream) if method.server_streaming
                              else grpc.unary_unary_rpc_method_handler(answer))

    class Everything(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
            return handlers.get(details.method)

    server.add_generic_rpc_handlers([Everything()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(None)


async def test_every_rpc_of_the_platform_needs_a_caller(platform_server: grpc.aio.Channel) -> None:
    served: list[str] = []
    for described in SERVICES:
        served.extend(await _unauthenticated_codes(platform_server, described))
    assert len(served) > 50, "too few methods checked"
    let_through = [s for s in served if not s.endswith("UNAUTHENTICATED")]
    assert not let_through, "answered without a caller:\n" + "\n".join(let_through)


async def _unauthenticated_codes(channel: grpc.aio.Channel, described: ServiceDescriptor) -> list[str]:
    codes = []
    for method in described.methods:
        path = f"/{described.full_name}/{method.name}"
        try:
            if method.server_streaming:
                async for _ in channel.unary_stream(path)(b"", timeout=10):
                    pass
            else:
                await channel.unary_unary(path)(b"", timeout=10)
            codes.append(f"{path}: OK")
        except grpc.aio.AioRpcError as exc:
            codes.append(f"{path}: {exc.code().name}")
    return codes


def test_only_health_is_open() -> None:
    assert grpcio.HEALTH_METHODS == "/grpc.health.v1.Health/"


# --- the checker catches what it should --------------------------------------------------


@pytest.mark.parametrize("source", [
    "import grpc\nserver = grpc.aio.server()\n",
    "import grpc\ndef f():\n    return grpc.server(None)\n",
    "from grpc import aio\nasync def f():\n    s = aio.server(interceptors=[])\n",
    "from grpc.aio import server\nserver()\n",
    "from grpc.aio import server as make\nclass A:\n    def m(self):\n        make()\n",
])
def test_the_checker_finds_a_server(source: str) -> None:
    assert server_constructions(source, "x.py"), source


@pytest.mark.parametrize("source", [
    "from shipyard.kit.grpcio import new_server\nnew_server(False, auth)\n",
    "import grpc\ngrpc.aio.insecure_channel('x')\n",
    "runtime.server.start()\n",
])
def test_the_checker_passes_what_is_no_server(source: str) -> None:
    assert server_constructions(source, "x.py") == []
