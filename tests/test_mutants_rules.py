"""A campaign's limits at their edges: the last value each field allows passes, the next is refused
naming the field (mutants of campaigns.rules survived the end-to-end tests, which use typical
values only)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from clearpoint.platform.campaigns.records import CampaignSpec
from clearpoint.platform.campaigns.rules import MAX_STORES, MAX_TIME_US, MAX_WINDOW_US, check_spec, check_store_id
from clearpoint.platform.core.errors import Reason, Refusal

S = 1_000_000
GOOD = CampaignSpec(
    name="n",
    prize_description="p",
    valid_from_us=1_700_000_000 * S,
    valid_until_us=1_700_000_100 * S,
    store_ids=(),
    total_stock=1,
    uses_per_voucher=1,
    rollback_window_us=0,
)


def refused_field(spec: CampaignSpec) -> str:
    with pytest.raises(Refusal) as caught:
        check_spec(spec)
    assert caught.value.reason is Reason.FIELD_INVALID
    return caught.value.metadata["field"]


@pytest.mark.parametrize(
    ("field", "allowed", "refused"),
    [
        ("name", ["x", "x" * 200], ["", "x" * 201]),
        ("prize_description", ["x", "x" * 1000], ["", "x" * 1001]),
        ("total_stock", [1, 2**53], [0, -1, 2**53 + 1]),
        ("uses_per_voucher", [0, 1, 1_000_000], [-1, 1_000_001]),
        ("rollback_window_us", [0, MAX_WINDOW_US], [-1, MAX_WINDOW_US + 1]),
    ],
)
def test_each_limit_at_its_edge(field: str, allowed: list[object], refused: list[object]) -> None:
    for value in allowed:
        check_spec(replace(GOOD, **{field: value}))  # type: ignore[arg-type]
    wire_name = {"rollback_window_us": "rollback_window"}.get(field, field)
    for value in refused:
        assert refused_field(replace(GOOD, **{field: value})) == wire_name, (field, value)  # type: ignore[arg-type]


def test_the_validity_window() -> None:
    last = MAX_TIME_US - 1
    check_spec(replace(GOOD, valid_from_us=1, valid_until_us=S + 1))
    check_spec(replace(GOOD, valid_from_us=last - S, valid_until_us=last))
    assert refused_field(replace(GOOD, valid_from_us=0)) == "valid_from"
    assert refused_field(replace(GOOD, valid_from_us=MAX_TIME_US, valid_until_us=MAX_TIME_US + S)) == "valid_from"
    assert refused_field(replace(GOOD, valid_until_us=GOOD.valid_from_us)) == "valid_until"
    assert refused_field(replace(GOOD, valid_until_us=MAX_TIME_US)) == "valid_until"
    # Codes say their validity in whole seconds: a window within one second says nothing.
    within = (GOOD.valid_from_us // S) * S
    assert refused_field(replace(GOOD, valid_from_us=within, valid_until_us=within + S - 1)) == "valid_until"
    check_spec(replace(GOOD, valid_from_us=within + S - 1, valid_until_us=within + S))


def test_defaults_and_store_lists() -> None:
    assert check_spec(replace(GOOD, uses_per_voucher=0)).uses_per_voucher == 1
    assert check_spec(replace(GOOD, uses_per_voucher=7)).uses_per_voucher == 7
    assert check_spec(replace(GOOD, store_ids=("b", "a", "b"))).store_ids == ("a", "b")
    many = tuple(f"s{n}" for n in range(MAX_STORES))
    assert len(check_spec(replace(GOOD, store_ids=many)).store_ids) == MAX_STORES
    assert refused_field(replace(GOOD, store_ids=(*many, "one-more"))) == "store_ids"
    assert refused_field(replace(GOOD, store_ids=("ok", " padded"))) == "store_ids"


@pytest.mark.parametrize("store", ["a", "x" * 64, "till 1", "käse"])
def test_a_store_id_allowed(store: str) -> None:
    check_store_id(store)


def test_a_bad_store_id_is_named_store_id_where_the_caller_names_no_field() -> None:
    """Redeem, ValidateCode and enrolment name the field store_id."""
    with pytest.raises(Refusal) as caught:
        check_store_id("")
    assert caught.value.metadata["field"] == "store_id"


@pytest.mark.parametrize("store", ["", "x" * 65, " a", "a ", "a\tb", "a\x00b", "a\nb"])
def test_a_store_id_refused(store: str) -> None:
    with pytest.raises(Refusal) as caught:
        check_store_id(store, "store")
    assert caught.value.reason is Reason.FIELD_INVALID and caught.value.metadata["field"] == "store"


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"name": ""}, "name must be 1 to 200 characters"),
        ({"prize_description": "x" * 1001}, "prize_description must be 1 to 1000 characters"),
        ({"valid_from_us": 0}, "valid_from is required and must fall between 1970 and 2106"),
        ({"valid_until_us": GOOD.valid_from_us}, "valid_until is required, after valid_from, and before 2106"),
        ({"valid_until_us": GOOD.valid_from_us + 1}, "the validity window must span at least one whole second"),
        ({"total_stock": 0}, "total_stock must be 1 to 2^53 (9007199254740992)"),
        ({"uses_per_voucher": -1}, "uses_per_voucher must be 1 to 1000000 (0 means 1)"),
        ({"rollback_window_us": -1}, "rollback_window must be 0 to 30 days"),
        ({"store_ids": tuple(f"s{n}" for n in range(MAX_STORES + 1))}, f"at most {MAX_STORES} store ids"),
        ({"store_ids": ("a\x00",)}, "a store id is 1 to 64 printable characters without outer spaces"),
    ],
)
def test_each_refusal_tells_a_person_what_is_allowed(changes: dict[str, object], says: str) -> None:
    """What a partner's developer reads when a campaign is refused: the field and what it may hold."""
    with pytest.raises(Refusal) as caught:
        check_spec(replace(GOOD, **changes))  # type: ignore[arg-type]
    assert caught.value.message == says
