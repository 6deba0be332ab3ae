"""Replay protection for mutating calls: the first answer to a request_id is kept and returned again.

A replay with the same fields gets the stored answer (success or refusal) and changes nothing; a
replay with different fields is refused as REQUEST_ID_REUSED. The answer is stored in the same
transaction as the change it describes, so the two can never disagree.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from clearpoint.platform.clock import Clock
from clearpoint.platform.db import Database
from clearpoint.platform.errors import Refusal, field_invalid
from clearpoint.platform.schema import idempotency
from google.protobuf.message import Message
from google.rpc import status_pb2
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

M = TypeVar("M", bound=Message)
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")


def check_request_id(request_id: str) -> None:
    if not _REQUEST_ID.fullmatch(request_id):
        raise field_invalid("request_id", "request_id must be 1 to 128 printable ASCII characters without spaces")


def fingerprint(request: Message) -> bytes:
    """SHA-256 of the request's deterministic serialization, request_id included."""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).digest()


async def _stored(conn: AsyncConnection, principal_id: str, method: str, request_id: str):  # type: ignore[no-untyped-def]
    return (
        await conn.execute(
            select(idempotency.c.request_sha256, idempotency.c.status_code, idempotency.c.response).where(
                idempotency.c.principal_id == principal_id,
                idempotency.c.method == method,
                idempotency.c.request_id == request_id,
            )
        )
    ).first()


def _replay(row, digest: bytes, response_type: type[M]) -> M:  # type: ignore[no-untyped-def]
    if bytes(row.request_sha256) != digest:
        raise Refusal("REQUEST_ID_REUSED", "this request_id was already used with different fields")
    if row.status_code != 0:
        status = status_pb2.Status()
        status.ParseFromString(bytes(row.response))
        raise Refusal.from_status(status)
    return response_type.FromString(bytes(row.response))


async def lookup(
    conn: AsyncConnection, principal_id: str, method: str, request: Message, response_type: type[M]
) -> M | None:
    """The stored answer to this request, if there is one (raises the stored refusal)."""
    row = await _stored(conn, principal_id, method, request.request_id)  # type: ignore[attr-defined]
    return None if row is None else _replay(row, fingerprint(request), response_type)


async def remember(
    conn: AsyncConnection,
    principal_id: str,
    method: str,
    request: Message,
    now_us: int,
    response: Message | None = None,
    refusal: Refusal | None = None,
) -> None:
    status_code = refusal.code.value[0] if refusal else 0
    body = refusal.to_status().SerializeToString() if refusal else response.SerializeToString()  # type: ignore[union-attr]
    await conn.execute(
        insert(idempotency).values(
            principal_id=principal_id,
            method=method,
            request_id=request.request_id,  # type: ignore[attr-defined]
            request_sha256=fingerprint(request),
            status_code=status_code,
            response=body,
            created_us=now_us,
        )
    )


async def run_once(
    db: Database,
    clock: Clock,
    principal_id: str,
    method: str,
    request: Message,
    response_type: type[M],
    work: Callable[[AsyncConnection], Awaitable[M]],
) -> M:
    """Run `work` in one write transaction unless this request was answered before."""
    check_request_id(request.request_id)  # type: ignore[attr-defined]
    for attempt in range(3):
        try:
            async with db.write() as conn:
                stored = await lookup(conn, principal_id, method, request, response_type)
                if stored is not None:
                    return stored
                try:
                    response = await work(conn)
                except Refusal as refusal:
                    raise _WorkRefused(refusal) from None  # leaves the block, so the work is rolled back
                await remember(conn, principal_id, method, request, clock(), response=response)
                return response
        except _WorkRefused as refused:
            try:
                async with db.write() as conn:
                    await remember(conn, principal_id, method, request, clock(), refusal=refused.refusal)
            except IntegrityError:
                continue  # a concurrent call with this request_id answered first: replay its answer
            raise refused.refusal from None
        except IntegrityError:
            # A concurrent call with the same request_id committed first; read its answer.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class _WorkRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
