"""Gift cards and store credit: one balance ledger, spent like money in every channel."""
