"""One connection and its close rules: session, supervisor, queues (trio and attrs only)."""
