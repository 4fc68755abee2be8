"""The environment's one contact with the solver: DeAOff's plan as the reward reference."""
from __future__ import annotations

from .cost import Result
from .instance import Instance


def deaoff_reference(inst: Instance, *, mode: str = "exact", slack: float = 0.10,
                     levels: bool = True) -> Result:
    """DeAOff's two-phase plan for ``inst`` (present conditions, migrations from the
    current caches), as evaluated by the cost engine.  Chains use the exact DP path."""
    from baselines.deaoff import solve  # baselines builds on envs; imported only here

    return solve(inst, mode=mode, slack=slack, levels=levels).result
