"""The environment's one contact with the solver: DeAOff's plan as the reward reference,
and the per-token optimum of the weighted objective (the myopic-optimum baseline)."""
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


def deaoff_weighted_result(inst: Instance, *, w_time_per_s: float, w_energy_per_j: float, mode: str = "exact",
                           levels: bool = True) -> tuple[Placement, Result]:
    """The placement and levels minimising this token's C = w_T·T + w_E·E
    (:func:`core.cost.weighted_cost`; exact on the chain tables or the MILP, or relaxed)
    and the cost engine's result of it: the myopic (per-token) optimum of the weighted
    objective.  ValueError on weights that are negative, not finite or both zero."""
    sol = solve(inst, mode=mode, levels=levels, objective="weighted", w_time_per_s=w_time_per_s,
                w_energy_per_j=w_energy_per_j)
    return sol.placement, sol.result
