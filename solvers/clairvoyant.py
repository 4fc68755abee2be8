"""A hindsight yardstick: the best plan sequence of an episode whose future is known.

Given the snapshot of every token of an episode (channel, load, outages, heat, coverage:
what :class:`core.dynamics.MECProcess` produced), :func:`clairvoyant_plan` finds, by
dynamic programming over tokens, the sequence of plans with the least episode cost

    C = Σ_t w_T·T_t + w_E·E_t      (:func:`core.cost.weighted_cost` of each token)

within a documented restricted class, and a lower bound on that optimum.

**The class: split plans.**  A plan is "the first p nodes (index order: the instance's
priority order, a topological order; for block granularity the chain embedding, block
1, ..., head) on the device, the rest on server k", p = 0..N, k = 1..M, with every DVFS
and transmit-power level at the highest (the engine's default); p = N is the single
all-device plan.  So there are N·M + 1 plans; a plan may change from token to token.

**Transitions.**  Each token is costed by the same engine and the same token builder as the
environment (:meth:`core.tokens.TokenModel.instance` and :func:`core.cost.evaluate`), with
the caches where the previous plan left them: after token t every node with a KV cache
holds it where it ran; a server that is down at token t+1 has lost the caches it held
(they are rebuilt where their nodes run next, the engine's ``lost`` rule).  A token's
cost therefore depends only on the previous plan and the present one, which makes the
DP exact for the class: V_t(s) = min_{s'} V_{t-1}(s') + c_t(s', s).  Plans that do not
fit the memory or use a server that is down cost +∞.

**The lower bound.**  LB = Σ_t min_{s' reachable, s} c_t(s', s): every token at its own
cheapest transition, as if each token could choose where the caches start (their moves
free).  Any plan sequence of the class pays, at token t, one of the transitions the
minimum ranges over, so LB ≤ V* ≤ the cost of any plan sequence of the class.  It bounds
the class, not every placement: a bound over every policy also needs each token's exact
optimum over all placements (the solver's weighted-sum mode with the caches moved for free).

**Speed.**  The engine's KV migrations form a serial phase before the token's computation
(:mod:`core.cost`), so a transition whose caches all survived costs exactly
c_t(s', s) = c*_t(s) + Σ_i m_t(i, a_i(s'), k_i(s)): the plan's cost with nothing to move
plus, per cache that moves, w_T·d + w_E·(E_tx + E_rx + P_idle·d) (d the migration's
duration; the idle power runs during the migration phase).  The DP prices those
transitions from one engine evaluation per plan and a table per token (vectorised), and
evaluates with the engine only the transitions that rebuild lost caches (after an outage
or a handover) and the first token; the chosen sequence is replayed by the engine and
must equal the DP's value (else RuntimeError).  ``fast=False`` evaluates everything.

**Exogenous future.**  The snapshots are taken as given.  Every random process of the
dynamics is independent of the plans (same seed ⇒ same future for every policy), so for
them the yardstick is exact; the thermal state is not (a plan that computes on the device
heats it), so with ``thermal`` on the DP plans against the heat of the episode it is given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.cost import DEVICE, Result, evaluate, placement_fits, weighted_cost
from core.instance import Placement
from core.system import SystemSnapshot
from core.tokens import TokenModel

__all__ = ["SplitPlan", "ClairvoyantResult", "split_plans", "episode_contexts", "episode_cost",
           "clairvoyant_plan"]


@dataclass(frozen=True)
class SplitPlan:
    """The first ``split`` nodes on the device, the rest on ``server`` (0 when split = N)."""

    split: int
    server: int

    def placement(self, num_nodes: int) -> list[int]:
        return [DEVICE] * self.split + [self.server] * (num_nodes - self.split)


def split_plans(num_nodes: int, num_servers: int) -> list[SplitPlan]:
    """The class, in a fixed order (ties go to the first): all-device, then (p, k) for
    p = 0..N−1, k = 1..M."""
    return [SplitPlan(num_nodes, DEVICE)] + [SplitPlan(p, k) for p in range(num_nodes)
                                             for k in range(1, num_servers + 1)]


def episode_contexts(prompt_len: int, new_tokens: int, include_prefill: bool = True) -> list[int | None]:
    """The context of every token of a request, as the environment numbers them: the prefill
    (None), then decode contexts prompt+1 .. prompt+new_tokens (without the prefill, the
    decode tokens only)."""
    if prompt_len < 1 or new_tokens < (0 if include_prefill else 1):
        raise ValueError(f"episode needs prompt_len >= 1 and a token to play, got {prompt_len}, {new_tokens}")
    return ([None] if include_prefill else []) + [prompt_len + t for t in range(1, new_tokens + 1)]


@dataclass
class ClairvoyantResult:
    plans: list[SplitPlan]
    """The best plan of every token."""
    cost: float
    """Its episode cost Σ w_T·T + w_E·E (the DP optimum over the class)."""
    token_costs: list[float]
    results: list[Result]
    """The engine's result of every token of the best sequence."""
    lower_bound: float
    """Σ_t of each token's cheapest transition: ≤ ``cost``."""
    token_bounds: list[float]
    num_nodes: int

    @property
    def placements(self) -> list[list[int]]:
        """The location of every node at every token."""
        return [p.placement(self.num_nodes) for p in self.plans]


class _Episode:
    """The token builder and the future of one episode; the cache bookkeeping of the env."""

    def __init__(self, tokens: TokenModel, snapshots: Sequence[SystemSnapshot], contexts: Sequence[int | None],
                 w_time_per_s: float, w_energy_per_j: float, initial_kv_loc: Sequence[int] | None) -> None:
        if len(snapshots) != len(contexts) or not snapshots:
            raise ValueError(f"need one snapshot per token: {len(snapshots)} snapshots for {len(contexts)} tokens")
        for name, w in (("w_time_per_s", w_time_per_s), ("w_energy_per_j", w_energy_per_j)):
            if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {w!r}")
        m = snapshots[0].num_locations - 1
        if any(s.num_locations - 1 != m for s in snapshots):
            raise ValueError("every snapshot must have the same servers")
        self.tokens, self.snapshots, self.contexts = tokens, list(snapshots), list(contexts)
        self.w_t, self.w_e = float(w_time_per_s), float(w_energy_per_j)
        n = tokens.num_nodes
        self.n, self.m = n, m
        self.has_kv = [kv > 0 for kv in tokens.kv_per_token]
        if initial_kv_loc is None:  # the env: no cache before a prefill, the prompt's on the device otherwise
            initial_kv_loc = [-1] * n if contexts[0] is None else [DEVICE if h else -1 for h in self.has_kv]
        self.initial_kv_loc = [int(k) for k in initial_kv_loc]
        if len(self.initial_kv_loc) != n:
            raise ValueError(f"initial_kv_loc must hold {n} locations")

    def caches_after(self, kv_loc: Sequence[int], loc: Sequence[int]) -> tuple[int, ...]:
        return tuple(loc[i] if self.has_kv[i] else kv_loc[i] for i in range(self.n))

    def arrive(self, t: int, kv_loc: Sequence[int]) -> tuple[tuple[int, ...], tuple[bool, ...]]:
        """The caches at the start of token t: those on a server that is down now are lost."""
        up = self.snapshots[t].server_up
        lost = tuple(k > 0 and not up[k - 1] for k in kv_loc)
        return tuple(-1 if l else k for k, l in zip(kv_loc, lost)), lost

    def token_cost(self, t: int, kv_loc: Sequence[int], lost: Sequence[bool], loc: Sequence[int],
                   inst=None) -> tuple[float, Result | None]:
        snap = self.snapshots[t]
        if any(k > 0 and not snap.server_up[k - 1] for k in loc):
            return math.inf, None
        if inst is None:
            inst = self.tokens.instance(self.contexts[t], snap, list(kv_loc), list(lost))
        if not placement_fits(inst, loc):
            return math.inf, None
        res = evaluate(inst, Placement(list(loc)), record=False, check=False)
        return weighted_cost(res.makespan_s, res.energy_j, w_time_per_s=self.w_t, w_energy_per_j=self.w_e), res


def episode_cost(tokens: TokenModel, snapshots: Sequence[SystemSnapshot], contexts: Sequence[int | None],
                 placements: Sequence[Sequence[int] | SplitPlan], *, w_time_per_s: float, w_energy_per_j: float,
                 initial_kv_loc: Sequence[int] | None = None) -> tuple[float, list[float]]:
    """Replay a sequence of placements (any placements, or split plans) on the episode, as the
    environment would: the episode cost and each token's cost (+∞ for a token whose
    placement uses a server that is down or does not fit)."""
    ep = _Episode(tokens, snapshots, contexts, w_time_per_s, w_energy_per_j, initial_kv_loc)
    if len(placements) != len(snapshots):
        raise ValueError(f"need one placement per token: {len(placements)} for {len(snapshots)} tokens")
    kv = tuple(ep.initial_kv_loc)
    costs = []
    for t, p in enumerate(placements):
        loc = p.placement(ep.n) if isinstance(p, SplitPlan) else [int(k) for k in p]
        kv_now, lost = ep.arrive(t, kv)
        c, _ = ep.token_cost(t, kv_now, lost, loc)
        costs.append(c)
        kv = ep.caches_after(kv_now, loc)
    return float(sum(costs)), costs


def clairvoyant_plan(tokens: TokenModel, snapshots: Sequence[SystemSnapshot], contexts: Sequence[int | None], *,
                     w_time_per_s: float, w_energy_per_j: float,
                     initial_kv_loc: Sequence[int] | None = None, fast: bool = True) -> ClairvoyantResult:
    """The best split-plan sequence for a known future, and a lower bound (module docstring).

    ``snapshots[t]`` and ``contexts[t]`` describe token t (context None: the prefill; see
    :func:`episode_contexts`); ``initial_kv_loc``: where the caches are before the first token
    (default: none before a prefill, on the device otherwise, as in the environment).
    ``fast``: price the transitions whose caches all survived by the engine's additive
    migration phase (module docstring, "Speed"); False evaluates every transition with the
    engine (the same optimum, |plans| times slower; kept for the tests).
    Raises ValueError when some token has no feasible plan.
    """
    ep = _Episode(tokens, snapshots, contexts, w_time_per_s, w_energy_per_j, initial_kv_loc)
    plans = split_plans(ep.n, ep.m)
    locs = [p.placement(ep.n) for p in plans]
    loc_arr = np.array(locs, dtype=int)  # plans x nodes
    kv_nodes = np.flatnonzero(ep.has_kv)
    # the state before token 0 is the initial caches; afterwards, the previous plan (index)
    value: dict[object, float] = {"init": 0.0}
    cache_of: dict[object, tuple[int, ...]] = {"init": tuple(ep.initial_kv_loc)}
    back: list[dict[int, object]] = []
    bounds: list[float] = []
    for t in range(len(snapshots)):
        # previous states that arrive with the same caches cost the same from here on: keep
        # the cheapest of each group
        groups: dict[tuple, tuple[float, object]] = {}
        for prev, v in value.items():
            key = ep.arrive(t, cache_of[prev])
            if key not in groups or v < groups[key][0]:
                groups[key] = (v, prev)
        costs: dict[tuple, np.ndarray] = {}
        intact = [key for key in groups if contexts[t] is not None and not any(key[1])
                  and all(key[0][i] >= 0 for i in kv_nodes)]
        if fast and intact:
            star, mig = _additive_parts(ep, t, locs, kv_nodes)
            kv_mat = np.array([key[0] for key in intact], dtype=int)  # groups x nodes
            # M[g, s] = Σ_i m[i, kv_g[i], loc_s[i]] over the nodes with a cache
            idx = kv_nodes
            m = mig[idx[None, None, :], kv_mat[:, None, idx], loc_arr[None, :, idx]].sum(axis=-1)
            for g, key in enumerate(intact):
                costs[key] = star + m[g]
        for key in groups:
            if key not in costs:
                kv_now, lost = key
                inst = tokens.instance(contexts[t], snapshots[t], list(kv_now), list(lost))
                costs[key] = np.array([ep.token_cost(t, kv_now, lost, loc, inst)[0] for loc in locs])
        new_value: dict[int, float] = {}
        new_back: dict[int, object] = {}
        best_step = math.inf
        for key, (v, prev) in sorted(groups.items(), key=lambda kv: (kv[1][0], str(kv[1][1]))):
            c = costs[key]
            finite = np.isfinite(c)
            if finite.any():
                best_step = min(best_step, float(c[finite].min()))
            for s in np.flatnonzero(finite):
                total = v + float(c[s])
                if total < new_value.get(int(s), math.inf):
                    new_value[int(s)], new_back[int(s)] = total, prev
        if not new_value:
            raise ValueError(f"token {t}: no split plan is feasible (servers down or memory) from any reachable state")
        bounds.append(best_step)
        back.append(new_back)
        value = new_value
        cache_of = {s: ep.caches_after(ep.arrive(t, cache_of[new_back[s]])[0], locs[s]) for s in new_value}
    # walk back
    s_best = min(value, key=lambda s: (value[s], s))
    seq: list[int] = []
    s: object = s_best
    for t in range(len(snapshots) - 1, -1, -1):
        seq.append(s)  # type: ignore[arg-type]
        s = back[t][s]  # type: ignore[index]
    seq.reverse()
    # re-cost the chosen sequence by replay (the engine has the last word)
    kv = tuple(ep.initial_kv_loc)
    token_costs, results = [], []
    for t, si in enumerate(seq):
        kv_now, lost = ep.arrive(t, kv)
        c, res = ep.token_cost(t, kv_now, lost, locs[si])
        token_costs.append(c)
        results.append(res)
        kv = ep.caches_after(kv_now, locs[si])
    total = float(sum(token_costs))
    if not math.isclose(total, value[s_best], rel_tol=1e-9, abs_tol=1e-12):
        raise RuntimeError(f"clairvoyant DP value {value[s_best]!r} differs from the engine's replay {total!r}")
    return ClairvoyantResult(plans=[plans[si] for si in seq], cost=total, token_costs=token_costs,
                             results=results, lower_bound=float(sum(bounds)), token_bounds=bounds,
                             num_nodes=ep.n)


def _additive_parts(ep: _Episode, t: int, locs: list[list[int]], kv_nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For decode token t: each plan's cost with no cache to move (c*, +∞ when infeasible),
    and the migration table m[i, a, k] = w_T·d + w_E·(E_tx + E_rx + P_idle·d) of moving node
    i's cache from a to k (d its duration, at the highest power level the plans use)."""
    snap = ep.snapshots[t]
    n = ep.n
    inst = ep.tokens.instance(ep.contexts[t], snap, [-1] * n, [False] * n)
    star = np.array([ep.token_cost(t, [-1] * n, [False] * n, loc, inst)[0] for loc in locs])
    q = len(snap.device.tx_powers_w) - 1
    dur, dev_j = inst.transfer_table(np.asarray(inst.kv_move_bytes, dtype=float))
    dur, dev_j = dur[..., q], dev_j[..., q]  # nodes x L x L
    mig = ep.w_t * dur + ep.w_e * (dev_j + snap.device.idle_power_w * dur)
    l = np.arange(mig.shape[1])
    mig[:, l, l] = 0.0  # no move
    mig[np.asarray(inst.kv_move_bytes) <= 0.0] = 0.0
    return star, mig
