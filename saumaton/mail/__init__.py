"""Outgoing e-mail: queued in the database with the change that caused it, sent by
a background worker over SMTP or written as .eml files in development."""
