"""Reports: sales per channel and location and combined, customers across channels,
the daily journal for the accountant. Read-only over the order book and the ledgers
(and the summaries the reports job keeps); docs/reports.md defines every figure."""
