"""What makes a campaign valid: limits on its fields, checked before anything is written."""

from __future__ import annotations

from dataclasses import replace

from clearpoint.platform.campaigns.records import CampaignSpec
from clearpoint.platform.core.clock import SECOND_US
from clearpoint.platform.core.errors import field_invalid

REFUSAL_SHARDS = 8
MAX_STORES = 10_000
MAX_WINDOW_US = 30 * 86_400 * SECOND_US
DEFAULT_ROLLBACK_WINDOW_US = 15 * 60 * SECOND_US
# Codes carry their validity as whole seconds (CWT NumericDate); keep the window within what they can say.
MAX_TIME_US = (2**32 - 1) * SECOND_US


def check_spec(spec: CampaignSpec) -> CampaignSpec:
    """Refuse a campaign a partner could not have meant; fill defaults."""
    if not 1 <= len(spec.name) <= 200:
        raise field_invalid("name", "name must be 1 to 200 characters")
    if not 1 <= len(spec.prize_description) <= 1000:
        raise field_invalid("prize_description", "prize_description must be 1 to 1000 characters")
    if spec.valid_from_us <= 0 or spec.valid_from_us >= MAX_TIME_US:
        raise field_invalid("valid_from", "valid_from is required and must fall between 1970 and 2106")
    if spec.valid_until_us <= spec.valid_from_us or spec.valid_until_us >= MAX_TIME_US:
        raise field_invalid("valid_until", "valid_until is required, after valid_from, and before 2106")
    if spec.valid_until_us // SECOND_US <= spec.valid_from_us // SECOND_US:
        raise field_invalid("valid_until", "the validity window must span at least one whole second")
    if not 1 <= spec.total_stock <= 2**53:
        raise field_invalid("total_stock", "total_stock must be 1 to 2^53 (9007199254740992)")
    if not 0 <= spec.uses_per_voucher <= 1_000_000:
        raise field_invalid("uses_per_voucher", "uses_per_voucher must be 1 to 1000000 (0 means 1)")
    if not 0 <= spec.rollback_window_us <= MAX_WINDOW_US:
        raise field_invalid("rollback_window", "rollback_window must be 0 to 30 days")
    if len(spec.store_ids) > MAX_STORES:
        raise field_invalid("store_ids", f"at most {MAX_STORES} store ids")
    for store in spec.store_ids:
        check_store_id(store, "store_ids")
    return replace(spec, store_ids=tuple(sorted(set(spec.store_ids))), uses_per_voucher=spec.uses_per_voucher or 1)


def check_store_id(store: str, field: str = "store_id") -> None:
    if not 1 <= len(store) <= 64 or not store.isprintable() or store.strip() != store:
        raise field_invalid(field, "a store id is 1 to 64 printable characters without outer spaces")
