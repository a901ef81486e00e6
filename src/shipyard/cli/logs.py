"""Printing a log that grows (a run's, an image build's), read from the API chunk by chunk."""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable
from typing import TextIO

POLL_SECONDS = 0.5

LogChunk = tuple[bytes, int, bool]
"""What a read returns: the bytes, the next offset, and whether the log ended and all was read."""


def copy_log(read: Callable[[int], LogChunk], follow: bool, out: TextIO) -> None:
    """Write the log to ``out`` from the start (``read(offset)`` gets each chunk): until nothing more
    comes, or (follow) until it has ended and all of it was read, asking again every POLL_SECONDS."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    offset = 0
    while True:
        data, offset, finished = read(offset)
        out.write(decoder.decode(data, final=finished))
        out.flush()
        if finished or (not follow and not data):
            break
        if not data:
            time.sleep(POLL_SECONDS)
    out.write(decoder.decode(b"", final=True))
    out.flush()
