"""Thin servicers: translate clearpoint.v1 messages to domain calls and back.

Authentication, the role policy and refusal-to-status mapping live in the GuardInterceptor; the
rules live in the domain modules.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from clearpoint.platform import auth, campaigns, wire
from clearpoint.platform.app import Platform
from clearpoint.platform.auth import ROLE_OPERATOR, ROLE_PARTNER, current_principal
from clearpoint.platform.clock import from_timestamp
from clearpoint.platform.errors import field_invalid
from clearpoint.platform.idempotency import check_request_id, fingerprint, run_once
from clearpoint.platform.interceptors import NO_API_KEY
from clearpoint.platform.paging import page_size
from clearpoint.platform.records import CampaignSpec
from clearpoint.platform.schema import partners
from clearpoint.v1 import (
    agents_pb2,
    campaigns_pb2,
    campaigns_pb2_grpc,
    issuer_keys_pb2,
    issuer_keys_pb2_grpc,
    partners_pb2,
    partners_pb2_grpc,
    redemption_pb2,
    redemption_pb2_grpc,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

OPERATOR = frozenset({ROLE_OPERATOR})
ANYONE = frozenset({ROLE_OPERATOR, ROLE_PARTNER})


def _policy(service: str, default: frozenset[str], **overrides: frozenset[str]) -> dict[str, frozenset[str]]:
    methods = {
        "clearpoint.v1.IssuerKeyService": issuer_keys_pb2.DESCRIPTOR.services_by_name["IssuerKeyService"],
        "clearpoint.v1.PartnerService": partners_pb2.DESCRIPTOR.services_by_name["PartnerService"],
        "clearpoint.v1.CampaignService": campaigns_pb2.DESCRIPTOR.services_by_name["CampaignService"],
        "clearpoint.v1.RedemptionService": redemption_pb2.DESCRIPTOR.services_by_name["RedemptionService"],
        "clearpoint.v1.AgentService": agents_pb2.DESCRIPTOR.services_by_name["AgentService"],
    }[service].methods
    return {f"/{service}/{m.name}": overrides.get(m.name, default) for m in methods}


# Who may call what. A partner's reach within a service (its own campaigns) is the domain's rule.
POLICY: dict[str, frozenset[str]] = {
    **_policy("clearpoint.v1.IssuerKeyService", OPERATOR),
    **_policy("clearpoint.v1.PartnerService", OPERATOR, WhoAmI=ANYONE),
    **_policy("clearpoint.v1.CampaignService", ANYONE),
    **_policy("clearpoint.v1.RedemptionService", ANYONE),
    **_policy("clearpoint.v1.AgentService", OPERATOR, EnrolAgent=NO_API_KEY, StreamScans=NO_API_KEY),
}


class IssuerKeys(issuer_keys_pb2_grpc.IssuerKeyServiceServicer):
    def __init__(self, p: Platform) -> None:
        self.p = p

    async def CreateIssuerKey(self, request, context):  # type: ignore[no-untyped-def]
        async def work(conn):  # type: ignore[no-untyped-def]
            return issuer_keys_pb2.CreateIssuerKeyResponse(key=wire.issuer_key(await self.p.keys.create(conn)))

        return await self._once("CreateIssuerKey", request, issuer_keys_pb2.CreateIssuerKeyResponse, work)

    async def RotateIssuerKey(self, request, context):  # type: ignore[no-untyped-def]
        async def work(conn):  # type: ignore[no-untyped-def]
            new, old = await self.p.keys.rotate(conn)
            return issuer_keys_pb2.RotateIssuerKeyResponse(
                active_key=wire.issuer_key(new), previous_key=wire.issuer_key(old) if old else None
            )

        return await self._once("RotateIssuerKey", request, issuer_keys_pb2.RotateIssuerKeyResponse, work)

    async def RetireIssuerKey(self, request, context):  # type: ignore[no-untyped-def]
        async def work(conn):  # type: ignore[no-untyped-def]
            return issuer_keys_pb2.RetireIssuerKeyResponse(
                key=wire.issuer_key(await self.p.keys.retire(conn, request.key_id))
            )

        return await self._once("RetireIssuerKey", request, issuer_keys_pb2.RetireIssuerKeyResponse, work)

    async def ListIssuerKeys(self, request, context):  # type: ignore[no-untyped-def]
        async with self.p.db.read() as conn:
            keys = await self.p.keys.list(conn)
        return issuer_keys_pb2.ListIssuerKeysResponse(keys=[wire.issuer_key(k) for k in keys])

    async def _once(self, method, request, response_type, work):  # type: ignore[no-untyped-def]
        principal = current_principal.get()
        return await run_once(self.p.db, self.p.clock, principal.partner_id, method, request, response_type, work)


class Partners(partners_pb2_grpc.PartnerServiceServicer):
    def __init__(self, p: Platform) -> None:
        self.p = p

    async def CreatePartner(self, request, context):  # type: ignore[no-untyped-def]
        if not 1 <= len(request.name) <= 200 or not request.name.isprintable():
            raise field_invalid("name", "name must be 1 to 200 printable characters")
        role = {
            partners_pb2.ROLE_UNSPECIFIED: auth.ROLE_PARTNER,
            partners_pb2.ROLE_PARTNER: auth.ROLE_PARTNER,
            partners_pb2.ROLE_OPERATOR: auth.ROLE_OPERATOR,
        }.get(request.role)
        if role is None:
            raise field_invalid("role", "role must be ROLE_PARTNER or ROLE_OPERATOR")
        principal = current_principal.get()
        created: dict[str, str] = {}

        async def work(conn):  # type: ignore[no-untyped-def]
            if await conn.scalar(select(partners.c.partner_id).where(partners.c.name == request.name)):
                raise field_invalid("name", f"a partner named {request.name!r} exists already")
            now = self.p.clock()
            partner_id, key = await auth.create_partner(conn, request.name, role, now)
            created["key"] = key
            # The stored answer leaves the key out: it is shown once, never kept in clear.
            return partners_pb2.CreatePartnerResponse(partner=wire.partner(partner_id, request.name, role, now))

        try:
            response = await run_once(
                self.p.db,
                self.p.clock,
                principal.partner_id,
                "CreatePartner",
                request,
                partners_pb2.CreatePartnerResponse,
                work,
            )
        except IntegrityError:
            raise field_invalid("name", f"a partner named {request.name!r} exists already") from None
        if "key" in created:
            response.api_key = created["key"]
        return response

    async def ListPartners(self, request, context):  # type: ignore[no-untyped-def]
        async with self.p.db.read() as conn:
            rows = await conn.execute(select(partners).order_by(partners.c.created_us, partners.c.partner_id))
            return partners_pb2.ListPartnersResponse(
                partners=[wire.partner(r.partner_id, r.name, r.role, r.created_us) for r in rows]
            )

    async def WhoAmI(self, request, context):  # type: ignore[no-untyped-def]
        principal = current_principal.get()
        async with self.p.db.read() as conn:
            row = (await conn.execute(select(partners).where(partners.c.partner_id == principal.partner_id))).one()
        return partners_pb2.WhoAmIResponse(partner=wire.partner(row.partner_id, row.name, row.role, row.created_us))


class Campaigns(campaigns_pb2_grpc.CampaignServiceServicer):
    def __init__(self, p: Platform) -> None:
        self.p = p

    async def CreateCampaign(self, request, context):  # type: ignore[no-untyped-def]
        principal = current_principal.get()
        spec = CampaignSpec(
            name=request.name,
            prize_description=request.prize_description,
            valid_from_us=from_timestamp(request.valid_from) if request.HasField("valid_from") else 0,
            valid_until_us=from_timestamp(request.valid_until) if request.HasField("valid_until") else 0,
            store_ids=tuple(request.store_ids),
            total_stock=request.total_stock,
            uses_per_voucher=request.uses_per_voucher,
            rollback_window_us=request.rollback_window.ToMicroseconds()
            if request.HasField("rollback_window")
            else campaigns.DEFAULT_ROLLBACK_WINDOW_US,
        )
        campaigns.check_spec(spec)

        async def work(conn):  # type: ignore[no-untyped-def]
            created = await campaigns.create(conn, principal, spec, self.p.clock())
            return campaigns_pb2.CreateCampaignResponse(campaign=wire.campaign(created))

        return await run_once(
            self.p.db,
            self.p.clock,
            principal.partner_id,
            "CreateCampaign",
            request,
            campaigns_pb2.CreateCampaignResponse,
            work,
        )

    async def GetCampaign(self, request, context):  # type: ignore[no-untyped-def]
        async with self.p.db.read() as conn:
            found = await campaigns.get(conn, current_principal.get(), request.campaign_id)
            progress = await campaigns.progress(conn, found.campaign_id, self.p.clock())
        return campaigns_pb2.GetCampaignResponse(campaign=wire.campaign(found), progress=wire.progress(progress))

    async def ListCampaigns(self, request, context):  # type: ignore[no-untyped-def]
        principal = current_principal.get()
        limit = page_size(request.page_size)
        scope = f"campaigns:{principal.partner_id}"
        after = self.p.pages.read(scope, request.page_token)
        async with self.p.db.read() as conn:
            page = await campaigns.list_page(conn, principal, limit + 1, after)
        more = len(page) > limit
        page = page[:limit]
        token = self.p.pages.make(scope, (page[-1].created_us, page[-1].campaign_id)) if more else ""
        return campaigns_pb2.ListCampaignsResponse(campaigns=[wire.campaign(c) for c in page], next_page_token=token)

    async def IssueVouchers(self, request, context):  # type: ignore[no-untyped-def]
        principal = current_principal.get()
        if not 1 <= request.count <= campaigns.MAX_ISSUE:
            raise field_invalid("count", f"count must be 1 to {campaigns.MAX_ISSUE}")
        codes: list[str] = []

        async def work(conn):  # type: ignore[no-untyped-def]
            campaign = await campaigns.get(conn, principal, request.campaign_id)
            signer = await self.p.keys.signer(conn)
            issued = await campaigns.issue(conn, campaign, request.count, signer, self.p.clock())
            codes.extend(c for _, c in issued)
            # The stored answer keeps the voucher ids only: codes are bearer tokens, not kept at rest.
            return campaigns_pb2.IssueVouchersResponse(
                vouchers=[campaigns_pb2.IssuedVoucher(voucher_id=v) for v, _ in issued], key_id=signer.kid
            )

        response = await run_once(
            self.p.db,
            self.p.clock,
            principal.partner_id,
            "IssueVouchers",
            request,
            campaigns_pb2.IssueVouchersResponse,
            work,
        )
        if not codes:  # a replay: sign the same vouchers again, giving the same codes
            async with self.p.db.read() as conn:
                campaign = await campaigns.get(conn, principal, request.campaign_id)
                signer = await self.p.keys.signer_for(conn, response.key_id)
            codes = [campaigns.sign_code(campaign, v.voucher_id, signer) for v in response.vouchers]
        for voucher, code in zip(response.vouchers, codes, strict=True):
            voucher.code = code
        self.p.hub.notify(request.campaign_id)
        return response

    async def WatchCampaignProgress(
        self, request, context
    ) -> AsyncIterator[campaigns_pb2.WatchCampaignProgressResponse]:  # type: ignore[no-untyped-def]
        principal = current_principal.get()
        async with self.p.db.read() as conn:
            campaign_id = (await campaigns.get(conn, principal, request.campaign_id)).campaign_id
        last = None
        while True:
            async with self.p.db.read() as conn:
                now = await campaigns.progress(conn, campaign_id, self.p.clock())
            if now.counts() != last:
                last = now.counts()
                yield campaigns_pb2.WatchCampaignProgressResponse(progress=wire.progress(now))
            await self.p.hub.wait(campaign_id, self.p.watch_poll_seconds)


class Redemptions(redemption_pb2_grpc.RedemptionServiceServicer):
    def __init__(self, p: Platform) -> None:
        self.p = p

    async def ValidateCode(self, request, context):  # type: ignore[no-untyped-def]
        preview = await self.p.redeemer.validate(request.code, request.store_id)
        return redemption_pb2.ValidateCodeResponse(
            redeemable=preview.reason is None,
            reason=wire.reason_enum(preview.reason),
            message=preview.message,
            claim=wire.claim(preview.claim) if preview.claim else None,
            valid_from=wire.to_timestamp(preview.valid_from_us),
            valid_until=wire.to_timestamp(preview.valid_until_us),
        )

    async def Redeem(self, request, context):  # type: ignore[no-untyped-def]
        check_request_id(request.request_id)
        outcome = await self.p.redeemer.redeem(
            current_principal.get(),
            request.request_id,
            fingerprint(request),
            request.code,
            request.store_id,
            request.expected_campaign_id,
        )
        return redemption_pb2.RedeemResponse(
            redemption=wire.redemption(outcome.redemption), claim=wire.claim(outcome.claim), replayed=outcome.replayed
        )

    async def RollbackRedemption(self, request, context):  # type: ignore[no-untyped-def]
        principal = current_principal.get()
        campaign_ids: list[str] = []

        async def work(conn):  # type: ignore[no-untyped-def]
            done = await self.p.redeemer.rollback(conn, principal, request.redemption_id, request.reason)
            campaign_ids.append(done.campaign_id)
            return redemption_pb2.RollbackRedemptionResponse(redemption=wire.redemption(done))

        response = await run_once(
            self.p.db,
            self.p.clock,
            principal.partner_id,
            "RollbackRedemption",
            request,
            redemption_pb2.RollbackRedemptionResponse,
            work,
        )
        for campaign_id in campaign_ids:
            self.p.hub.notify(campaign_id)
        return response

    async def GetVoucher(self, request, context):  # type: ignore[no-untyped-def]
        which = request.WhichOneof("voucher")
        if which is None:
            raise field_invalid("voucher", "give voucher_id or code")
        found = await self.p.redeemer.get_voucher(
            current_principal.get(), voucher_id=request.voucher_id, code=request.code if which == "code" else ""
        )
        return redemption_pb2.GetVoucherResponse(voucher=wire.voucher(found))

    async def ListRedemptions(self, request, context):  # type: ignore[no-untyped-def]
        principal = current_principal.get()
        limit = page_size(request.page_size)
        scope = f"redemptions:{principal.partner_id}:{request.campaign_id}"
        after = self.p.pages.read(scope, request.page_token)
        async with self.p.db.read() as conn:
            await campaigns.get(conn, principal, request.campaign_id)
            page = await self.p.redeemer.list_redemptions(conn, request.campaign_id, limit + 1, after)
        more = len(page) > limit
        page = page[:limit]
        token = self.p.pages.make(scope, (page[-1].redeemed_us, page[-1].redemption_id)) if more else ""
        return redemption_pb2.ListRedemptionsResponse(
            redemptions=[wire.redemption(r) for r in page], next_page_token=token
        )
