"""The servers under test, each run as ``python -m bench.servers.NAME KIND`` by the harness."""
