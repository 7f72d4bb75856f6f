"""The REST API channel (/api/v1): translates HTTP to service calls and back."""
