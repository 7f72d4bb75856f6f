"""Webhooks: subscriptions to the outbox's domain events, delivered signed (Standard
Webhooks) by a worker, at least once, with retries and a delivery log."""
