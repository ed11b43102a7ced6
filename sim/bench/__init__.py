"""Benchmarks behind `make bench` (python -m sim.bench)."""
