"""Issuing vouchers: rows for the uses a campaign allows, and codes signed with the active issuer key.

Codes are bearer tokens and are not kept at rest; Ed25519 is deterministic, so a replayed issue
signs the same vouchers again and hands out the very same codes.
"""

from __future__ import annotations

import secrets

from clearpoint.formats import voucher_codes
from clearpoint.platform.campaigns.records import Campaign
from clearpoint.platform.campaigns.tables import campaigns, vouchers
from clearpoint.platform.core import ids
from clearpoint.platform.core.clock import SECOND_US
from clearpoint.platform.core.errors import field_invalid
from clearpoint.platform.keys.keystore import Signer
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

MAX_ISSUE = 10_000


def check_count(count: int) -> None:
    if not 1 <= count <= MAX_ISSUE:
        raise field_invalid("count", f"count must be 1 to {MAX_ISSUE}")


def sign_code(campaign: Campaign, voucher_id: str, signer: Signer) -> str:
    """A voucher's code; Ed25519 is deterministic, so signing again gives the same code."""
    spec = campaign.spec
    claims = voucher_codes.VoucherClaims(
        voucher_id=ids.to_bytes("vch", voucher_id),
        campaign_id=ids.to_bytes("cmp", campaign.campaign_id),
        not_before=spec.valid_from_us // SECOND_US,
        expires=-(-spec.valid_until_us // SECOND_US),
    )
    return voucher_codes.encode_code(claims, bytes.fromhex(signer.kid), signer.private_key)


async def issue(
    conn: AsyncConnection, campaign: Campaign, count: int, signer: Signer, now_us: int
) -> list[tuple[str, str]]:
    """Create `count` vouchers and sign their codes; returns (voucher id, code) in issue order."""
    check_count(count)
    spec = campaign.spec
    issued: list[tuple[str, str]] = []
    rows = []
    for _ in range(count):
        voucher_id = ids.from_bytes("vch", secrets.token_bytes(ids.VOUCHER_BYTES))
        issued.append((voucher_id, sign_code(campaign, voucher_id, signer)))
        rows.append(
            {
                "voucher_id": voucher_id,
                "campaign_id": campaign.campaign_id,
                "kid": signer.kid,
                "uses_allowed": spec.uses_per_voucher,
                "issued_us": now_us,
            }
        )
    await conn.execute(insert(vouchers), rows)
    await conn.execute(
        update(campaigns)
        .where(campaigns.c.campaign_id == campaign.campaign_id)
        .values(issued=campaigns.c.issued + count)
    )
    return issued
