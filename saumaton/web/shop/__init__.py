"""The webshop pages (no login): product list, product page, live availability."""
