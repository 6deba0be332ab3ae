"""Clearing: each period's exchanges priced per channel, netted, and settled in signed statements."""
