"""Rooms: broadcasts that never wait, with slow-consumer policies."""
