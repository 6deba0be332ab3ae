"""The platform's machine-readable reason for a refused call, as any client reads it."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

DOMAIN = "clearpoint.v1"


def reason_of(exc: grpc.aio.AioRpcError) -> str:
    """The reason (google.rpc.ErrorInfo of domain clearpoint.v1) of a failed call, e.g.
    "AGENT_REVOKED"; "" when the platform gave none (it was not reached, say)."""
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info) and info.domain == DOMAIN:
                    return str(info.reason)
    return ""
