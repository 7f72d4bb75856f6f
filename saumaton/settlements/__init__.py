"""Paytrail settlement reconciliation: settlements imported from Paytrail's reports
(fetched through the Payment API or uploaded as a file), each line matched to our
payment or refund, and every euro that does not match listed with its cause."""
