"""RL agents for the offloading environments: the algorithm table, the hyperparameter
loader, a Dict-observation features extractor and the training callbacks.

``train.py`` is the command line on top of these pieces.
"""
from .algos import ALGOS, MASKABLE, OFF_POLICY

__all__ = ["ALGOS", "MASKABLE", "OFF_POLICY"]
