"""Paytrail online payments: request signing and signature checks, payment payloads."""
