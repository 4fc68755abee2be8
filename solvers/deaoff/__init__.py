"""DeAOff: the exact two-phase placement solver and its constraint relaxation.

DeAOff (a dependency-aware offloading framework for generative-AI decoder models in
mobile-edge computing) places a decoder's layer DAG between the phone and edge servers in
two phases: phase 1 minimises the makespan T* over placements with every level at its
highest (fastest); phase 2 minimises the device energy over placements, DVFS levels and
transmit-power levels subject to makespan ≤ (1 + slack)·T* (or ≤ a deadline).  The
paper's full text is not available to us: the formulation here is our reading of its
abstract, written down in ``docs/system-model.md`` together with the system model.

The weighted-sum mode (``objective="weighted"``) instead minimises C = w_T·T + w_E·E
(:func:`core.cost.weighted_cost`) over placements and levels in one phase, exactly on the
chain tables (a shortest path on the combined tables, memory-aware) or the MILP.

The model is exactly the cost engine's semantics (:mod:`core.cost`): every processor and
the uplink serve their work in a fixed order, so a placement's schedule is determined and
no order binaries are needed.  Every answer is re-evaluated by the engine and must match
the model's objective (else RuntimeError).

Modules:

* :mod:`.prep` — per-instance coefficients (:class:`~.prep.Problem`);
* :mod:`.chain` — chains (the ``block`` DAG): exact, memory-aware shortest paths on numpy
  tables (a chain is a shortest path over (layer, location) states, as in Neurosurgeon,
  Kang et al., ASPLOS 2017, and EdgeShard, Zhang et al., IEEE IoT-J 2024);
* :mod:`.milp` — the exact MILP of one phase on HiGHS (Huangfu & Hall, "Parallelizing the
  dual revised simplex method", Math. Prog. Comp. 2018), a time-indexed-free model with
  big-M disjunctions (Tompkins, MIT thesis 2003, ch. 4);
* :mod:`.exact` — the exact two-phase solve; :mod:`.relaxed` — LP relaxation, rounding,
  repair by list scheduling (Munier, Queyranne & Schulz, 1998/2006) and polish.
"""
from __future__ import annotations

import math
from typing import Literal

from core.instance import Instance

from .chain import ChainTables
from .chain_build import TableCache
from .exact import Options, solve_exact
from .prep import Problem, is_chain
from .relaxed import polish, solve_relaxed
from .solution import BOUND_RTOL, CHECK_RTOL, STATUSES, Solution, check_against_engine

__all__ = ["solve", "OBJECTIVES", "Solution", "is_chain", "Problem", "ChainTables", "TableCache", "check_against_engine", "polish",
           "BOUND_RTOL", "CHECK_RTOL", "STATUSES"]


OBJECTIVES = ("lexicographic", "weighted")
"""``solve``'s objectives: the two-phase default (or its deadline form), the weighted sum."""


def solve(inst: Instance, *, mode: Literal["exact", "relaxed"] = "exact", phase2: bool = True,
          slack: float = 0.10, deadline_s: float | None = None, time_limit_s: float | None = None,
          levels: bool = True, use_dp: bool = True, mip_rel_gap: float = 1e-9, threads: int = 1,
          compare_exact: bool = False, exact: Solution | None = None,
          objective: Literal["lexicographic", "weighted"] = "lexicographic",
          w_time_per_s: float | None = None, w_energy_per_j: float | None = None,
          table_cache: TableCache | None = None, record: bool = True) -> Solution:
    """DeAOff on ``inst``: phase 1 (minimum makespan T*), then phase 2 (minimum device energy
    with makespan ≤ (1 + slack)·T*, or ≤ ``deadline_s``) unless ``phase2=False``.

    ``mode="exact"``: chains on the chain tables when ``use_dp`` (exact under the memory
    capacities; the MILP takes over only when their label search exceeds its budget),
    other DAGs on the MILP (HiGHS, relative gap ``mip_rel_gap``, ``threads`` threads).
    ``time_limit_s`` caps the whole solve (half for phase 1 at most); on expiry the best
    incumbent is returned with status "time_limit" and HiGHS's gap.
    ``mode="relaxed"``: LP relaxation + rounding + repair + polish; status "relaxed", or
    "infeasible_bound" (its best answer) when it cannot meet the bound.  With ``exact`` (a
    reference exact Solution) or ``compare_exact=True`` (computed here with the same
    arguments, not counted in ``wall_time_s``) the relaxed phase 2 uses the reference's
    latency bound and ``gap_vs_exact`` is filled in (inf when the relaxed answer cannot
    meet that bound).  ``levels=False``: every DVFS and transmit-power level stays at the
    highest (both modes).
    ``objective="weighted"``: one phase minimising C = w_T·T + w_E·E
    (:func:`core.cost.weighted_cost`) over placements and levels, with ``w_time_per_s`` and
    ``w_energy_per_j`` (finite, >= 0, not both 0); exact on the chain tables (chains) or the
    MILP, or relaxed; ``phase2``, ``slack`` and ``deadline_s`` belong to the lexicographic
    objective and may not be given with it.  The answer's ``weighted_cost`` is C and its
    ``gap_vs_exact`` (relaxed with a reference) compares C.
    ``table_cache``: a :class:`~.chain_build.TableCache` kept by a caller that solves a
    run of related chain instances (an environment's tokens): the chain tables reuse the
    previous instance's unchanged parts (the answer is the same as without it).
    ``record=False`` (exact mode): the answer's result carries the engine's figures without
    its schedule lists (start/finish times, transfers), for callers that need only the
    makespan and energy (the environment's per-token reference).
    Raises ValueError when no placement is feasible (naming the node or the budget) or the
    deadline is below T*; RuntimeError when HiGHS fails or the engine disagrees with a model.
    """
    if mode not in ("exact", "relaxed"):
        raise ValueError(f"mode must be 'exact' or 'relaxed', got {mode!r}")
    if not (slack >= 0 and math.isfinite(slack)):
        raise ValueError(f"slack must be a finite number >= 0, got {slack!r}")
    if deadline_s is not None and not (deadline_s > 0 and math.isfinite(deadline_s)):
        raise ValueError(f"deadline_s must be a finite number > 0, got {deadline_s!r}")
    if time_limit_s is not None and not (time_limit_s > 0):
        raise ValueError(f"time_limit_s must be > 0, got {time_limit_s!r}")
    if not (mip_rel_gap >= 0 and math.isfinite(mip_rel_gap)):
        raise ValueError(f"mip_rel_gap must be a finite number >= 0, got {mip_rel_gap!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    if not isinstance(record, bool):
        raise ValueError(f"record must be True or False, got {record!r}")
    if table_cache is not None and not isinstance(table_cache, TableCache):
        raise ValueError(f"table_cache must be a TableCache or None, got {type(table_cache).__name__}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    w_t = w_e = 0.0
    if objective == "weighted":
        for name, w in (("w_time_per_s", w_time_per_s), ("w_energy_per_j", w_energy_per_j)):
            if w is None or isinstance(w, bool) or not (w >= 0 and math.isfinite(w)):
                raise ValueError(f"objective='weighted' needs {name} as a finite number >= 0, got {w!r}")
        if w_time_per_s == 0 and w_energy_per_j == 0:
            raise ValueError("objective='weighted' needs w_time_per_s or w_energy_per_j > 0 (both are 0)")
        if deadline_s is not None or not phase2 or slack != 0.10:
            raise ValueError("deadline_s, phase2 and slack belong to objective='lexicographic'; "
                             "objective='weighted' takes none of them")
        w_t, w_e = float(w_time_per_s), float(w_energy_per_j)  # type: ignore[arg-type]
    elif w_time_per_s is not None or w_energy_per_j is not None:
        raise ValueError("w_time_per_s and w_energy_per_j need objective='weighted'")
    opts = Options(phase2=phase2, slack=slack, deadline_s=deadline_s, time_limit_s=time_limit_s, levels=levels,
                   use_dp=use_dp, mip_rel_gap=mip_rel_gap, threads=threads, objective=objective,
                   w_time_per_s=w_t, w_energy_per_j=w_e, table_cache=table_cache, record=record)
    if mode == "exact":
        return solve_exact(inst, opts)
    if compare_exact and exact is None:
        exact = solve_exact(inst, opts)
    return solve_relaxed(inst, opts, exact)
