"""Saved inbox views over the API (/api/v1/inbox-views)."""
