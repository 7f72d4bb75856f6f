"""Reserve to try: a unit held at a store for a shopper, without payment."""
