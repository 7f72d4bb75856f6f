"""The point of sale: the sale screen of a store, payments and receipts."""
