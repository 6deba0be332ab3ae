"""Members of the platform and the links between a member and their accounts in channels' programmes.

A member has one platform-wide id and a wallet of platform points (a guarded ledger account). A
link says "this member's account in channel C is R"; it counts only once channel C vouches for it
(its own system knows the account is the member's): a link the channel makes itself is confirmed
at once, one made by anyone else waits for the channel's confirmation. A channel sees only its own
links, and another channel's member is, to it, no member at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clearpoint.platform.core.errors import Reason, Refusal, field_invalid
from clearpoint.platform.core.ids import new_id
from clearpoint.platform.core.principals import Principal
from clearpoint.platform.exchange import ledger
from clearpoint.platform.exchange.channels import PLATFORM_UNIT, ensure_platform_accounts, known
from clearpoint.platform.exchange.tables import member_links, members
from sqlalchemy import bindparam, exists, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

WALLET = "wallet"


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    display_name: str
    created_us: int


@dataclass(frozen=True, slots=True)
class Link:
    member_id: str
    channel_id: str
    account_ref: str
    confirmed: bool
    created_us: int
    confirmed_us: int | None


def _check(field: str, value: str, most: int) -> None:
    if not 1 <= len(value) <= most or not value.isprintable():
        raise field_invalid(field, f"{field} must be 1 to {most} printable characters")


async def register(conn: AsyncConnection, principal: Principal, display_name: str, now_us: int) -> Member:
    """A new member with an empty wallet of platform points."""
    _check("display_name", display_name, 100)
    await ensure_platform_accounts(conn, now_us)
    member = Member(new_id("mbr"), display_name, now_us)
    await conn.execute(
        insert(members).values(
            member_id=member.member_id,
            display_name=display_name,
            registered_by=principal.partner_id,
            created_us=now_us,
        )
    )
    await ledger.open_account(conn, PLATFORM_UNIT, member.member_id, WALLET, guarded=True, now_us=now_us)
    return member


_MEMBER = select(members).where(members.c.member_id == bindparam("m"))
_MEMBER_SEEN_BY = _MEMBER.where(
    or_(
        members.c.registered_by == bindparam("p"),
        exists().where(member_links.c.member_id == members.c.member_id, member_links.c.channel_id == bindparam("p")),
    )
)
_LINK = select(member_links).where(
    member_links.c.member_id == bindparam("m"), member_links.c.channel_id == bindparam("c")
)


async def get(conn: AsyncConnection, member_id: str, principal: Principal | None = None) -> Member:
    """The member, if the caller may see them: an operator sees every member; a partner, those it
    registered or that have a link (confirmed or not) to its programme. Others are MEMBER_UNKNOWN."""
    if principal is None or principal.is_operator:
        row = (await conn.execute(_MEMBER, {"m": member_id})).first()
    else:
        row = (await conn.execute(_MEMBER_SEEN_BY, {"m": member_id, "p": principal.partner_id})).first()
    if row is None:
        raise Refusal(Reason.MEMBER_UNKNOWN, f"no member {member_id}", field="member_id")
    return Member(row.member_id, row.display_name, row.created_us)


def wallet(member_id: str) -> str:
    """The member's platform-points account (every member has one from registration)."""
    return ledger.account_named(PLATFORM_UNIT, member_id, WALLET)


async def link(
    conn: AsyncConnection, principal: Principal, member_id: str, channel_id: str, account_ref: str, now_us: int
) -> Link:
    """Link a member to their account in a channel's programme; the channel's own word confirms it."""
    _check("account_ref", account_ref, 64)
    await get(conn, member_id)
    await known(conn, channel_id, "channel_id")
    vouched = principal.partner_id == channel_id
    existing = await _find(conn, member_id, channel_id)
    if existing is not None:
        if existing.account_ref != account_ref:
            raise field_invalid(
                "account_ref", f"member {member_id} is already linked to another account in {channel_id}"
            )
        if vouched and not existing.confirmed:
            return await confirm(conn, principal, member_id, account_ref, now_us)
        return existing
    taken = await conn.scalar(
        select(member_links.c.member_id).where(
            member_links.c.channel_id == channel_id, member_links.c.account_ref == account_ref
        )
    )
    if taken is not None:
        raise field_invalid("account_ref", f"account {account_ref!r} of {channel_id} is linked to another member")
    await conn.execute(
        insert(member_links).values(
            member_id=member_id,
            channel_id=channel_id,
            account_ref=account_ref,
            state="confirmed" if vouched else "pending",
            created_us=now_us,
            confirmed_us=now_us if vouched else None,
        )
    )
    return Link(member_id, channel_id, account_ref, vouched, now_us, now_us if vouched else None)


async def confirm(conn: AsyncConnection, principal: Principal, member_id: str, account_ref: str, now_us: int) -> Link:
    """The channel (the caller) vouches that `account_ref` in its programme is the member's."""
    found = await _find(conn, member_id, principal.partner_id)
    if found is None or found.account_ref != account_ref:
        raise Refusal(
            Reason.ACCOUNT_NOT_LINKED,
            f"no link of member {member_id} to account {account_ref!r} in your programme waits for you",
            field="account_ref",
        )
    if found.confirmed:
        return found
    await conn.execute(
        update(member_links)
        .where(member_links.c.member_id == member_id, member_links.c.channel_id == principal.partner_id)
        .values(state="confirmed", confirmed_us=now_us)
    )
    return Link(member_id, principal.partner_id, account_ref, True, found.created_us, now_us)


async def confirmed_link(conn: AsyncConnection, member_id: str, channel_id: str, field: str) -> Link:
    found = await _find(conn, member_id, channel_id)
    if found is None or not found.confirmed:
        state = "not linked" if found is None else "linked, but not yet confirmed by the channel"
        raise Refusal(
            Reason.ACCOUNT_NOT_LINKED, f"member {member_id}'s account in {channel_id} is {state}", field=field
        )
    return found


async def links_of(conn: AsyncConnection, principal: Principal, member_id: str) -> list[Link]:
    """A member's links as the caller may see them: a channel sees only its own."""
    query = select(member_links).where(member_links.c.member_id == member_id)
    if not principal.is_operator:
        query = query.where(member_links.c.channel_id == principal.partner_id)
    rows = await conn.execute(query.order_by(member_links.c.channel_id))
    return [_link(r) for r in rows]


async def _find(conn: AsyncConnection, member_id: str, channel_id: str) -> Link | None:
    row = (await conn.execute(_LINK, {"m": member_id, "c": channel_id})).first()
    return None if row is None else _link(row)


def _link(r: Row[Any]) -> Link:
    return Link(r.member_id, r.channel_id, r.account_ref, r.state == "confirmed", r.created_us, r.confirmed_us)
