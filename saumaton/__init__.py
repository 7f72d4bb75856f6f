"""Saumaton: one core for a retailer's stores and webshop."""

__version__ = "0.1.0"
