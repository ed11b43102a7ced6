"""python -m sim.bench [--out FILE]: every benchmark, one JSON report (also written to FILE)."""

import argparse

from sim.bench.suite import run_all

parser = argparse.ArgumentParser(prog="python -m sim.bench")
parser.add_argument("--out", metavar="FILE", help="also write the report here (make bench: build/bench.json)")
run_all(parser.parse_args().out)
