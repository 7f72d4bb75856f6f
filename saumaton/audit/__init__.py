"""The audit log: who did what to whose data, for the things the law or trust needs
traced (customer merges, data exports, erasures)."""
