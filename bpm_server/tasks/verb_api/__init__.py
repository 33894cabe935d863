"""The task verbs, comments and attachments over the API (kept apart from the inbox views)."""
