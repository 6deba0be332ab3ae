"""PointsService: channels and their rules, members and their links, quotes, exchanges, and the
instructions each channel resolves in its own system."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.core.paging import next_page
from clearpoint.platform.core.principals import Principal, Role, current_principal
from clearpoint.platform.edge import PARTNERS, Context, Service, once, to_timestamp
from clearpoint.platform.exchange import channels, exchanges, ledger, members, wire
from clearpoint.v1 import points_pb2, points_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from clearpoint.platform.app import Platform

P = points_pb2


def _channel_caller() -> Principal:
    principal = current_principal.get()
    if principal.role is not Role.PARTNER:
        raise Refusal(Reason.PERMISSION_DENIED, "only a partner runs a points programme; use the partner's API key")
    return principal


class PointsServicer(points_pb2_grpc.PointsServiceServicer):
    def __init__(self, p: Platform) -> None:
        self.p = p

    async def RegisterChannel(self, request: P.RegisterChannelRequest, context: Context) -> P.RegisterChannelResponse:
        principal = _channel_caller()

        async def work(conn: AsyncConnection) -> P.RegisterChannelResponse:
            made = await channels.register(
                conn, principal.partner_id, request.programme, request.unit_name, self.p.clock()
            )
            return P.RegisterChannelResponse(channel_id=made.partner_id, unit=made.unit)

        return await once(self.p, "RegisterChannel", request, P.RegisterChannelResponse, work)

    async def PublishRule(self, request: P.PublishRuleRequest, context: Context) -> P.PublishRuleResponse:
        principal = _channel_caller()

        async def work(conn: AsyncConnection) -> P.PublishRuleResponse:
            now = self.p.clock()
            await channels.known(conn, principal.partner_id, "rule.channel_id")
            made = await channels.publish(conn, wire.rule_from(request.rule, principal.partner_id, now), now)
            return P.PublishRuleResponse(rule=wire.rule(made))

        return await once(self.p, "PublishRule", request, P.PublishRuleResponse, work)

    async def ListRules(self, request: P.ListRulesRequest, context: Context) -> P.ListRulesResponse:
        async with self.p.db.read() as conn:
            await channels.known(conn, request.channel_id, "channel_id")
            found = await channels.history(conn, request.channel_id)
        return P.ListRulesResponse(rules=[wire.rule(r) for r in found])

    async def RegisterMember(self, request: P.RegisterMemberRequest, context: Context) -> P.RegisterMemberResponse:
        principal = current_principal.get()

        async def work(conn: AsyncConnection) -> P.RegisterMemberResponse:
            made = await members.register(conn, principal, request.display_name, self.p.clock())
            return P.RegisterMemberResponse(member=wire.member(made))

        return await once(self.p, "RegisterMember", request, P.RegisterMemberResponse, work)

    async def LinkAccount(self, request: P.LinkAccountRequest, context: Context) -> P.LinkAccountResponse:
        principal = current_principal.get()

        async def work(conn: AsyncConnection) -> P.LinkAccountResponse:
            await members.get(conn, request.member_id, principal)
            made = await members.link(
                conn, principal, request.member_id, request.channel_id, request.account_ref, self.p.clock()
            )
            return P.LinkAccountResponse(link=wire.link(made))

        return await once(self.p, "LinkAccount", request, P.LinkAccountResponse, work)

    async def ConfirmLink(self, request: P.ConfirmLinkRequest, context: Context) -> P.ConfirmLinkResponse:
        principal = _channel_caller()

        async def work(conn: AsyncConnection) -> P.ConfirmLinkResponse:
            made = await members.confirm(conn, principal, request.member_id, request.account_ref, self.p.clock())
            return P.ConfirmLinkResponse(link=wire.link(made))

        return await once(self.p, "ConfirmLink", request, P.ConfirmLinkResponse, work)

    async def GetMember(self, request: P.GetMemberRequest, context: Context) -> P.GetMemberResponse:
        principal = current_principal.get()
        async with self.p.db.read() as conn:
            found = await members.get(conn, request.member_id, principal)
            links = await members.links_of(conn, principal, found.member_id)
            wallet_id = members.wallet(found.member_id)
            balance = (await ledger.balances(conn, [wallet_id]))[wallet_id]
        return P.GetMemberResponse(
            member=wire.member(found), links=[wire.link(k) for k in links], wallet=wire.wallet(balance)
        )

    async def QuoteExchange(self, request: P.QuoteExchangeRequest, context: Context) -> P.QuoteExchangeResponse:
        asked = wire.request_from(request.terms)
        async with self.p.db.read() as conn:
            priced = await exchanges.admissible(conn, current_principal.get(), asked, self.p.clock())
        return P.QuoteExchangeResponse(
            figures=wire.figures_of(priced),
            quote_token=self.p.quotes.issue(priced),
            valid_until=to_timestamp(priced.valid_until_us),
        )

    async def StartExchange(self, request: P.StartExchangeRequest, context: Context) -> P.StartExchangeResponse:
        principal = current_principal.get()
        asked = wire.request_from(request.terms)

        async def work(conn: AsyncConnection) -> P.StartExchangeResponse:
            now = self.p.clock()
            versions = self.p.quotes.versions(request.quote_token, asked, now) if request.quote_token else None
            made = await exchanges.start(conn, principal, asked, now, versions=versions)
            return P.StartExchangeResponse(exchange=wire.exchange(made))

        response = await once(self.p, "StartExchange", request, P.StartExchangeResponse, work)
        self._changed(response.exchange)
        return response

    async def GetExchange(self, request: P.GetExchangeRequest, context: Context) -> P.GetExchangeResponse:
        async with self.p.db.read() as conn:
            found = await exchanges.get(conn, current_principal.get(), request.exchange_id)
        return P.GetExchangeResponse(exchange=wire.exchange(found))

    async def ResolveExchange(self, request: P.ResolveExchangeRequest, context: Context) -> P.ResolveExchangeResponse:
        principal = _channel_caller()
        expired: list[bool] = []

        async def work(conn: AsyncConnection) -> P.ResolveExchangeResponse:
            made = await exchanges.resolve(conn, principal, request.exchange_id, request.accept, self.p.clock())
            expired.append(made.expired)
            return P.ResolveExchangeResponse(exchange=wire.exchange(made))

        response = await once(self.p, "ResolveExchange", request, P.ResolveExchangeResponse, work)
        self._changed(response.exchange)
        if expired and expired[0]:
            raise Refusal(
                Reason.TRANSFER_EXPIRED,
                f"your side of exchange {request.exchange_id} timed out before you answered, and was voided",
            )
        return response

    async def ListInstructions(
        self, request: P.ListInstructionsRequest, context: Context
    ) -> P.ListInstructionsResponse:
        principal = _channel_caller()
        async with self.p.db.read() as conn:
            found = (await exchanges.instructions(conn, [principal.partner_id]))[principal.partner_id]
        return P.ListInstructionsResponse(instructions=[wire.instruction(i) for i in found])

    async def WatchInstructions(
        self, request: P.WatchInstructionsRequest, context: Context
    ) -> AsyncIterator[P.WatchInstructionsResponse]:
        """Each waiting side once per stream (a new stream sends again what is still waiting)."""
        principal = _channel_caller()
        async with self.p.db.read() as conn:
            await channels.known(conn, principal.partner_id, "channel_id")
        sent: set[str] = set()
        async with self.p.instructions.watch(principal.partner_id) as watch:
            async for waiting in watch:
                for item in waiting:
                    if item.exchange_id not in sent:
                        yield P.WatchInstructionsResponse(instruction=wire.instruction(item))
                sent = {item.exchange_id for item in waiting}

    async def ListWalletHistory(
        self, request: P.ListWalletHistoryRequest, context: Context
    ) -> P.ListWalletHistoryResponse:
        principal = current_principal.get()
        page = next_page(
            self.p.pages, f"wallet:{principal.partner_id}:{request.member_id}", request.page_size, request.page_token
        )
        async with self.p.db.read() as conn:
            found = await members.get(conn, request.member_id, principal)
            wallet_id = members.wallet(found.member_id)
            rows = await ledger.history(conn, wallet_id, page.limit + 1, page.after)
        shown, token = page.cut(rows, lambda t: (t.seq, t.transfer_id))
        return P.ListWalletHistoryResponse(
            entries=[wire.wallet_entry(t, wallet_id) for t in shown], next_page_token=token
        )

    def _changed(self, exchange: P.Exchange) -> None:
        """Wake the watchers of the channel whose side now waits (and of the other, whose side ended)."""
        for channel_id in (exchange.terms.from_channel, exchange.terms.to_channel):
            if channel_id:
                self.p.instructions.changed(channel_id)


SERVICE = Service(
    descriptor=P.DESCRIPTOR.services_by_name["PointsService"],
    servicer=PointsServicer,
    add_to_server=points_pb2_grpc.add_PointsServiceServicer_to_server,
    stub=points_pb2_grpc.PointsServiceStub,
    client_name="points",
    access=PARTNERS,
)
