"""The points part of `clearpoint demo`: two partners' programmes, a member linking both, a quote
and an exchange, each channel's side done by a stand-in for its own points system.

Each stand-in is what a partner's integration does (docs/points.md): it consumes its instruction
stream (WatchInstructions), debits or credits the member's account in its own books, and answers
with ResolveExchange, accepting or refusing.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Say = Callable[[str], None]


def _rid() -> str:
    return secrets.token_hex(8)


@dataclass
class ProgrammeSystem:
    """A partner's own points system, kept in a dict, and its worker answering the platform."""

    name: str
    unit: str
    metadata: tuple[tuple[str, str], ...]
    books: dict[str, int]
    stub: Any = None
    channel_id: str = ""
    answered: list[str] = field(default_factory=list)

    async def work(self, say: Say) -> None:
        from clearpoint.v1 import points_pb2 as P

        stream = self.stub.WatchInstructions(P.WatchInstructionsRequest(), metadata=self.metadata)
        async for message in stream:
            todo = message.instruction
            debit = todo.kind == P.INSTRUCTION_KIND_DEBIT_MEMBER
            held = self.books.get(todo.account_ref)
            ok = held is not None and (not debit or held >= todo.points)
            if ok:
                self.books[todo.account_ref] = (held or 0) + (-todo.points if debit else todo.points)
            verb = "debits" if debit else "credits"
            outcome = "done" if ok else f"refused: the account holds only {held} {self.unit}"
            say(f"     {self.name} | {verb} {todo.account_ref} {todo.points} {self.unit}: {outcome}")
            await self.stub.ResolveExchange(
                P.ResolveExchangeRequest(request_id=_rid(), exchange_id=todo.exchange_id, accept=ok),
                metadata=self.metadata,
            )
            self.answered.append(todo.exchange_id)


async def walkthrough(target: str, op: tuple[tuple[str, str], ...], say: Say, first_step: int) -> None:
    import grpc
    from clearpoint.v1 import partners_pb2, partners_pb2_grpc, points_pb2_grpc
    from clearpoint.v1 import points_pb2 as P

    n = first_step
    async with grpc.aio.insecure_channel(target) as channel:
        points = points_pb2_grpc.PointsServiceStub(channel)
        partners = partners_pb2_grpc.PartnerServiceStub(channel)
        systems = []
        for name, programme, unit, account, held, rule in (
            (
                "Alpha Air",
                "Alpha Miles",
                "miles",
                "A-1001",
                5000,
                P.Rule(to_platform="0.25", from_platform="4", fee_percent="1.5"),
            ),
            ("Beta Books", "Beta Stars", "stars", "B-77", 120, P.Rule(to_platform="0.3", from_platform="3.333333")),
        ):
            made = await partners.CreatePartner(
                partners_pb2.CreatePartnerRequest(request_id=_rid(), name=name), metadata=op
            )
            system = ProgrammeSystem(
                name, unit, (("x-api-key", made.api_key),), {account: held}, points, made.partner.partner_id
            )
            await points.RegisterChannel(
                P.RegisterChannelRequest(request_id=_rid(), programme=programme, unit_name=unit),
                metadata=system.metadata,
            )
            rule.MergeFrom(
                P.Rule(min_points=1, max_points=100_000, daily_points=1_000_000, price="0.8", currency="EUR")
            )
            await points.PublishRule(P.PublishRuleRequest(request_id=_rid(), rule=rule), metadata=system.metadata)
            systems.append(system)
        alpha, beta = systems
        say("")
        say("Points, between two partners' programmes:")
        say(
            f"{n}. {alpha.name} runs Alpha Miles (1 mile = 0.25 platform points, 1.5 % fee) and {beta.name} Beta Stars "
            "(1 platform point = 3.333333 stars); each published its rule on the platform."
        )
        member = (
            await points.RegisterMember(P.RegisterMemberRequest(request_id=_rid(), display_name="Ada"), metadata=op)
        ).member
        for system, account in ((alpha, "A-1001"), (beta, "B-77")):
            await points.LinkAccount(
                P.LinkAccountRequest(
                    request_id=_rid(), member_id=member.member_id, channel_id=system.channel_id, account_ref=account
                ),
                metadata=op,
            )
            await points.ConfirmLink(
                P.ConfirmLinkRequest(request_id=_rid(), member_id=member.member_id, account_ref=account),
                metadata=system.metadata,
            )
        say(
            f"{n + 1}. Member Ada registered ({member.member_id}) and linked Alpha account A-1001 and Beta account "
            "B-77; each programme confirmed its own."
        )

        async def balances() -> str:
            got = await points.GetMember(P.GetMemberRequest(member_id=member.member_id), metadata=op)
            return (
                f"Alpha {alpha.books['A-1001']} miles, Beta {beta.books['B-77']} stars, "
                f"platform {got.wallet.posted} points"
            )

        say(f"{n + 2}. Balances before: {await balances()}.")
        workers = [asyncio.create_task(s.work(say)) for s in systems]
        try:
            terms = P.ExchangeTerms(
                member_id=member.member_id, from_channel=alpha.channel_id, to_channel=beta.channel_id, points=1000
            )
            quoted = await points.QuoteExchange(P.QuoteExchangeRequest(terms=terms), metadata=op)
            f = quoted.figures
            say(
                f"{n + 3}. Quote for 1000 miles into stars: worth {f.value_in} platform points, fee {f.fee}, "
                f"{f.platform_points} passed on, {f.points_out} stars "
                f"({f.residue_out_micro / 1e6:.6f} of a star rounded off, kept in the platform's rounding account)."
            )
            started = await points.StartExchange(
                P.StartExchangeRequest(request_id=_rid(), terms=terms, quote_token=quoted.quote_token), metadata=op
            )
            exchange = await _settled(points, op, started.exchange.exchange_id)
            say(
                f"{n + 4}. Exchange {exchange.exchange_id}: {P.ExchangeState.Name(exchange.state)}; Alpha debited, "
                "then Beta credited, each a two-phase transfer its programme resolved."
            )
            say(f"{n + 5}. Balances after: {await balances()}.")
            terms.points = 9000
            tried = await points.StartExchange(P.StartExchangeRequest(request_id=_rid(), terms=terms), metadata=op)
            failed = await _settled(points, op, tried.exchange.exchange_id)
            say(
                f"{n + 6}. 9000 more miles: {P.ExchangeState.Name(failed.state)}; Alpha's system refused the debit, "
                f"nothing moved: {await balances()}."
            )
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)


async def _settled(points: Any, op: tuple[tuple[str, str], ...], exchange_id: str) -> Any:
    """The exchange once neither side waits any more (the stand-ins answer within milliseconds)."""
    from clearpoint.v1 import points_pb2 as P

    waiting = (P.EXCHANGE_STATE_PENDING_OUT, P.EXCHANGE_STATE_PENDING_IN)
    for _ in range(200):
        got = (await points.GetExchange(P.GetExchangeRequest(exchange_id=exchange_id), metadata=op)).exchange
        if got.state not in waiting:
            return got
        await asyncio.sleep(0.05)
    raise TimeoutError(f"exchange {exchange_id} still waits for a channel")
