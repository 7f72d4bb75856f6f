"""Loyalty: one points ledger for every channel, tiers by rolling 12-month spend."""
