"""Command-line programs: ``deaoff-train``, ``deaoff-evaluate``, ``deaoff-main`` (also run as
``python train.py`` / ``evaluate.py`` / ``main.py`` from the repository)."""
