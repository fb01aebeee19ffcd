"""The client: URLs and streams, ``connect`` and ``reconnecting``."""
