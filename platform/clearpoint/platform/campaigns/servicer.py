"""CampaignService: partners create campaigns, issue vouchers and watch progress live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from clearpoint.platform.campaigns import catalog, issuing, wire
from clearpoint.platform.campaigns.progress import progress
from clearpoint.platform.campaigns.records import Progress
from clearpoint.platform.campaigns.rules import check_spec
from clearpoint.platform.core.paging import next_page
from clearpoint.platform.core.principals import current_principal
from clearpoint.platform.edge import PARTNERS, Context, Service, once
from clearpoint.v1 import campaigns_pb2, campaigns_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from clearpoint.platform.app import Platform

C = campaigns_pb2


class CampaignServicer(campaigns_pb2_grpc.CampaignServiceServicer):
    def __init__(self, p: Platform) -> None:
        self.p = p
        self._messages: dict[str, tuple[Progress, C.WatchCampaignProgressResponse]] = {}

    async def CreateCampaign(self, request: C.CreateCampaignRequest, context: Context) -> C.CreateCampaignResponse:
        principal = current_principal.get()
        spec = check_spec(wire.spec(request))

        async def work(conn: AsyncConnection) -> C.CreateCampaignResponse:
            created = await catalog.create(conn, principal, spec, self.p.clock())
            return C.CreateCampaignResponse(campaign=wire.campaign(created))

        return await once(self.p, "CreateCampaign", request, C.CreateCampaignResponse, work)

    async def GetCampaign(self, request: C.GetCampaignRequest, context: Context) -> C.GetCampaignResponse:
        async with self.p.db.read() as conn:
            found = await catalog.get(conn, current_principal.get(), request.campaign_id)
            now = await progress(conn, found.campaign_id, self.p.clock())
        return C.GetCampaignResponse(campaign=wire.campaign(found), progress=wire.progress(now))

    async def ListCampaigns(self, request: C.ListCampaignsRequest, context: Context) -> C.ListCampaignsResponse:
        principal = current_principal.get()
        page = next_page(self.p.pages, f"campaigns:{principal.partner_id}", request.page_size, request.page_token)
        async with self.p.db.read() as conn:
            found = await catalog.list_page(conn, principal, page.limit + 1, page.after)
        shown, token = page.cut(found, lambda c: (c.created_us, c.campaign_id))
        return C.ListCampaignsResponse(campaigns=[wire.campaign(c) for c in shown], next_page_token=token)

    async def IssueVouchers(self, request: C.IssueVouchersRequest, context: Context) -> C.IssueVouchersResponse:
        principal = current_principal.get()
        issuing.check_count(request.count)
        codes: list[str] = []

        async def work(conn: AsyncConnection) -> C.IssueVouchersResponse:
            campaign = await catalog.get(conn, principal, request.campaign_id)
            signer = await self.p.keys.signer(conn)
            issued = await issuing.issue(conn, campaign, request.count, signer, self.p.clock())
            codes.extend(c for _, c in issued)
            # The stored answer keeps the voucher ids only: codes are bearer tokens, not kept at rest.
            return C.IssueVouchersResponse(
                vouchers=[C.IssuedVoucher(voucher_id=v) for v, _ in issued], key_id=signer.kid
            )

        response = await once(self.p, "IssueVouchers", request, C.IssueVouchersResponse, work)
        if not codes:  # a replay: sign the same vouchers again, giving the same codes
            async with self.p.db.read() as conn:
                campaign = await catalog.get(conn, principal, request.campaign_id)
                signer = await self.p.keys.signer_for(conn, response.key_id)
            codes = [issuing.sign_code(campaign, v.voucher_id, signer) for v in response.vouchers]
        for voucher, code in zip(response.vouchers, codes, strict=True):
            voucher.code = code
        self.p.progress.changed(request.campaign_id)
        return response

    async def WatchCampaignProgress(
        self, request: C.WatchCampaignProgressRequest, context: Context
    ) -> AsyncIterator[C.WatchCampaignProgressResponse]:
        """One shared feed per campaign (core.fanout); each message is built once for all its watchers."""
        async with self.p.db.read() as conn:
            campaign_id = (await catalog.get(conn, current_principal.get(), request.campaign_id)).campaign_id
        try:
            async with self.p.progress.watch(campaign_id) as watch:
                async for now in watch:
                    yield self._built(now)
        finally:
            if not self.p.progress.watching(campaign_id):
                self._messages.pop(campaign_id, None)

    def _built(self, now: Progress) -> C.WatchCampaignProgressResponse:
        """The message for a published value, built by its first watcher and reused by the rest."""
        built = self._messages.get(now.campaign_id)
        if built is None or built[0] is not now:
            built = self._messages[now.campaign_id] = (
                now,
                C.WatchCampaignProgressResponse(progress=wire.progress(now)),
            )
        return built[1]


SERVICE = Service(
    descriptor=C.DESCRIPTOR.services_by_name["CampaignService"],
    servicer=CampaignServicer,
    add_to_server=campaigns_pb2_grpc.add_CampaignServiceServicer_to_server,
    stub=campaigns_pb2_grpc.CampaignServiceStub,
    client_name="campaigns",
    access=PARTNERS,
)
