"""The arithmetic of settlement, free of storage: a period's movements per channel, priced by the
rule version each used, totalled per currency and netted across channels.

Points that left a channel's programme (its members exchanged them away) are owed by the channel
to the platform at that channel's price; points that entered it are owed by the platform to the
channel. Each line (a channel, a direction, a rule version) is priced exactly and rounded once, to
the nearest minor unit, half to even; the exact value stands beside it in the statement. The
platform is the one counterparty of every channel, so per currency the channels' nets and the
platform's own line (its margin: fees, rounding, the spread between prices) sum to zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation
from enum import StrEnum


class Direction(StrEnum):
    OUT_OF_CHANNEL = "out_of_channel"  # the channel owes the platform
    INTO_CHANNEL = "into_channel"  # the platform owes the channel


@dataclass(frozen=True, slots=True)
class Movement:
    """A period's points of one channel in one direction at one rule version, from the ledger."""

    channel_id: str
    direction: Direction
    rule_version: int
    points: int
    transfers: int


@dataclass(frozen=True, slots=True)
class Correction:
    """An operator's correction of a closed period's statement, settled in the period it lands in:
    `points` more (or, negative, fewer) in `direction` than that statement counted."""

    adjustment_id: str
    channel_id: str
    corrects_statement_id: str
    corrects_period_id: str
    direction: Direction
    rule_version: int
    points: int
    reason: str


@dataclass(frozen=True, slots=True)
class Price:
    price: Decimal  # minor units of `currency` per point
    currency: str


@dataclass(frozen=True, slots=True)
class Line:
    direction: Direction
    rule_version: int
    points: int
    transfers: int
    price: Decimal
    currency: str
    exact: Decimal  # points times price
    amount: int  # exact, rounded to the nearest minor unit, half to even


@dataclass(frozen=True, slots=True)
class Adjustment:
    correction: Correction
    line: Line  # the correction priced as a line is (its points and amount may be negative)


@dataclass(frozen=True, slots=True)
class Total:
    currency: str
    owed_by_channel: int
    owed_to_channel: int

    @property
    def net_to_channel(self) -> int:
        """What the platform pays the channel (negative: what the channel pays the platform)."""
        return self.owed_to_channel - self.owed_by_channel


@dataclass(frozen=True, slots=True)
class ChannelSettlement:
    channel_id: str
    lines: tuple[Line, ...]
    adjustments: tuple[Adjustment, ...]
    totals: tuple[Total, ...]


@dataclass(frozen=True, slots=True)
class NetPosition:
    """One currency's multilateral net: each channel's net, and the platform's line that balances it."""

    currency: str
    nets: tuple[tuple[str, int], ...]  # (channel id, net to the channel), by channel id
    platform: int  # the platform's margin: minus the sum of the channels' nets


# Enough digits for any period's sum of points (below 2^63) times any price (7 digits and 6
# places), so the product is exact; an inexact one would raise rather than be rounded unseen.
_EXACT = Context(prec=40, traps=[Inexact, InvalidOperation])


def line(movement: Movement, price: Price) -> Line:
    exact = _EXACT.multiply(Decimal(movement.points), price.price)
    amount = int(exact.to_integral_value(rounding=ROUND_HALF_EVEN))
    return Line(
        movement.direction,
        movement.rule_version,
        movement.points,
        movement.transfers,
        price.price,
        price.currency,
        exact,
        amount,
    )


def settle(
    channel_ids: Iterable[str],
    movements: Iterable[Movement],
    prices: Mapping[tuple[str, int], Price],
    corrections: Iterable[Correction] = (),
) -> list[ChannelSettlement]:
    """Every channel's settlement, one for each of `channel_ids` (a channel that moved nothing has an
    empty one). `prices` holds each (channel, rule version) a movement or correction names."""
    by_channel: defaultdict[str, list[Movement]] = defaultdict(list)
    for m in movements:
        by_channel[m.channel_id].append(m)
    fixes: defaultdict[str, list[Correction]] = defaultdict(list)
    for c in corrections:
        fixes[c.channel_id].append(c)
    settled = []
    for channel_id in sorted(set(channel_ids)):
        moved = sorted(by_channel.pop(channel_id, []), key=lambda m: (m.direction.value, m.rule_version))
        lines = tuple(line(m, prices[(channel_id, m.rule_version)]) for m in moved)
        adjusted = tuple(
            Adjustment(
                c,
                line(
                    Movement(channel_id, c.direction, c.rule_version, c.points, 1), prices[(channel_id, c.rule_version)]
                ),
            )
            for c in sorted(fixes.pop(channel_id, []), key=lambda c: c.adjustment_id)
        )
        settled.append(ChannelSettlement(channel_id, lines, adjusted, _totals([*lines, *(a.line for a in adjusted)])))
    if by_channel or fixes:
        raise ValueError(f"movements of channels not being settled: {', '.join(sorted({*by_channel, *fixes}))}")
    return settled


def _totals(lines: Iterable[Line]) -> tuple[Total, ...]:
    by: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
    for x in lines:
        by[x.currency][x.direction is Direction.INTO_CHANNEL] += x.amount
    return tuple(Total(currency, owed_by, owed_to) for currency, (owed_by, owed_to) in sorted(by.items()))


def net_positions(settlements: Iterable[ChannelSettlement]) -> list[NetPosition]:
    """Per currency, who pays and who receives, with the platform's own line making the sum zero."""
    nets: defaultdict[str, list[tuple[str, int]]] = defaultdict(list)
    for s in settlements:
        for total in s.totals:
            nets[total.currency].append((s.channel_id, total.net_to_channel))
    return [
        NetPosition(currency, tuple(sorted(entries)), -sum(net for _, net in entries))
        for currency, entries in sorted(nets.items())
    ]
