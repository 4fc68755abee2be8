"""The weighted-sum mode C = w_T·T + w_E·E (``solve(objective="weighted")``) against brute
force, the chain tables against the MILP on it, the relaxed mode against the exact one,
and its argument checks.  Instances are the seeded small random ones of
``tests/test_deaoff.py`` (chains, diamonds, fork-joins, residual chains, random DAGs;
memory binding in many of them)."""
from __future__ import annotations

import numpy as np
import pytest

from core.cost import evaluate, weighted_cost
from solvers.brute_force import brute_force
from solvers.deaoff import is_chain, solve
from tests.test_deaoff import _assert_engine, _chain_instance, _close, _feasible, random_instance

WEIGHTS = ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (10.0, 0.1), (0.5, 2.0))
"""(w_T per s, w_E per J): pure latency, pure energy (no bound), and mixes."""


def _weights(seed: int) -> tuple[float, float]:
    return WEIGHTS[seed % len(WEIGHTS)]


def _c(res, w) -> float:
    return weighted_cost(res.makespan_s, res.energy_j, w_time_per_s=w[0], w_energy_per_j=w[1])


@pytest.mark.parametrize("seed", range(80))
def test_weighted_milp_matches_brute_force(seed: int) -> None:
    inst = random_instance(seed)
    if not _feasible(inst):
        with pytest.raises(ValueError, match="memory budget|fits nowhere"):
            solve(inst, objective="weighted", w_time_per_s=1.0, w_energy_per_j=1.0, use_dp=False)
        return
    w = _weights(seed)
    levels = inst.system.device.freqs_hz != (1.3e9,)
    sol = solve(inst, objective="weighted", w_time_per_s=w[0], w_energy_per_j=w[1], use_dp=False, levels=levels)
    assert sol.method == "exact-milp" and sol.status == "optimal" and sol.objective == "weighted"
    _, best = brute_force(inst, "weighted", levels=levels, w_time_per_s=w[0], w_energy_per_j=w[1])
    assert _close(sol.weighted_cost, _c(best, w)), (sol.weighted_cost, _c(best, w))
    assert sol.weighted_cost == _c(sol.result, w)
    assert sol.latency_bound_s is None and sol.phase1_makespan_s == sol.makespan_s
    _assert_engine(inst, sol)


@pytest.mark.parametrize("seed", range(500, 560))
def test_weighted_chain_tables_match_brute_force(seed: int) -> None:
    """Chains with memory binding in two of three instances (``roomy`` otherwise) and KV
    migrations in half: the chain tables' weighted answer equals brute force's and the
    MILP's."""
    inst = _chain_instance(seed)
    assert is_chain(inst)
    if not _feasible(inst):
        return
    w = _weights(seed)
    dp = solve(inst, objective="weighted", w_time_per_s=w[0], w_energy_per_j=w[1])
    assert dp.method == "exact-dp" and dp.status == "dp_optimal"
    _, best = brute_force(inst, "weighted", w_time_per_s=w[0], w_energy_per_j=w[1])
    assert _close(dp.weighted_cost, _c(best, w)), (dp.weighted_cost, _c(best, w), dp.solver_status)
    milp = solve(inst, objective="weighted", w_time_per_s=w[0], w_energy_per_j=w[1], use_dp=False)
    assert _close(dp.weighted_cost, milp.weighted_cost, 1e-9)
    _assert_engine(inst, dp)


@pytest.mark.parametrize("seed", range(300, 340))
def test_weighted_chain_dp_equals_milp(seed: int) -> None:
    rng = np.random.default_rng(seed)
    inst = random_instance(seed, shape="chain", n=int(rng.integers(3, 10)), servers=int(rng.integers(1, 4)))
    w = (float(rng.uniform(0.1, 20.0)), float(rng.uniform(0.0, 2.0)))
    levels = seed % 3 != 0
    kw = dict(objective="weighted", w_time_per_s=w[0], w_energy_per_j=w[1], levels=levels)
    try:
        milp = solve(inst, use_dp=False, **kw)
    except ValueError:
        with pytest.raises(ValueError):
            solve(inst, **kw)
        return
    dp = solve(inst, **kw)
    assert dp.method == "exact-dp" and _close(dp.weighted_cost, milp.weighted_cost, 1e-9)


@pytest.mark.parametrize("seed", range(40))
def test_weighted_relaxed_is_feasible_and_not_below_exact(seed: int) -> None:
    inst = random_instance(seed, levels2=True)
    if not _feasible(inst):
        return
    w = _weights(seed)
    kw = dict(objective="weighted", w_time_per_s=w[0], w_energy_per_j=w[1])
    ex = solve(inst, **kw)
    rel = solve(inst, mode="relaxed", exact=ex, **kw)
    assert rel.status == "relaxed" and rel.objective == "weighted"
    assert rel.weighted_cost >= ex.weighted_cost * (1 - 1e-9)
    assert rel.gap_vs_exact == pytest.approx((rel.weighted_cost - ex.weighted_cost) / ex.weighted_cost)
    _assert_engine(inst, rel)


def test_weighted_extremes_are_the_lexicographic_ends() -> None:
    """w_E = 0 gives the minimum makespan over levels (= phase 1's T*); w_T = 0 the least
    energy with no latency bound (= phase 2 with a huge deadline)."""
    inst = random_instance(3, shape="diamond", n=5, servers=2, levels2=True, roomy=True)
    lex = solve(inst, phase2=False, use_dp=False)
    fast = solve(inst, objective="weighted", w_time_per_s=1.0, w_energy_per_j=0.0)
    assert _close(fast.makespan_s, lex.makespan_s)
    loose = solve(inst, deadline_s=1e6 * lex.makespan_s, use_dp=False)
    cheap = solve(inst, objective="weighted", w_time_per_s=0.0, w_energy_per_j=1.0)
    assert _close(cheap.energy_j, loose.energy_j)
    assert cheap.weighted_cost == evaluate(inst, cheap.placement).energy_j


@pytest.mark.parametrize("kw, match", [
    (dict(objective="weighted"), "w_time_per_s"),
    (dict(objective="weighted", w_time_per_s=1.0), "w_energy_per_j"),
    (dict(objective="weighted", w_time_per_s=-1.0, w_energy_per_j=1.0), "w_time_per_s"),
    (dict(objective="weighted", w_time_per_s=1.0, w_energy_per_j=float("nan")), "w_energy_per_j"),
    (dict(objective="weighted", w_time_per_s=0.0, w_energy_per_j=0.0), "both are 0"),
    (dict(objective="weighted", w_time_per_s=1.0, w_energy_per_j=1.0, deadline_s=1.0), "lexicographic"),
    (dict(w_time_per_s=1.0), "objective='weighted'"),
    (dict(objective="pareto"), "objective must be"),
])
def test_weighted_arguments(kw, match) -> None:
    inst = random_instance(0, roomy=True)
    with pytest.raises(ValueError, match=match):
        solve(inst, **kw)


def test_brute_force_weighted_arguments() -> None:
    inst = random_instance(0, roomy=True)
    with pytest.raises(ValueError, match="w_time_per_s"):
        brute_force(inst, "weighted", w_energy_per_j=1.0)


def test_env_weighted_reference_is_the_weighted_optimum() -> None:
    """``envs.reference.deaoff_reference_result(objective="weighted")`` returns the weighted optimum (brute force)
    and the engine's figures of its placement."""
    from envs.reference import deaoff_reference_result

    inst = _chain_instance(501)
    w = (2.0, 0.5)
    placement, res = deaoff_reference_result(inst, objective="weighted", w_time_per_s=w[0], w_energy_per_j=w[1])
    r = evaluate(inst, placement)
    assert (res.makespan_s, res.energy_j) == (r.makespan_s, r.energy_j)
    _, best = brute_force(inst, "weighted", w_time_per_s=w[0], w_energy_per_j=w[1])
    assert _close(_c(res, w), _c(best, w))
    with pytest.raises(ValueError, match="both are 0"):
        deaoff_reference_result(inst, objective="weighted", w_time_per_s=0.0, w_energy_per_j=0.0)
