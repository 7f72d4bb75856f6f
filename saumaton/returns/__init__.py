"""Returns and exchanges in any channel, and the credit receipts they print."""
