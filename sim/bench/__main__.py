"""python -m sim.bench: every benchmark, one JSON report."""

from sim.bench.suite import run_all

run_all()
