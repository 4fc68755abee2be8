"""The main job: see ``python main.py --help``.  Thin wrapper of :mod:`deaoff_cli.main`."""
import sys

from deaoff_cli.main import main

if __name__ == "__main__":
    sys.exit(main())
