"""python -m sim.crash: the crash harness."""

import sys

from sim.crash.harness import main

sys.exit(main())
