"""Test doubles for ``shipyard.kit.egress``: a policy and a stub DNS for loopback-only tests."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from shipyard.kit.addresses import IPAddress


def only_127_0_0_1(ip: IPAddress) -> str | None:
    """A policy that allows 127.0.0.1 and nothing else: 127.0.0.1 stands for the outside,
    127.0.0.2 for an internal service."""
    return None if str(ip) == "127.0.0.1" else f"{ip} is not the test's address"


@dataclass
class Answers:
    """A stub DNS: each lookup of any name gives the next answer (the last one from then on)."""

    answers: list[list[str]]
    asked: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        return self.answers[min(len(self.asked), len(self.answers)) - 1]


@contextlib.contextmanager
def banner_server(banner: bytes) -> Iterator[int]:
    """A loopback port that speaks another protocol: it sends ``banner`` to whoever connects.
    Yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(banner)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()
