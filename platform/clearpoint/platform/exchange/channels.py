"""Channels (partners with a points programme) and the versioned rules they publish.

A channel's points are a unit of their own in the ledger, with two accounts: the channel's
(`channel`, points leaving or entering the channel's own system) and the platform's position in
them (`hub`). A rule version takes effect at its `effective_us`, never before it is published;
every exchange records the versions it used, so a later rule never changes an earlier result.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from clearpoint.platform.core.errors import Reason, Refusal, field_invalid
from clearpoint.platform.exchange import ledger
from clearpoint.platform.exchange.rules import Rule, check_rule, plain
from clearpoint.platform.exchange.tables import channel_rules, channels
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

PLATFORM = "platform"  # the owner of the platform's own accounts
PLATFORM_UNIT = "PTS"  # platform points
MICRO_SUFFIX = ".u"  # a unit's micro-points, where rounding residues are kept


@dataclass(frozen=True, slots=True)
class Channel:
    partner_id: str
    unit: str
    programme: str
    unit_name: str
    created_us: int


def unit_of(partner_id: str) -> str:
    return "pts_" + partner_id.removeprefix("ptn_")


def _check_text(field: str, value: str, most: int) -> None:
    if not 1 <= len(value) <= most or not value.isprintable():
        raise field_invalid(field, f"{field} must be 1 to {most} printable characters")


async def ensure_platform_accounts(conn: AsyncConnection, now_us: int) -> None:
    """Platform points and the platform's own accounts in them (made once)."""
    await ledger.add_unit(conn, PLATFORM_UNIT, "platform points", now_us)
    await ledger.add_unit(conn, PLATFORM_UNIT + MICRO_SUFFIX, "platform micro-points (rounding)", now_us)
    for unit, purpose in (
        (PLATFORM_UNIT, "treasury"),
        (PLATFORM_UNIT, "fees"),
        (PLATFORM_UNIT + MICRO_SUFFIX, "residue-src"),
        (PLATFORM_UNIT + MICRO_SUFFIX, "rounding"),
    ):
        await ledger.open_account(conn, unit, PLATFORM, purpose, guarded=False, now_us=now_us)


async def register(conn: AsyncConnection, partner_id: str, programme: str, unit_name: str, now_us: int) -> Channel:
    """Make a partner a channel (a second call with the same names returns it unchanged)."""
    _check_text("programme", programme, 100)
    _check_text("unit_name", unit_name, 32)
    found = await get(conn, partner_id)
    if found is not None:
        if (found.programme, found.unit_name) != (programme, unit_name):
            raise field_invalid("programme", f"partner {partner_id} already runs {found.programme!r} as a channel")
        return found
    await ensure_platform_accounts(conn, now_us)
    unit = unit_of(partner_id)
    await ledger.add_unit(conn, unit, unit_name, now_us)
    await ledger.add_unit(conn, unit + MICRO_SUFFIX, f"{unit_name} micro-points (rounding)", now_us)
    await conn.execute(
        insert(channels).values(
            partner_id=partner_id, unit=unit, programme=programme, unit_name=unit_name, created_us=now_us
        )
    )
    await ledger.open_account(conn, unit, partner_id, "channel", guarded=False, now_us=now_us)
    await ledger.open_account(conn, unit, PLATFORM, "hub", guarded=False, now_us=now_us)
    await ledger.open_account(conn, unit + MICRO_SUFFIX, PLATFORM, "residue-src", guarded=False, now_us=now_us)
    await ledger.open_account(conn, unit + MICRO_SUFFIX, PLATFORM, "rounding", guarded=False, now_us=now_us)
    return Channel(partner_id, unit, programme, unit_name, now_us)


_CHANNEL = select(channels).where(channels.c.partner_id == bindparam("p"))
_IN_FORCE = (
    select(channel_rules)
    .where(channel_rules.c.channel_id == bindparam("c"), channel_rules.c.effective_us <= bindparam("at"))
    .order_by(channel_rules.c.effective_us.desc(), channel_rules.c.version.desc())
    .limit(1)
)


async def get(conn: AsyncConnection, partner_id: str) -> Channel | None:
    row = (await conn.execute(_CHANNEL, {"p": partner_id})).first()
    return None if row is None else Channel(row.partner_id, row.unit, row.programme, row.unit_name, row.created_us)


async def registered_before(conn: AsyncConnection, before_us: int) -> list[Channel]:
    """Every channel registered before `before_us`, by partner id."""
    rows = await conn.execute(select(channels).where(channels.c.created_us < before_us).order_by(channels.c.partner_id))
    return [Channel(r.partner_id, r.unit, r.programme, r.unit_name, r.created_us) for r in rows]


async def first_registered_us(conn: AsyncConnection) -> int | None:
    """When the first channel was registered (None: no channel yet)."""
    found: int | None = await conn.scalar(select(func.min(channels.c.created_us)))
    return found


async def known(conn: AsyncConnection, partner_id: str, field: str) -> Channel:
    found = await get(conn, partner_id)
    if found is None:
        raise Refusal(Reason.CHANNEL_UNKNOWN, f"{partner_id} runs no points programme here", field=field)
    return found


async def publish(conn: AsyncConnection, rule: Rule, now_us: int) -> Rule:
    """Add the next version of a channel's rule; it takes effect at rule.effective_us (not before now)."""
    check_rule(rule)
    if rule.effective_us < now_us:
        raise field_invalid("effective_time", "a rule takes effect now or later, never in the past")
    version = (
        await conn.scalar(
            select(func.coalesce(func.max(channel_rules.c.version), 0)).where(
                channel_rules.c.channel_id == rule.channel_id
            )
        )
        or 0
    ) + 1
    made = dataclasses.replace(rule, version=version)
    await conn.execute(insert(channel_rules).values({**_row(made), "created_us": now_us}))
    return made


async def in_force(conn: AsyncConnection, channel_id: str, at_us: int, field: str) -> Rule:
    """The channel's rule at `at_us`: the latest version already effective."""
    row = (await conn.execute(_IN_FORCE, {"c": channel_id, "at": at_us})).first()
    if row is None:
        raise Refusal(Reason.RULE_NOT_IN_FORCE, f"channel {channel_id} has no rule in force yet", field=field)
    return _rule(row)


async def version(conn: AsyncConnection, channel_id: str, number: int) -> Rule | None:
    row = (
        await conn.execute(
            select(channel_rules).where(channel_rules.c.channel_id == channel_id, channel_rules.c.version == number)
        )
    ).first()
    return None if row is None else _rule(row)


async def history(conn: AsyncConnection, channel_id: str) -> list[Rule]:
    rows = await conn.execute(
        select(channel_rules).where(channel_rules.c.channel_id == channel_id).order_by(channel_rules.c.version)
    )
    return [_rule(r) for r in rows]


def _fields(rule: Rule) -> dict[str, object]:
    return {name: getattr(rule, name) for name in Rule.__slots__}


def _row(rule: Rule) -> dict[str, object]:
    fields = _fields(rule)
    for name in ("to_platform", "from_platform", "fee_percent", "price"):
        fields[name] = plain(getattr(rule, name))
    return fields


def _rule(row: Row[Any]) -> Rule:
    return Rule(
        channel_id=row.channel_id,
        version=row.version,
        effective_us=row.effective_us,
        to_platform=Decimal(row.to_platform),
        from_platform=Decimal(row.from_platform),
        fee_percent=Decimal(row.fee_percent),
        min_points=row.min_points,
        max_points=row.max_points,
        daily_points=row.daily_points,
        price=Decimal(row.price),
        currency=row.currency,
    )
