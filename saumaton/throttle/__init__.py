"""Sign-in throttling per account and per address (docs/security.md)."""
