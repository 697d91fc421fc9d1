"""Benchmarks of the HTTP API, each next to a raw-PostgreSQL baseline measured in the same run.

Entry point: `bench/run` (see bench/README.md), which runs `python -m bench.identify_load`.
"""
