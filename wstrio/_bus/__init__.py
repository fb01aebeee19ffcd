"""Buses that carry a hub's rooms to other processes (Redis, through coredis)."""
