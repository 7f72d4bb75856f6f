"""HTTP channels: the app factory, staff authentication, the webshop and the POS."""
