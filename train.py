"""Train an agent: see ``python train.py --help``.  Thin wrapper of :mod:`deaoff_cli.train`."""
import sys

from deaoff_cli.train import main

if __name__ == "__main__":
    sys.exit(main())
