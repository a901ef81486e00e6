"""TensorFlow event files read for a study's TensorFlowEvent collector, with tensorboard's protos (the
run-svc ``tensorboard`` extra): the TFRecord framing is read here, each record an ``Event``."""

from __future__ import annotations

import math
import posixpath
import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

_HEADER = struct.Struct("<QI")  # the record's length, and the masked CRC of the length
_FOOTER = 4  # the masked CRC of the data


def records(data: bytes) -> Iterator[bytes]:
    """The records of a TFRecord file, in order; a last record still being written is left out."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, _ = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        end = start + length
        if end + _FOOTER > len(data):
            return
        yield data[start:end]
        offset = end + _FOOTER


def considered(tag: str, metric: str, path: str) -> bool:
    """Katib's rule: the tag starts with the metric's last ``/`` part, and the file's directory ends with
    the part before it (any directory when the metric has no ``/``)."""
    folder, _, leaf = metric.rpartition("/")
    return tag.startswith(leaf) and posixpath.dirname(path).endswith(folder)


class TensorFlowEvents:
    """The ``EventFiles`` port over tensorboard's ``Event`` proto."""

    def missing(self) -> str:
        try:
            self._modules()
        except ImportError:
            return "tensorboard is not installed where run-svc runs (pip install 'shipyard[tensorboard]')"
        return ""

    def observations(self, files: Mapping[str, bytes], metrics: Sequence[str]) -> list[tuple[str, float]]:
        event_pb2, tensor_util = self._modules()
        found: list[tuple[str, float]] = []
        for path in sorted(files):
            for record in records(files[path]):
                try:
                    event = event_pb2.Event.FromString(record)
                except Exception:  # a damaged record: the collector reads what it can, as Katib's does
                    continue
                for value in event.summary.value:
                    number = _scalar(value, tensor_util)
                    if number is None:
                        continue
                    found += [(metric, number) for metric in metrics if considered(value.tag, metric, path)]
        return found

    @staticmethod
    def _modules() -> tuple[Any, Any]:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.util import tensor_util

        return event_pb2, tensor_util


def _scalar(value: Any, tensor_util: Any) -> float | None:
    if value.HasField("simple_value"):
        number = float(value.simple_value)
    elif value.HasField("tensor"):
        array = tensor_util.make_ndarray(value.tensor)
        if array.size != 1 or array.dtype.kind not in "fiu":
            return None
        number = float(array.reshape(-1)[0])
    else:
        return None
    return number if math.isfinite(number) else None
