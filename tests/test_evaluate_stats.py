"""The statistics of ``evaluate.py agents`` on hand-made token records (golden values)."""
from __future__ import annotations

import math

import pytest
from scipy import stats

from deaoff_cli.evaluate_agents import _agent_summary, _agent_markdown


def _records(costs: dict[str, list[float]]) -> list[dict]:
    """One token per episode, its cost given; latency 1 ms, energy 1 mJ, SLO met."""
    out = []
    for method, per_ep in costs.items():
        for ep, c in enumerate(per_ep):
            out.append({"method": method, "episode": ep, "token": 0, "context": 17, "latency_s": 1e-3,
                        "energy_j": 1e-3, "cost": c, "slo_violation": method == "agent", "fallback": False})
    return out


COSTS = {"agent": [0.9, 1.8, 3.0, 4.0, 4.5], "myopic-optimum": [1.0, 2.0, 3.0, 4.0, 5.0],
         "lookahead": [0.95, 1.9, 3.0, 4.1, 5.0], "random": [0.1, 0.1, 0.1, 0.1, 0.1]}


def test_pooled_ratio_paired_test_and_gap():
    """Pooled ratios: agent 14.2/15 = 0.94667, lookahead 14.95/15 = 0.99667 (the best
    non-learned baseline; random never is).  Agent - lookahead per-episode ratio
    differences: -0.05, -0.05, 0, -0.025, -0.1: 4 wins, 1 tie, 0 losses.  Clairvoyant
    costs summing to 13.95: gap closed = (14.95 - 14.2) / (14.95 - 13.95) = 0.75."""
    clair = {0: 0.9, 1: 1.75, 2: 2.8, 3: 4.0, 4: 4.5}
    s = _agent_summary(_records(COSTS), list(COSTS), 10.0, learned=["agent"], clairvoyant=clair, bootstrap=500)
    assert s["best_baseline"] == "lookahead"
    agent = s["methods"]["agent"]
    assert agent["cost_vs_myopic_pooled"] == pytest.approx(14.2 / 15)
    assert s["methods"]["lookahead"]["cost_vs_myopic_pooled"] == pytest.approx(14.95 / 15)
    lo, hi = agent["cost_vs_myopic_pooled_ci95"]
    assert lo <= 14.2 / 15 <= hi
    ratios = [0.9, 0.9, 1.0, 1.0, 0.9]
    assert agent["cost_vs_myopic_mean"] == pytest.approx(sum(ratios) / 5)
    vs = agent["vs_best_baseline"]
    diffs = [-0.05, -0.05, 0.0, -0.025, -0.1]
    assert (vs["wins"], vs["ties"], vs["losses"]) == (4, 1, 0)
    assert vs["mean_diff"] == pytest.approx(sum(diffs) / 5)
    assert vs["wilcoxon_p"] == pytest.approx(stats.wilcoxon([d for d in diffs if d]).pvalue)
    assert agent["clairvoyant_gap_closed"] == pytest.approx(0.75)
    assert agent["slo_violations"] == 5 and s["methods"]["lookahead"]["slo_violations"] == 0
    assert "vs_best_baseline" not in s["methods"]["lookahead"]
    text = _agent_markdown({**s, "episodes": 5})
    assert "| agent |" in text and "4/1/0" in text and "(best)" in text


def test_bootstrap_is_seeded():
    a = _agent_summary(_records(COSTS), list(COSTS), 10.0, learned=["agent"], bootstrap=300, seed=1)
    b = _agent_summary(_records(COSTS), list(COSTS), 10.0, learned=["agent"], bootstrap=300, seed=1)
    assert a["methods"]["agent"]["cost_vs_myopic_pooled_ci95"] == b["methods"]["agent"]["cost_vs_myopic_pooled_ci95"]
    assert a["clairvoyant"] is None and "clairvoyant_gap_closed" not in a["methods"]["agent"]
    assert all(math.isfinite(x) for x in a["methods"]["agent"]["cost_vs_myopic_pooled_ci95"])
