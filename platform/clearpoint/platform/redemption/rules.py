"""The rules of a redemption, stated once.

`RULES` is an ordered table: each rule a reason and the SQL condition under which the rule holds,
over the voucher row a code names, its campaign row, its issuer key, the store and the time. Every
path that redeems or explains is derived from this table:

- claiming a use (statements.py) puts the voucher's and the campaign's conditions in the WHERE of
  the UPDATE that takes the use, and the stock condition in the UPDATE that takes the prize, so the
  database's row locks settle every race, on SQLite and PostgreSQL, one by one or in a group;
- `diagnosis` evaluates the same conditions in one SELECT, in table order, to name the rule that
  refused a redemption which claimed nothing, and to preview a code (ValidateCode).

A parity test runs one table of cases through every path and holds them to the same answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from clearpoint.platform.campaigns.tables import campaign_stores, campaigns, vouchers
from clearpoint.platform.core.errors import Reason
from clearpoint.platform.keys.keystore import KeyState
from clearpoint.platform.keys.tables import issuer_keys
from sqlalchemy import ColumnElement, Select, and_, case, exists, false, func, literal, not_, null, or_, select


class Scope(Enum):
    """Where a rule is decided, which is what a statement that claims a use must lock to be sure of it."""

    VOUCHER = "voucher"  # the voucher row (and its key): decided under the voucher's row lock
    CAMPAIGN = "campaign"  # campaign fields no redemption changes (window, stores): read with the voucher
    STOCK = "stock"  # the campaign's counters: decided under the campaign row's lock, for all uses claimed at once


@dataclass(frozen=True, slots=True)
class Terms:
    """What a redemption asks: SQL expressions (bound values, or columns of a batch of requests)."""

    voucher_id: ColumnElement[Any]
    campaign_id: ColumnElement[Any]
    kid: ColumnElement[Any]
    store_id: ColumnElement[Any]
    now: ColumnElement[Any]
    wanted: ColumnElement[Any]  # uses of the campaign's stock claimed together (1, or a group's count)


@dataclass(frozen=True, slots=True)
class Rule:
    reason: Reason
    scope: Scope
    holds: Callable[[Terms], ColumnElement[bool]]


def _store_allowed(t: Terms) -> ColumnElement[bool]:
    listed = (
        exists()
        .where(campaign_stores.c.campaign_id == campaigns.c.campaign_id, campaign_stores.c.store_id == t.store_id)
        .correlate_except(campaign_stores)
    )
    return or_(campaigns.c.all_stores == 1, listed)


RULES: tuple[Rule, ...] = (
    Rule(
        Reason.VOUCHER_UNKNOWN,
        Scope.VOUCHER,
        lambda t: and_(vouchers.c.voucher_id == t.voucher_id, vouchers.c.kid == t.kid),
    ),
    Rule(Reason.CAMPAIGN_MISMATCH, Scope.VOUCHER, lambda t: vouchers.c.campaign_id == t.campaign_id),
    Rule(
        Reason.KEY_RETIRED,
        Scope.VOUCHER,
        lambda t: (
            exists()
            .where(issuer_keys.c.kid == vouchers.c.kid, issuer_keys.c.state != KeyState.RETIRED.value)
            .correlate_except(issuer_keys)
        ),
    ),
    Rule(Reason.VOUCHER_NOT_YET_VALID, Scope.CAMPAIGN, lambda t: campaigns.c.valid_from_us <= t.now),
    Rule(Reason.VOUCHER_EXPIRED, Scope.CAMPAIGN, lambda t: campaigns.c.valid_until_us > t.now),
    Rule(Reason.STORE_NOT_ALLOWED, Scope.CAMPAIGN, _store_allowed),
    Rule(Reason.VOUCHER_ALREADY_REDEEMED, Scope.VOUCHER, lambda t: vouchers.c.uses_made < vouchers.c.uses_allowed),
    Rule(
        Reason.STOCK_EXHAUSTED,
        Scope.STOCK,
        lambda t: campaigns.c.redeemed - campaigns.c.rolled_back + t.wanted <= campaigns.c.total_stock,
    ),
)


def conditions(terms: Terms, *scopes: Scope) -> list[ColumnElement[bool]]:
    """The conditions of every rule decided in `scopes`, for a WHERE clause."""
    return [rule.holds(terms) for rule in RULES if rule.scope in scopes]


def campaign_allows(terms: Terms, *scopes: Scope) -> ColumnElement[bool]:
    """SQL, inside a statement on the voucher: the voucher's campaign meets the rules of `scopes`."""
    return (
        exists()
        .where(campaigns.c.campaign_id == vouchers.c.campaign_id, *conditions(terms, *scopes))
        .correlate_except(campaigns)
    )


def diagnosis(terms: Terms, *, with_store: bool = True) -> Select[Any]:
    """One row: the first rule that does not hold (NULL if all do) and what the voucher would give.

    Without `with_store`, the store rule is left out (a preview that names no store).
    """
    rules = [rule for rule in RULES if with_store or rule.reason is not Reason.STORE_NOT_ALLOWED]
    first_broken = case(
        *((not_(func.coalesce(rule.holds(terms), false())), literal(rule.reason.value)) for rule in rules),
        else_=null(),
    )
    one = select(literal(1).label("one")).subquery("one")
    found = one.outerjoin(vouchers, vouchers.c.voucher_id == terms.voucher_id).outerjoin(
        campaigns, campaigns.c.campaign_id == terms.campaign_id
    )
    return select(
        first_broken.label("reason"),
        vouchers.c.voucher_id,
        (vouchers.c.uses_allowed - vouchers.c.uses_made).label("uses_left"),
        campaigns.c.name,
        campaigns.c.prize_description,
        campaigns.c.valid_from_us,
        campaigns.c.valid_until_us,
    ).select_from(found)
