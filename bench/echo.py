"""Reference B: a raw grpcio aio unary echo server, run as its own process.

``python -m bench.echo PORT`` serves ``/bench.Echo/Echo`` through a generic handler on
bytes (no protobuf, no interceptors): the least a Python gRPC server can do per call.
"""

from __future__ import annotations

import asyncio
import sys

import grpc

METHOD = "/bench.Echo/Echo"


class _EchoHandler(grpc.GenericRpcHandler):
    def __init__(self) -> None:
        async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return request

        self._handler = grpc.unary_unary_rpc_method_handler(echo)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self._handler if handler_call_details.method == METHOD else None


async def serve(port: int) -> None:
    """Serve the echo method until killed."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([_EchoHandler()])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
