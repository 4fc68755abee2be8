"""The joint MILP's batch-time formulation (solvers.joint): the tightened model returns
the optimum of the model it replaced, and its LP relaxation is a valid bound.

The replaced model (commit fa4091a) charged each user's batched server time as one
column τ[u,i] per user and layer with two big-M terms (u absent, group count G other
than g).  The current one charges G·(own time) on the option itself (x split over the
one-hot G_k) and only the batch mates' extra work through a column ε[u,i] with one big-M
per (user, layer, g).  Both are exact; the golden totals below are the replaced model's
optima on these seeded four-user steps (the three default models, prompts 16..256,
prefill or decode, distance factors 0.5..3, the ``multi-user`` scenario: two batched
edges), both objectives.  They move only if the system model's costs change."""
from __future__ import annotations

import numpy as np
import pytest

from core.multi import MultiUserSystem, User, UserConfig
from core.system import load_scenario
from solvers.joint import greedy_joint, solve_joint

MODELS = ("gpt2", "qwen2.5-0.5b", "llama-3.2-1b")

GOLDEN = {  # (seed, objective): Σ_u C_u at the optimum of the replaced formulation
    (0, "weighted"): 0.36571046223117526,  # llama decode, gpt2 decode, qwen prefill, llama prefill
    (0, "slo"): 1.2115458575143907,
    (3, "weighted"): 0.34138822892048876,  # llama decode + prefill, gpt2 decode + prefill
    (3, "slo"): 1.197425313451093,
    (4, "weighted"): 0.42200611138504496,  # llama prefill + decode, two gpt2 prefills
    (4, "slo"): 1.2434763810230949,
    (6, "weighted"): 0.3337792624202168,  # qwen prefill + decode, two gpt2 prefills
    (6, "slo"): 1.1946034491357476,
    (7, "weighted"): 0.3410972851545773,  # llama prefill, decode, prefill; gpt2 decode
    (7, "slo"): 1.1972695102027313,
}


def step(seed: int, objective: str, n: int = 4) -> MultiUserSystem:
    """One token step of ``n`` seeded users (every draw from default_rng(seed))."""
    rng = np.random.default_rng(seed)
    scen = load_scenario("multi-user")
    users = []
    for _ in range(n):
        user = User(UserConfig(model=MODELS[int(rng.integers(len(MODELS)))], prompt_len=int(rng.integers(16, 257)),
                               distance_scale=float(rng.uniform(0.5, 3.0))), scen,
                    include_prefill=bool(rng.integers(2)))
        users.append(user)
    return MultiUserSystem(scen, users, objective=objective, tpot_target_s=0.03)


@pytest.mark.parametrize("seed,objective", sorted(GOLDEN))
def test_optimum_is_the_replaced_formulations(seed, objective):
    system = step(seed, objective)
    sol = solve_joint(system)
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(GOLDEN[seed, objective], rel=1e-6)
    assert sol.objective <= greedy_joint(system).objective * (1 + 1e-9)
    relaxed = solve_joint(system, mode="relaxed")  # its LP bound is below the optimum
    assert relaxed.stats["lp_bound"] <= sol.objective * (1 + 1e-9)


def test_bench_joint_prints_its_table():
    """benchmarks/bench_joint.py runs end to end on tiny settings (timings not asserted);
    bad input exits 2 naming the option."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "benchmarks/bench_joint.py", "--users", "1,2", "--episodes", "1",
                           "--steps", "2"], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split(" | ") for line in proc.stdout.splitlines() if line.startswith(("| 1 | ", "| 2 | "))]
    assert len(rows) == 2
    assert all(r[1] == "2" and r[3] == "2" and r[4] == "0" for r in rows)  # 2 steps, both optimal
    bad = subprocess.run([sys.executable, "benchmarks/bench_joint.py", "--users", "0"], cwd=root,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--users" in bad.stderr
