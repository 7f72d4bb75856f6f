"""Tills: the store's registers, their cash drawer sessions, cash movements and Z reports."""
