"""A channel's statement for a period: its content (docs/clearing.md), its id, and the platform's
statement key that signs it.

Nothing in a statement depends on when or by which process it was made, so clearing a period again,
or resuming a run that was killed, gives the same bytes and the same hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from clearpoint.formats import statements as form
from clearpoint.platform.clearing.schedule import rfc3339
from clearpoint.platform.clearing.settlement import Adjustment, ChannelSettlement, Line, NetPosition, Total
from clearpoint.platform.exchange.channels import Channel
from clearpoint.platform.exchange.rules import plain
from clearpoint.platform.keys.master_key import MasterKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class PeriodInfo:
    period_id: str
    number: int
    start_us: int
    end_us: int


@dataclass(frozen=True, slots=True)
class Statement:
    statement_id: str
    period_id: str
    period_number: int
    channel_id: str
    content: bytes
    content_sha256: bytes
    signature: bytes
    key_id: str


class StatementKey:
    """The platform's Ed25519 key for statements: derived from the master key (so every process that
    shares the master key signs with it, and it signs nothing else)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_key = private.public_key().public_bytes_raw()
        self.key_id = form.key_id(self.public_key)

    @classmethod
    def derived(cls, master: MasterKey) -> StatementKey:
        return cls(Ed25519PrivateKey.from_private_bytes(master.derive(b"clearing-statements")))

    def __repr__(self) -> str:
        return f"StatementKey(key_id={self.key_id!r}, private_key=<hidden>)"

    def sign(self, content: bytes) -> bytes:
        return form.sign(self._private, content)


def period_id(end_us: int) -> str:
    """A period is named by its end, which no other period shares: prd_20261203T100000Z."""
    return "prd_" + rfc3339(end_us).replace("-", "").replace(":", "").replace(".", "")


def statement_id(period: str, channel_id: str) -> str:
    return "stm_" + hashlib.sha256(f"{period}\n{channel_id}".encode()).hexdigest()[:16]


def make(period: PeriodInfo, channel: Channel, settled: ChannelSettlement, key: StatementKey) -> Statement:
    made_id = statement_id(period.period_id, channel.partner_id)
    content = form.canonical(
        {
            "format": form.FORMAT,
            "statement_id": made_id,
            "key_id": key.key_id,
            "channel": {
                "id": channel.partner_id,
                "programme": channel.programme,
                "unit": channel.unit,
                "unit_name": channel.unit_name,
            },
            "period": {
                "id": period.period_id,
                "number": str(period.number),
                "start": rfc3339(period.start_us),
                "end": rfc3339(period.end_us),
            },
            "lines": [_line(x) for x in settled.lines],
            "adjustments": [_adjustment(a) for a in settled.adjustments],
            "totals": [_total(t) for t in settled.totals],
        }
    )
    return Statement(
        made_id,
        period.period_id,
        period.number,
        channel.partner_id,
        content,
        form.content_hash(content),
        key.sign(content),
        key.key_id,
    )


def summary(period: PeriodInfo, positions: list[NetPosition]) -> str:
    """The period's multilateral net, per currency, as canonical JSON (kept with the period)."""
    return form.canonical(
        {
            "period": period.period_id,
            "currencies": [
                {
                    "currency": p.currency,
                    "channels": [{"channel": c, "net_to_channel": str(net)} for c, net in p.nets],
                    "platform": str(p.platform),
                }
                for p in positions
            ],
        }
    ).decode()


def _line(x: Line) -> dict[str, Any]:
    return {
        "direction": x.direction.value,
        "rule_version": str(x.rule_version),
        "points": str(x.points),
        "transfers": str(x.transfers),
        "price": plain(x.price),
        "currency": x.currency,
        "exact_amount": plain(x.exact),
        "amount": str(x.amount),
    }


def _adjustment(a: Adjustment) -> dict[str, Any]:
    c = a.correction
    return {
        "adjustment_id": c.adjustment_id,
        "corrects": {"statement_id": c.corrects_statement_id, "period_id": c.corrects_period_id},
        "reason": c.reason,
        **_line(a.line),
    }


def _total(t: Total) -> dict[str, Any]:
    return {
        "currency": t.currency,
        "owed_by_channel": str(t.owed_by_channel),
        "owed_to_channel": str(t.owed_to_channel),
        "net_to_channel": str(t.net_to_channel),
    }
