"""Evaluate agents, DeAOff and the heuristics: see ``python evaluate.py --help``.  Thin wrapper of :mod:`deaoff_cli.evaluate`."""
import sys

from deaoff_cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
