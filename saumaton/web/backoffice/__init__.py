"""The back office: pages for managers (duplicate customers and their merge)."""
