"""LineageService over gRPC."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from shipyard.contracts.lineage.v1 import lineage_pb2, lineage_pb2_grpc
from shipyard.kit.errors import InvalidArgument
from shipyard_lineage.app.ports import ActivityQuery
from shipyard_lineage.app.projector import ActivityQueries
from shipyard_lineage.domain.activity import Activity, area_of


def _to_proto(activity: Activity) -> lineage_pb2.Activity:
    time = Timestamp()
    time.FromDatetime(activity.time)
    return lineage_pb2.Activity(event_id=activity.event_id, type=activity.type, subject=activity.subject,
                                project=activity.project, actor=activity.actor, time=time,
                                summary=activity.summary, sequence=activity.sequence)


def _decode_token(token: str) -> int | None:
    if not token:
        return None
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("s:"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument("page_token", "is not a token this API returned") from None


def _query(request: lineage_pb2.ListActivityRequest) -> ActivityQuery:
    prefix = request.type_prefix
    full_type = prefix if prefix.endswith(".v1") else ""
    area = area_of(prefix + "x.v1") if prefix and not full_type else ""
    if prefix and not full_type and not prefix.startswith("io.shipyard."):
        raise InvalidArgument("type_prefix", "must look like io.shipyard.<area>. or a full event type")
    since = request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None
    return ActivityQuery(limit=request.page_size, before_sequence=_decode_token(request.page_token),
                         project=request.project, area=area, type=full_type, subject=request.subject,
                         since=since)


class LineageServicer(lineage_pb2_grpc.LineageServiceServicer):
    """Activity feed queries."""

    def __init__(self, queries: ActivityQueries) -> None:
        self._queries = queries

    async def ListActivity(self, request: lineage_pb2.ListActivityRequest,
                           context: grpc.aio.ServicerContext) -> lineage_pb2.ListActivityResponse:
        query = _query(request)
        found = await self._queries.list(query)
        limit = query.limit or 50
        token = ""
        if len(found) == min(limit, 1000) and found:
            token = base64.urlsafe_b64encode(f"s:{found[-1].sequence}".encode()).decode()
        return lineage_pb2.ListActivityResponse(activities=[_to_proto(a) for a in found],
                                                next_page_token=token)
