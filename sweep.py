"""Run a sweep of training runs: see ``python sweep.py --help``.  Thin wrapper of :mod:`deaoff_cli.sweep`."""
import sys

from deaoff_cli.sweep import main

if __name__ == "__main__":
    sys.exit(main())
