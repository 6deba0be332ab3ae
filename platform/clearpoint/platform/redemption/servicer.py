"""RedemptionService: stores preview and redeem codes, roll redemptions back, and look them up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearpoint.platform.campaigns import catalog
from clearpoint.platform.core import metrics
from clearpoint.platform.core.errors import Refusal, field_invalid
from clearpoint.platform.core.once import RequestKey, check_request_id
from clearpoint.platform.core.paging import next_page
from clearpoint.platform.core.principals import current_principal
from clearpoint.platform.edge import PARTNERS, Context, Service, fingerprint, once
from clearpoint.platform.redemption import lookups, rollback, wire
from clearpoint.platform.redemption.redeemer import REDEEM, RedeemRequest
from clearpoint.v1 import redemption_pb2, redemption_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from clearpoint.platform.app import Platform

R = redemption_pb2


class RedemptionServicer(redemption_pb2_grpc.RedemptionServiceServicer):
    def __init__(self, p: Platform) -> None:
        self.p = p

    async def ValidateCode(self, request: R.ValidateCodeRequest, context: Context) -> R.ValidateCodeResponse:
        return wire.preview(await self.p.redeemer.validate(request.code, request.store_id))

    async def Redeem(self, request: R.RedeemRequest, context: Context) -> R.RedeemResponse:
        check_request_id(request.request_id)
        principal = current_principal.get()
        try:
            outcome = await self.p.redeemer.redeem(
                RedeemRequest(
                    principal=principal,
                    key=RequestKey(principal.partner_id, REDEEM, request.request_id),
                    fingerprint=fingerprint(request),
                    request_id=request.request_id,
                    code=request.code,
                    store_id=request.store_id,
                    expected_campaign_id=request.expected_campaign_id,
                )
            )
        except Refusal as refused:
            if not refused.replayed:
                metrics.REDEMPTIONS.labels("api", refused.reason.value.lower()).inc()
            raise
        if not outcome.replayed:
            metrics.REDEMPTIONS.labels("api", "accepted").inc()
        return R.RedeemResponse(
            redemption=wire.redemption(outcome.redemption), claim=wire.claim(outcome.claim), replayed=outcome.replayed
        )

    async def RollbackRedemption(
        self, request: R.RollbackRedemptionRequest, context: Context
    ) -> R.RollbackRedemptionResponse:
        principal = current_principal.get()
        campaign_ids: list[str] = []

        async def work(conn: AsyncConnection) -> R.RollbackRedemptionResponse:
            done = await rollback.rollback(conn, principal, request.redemption_id, request.reason, self.p.clock())
            campaign_ids.append(done.campaign_id)
            return R.RollbackRedemptionResponse(redemption=wire.redemption(done))

        response = await once(self.p, "RollbackRedemption", request, R.RollbackRedemptionResponse, work)
        for campaign_id in campaign_ids:
            self.p.progress.changed(campaign_id)
        return response

    async def GetVoucher(self, request: R.GetVoucherRequest, context: Context) -> R.GetVoucherResponse:
        which = request.WhichOneof("voucher")
        if which is None:
            raise field_invalid("voucher", "give voucher_id or code")
        if which == "code":
            voucher_id = (await self.p.redeemer.codes.check(request.code)).voucher_id
        else:
            voucher_id = request.voucher_id
            lookups.check_voucher_id(voucher_id)
        async with self.p.db.read() as conn:
            found = await lookups.voucher(conn, current_principal.get(), voucher_id)
        return R.GetVoucherResponse(voucher=wire.voucher(found))

    async def ListRedemptions(self, request: R.ListRedemptionsRequest, context: Context) -> R.ListRedemptionsResponse:
        principal = current_principal.get()
        scope = f"redemptions:{principal.partner_id}:{request.campaign_id}"
        page = next_page(self.p.pages, scope, request.page_size, request.page_token)
        async with self.p.db.read() as conn:
            await catalog.get(conn, principal, request.campaign_id)
            found = await lookups.redemptions_page(conn, request.campaign_id, page.limit + 1, page.after)
        shown, token = page.cut(found, lambda r: (r.redeemed_us, r.redemption_id))
        return R.ListRedemptionsResponse(redemptions=[wire.redemption(r) for r in shown], next_page_token=token)


SERVICE = Service(
    descriptor=R.DESCRIPTOR.services_by_name["RedemptionService"],
    servicer=RedemptionServicer,
    add_to_server=redemption_pb2_grpc.add_RedemptionServiceServicer_to_server,
    stub=redemption_pb2_grpc.RedemptionServiceStub,
    client_name="redemption",
    access=PARTNERS,
)
