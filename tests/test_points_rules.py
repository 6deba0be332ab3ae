"""Exchange rules: exact decimals in, and quotes against hand-computed cases (docs/points.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.exchange.rules import MICRO, Rule, check_rule, decimal, quote
from hypothesis import given
from hypothesis import strategies as st


def rule(to_platform: str = "1", from_platform: str = "1", fee: str = "0", **kw: object) -> Rule:
    fields: dict[str, object] = dict(
        channel_id="ptn_000000000001",
        version=1,
        effective_us=0,
        to_platform=Decimal(to_platform),
        from_platform=Decimal(from_platform),
        fee_percent=Decimal(fee),
        min_points=1,
        max_points=10**9,
        daily_points=10**10,
        price=Decimal("0.35"),
        currency="EUR",
    )
    fields.update(kw)
    return Rule(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("points", "a", "b", "expected"),
    [
        # 1000 x 0.25 = 250; fee ceil(3.75) = 4; 246 platform points; 246 x 3.333333 = 819.999918
        (1000, rule("0.25", fee="1.5"), rule(from_platform="3.333333"), (250, 4, 246, 0, 819, 999_918)),
        # 1003 x 0.37 = 371.11; fee ceil(7.4222) = 8; 363.11 -> 363 (0.11 kept); 363 x 1.5 = 544.5
        (1003, rule("0.37", fee="2"), rule(from_platform="1.5"), (Decimal("371.11"), 8, 363, 110_000, 544, 500_000)),
        # a fee never takes more than the whole points there are: 0.3 in, no fee, nothing out
        (1, rule("0.3", fee="50"), rule(), (Decimal("0.3"), 0, 0, 300_000, 0, 0)),
        # no fee, whole rates: nothing to round
        (7, rule("2"), rule(from_platform="5"), (14, 0, 14, 0, 70, 0)),
        # the smallest rate on the biggest amount
        (10**12, rule("0.000001"), rule(from_platform="0.000001"), (1_000_000, 0, 1_000_000, 0, 1, 0)),
    ],
)
def test_quotes_against_hand_computed_cases(points: int, a: Rule, b: Rule, expected: tuple[object, ...]) -> None:
    q = quote(points, a, b)
    assert (q.value_in, q.fee, q.platform, q.residue_in_micro, q.points_out, q.residue_out_micro) == expected


@given(
    points=st.integers(1, 10**12),
    to_platform=st.decimals("0.000001", "1000", places=6),
    from_platform=st.decimals("0.000001", "1000", places=6),
    fee=st.decimals("0", "50", places=4),
)
def test_value_is_neither_made_nor_lost(
    points: int, to_platform: Decimal, from_platform: Decimal, fee: Decimal
) -> None:
    """What goes in equals fee + platform points + residue, exactly; what comes out equals the
    platform points' worth less its residue; nothing is negative."""
    q = quote(points, rule(str(to_platform), fee=str(fee)), rule(from_platform=str(from_platform)))
    assert q.value_in * MICRO == (q.fee + q.platform) * MICRO + q.residue_in_micro
    assert q.platform * from_platform * MICRO == q.points_out * MICRO + q.residue_out_micro
    assert min(q.fee, q.platform, q.residue_in_micro, q.points_out, q.residue_out_micro) >= 0
    assert q.residue_in_micro < MICRO and q.residue_out_micro < MICRO


@pytest.mark.parametrize(
    "text",
    ["", "-1", "+1", "1e3", "NaN", "inf", "0.1234567", "1,5", " 1", "1 ", "\u0663", "0x10", "1.", ".5", "12345678"],
)
def test_a_rate_is_a_plain_decimal(text: str) -> None:
    with pytest.raises(Refusal) as caught:
        decimal(text, "to_platform", low=Decimal("0.000001"), high=Decimal(1_000_000))
    assert caught.value.reason is Reason.FIELD_INVALID and caught.value.metadata == {"field": "to_platform"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"to_platform": Decimal(0)}, "to_platform"),
        ({"from_platform": Decimal("0.0000001")}, "from_platform"),
        ({"from_platform": Decimal(1_000_001)}, "from_platform"),
        ({"fee_percent": Decimal("50.0001")}, "fee_percent"),
        ({"fee_percent": Decimal("1.00001")}, "fee_percent"),
        ({"price": Decimal("-0.01")}, "price"),
        ({"min_points": 0}, "max_points"),
        ({"min_points": 10, "max_points": 5}, "max_points"),
        ({"max_points": 10**12 + 1}, "max_points"),
        ({"daily_points": 0}, "daily_points"),
        ({"currency": "eur"}, "currency"),
        ({"currency": "EURO"}, "currency"),
    ],
)
def test_a_rule_that_cannot_be_applied_exactly_is_refused(changes: dict[str, object], field: str) -> None:
    with pytest.raises(Refusal) as caught:
        check_rule(rule(**changes))  # type: ignore[arg-type]
    assert caught.value.metadata == {"field": field}, caught.value
    assert check_rule(rule()) == rule()
