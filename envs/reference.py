"""The environment's one contact with the solver: DeAOff's plan as the reward reference."""
from __future__ import annotations

from core.cost import Result
from core.instance import Instance, Placement
from solvers.deaoff import solve


def deaoff_reference_result(inst: Instance, *, mode: str = "exact", slack: float = 0.10,
                            levels: bool = True) -> tuple[Placement, Result]:
    """DeAOff's two-phase plan for ``inst`` (present conditions, migrations from the
    current caches) and the cost engine's result of it (the solver re-evaluates every
    answer, so the environment need not evaluate it again).  Chains use the exact DP path."""
    sol = solve(inst, mode=mode, slack=slack, levels=levels)
    return sol.placement, sol.result
