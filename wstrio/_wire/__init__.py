"""The wire: bytes to messages and back; the only place that imports a WebSocket engine."""
