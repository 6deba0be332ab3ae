"""A channel's published exchange rule, and the exact arithmetic of a quote (docs/points.md).

Rates and prices are exact decimals with at most six decimal places, never floats. A quote of X
points of channel A into channel B goes through platform points:

1. value in   = X x A.to_platform                        (exact, in platform points)
2. fee        = ceil(value in x A.fee_percent / 100)     (whole platform points, rounded up,
                                                          at most floor(value in))
3. platform   = floor(value in - fee)                    (whole platform points, rounded down)
   residue in = (value in - fee - platform) in micro platform points (exact, 0 to 999,999)
4. out        = floor(platform x B.from_platform)        (whole points of B, rounded down)
   residue out = (platform x B.from_platform - out) in micro points of B (exact)

Every rounding is down for what the member receives and up for the fee; the fractions are the
platform's, kept in its rounding accounts, so value is neither made nor lost, only written down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from clearpoint.platform.core.errors import field_invalid

PLACES = 6  # decimal places a rate or price may have
MICRO = 10**PLACES
MAX_RATE = Decimal(1_000_000)
MAX_FEE_PERCENT = Decimal(50)
MAX_POINTS = 10**12  # channel points in one exchange, at most


@dataclass(frozen=True, slots=True)
class Rule:
    """One version of a channel's rule. Rates are points of the other side per one point."""

    channel_id: str
    version: int
    effective_us: int
    to_platform: Decimal  # platform points for one channel point
    from_platform: Decimal  # channel points for one platform point
    fee_percent: Decimal  # of the platform value of points leaving the channel
    min_points: int  # channel points one exchange moves, at least
    max_points: int  # and at most
    daily_points: int  # channel points one member may move out of and into the channel a UTC day
    price: Decimal  # money (minor units of `currency`) per channel point, at which the channel settles
    currency: str


@dataclass(frozen=True, slots=True)
class Quote:
    """The exact result of moving `points_in` of one channel to another, before it is made."""

    points_in: int
    value_in: Decimal
    fee: int
    platform: int
    residue_in_micro: int
    points_out: int
    residue_out_micro: int
    rule_in: Rule | None  # None: from the member's platform points
    rule_out: Rule | None  # None: into the member's platform points


def decimal(text: str, field: str, *, places: int = PLACES, low: Decimal, high: Decimal) -> Decimal:
    """An exact decimal from its plain text ("0.25": ASCII digits, an optional point and at most
    `places` decimals; no sign, exponent, NaN or other digits), within [low, high]."""
    if not isinstance(text, str) or re.fullmatch(rf"[0-9]{{1,7}}(\.[0-9]{{1,{places}}})?", text) is None:
        raise field_invalid(
            field, f"{field} must be a plain decimal like 0.25, with at most {places} decimal places, not {text!r}"
        )
    value = Decimal(text)
    if not low <= value <= high:
        raise field_invalid(field, f"{field} must be from {low} to {high}")
    return value


def check_rule(rule: Rule) -> Rule:
    """Refuse (FIELD_INVALID, naming the field) a rule that could not be applied exactly."""
    for name, rate in (("to_platform", rule.to_platform), ("from_platform", rule.from_platform)):
        decimal(plain(rate), name, low=Decimal("0.000001"), high=MAX_RATE)
    decimal(plain(rule.fee_percent), "fee_percent", places=4, low=Decimal(0), high=MAX_FEE_PERCENT)
    decimal(plain(rule.price), "price", low=Decimal(0), high=MAX_RATE)
    if not 1 <= rule.min_points <= rule.max_points <= MAX_POINTS:
        raise field_invalid("max_points", f"limits must satisfy 1 <= min_points <= max_points <= {MAX_POINTS}")
    if not rule.min_points <= rule.daily_points <= 100 * MAX_POINTS:
        raise field_invalid("daily_points", "daily_points must be at least min_points")
    if not (len(rule.currency) == 3 and rule.currency.isascii() and rule.currency.isupper()):
        raise field_invalid("currency", "currency must be an ISO 4217 code such as EUR")
    return rule


def plain(value: Decimal) -> str:
    """A decimal's plain text (no exponent): what `decimal` reads back."""
    return format(value.normalize(), "f") if value else "0"


def quote(points_in: int, rule_in: Rule | None, rule_out: Rule | None) -> Quote:
    """The exact arithmetic of the module's docstring; limits are checked by the caller. Without
    `rule_in` the points in are platform points (no fee, nothing to round); without `rule_out` the
    platform points are what comes out."""
    if rule_in is None:
        value_in, fee, platform, residue_in = Decimal(points_in), 0, points_in, Decimal(0)
    else:
        value_in = points_in * rule_in.to_platform
        whole_in = int(value_in.to_integral_value(rounding=ROUND_FLOOR))
        fee = min(whole_in, int((value_in * rule_in.fee_percent / 100).to_integral_value(rounding=ROUND_CEILING)))
        net = value_in - fee
        platform = int(net.to_integral_value(rounding=ROUND_FLOOR))
        residue_in = (net - platform) * MICRO
    value_out = Decimal(platform) if rule_out is None else platform * rule_out.from_platform
    points_out = int(value_out.to_integral_value(rounding=ROUND_FLOOR))
    residue_out = (value_out - points_out) * MICRO
    if residue_in != int(residue_in) or residue_out != int(residue_out):  # six places in, six out
        raise AssertionError("a residue finer than a micro-point: the rule's places were not checked")
    return Quote(points_in, value_in, fee, platform, int(residue_in), points_out, int(residue_out), rule_in, rule_out)
