"""The environment's one contact with the solver: DeAOff's plan as the reward reference."""
from __future__ import annotations

from .cost import Result
from .instance import Instance, Placement


def deaoff_reference(inst: Instance, *, mode: str = "exact", slack: float = 0.10,
                     levels: bool = True) -> Placement:
    """DeAOff's two-phase plan for ``inst`` (present conditions, migrations from the
    current caches); the environment re-evaluates it with the cost engine.  Chains use
    the exact DP path."""
    from baselines.deaoff import solve  # baselines builds on envs; imported only here

    return solve(inst, mode=mode, slack=slack, levels=levels).placement


def deaoff_reference_result(inst: Instance, *, mode: str = "exact", slack: float = 0.10,
                            levels: bool = True) -> tuple[Placement, Result]:
    """As :func:`deaoff_reference`, with the cost engine's result of the plan (the
    solver's own re-evaluation, so the environment need not evaluate it again)."""
    from baselines.deaoff import solve

    sol = solve(inst, mode=mode, slack=slack, levels=levels)
    return sol.placement, sol.result
