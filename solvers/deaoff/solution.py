"""DeAOff's answer type, its tolerances and the engine check every answer passes."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from core.cost import Result, evaluate, weighted_cost
from core.instance import Instance, Placement

__all__ = ["Solution", "BOUND_RTOL", "CHECK_RTOL", "STATUSES", "check_against_engine", "phase2_bound",
           "relative_gap"]

BOUND_RTOL = 1e-9
"""A latency bound B is met when makespan ≤ B·(1 + BOUND_RTOL) (also in brute force)."""
CHECK_RTOL = 1e-6
"""The engine's value of a model's answer must match the model's objective to this."""
STATUSES = ("optimal", "dp_optimal", "time_limit", "relaxed", "infeasible_bound")
"""``Solution.status`` values: proven by the MILP / by the chain tables; best incumbent at
the time limit; relaxed-mode answer meeting its bound; relaxed-mode answer that could not
meet the bound it was given (its best answer, reported anyway)."""
_INF = float("inf")


@dataclass
class Solution:
    """A DeAOff answer; every figure comes from the cost engine's evaluation."""

    placement: Placement
    result: Result
    makespan_s: float
    energy_j: float
    phase1_makespan_s: float
    """T*: the phase-1 (minimum) makespan; in relaxed mode, that of the rounded phase 1; in
    the weighted mode (no phase 1) the answer's own makespan."""
    latency_bound_s: float | None
    """The phase-2 bound (1 + slack)·T* or the deadline; None without phase 2."""
    status: str
    """One of :data:`STATUSES`."""
    mip_gap: float
    """Relative gap: HiGHS's (0 when proven); relaxed: against the LP relaxation's bound."""
    wall_time_s: float
    method: str
    """"exact-milp" | "exact-dp" | "relaxed"."""
    phase1_placement: Placement | None = None
    solver_status: list[str] = field(default_factory=list)
    """Per phase: HiGHS model status of the MILP / LP solved, or "dp:<step>" for the chain
    tables (the step that settled it: path, hull, dual, labels, runs-milp or flow-milp), or
    "series:optimal" / "series:time_limit" for the series cut-chain MILP (``sublayer``
    DAGs), "series:dual" in relaxed mode."""
    gap_vs_exact: float | None = None
    """Relaxed mode with a reference exact answer: (objective − exact)/exact under the same bound."""
    info: dict[str, Any] = field(default_factory=dict)
    objective: str = "lexicographic"
    """"lexicographic" (the two phases, or the deadline form) or "weighted"."""
    weighted_cost: float | None = None
    """The weighted mode: C = w_T·T + w_E·E of the answer (engine figures); else None."""

    def to_dict(self) -> dict[str, Any]:
        return {"placement": self.placement.to_dict(), "makespan_s": self.makespan_s,
                "energy_j": self.energy_j, "phase1_makespan_s": self.phase1_makespan_s,
                "latency_bound_s": self.latency_bound_s, "status": self.status,
                "mip_gap": self.mip_gap, "wall_time_s": self.wall_time_s, "method": self.method,
                "phase1_placement": None if self.phase1_placement is None else self.phase1_placement.to_dict(),
                "solver_status": list(self.solver_status), "gap_vs_exact": self.gap_vs_exact,
                "info": dict(self.info), "objective": self.objective, "weighted_cost": self.weighted_cost,
                "result": self.result.to_dict()}


def check_against_engine(inst: Instance, placement: Placement, model_value: float, what: str,
                         proven: bool, weights: tuple[float, float] | None = None, record: bool = True) -> Result:
    """The engine's result of ``placement``; RuntimeError when its ``what`` ("makespan",
    "energy", or "weighted": C = w_T·T + w_E·E with ``weights`` = (w_T, w_E)) is above the
    model's value, or below it when the model's value is proven optimal (beyond
    :data:`CHECK_RTOL`): the model and the engine disagree.  ``record=False``: the result
    carries the figures without the schedule lists."""
    if what not in ("makespan", "energy", "weighted"):
        raise ValueError(f"what must be 'makespan', 'energy' or 'weighted', got {what!r}")
    if what == "weighted" and weights is None:
        raise ValueError("what='weighted' needs weights=(w_time_per_s, w_energy_per_j)")
    res = evaluate(inst, placement, record=record, check=True)
    if what == "weighted":
        val = weighted_cost(res.makespan_s, res.energy_j, w_time_per_s=weights[0],  # type: ignore[index]
                            w_energy_per_j=weights[1])  # type: ignore[index]
    else:
        val = res.makespan_s if what == "makespan" else res.energy_j
    tol = CHECK_RTOL * max(abs(model_value), abs(val), 1e-300)
    if val > model_value + tol or (proven and val < model_value - tol):
        raise RuntimeError(f"solver/engine mismatch on {what}: model {model_value!r}, engine {val!r} "
                           f"(rel. diff {abs(val - model_value) / max(abs(val), 1e-300):.3e})")
    return res


def phase2_bound(t_star_s: float, slack: float, deadline_s: float | None) -> float:
    """(1 + slack)·T*, or the deadline (ValueError when it is below T*)."""
    if deadline_s is None:
        return (1.0 + slack) * t_star_s
    if deadline_s < t_star_s * (1 - BOUND_RTOL):
        raise ValueError(f"deadline {deadline_s!r} s is below the minimum makespan T* = {t_star_s!r} s")
    return deadline_s


def relative_gap(value: float, dual_bound: float) -> float:
    """Relative gap of an incumbent against a dual bound (inf without a usable bound)."""
    if not math.isfinite(dual_bound) or value <= 0:
        return _INF
    return max(0.0, (value - dual_bound) / value)
