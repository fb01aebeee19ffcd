"""wstrio's benchmarks: run them as ``python -m bench.echo`` and ``python -m bench.broadcast``."""
