"""The environment's one contact with the solver: DeAOff's plan of one token for the scored objective.

Used for the reward's scale (the plan made at reset) and for the myopic-optimum baseline.

* ``weighted``: DeAOff's exact weighted-sum mode, ``solve(inst, objective="weighted",
  w_time_per_s=..., w_energy_per_j=...)``: the per-token optimum of C = w_T·T + w_E·E.
* ``slo``: DeAOff's deadline form, minimum device energy with latency ≤ the token's target
  (``deadline_s``), or the least energy at latency ≤ 100·T* plus ``slo_penalty_j`` when
  that is less (or when no plan meets the target): the per-token optimum of the ``slo``
  cost among plans within 100 times the fastest.
"""
from __future__ import annotations

from core.cost import Result
from core.instance import Instance, Placement
from solvers.deaoff import TableCache, solve

FREE_SLACK = 99.0
"""``slo``'s unconstrained branch minimises energy with latency ≤ (1 + FREE_SLACK)·T* = 100·T*
(a plan slower than 100 times the fastest is never worth it at any sensible penalty)."""

TABLES = TableCache()
"""The chain tables of the last token solved, whose unchanged parts the next token's reuse
(an environment solves one token after another; the answers are those of fresh tables)."""


def deaoff_reference_result(inst: Instance, *, objective: str = "weighted", w_time_per_s: float = 1.0,
                            w_energy_per_j: float = 1.0, deadline_s: float | None = None, slo_penalty_j: float = 1.0,
                            mode: str = "exact",
                            slack: float = 0.10, levels: bool = True,
                            table_cache: TableCache | None = TABLES) -> tuple[Placement, Result]:
    """DeAOff's plan for ``inst`` (present conditions, migrations from the instance's
    caches) under ``objective``, and the cost engine's result of it (the solver
    re-evaluates every answer; its figures, without the schedule lists: the env needs
    only the makespan and energy).  Chains use the exact DP path, on tables that reuse the
    previous token's unchanged parts through ``table_cache`` (None: fresh tables)."""
    if objective == "weighted":
        sol = solve(inst, objective="weighted", w_time_per_s=w_time_per_s, w_energy_per_j=w_energy_per_j,
                    mode=mode, levels=levels, table_cache=table_cache, record=False)
    elif objective == "slo":
        if deadline_s is None:
            raise ValueError("objective 'slo' needs the token's deadline_s")
        # the exact optimum of E + penalty·[T > deadline]: the least energy within the
        # deadline, or the least energy at any latency plus the penalty, whichever is less
        free = solve(inst, mode=mode, slack=FREE_SLACK, levels=levels, table_cache=table_cache, record=False)
        best, best_cost = free, free.result.energy_j + (slo_penalty_j if free.result.makespan_s > deadline_s else 0.0)
        try:
            met = solve(inst, mode=mode, deadline_s=deadline_s, levels=levels, table_cache=table_cache,
                        record=False)
        except ValueError as exc:
            if "below the minimum makespan" not in str(exc):
                raise
        else:
            if met.result.makespan_s <= deadline_s and met.result.energy_j < best_cost:
                best = met
        sol = best
    else:
        raise ValueError(f"objective must be 'weighted' or 'slo', got {objective!r}")
    return sol.placement, sol.result
