"""After-purchase follow-ups (docs/follow-ups.md): e-mail sequences per product category
and the refill reminder, scheduled from purchases in every channel and sent with the
customer's marketing consent checked at send time."""
