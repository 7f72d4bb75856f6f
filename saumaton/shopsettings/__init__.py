"""The shop's own settings, edited in the back office; environment variables are the
defaults."""
