"""Channels' rules, members, links, exchanges and instructions as clearpoint.v1 messages, and back."""

from __future__ import annotations

from decimal import Decimal

from clearpoint.platform.core.errors import field_invalid
from clearpoint.platform.edge import from_timestamp, to_timestamp
from clearpoint.platform.exchange import ledger
from clearpoint.platform.exchange.exchanges import Exchange, Instruction, Priced, Request, State
from clearpoint.platform.exchange.members import Link, Member
from clearpoint.platform.exchange.rules import MAX_FEE_PERCENT, MAX_RATE, MICRO, Rule, decimal, plain
from clearpoint.v1 import points_pb2

P = points_pb2
STATES = {
    State.PENDING_OUT: P.EXCHANGE_STATE_PENDING_OUT,
    State.PENDING_IN: P.EXCHANGE_STATE_PENDING_IN,
    State.COMPLETED: P.EXCHANGE_STATE_COMPLETED,
    State.FAILED: P.EXCHANGE_STATE_FAILED,
    State.HELD: P.EXCHANGE_STATE_HELD,
}


def rule(r: Rule) -> P.Rule:
    return P.Rule(
        channel_id=r.channel_id,
        version=r.version,
        effective_time=to_timestamp(r.effective_us),
        to_platform=plain(r.to_platform),
        from_platform=plain(r.from_platform),
        fee_percent=plain(r.fee_percent),
        min_points=r.min_points,
        max_points=r.max_points,
        daily_points=r.daily_points,
        price=plain(r.price),
        currency=r.currency,
    )


def rule_from(message: P.Rule, channel_id: str, now_us: int) -> Rule:
    """A rule as a channel publishes it; decimals read exactly from their text, by field name."""
    low = Decimal("0.000001")
    return Rule(
        channel_id=channel_id,
        version=0,
        effective_us=from_timestamp(message.effective_time) if message.HasField("effective_time") else now_us,
        to_platform=decimal(message.to_platform, "rule.to_platform", low=low, high=MAX_RATE),
        from_platform=decimal(message.from_platform, "rule.from_platform", low=low, high=MAX_RATE),
        fee_percent=decimal(
            message.fee_percent or "0", "rule.fee_percent", places=4, low=Decimal(0), high=MAX_FEE_PERCENT
        ),
        min_points=message.min_points,
        max_points=message.max_points,
        daily_points=message.daily_points,
        price=decimal(message.price, "rule.price", low=Decimal(0), high=MAX_RATE),
        currency=message.currency,
    )


def member(m: Member) -> P.Member:
    return P.Member(member_id=m.member_id, display_name=m.display_name, create_time=to_timestamp(m.created_us))


def link(k: Link) -> P.Link:
    return P.Link(
        member_id=k.member_id,
        channel_id=k.channel_id,
        account_ref=k.account_ref,
        confirmed=k.confirmed,
        create_time=to_timestamp(k.created_us),
    )


def wallet(b: ledger.Balance) -> P.Wallet:
    return P.Wallet(posted=b.posted, available=b.available, incoming=b.credits_pending)


def request_from(terms: P.ExchangeTerms) -> Request:
    if not terms.member_id:
        raise field_invalid("terms.member_id", "terms.member_id is required")
    return Request(terms.member_id, terms.from_channel or None, terms.to_channel or None, terms.points)


def terms(member_id: str, from_channel: str | None, to_channel: str | None, points: int) -> P.ExchangeTerms:
    return P.ExchangeTerms(
        member_id=member_id, from_channel=from_channel or "", to_channel=to_channel or "", points=points
    )


def figures_of(priced: Priced) -> P.ExchangeFigures:
    q = priced.quote
    return P.ExchangeFigures(
        points_in=q.points_in,
        value_in=plain(q.value_in),
        fee=q.fee,
        platform_points=q.platform,
        residue_in_micro=q.residue_in_micro,
        points_out=q.points_out,
        residue_out_micro=q.residue_out_micro,
        rule_in_version=priced.rule_in.version if priced.rule_in else 0,
        rule_out_version=priced.rule_out.version if priced.rule_out else 0,
    )


def exchange(e: Exchange) -> P.Exchange:
    return P.Exchange(
        exchange_id=e.exchange_id,
        terms=terms(e.member_id, e.from_channel, e.to_channel, e.points_in),
        figures=P.ExchangeFigures(
            points_in=e.points_in,
            # Exact: what went in is the fee, the platform points and the fraction rounded off.
            value_in=plain(Decimal(e.fee + e.platform_points) + Decimal(e.residue_in_micro) / MICRO),
            fee=e.fee,
            platform_points=e.platform_points,
            residue_in_micro=e.residue_in_micro,
            points_out=e.points_out,
            residue_out_micro=e.residue_out_micro,
            rule_in_version=e.rule_in_version or 0,
            rule_out_version=e.rule_out_version or 0,
        ),
        state=STATES[e.state],
        expire_time=to_timestamp(e.timeout_us) if e.state in (State.PENDING_OUT, State.PENDING_IN) else None,
        create_time=to_timestamp(e.created_us),
        update_time=to_timestamp(e.updated_us),
    )


def instruction(i: Instruction) -> P.Instruction:
    return P.Instruction(
        exchange_id=i.exchange_id,
        kind=P.INSTRUCTION_KIND_DEBIT_MEMBER if i.debit else P.INSTRUCTION_KIND_CREDIT_MEMBER,
        account_ref=i.account_ref,
        member_id=i.member_id,
        points=i.points,
        expire_time=to_timestamp(i.expire_us),
    )


def wallet_entry(t: ledger.Transfer, wallet_id: str) -> P.WalletEntry:
    return P.WalletEntry(
        transfer_id=t.transfer_id,
        amount=t.amount if t.credit_account == wallet_id else -t.amount,
        kind=t.kind.value,
        code=t.code,
        create_time=to_timestamp(t.created_us),
    )
