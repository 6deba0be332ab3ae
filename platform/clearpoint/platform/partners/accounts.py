"""Partners and operators: created with one API key, which is shown once and stored as a hash."""

from __future__ import annotations

from dataclasses import dataclass

from clearpoint.platform.core.errors import field_invalid
from clearpoint.platform.core.ids import new_id
from clearpoint.platform.core.principals import Role
from clearpoint.platform.partners import api_keys
from clearpoint.platform.partners.tables import partners
from sqlalchemy import insert, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class Partner:
    partner_id: str
    name: str
    role: Role
    created_us: int


def _partner(row: Row[tuple[str, str, str, int]]) -> Partner:
    return Partner(row.partner_id, row.name, Role(row.role), row.created_us)


def check_name(name: str) -> None:
    if not 1 <= len(name) <= 200 or not name.isprintable():
        raise field_invalid("name", "name must be 1 to 200 printable characters")


async def create(conn: AsyncConnection, name: str, role: Role, now_us: int) -> tuple[Partner, str]:
    """Insert a partner with one API key; returns it and the key (shown once, never kept in clear)."""
    check_name(name)
    if await conn.scalar(select(partners.c.partner_id).where(partners.c.name == name)):
        raise field_invalid("name", f"a partner named {name!r} exists already")
    partner = Partner(new_id("ptn"), name, role, now_us)
    await conn.execute(
        insert(partners).values(partner_id=partner.partner_id, name=name, role=role.value, created_us=now_us)
    )
    _, key = await api_keys.insert_key(conn, partner.partner_id, now_us)
    return partner, key


async def get(conn: AsyncConnection, partner_id: str) -> Partner | None:
    row = (await conn.execute(select(partners).where(partners.c.partner_id == partner_id))).first()
    return None if row is None else _partner(row)


async def list_all(conn: AsyncConnection) -> list[Partner]:
    rows = await conn.execute(select(partners).order_by(partners.c.created_us, partners.c.partner_id))
    return [_partner(r) for r in rows]
