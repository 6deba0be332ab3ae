"""ClearingService: the platform's statement key, and each channel's statements, read or watched."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from clearpoint.platform.clearing import adjustments, published, wire
from clearpoint.platform.core.errors import Reason, Refusal, field_invalid
from clearpoint.platform.core.paging import next_page
from clearpoint.platform.core.principals import Role, current_principal
from clearpoint.platform.edge import OPERATORS, PARTNERS, Context, Service, once
from clearpoint.v1 import clearing_pb2, clearing_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from clearpoint.platform.app import Platform

C = clearing_pb2


class ClearingServicer(clearing_pb2_grpc.ClearingServiceServicer):
    def __init__(self, p: Platform) -> None:
        self.p = p

    async def GetStatementKey(self, request: C.GetStatementKeyRequest, context: Context) -> C.GetStatementKeyResponse:
        key = self.p.clearing.key
        return C.GetStatementKeyResponse(key_id=key.key_id, public_key=key.public_key)

    async def GetStatement(self, request: C.GetStatementRequest, context: Context) -> C.GetStatementResponse:
        async with self.p.db.read() as conn:
            found, period = await published.get(conn, current_principal.get(), request.statement_id)
        return C.GetStatementResponse(statement=wire.statement(found, period))

    async def ListStatements(self, request: C.ListStatementsRequest, context: Context) -> C.ListStatementsResponse:
        principal = current_principal.get()
        channel_id = (request.channel_id or None) if principal.is_operator else principal.partner_id
        page = next_page(
            self.p.pages, f"statements:{principal.partner_id}:{channel_id}", request.page_size, request.page_token
        )
        async with self.p.db.read() as conn:
            rows = await published.newest_first(conn, channel_id, page.limit + 1, page.after)
        shown, token = page.cut(rows, lambda r: (r[0].period_number, r[0].channel_id))
        return C.ListStatementsResponse(
            statements=[wire.statement(s, period) for s, period in shown], next_page_token=token
        )

    async def WatchStatements(
        self, request: C.WatchStatementsRequest, context: Context
    ) -> AsyncIterator[C.WatchStatementsResponse]:
        """The caller's statements after the number asked for, then each period's as it closes."""
        principal = current_principal.get()
        if principal.role is not Role.PARTNER:
            raise Refusal(Reason.PERMISSION_DENIED, "a channel watches its own statements; an operator lists them all")
        if request.after_period_number < 0:
            raise field_invalid("after_period_number", "after_period_number is 0 (all) or a period number")
        sent = request.after_period_number
        async with self.p.statements.watch(principal.partner_id) as watch:
            async for newest in watch:
                while sent < newest:
                    async with self.p.db.read() as conn:
                        batch = await published.after(conn, principal.partner_id, sent)
                    if not batch:
                        break
                    for found, period in batch:
                        yield C.WatchStatementsResponse(statement=wire.statement(found, period))
                        sent = found.period_number

    async def RecordAdjustment(
        self, request: C.RecordAdjustmentRequest, context: Context
    ) -> C.RecordAdjustmentResponse:
        async def work(conn: AsyncConnection) -> C.RecordAdjustmentResponse:
            asked = adjustments.Request(
                request.channel_id,
                request.statement_id,
                request.direction,
                request.points,
                request.rule_version,
                request.reason,
            )
            made = await adjustments.record(conn, asked, self.p.clock())
            return C.RecordAdjustmentResponse(
                adjustment_id=made.adjustment_id, corrects_period_id=made.corrects_period_id
            )

        return await once(self.p, "RecordAdjustment", request, C.RecordAdjustmentResponse, work)


SERVICE = Service(
    descriptor=C.DESCRIPTOR.services_by_name["ClearingService"],
    servicer=ClearingServicer,
    add_to_server=clearing_pb2_grpc.add_ClearingServiceServicer_to_server,
    stub=clearing_pb2_grpc.ClearingServiceStub,
    client_name="clearing",
    access=PARTNERS,
    overrides={"RecordAdjustment": OPERATORS},
)
