"""Redemption: a voucher code verified and redeemed exactly once, previewed, or rolled back."""
