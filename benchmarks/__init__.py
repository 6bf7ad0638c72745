"""Benchmarks: `make bench`, `make bench-snapshot`, `make faults` run them as modules (python -m)."""
