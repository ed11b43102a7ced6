"""The crash harness behind `make crash-test` (python -m sim.crash): kill -9 at every point, then reconcile."""
