"""Campaigns: a partner's prize campaigns, the vouchers issued for them, and their live progress."""
