"""Non-learned episode baselines that need the environment's objective: rule policies that
place the current token of an env (``env.unwrapped``) and are played with ``play_token``.

* :func:`all_edge_free_ends` — "all on the best server, re-place only the embedding and
  the head": for every server k that is up, the plan with every node on k except the
  embedding and head nodes, which each take the device or k, whichever combination costs
  least now; the cheapest over k (the scored objective, the engine's cost).
* :func:`one_step_lookahead` — among the myopic optimum's plan and all-on-server-k (every k
  up), the plan with the least present cost plus the remaining tokens' cost if that plan
  were kept under the present conditions, with the caches where it leaves them.  The
  remaining cost is the trapezoid rule over the next and the last decode token's costs
  (a decode token's cost is close to affine in its context: its KV bytes are).

Both use only the present snapshot (no future), as a deployed rule would.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Sequence

from core.cost import DEVICE, evaluate, placement_fits
from core.instance import Instance, Placement

__all__ = ["all_edge_free_ends", "one_step_lookahead", "present_cost", "BASELINES"]


def _allowed(inst: Instance, loc: Sequence[int]) -> bool:
    up = inst.system.server_up
    return all(k == DEVICE or up[k - 1] for k in loc) and placement_fits(inst, loc)


def present_cost(env: Any, inst: Instance, loc: Sequence[int], prefill: bool) -> float:
    """The scored objective's cost of ``loc`` on ``inst`` (+∞ when infeasible)."""
    if not _allowed(inst, loc):
        return math.inf
    res = evaluate(inst, Placement(list(loc)), record=False, check=False)
    return env.token_cost(res.makespan_s, res.energy_j, prefill)


def _ends(env: Any) -> list[int]:
    return [i for i, kind in enumerate(env.tokens.kinds) if kind in ("embed", "head")]


def all_edge_free_ends(env: Any) -> Placement:
    """Module docstring.  ValueError when no server can take the model now."""
    inst, prefill = env.inst, env.context is None
    n = inst.num_nodes
    ends = _ends(env)
    best: tuple[float, list[int]] | None = None
    for k in range(1, inst.num_locations):
        if not inst.system.server_up[k - 1]:
            continue
        for choice in itertools.product((k, DEVICE), repeat=len(ends)):
            loc = [k] * n
            for i, where in zip(ends, choice):
                loc[i] = where
            c = present_cost(env, inst, loc, prefill)
            if c < math.inf and (best is None or c < best[0]):
                best = (c, loc)
    if best is None:
        raise ValueError("all-edge-free-ends: no server that is up can hold the model now")
    return Placement(best[1])


def _kept_cost(env: Any, loc: Sequence[int]) -> float:
    """Remaining tokens' cost if ``loc`` were kept under the present snapshot (trapezoid)."""
    cfg = env.config
    left = env.num_tokens - env.token - 1
    if left <= 0:
        return 0.0
    kv = [loc[i] if kvb > 0 else k for i, (kvb, k) in enumerate(zip(env.tokens.kv_per_token, env.inst.kv_loc))]
    offset = 0 if cfg.include_prefill else 1
    first_ctx = cfg.prompt_len + env.token + 1 + offset
    last_ctx = cfg.prompt_len + env.num_tokens - 1 + offset
    lost = [False] * env.num_nodes
    costs = []
    for ctx in sorted({first_ctx, last_ctx}):
        inst = env.tokens.instance(ctx, env.snapshot, kv, lost)
        costs.append(present_cost(env, inst, loc, False))
    return left * (costs[0] + costs[-1]) / 2.0


def one_step_lookahead(env: Any) -> Placement:
    """Module docstring."""
    inst, prefill = env.inst, env.context is None
    n = inst.num_nodes
    candidates = [list(env.myopic_placement.loc)]
    candidates += [[k] * n for k in range(1, inst.num_locations) if inst.system.server_up[k - 1]]
    best: tuple[float, list[int]] | None = None
    myopic_loc = candidates[0]
    for loc in candidates:
        # the myopic plan at its own levels (DeAOff may lower them); the others at the highest
        now = env.cost(env.myopic[1], prefill) if loc is myopic_loc else present_cost(env, inst, loc, prefill)
        if now == math.inf:
            continue
        total = now + _kept_cost(env, loc)
        if best is None or total < best[0]:
            best = (total, loc)
    assert best is not None  # the myopic plan is always feasible
    return env.myopic_placement if best[1] is myopic_loc else Placement(best[1])


BASELINES = {"all-edge-free-ends": all_edge_free_ends, "lookahead": one_step_lookahead}
"""Episode baselines by name: ``fn(env.unwrapped) -> Placement`` for the current token."""
