"""委托 over the API (kept apart from the task verbs)."""
