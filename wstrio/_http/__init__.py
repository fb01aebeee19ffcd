"""The one-port HTTP front: requests, routes, endpoints, admission and the upgrade."""
