"""The multi-user system model: N devices sharing K edge servers, costed by the one engine.

Each active user (one generation request on one phone) has its own model, prompt, hardware
profile, distances and channel; the K edge servers and their cells are shared.  A user's
decision for a token step is a *split*: ``(p, k)`` runs nodes 0..p-1 (priority order, a
topological order) on its phone and nodes p..n-1 on server k; ``(n, 0)`` runs everything on
the phone (:data:`ALL_DEVICE` server index 0).

How users couple (per token step, all users in lock-step: every active user places and
runs one token per step, a prefill counting as one step):

* **Batch.**  Every layer that users offload to a batched server in the same step joins
  that server's continuous-batching step (:mod:`core.load`): user u's layer i at server k
  is batched with the scenario's B background users (each doing u's work: the
  single-user assumption) and with every other user *of the same model* that runs
  layer i at k this step (split p_v ≤ i), each charged its OWN work of that layer
  (its FLOPs and its per-user bytes, :func:`core.load.member_bytes`): a decode batched
  with a prefill waits for the prefill's FLOPs, a prefill batched with decodes pays only
  their small extra work.  Continuous batching only batches one model's weights, so the
  server round-robins between the model groups present (any layer at k): each of the G
  groups gets 1/G of its FLOP/s and bandwidth.  A time-sliced server is
  processor-shared: each of its U_k users gets (1−ρ)/U_k of it.
* **Uplink.**  Each server's cell splits its uplink bandwidth equally among the users
  transmitting to it in the step (an equal-share frequency-division scheduler, our
  modelling choice; documented in docs/multi-user.md): a user at server k gets bandwidth W_k/U_k
  and its Shannon rate on that share (:func:`core.system.shannon_rate_bps`).  A user
  placing layers on k always uploads to k (the token ids or activations), so the users
  transmitting in cell k are exactly the U_k users at k.  Downlinks and the backhaul are
  not shared (a modelling choice).
* **Memory.**  A server holds each model's weights once per (model, layer) resident on
  it, plus every user's KV caches, plus the scenario's background users' caches:
  Σ distinct weights + Σ_u KV_u + B_bg·KV_bg ≤ capacity.  User u's instance gets the
  capacity left after the others (with the weights it shares with them taken off their
  side), so the engine's per-user memory check holds exactly when the joint one does.

Fixed-point / ordering assumption: the batch composition, the group count and the cell
share of a step come from this step's decisions (all users' layers at a server are taken
to run in the same batch steps, and all its uploaders to transmit at the same time — a
pessimistic bound when their schedules do not overlap).  Nothing iterates: a user's
cost is a function of the others' decisions, evaluated once.

Engine.  :meth:`MultiUserSystem.instance` builds, for user u, a :class:`core.instance.Instance`
whose snapshot reflects the others' decisions (the 1/G or 1/U share, the bandwidth share,
the memory left) and whose batched server times carry the batch members' work, and
:meth:`MultiUserSystem.evaluate` costs it with :func:`core.cost.evaluate`.  With one user
every coupling term is neutral (B = B_bg, G = U = 1, full bandwidth, full capacity), so
the snapshot equals ``make_snapshot`` of the user's scenario and the result equals the
single-user engine's exactly.

Objective (``objective``): ``weighted``, C_u = w_T·T_u + w_E·E_u; or ``slo``, C_u = E_u +
``slo_penalty_j``·[T_u > target_u], target_u the TTFT target for a prefill and the TPOT
target for a decode token — the rule of the single-user environments
(``envs/objective.py``, restated here because the core imports nothing above it; a test
asserts the two agree).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np

from .cost import MEM_TOL, Result, evaluate, fits_memory, weighted_cost
from .instance import Instance
from .load import batched_step_time_s, member_bytes
from .models import load_model_spec
from .system import Scenario, SystemSnapshot, make_snapshot
from .tokens import TokenModel

ALL_DEVICE = 0
OBJECTIVES = ("weighted", "slo")
"""Server index of the all-device decision ``(n, 0)``."""

Decision = tuple[int, int]
"""(split p, server k): nodes < p on the device, nodes >= p on server k (1..K); (n, 0) all device."""


@dataclass
class UserConfig:
    """One request: its model, prompt, output length, phone and where it stands."""

    model: str = "gpt2"
    """Model preset name or config.json path."""
    prompt_len: int = 64
    new_tokens: int = 16
    """Decode tokens after the prefill (the request lasts 1 + new_tokens steps)."""
    device_hardware: str | None = None
    """Phone hardware profile (``configs/hardware``); None: the scenario's device."""
    distance_scale: float = 1.0
    """This user's distance to every server = scenario distance × this factor."""
    weight_dtype: str = "fp16"
    granularity: str = "block"

    def __post_init__(self) -> None:
        for key in ("prompt_len",):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"user.{key} must be an integer >= 1, got {v!r}")
        if isinstance(self.new_tokens, bool) or not isinstance(self.new_tokens, int) or self.new_tokens < 0:
            raise ValueError(f"user.new_tokens must be an integer >= 0, got {self.new_tokens!r}")
        if not (isinstance(self.distance_scale, (int, float)) and math.isfinite(self.distance_scale)
                and self.distance_scale > 0):
            raise ValueError(f"user.distance_scale must be finite and > 0, got {self.distance_scale!r}")

    @property
    def model_key(self) -> tuple[str, str, str]:
        """Users with equal keys share weights and batch together."""
        return (self.model, self.weight_dtype, self.granularity)


_TOKEN_MODELS: dict[tuple, TokenModel] = {}


def token_model(cfg: UserConfig, nominal: SystemSnapshot) -> TokenModel:
    """The (cached) per-token instance builder of a user's model and prompt length."""
    key = (cfg.model_key, cfg.prompt_len, nominal.num_locations)
    tm = _TOKEN_MODELS.get(key)
    if tm is None:
        tm = TokenModel(load_model_spec(cfg.model), cfg.granularity, cfg.prompt_len, nominal,
                        weight_dtype=cfg.weight_dtype)
        if len(_TOKEN_MODELS) > 256:
            _TOKEN_MODELS.clear()
        _TOKEN_MODELS[key] = tm
    return tm


class User:
    """One active request: its scenario (own phone, own distances), token position, channel
    and cache locations.  ``context`` None is the prefill step."""

    def __init__(self, cfg: UserConfig, scenario: Scenario, *, fading_power: Sequence[float] | None = None,
                 shadowing_db: Sequence[float] | None = None, include_prefill: bool = True) -> None:
        self.cfg = cfg
        m = scenario.num_servers
        device = scenario.device
        if cfg.device_hardware is not None:
            device = dataclasses.replace(device, hardware=cfg.device_hardware, freqs_hz=None, flops_per_cycle=None,
                                         mem_bw_bytes_per_s=None, mem_capacity_bytes=None, kappa=None,
                                         idle_power_w=None, flops_fraction=None, mem_bw_fraction=None)
        self.scenario = dataclasses.replace(scenario, device=device)
        self.distances_km = [s.distance_km * cfg.distance_scale for s in scenario.servers]
        self.fading_power = [1.0] * m if fading_power is None else [float(x) for x in fading_power]
        self.shadowing_db = [0.0] * m if shadowing_db is None else [float(x) for x in shadowing_db]
        if len(self.fading_power) != m or len(self.shadowing_db) != m:
            raise ValueError(f"fading_power and shadowing_db need one entry per server ({m})")
        self.nominal = make_snapshot(self.scenario, distances_km=self.distances_km)
        self.tm = token_model(cfg, self.nominal)
        self.n = self.tm.num_nodes
        self.context: int | None = None if include_prefill else cfg.prompt_len + 1
        self.steps_done = 0
        self.total_steps = cfg.new_tokens + (1 if include_prefill else 0)
        self.kv_loc = [-1] * self.n
        self._views: dict[Hashable, SystemSnapshot] = {}
        self._insts: dict[Hashable, Instance] = {}
        self.refresh()

    @property
    def done(self) -> bool:
        return self.steps_done >= self.total_steps

    def refresh(self) -> None:
        """Rebuild this step's token instance (nominal snapshot; memory figures only) and
        drop the cached views (the channel or the token changed)."""
        self.token = self.tm.instance(self.context, self.nominal, self.kv_loc)
        self._views.clear()
        self._insts.clear()

    def advance(self, decision: Decision) -> None:
        """After a step: caches live where their nodes ran; one more token in the context."""
        loc = placement_of(self.n, decision)
        self.kv_loc = [loc[i] if self.tm.kv_per_token[i] > 0 else -1 for i in range(self.n)]
        self.context = self.cfg.prompt_len + 1 if self.context is None else self.context + 1
        self.steps_done += 1
        if not self.done:
            self.refresh()

    def set_channel(self, fading_power: Sequence[float], shadowing_db: Sequence[float] | None = None) -> None:
        self.fading_power = [float(x) for x in fading_power]
        if shadowing_db is not None:
            self.shadowing_db = [float(x) for x in shadowing_db]
        self._views.clear()
        self._insts.clear()

    # ------------------------------------------------------------------ coupled view
    @property
    def prefill(self) -> bool:
        """Whether this step is the request's prefill."""
        return self.context is None

    def view_instance(self, coupling: Sequence[tuple[int, int]]) -> Instance:
        """This step's instance on :meth:`view` (alone capacities), cached."""
        key = tuple(coupling)
        inst = self._insts.get(key)
        if inst is None:
            inst = self._insts[key] = self.token.with_token_state(self.view(coupling))
        return inst

    def view(self, coupling: Sequence[tuple[int, int]]) -> SystemSnapshot:
        """This user's snapshot (capacities: alone; batches: alone) when at server k there
        are, besides this user, ``coupling[k-1] = (others o, model groups g)`` with g
        counting this user's model.  For a server this user does not use, the view is what
        it would get by joining it."""
        key = tuple(coupling)
        snap = self._views.get(key)
        if snap is not None:
            return snap
        scen = self.scenario
        servers = [dataclasses.replace(s, uplink_bandwidth_hz=s.uplink_bandwidth_hz / (o + 1)) if o else s
                   for s, (o, _) in zip(scen.servers, coupling)]
        base = make_snapshot(dataclasses.replace(scen, servers=servers) if servers != scen.servers else scen,
                             fading_power=self.fading_power, shadowing_db=self.shadowing_db,
                             distances_km=self.distances_km)
        if any(o for o, _ in coupling):
            flops, bw = list(base.server_flops_per_s), list(base.server_mem_bw_bytes_per_s)
            for k, (o, g) in enumerate(coupling):
                share = g if base.server_load_model[k] == "batched" else o + 1
                flops[k] /= share
                bw[k] /= share
            base = dataclasses.replace(base, server_flops_per_s=flops, server_mem_bw_bytes_per_s=bw)
        self._views[key] = base
        return base


def placement_of(n: int, decision: Decision) -> list[int]:
    """Node locations of a split decision."""
    p, k = decision
    return [0] * p + [k] * (n - p)


def check_decision(user: User, decision: Decision, num_servers: int) -> None:
    p, k = decision
    if not (isinstance(p, (int, np.integer)) and isinstance(k, (int, np.integer))):
        raise ValueError(f"decision must be two integers (split, server), got {decision!r}")
    if p == user.n:
        if k != ALL_DEVICE:
            raise ValueError(f"all-device decision must be ({user.n}, 0), got {decision!r}")
    elif not (0 <= p < user.n and 1 <= k <= num_servers):
        raise ValueError(f"decision {decision!r}: split must be 0..{user.n} and server 1..{num_servers}")


@dataclass
class JointResult:
    """Per-user results of one step's joint decision, with the objective's costs."""

    results: list[Result]
    costs: list[float]
    """C_u per user under the system's objective."""
    memory_used_bytes: list[float]
    users_at: list[int]
    instances: list[Instance] = field(default_factory=list)
    violations: list[bool] = field(default_factory=list)
    """Per user: its token misses its latency target (TTFT / TPOT), whatever the objective."""

    @property
    def total_cost(self) -> float:
        return float(sum(self.costs))


def fairness(costs: Sequence[float]) -> dict[str, float]:
    """Mean, 95th percentile (linear interpolation) and Jain's index (Σx)²/(n·Σx²) of a cost
    distribution (R. Jain, D.-M. Chiu, W. R. Hawe, "A Quantitative Measure of Fairness and
    Discrimination for Resource Allocation in Shared Computer Systems", DEC Research Report
    TR-301, 1984, http://www.cse.wustl.edu/~jain/papers/fairness.htm): 1 when all are equal,
    1/n when one user bears everything."""
    x = np.asarray(costs, dtype=float)
    if x.size == 0:
        raise ValueError("fairness needs at least one cost")
    sq = float(np.sum(x * x))
    jain = 1.0 if sq == 0 else float(np.sum(x) ** 2 / (x.size * sq))
    return {"mean": float(np.mean(x)), "p95": float(np.percentile(x, 95)), "jain": jain}


class MultiUserSystem:
    """The shared edge for one step: the scenario's servers and the active users."""

    def __init__(self, scenario: Scenario, users: Sequence[User], *, w_time_per_s: float = 1.0,
                 w_energy_per_j: float = 1.0, objective: str = "weighted", ttft_target_s: float = 0.2,
                 tpot_target_s: float = 0.05, slo_penalty_j: float = 1.0) -> None:
        if not users:
            raise ValueError("a multi-user system needs at least one user")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        for key, v in (("w_time_per_s", w_time_per_s), ("w_energy_per_j", w_energy_per_j),
                       ("slo_penalty_j", slo_penalty_j)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{key} must be finite and >= 0, got {v!r}")
        for key, v in (("ttft_target_s", ttft_target_s), ("tpot_target_s", tpot_target_s)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{key} must be finite and > 0, got {v!r}")
        self.scenario = scenario
        self.users = list(users)
        self.K = scenario.num_servers
        self.w_time_per_s = float(w_time_per_s)
        self.w_energy_per_j = float(w_energy_per_j)
        self.objective = objective
        self.ttft_target_s = float(ttft_target_s)
        self.tpot_target_s = float(tpot_target_s)
        self.slo_penalty_j = float(slo_penalty_j)
        # capacity for the explicit users: memory minus the background users' caches
        self.capacity_bytes = [float(c) for c in users[0].nominal.mem_capacity_bytes[1:]]

    # ------------------------------------------------------------------ decisions
    def options(self, u: int) -> list[Decision]:
        """Every decision of user u whose device part fits its phone and whose server is up
        and could hold the rest alone (the others may still make it infeasible)."""
        user = self.users[u]
        inst = user.token
        need = inst.mem_need
        prefix = np.concatenate([[0.0], np.cumsum(need)])
        dev_cap = user.nominal.mem_capacity_bytes[0]
        out: list[Decision] = []
        for p in range(user.n):
            if not fits_memory(prefix[p], dev_cap):
                break
            for k in range(1, self.K + 1):
                if user.nominal.server_up[k - 1] and fits_memory(prefix[-1] - prefix[p], self.capacity_bytes[k - 1]):
                    out.append((p, k))
        if fits_memory(prefix[-1], dev_cap):
            out.append((user.n, ALL_DEVICE))
        if not out:
            raise ValueError(f"user {u} ({user.cfg.model}) has no feasible split: the device holds "
                             f"{dev_cap / 1e9:.3f} GB and the model needs {prefix[-1] / 1e9:.3f} GB")
        return out

    def coupling(self, u: int, decisions: Sequence[Decision | None]) -> list[tuple[int, int]]:
        """Per server, (other users, model groups incl. u's) at it; users whose decision is
        None are absent."""
        me = self.users[u].cfg.model_key
        out = []
        for k in range(1, self.K + 1):
            others = 0
            groups = {me}
            for v, d in enumerate(decisions):
                if v == u or d is None or d[1] != k:
                    continue
                others += 1
                groups.add(self.users[v].cfg.model_key)
            out.append((others, len(groups)))
        return out

    def batch_members(self, u: int, decision: Decision, decisions: Sequence[Decision | None]
                      ) -> list[tuple[int, int]]:
        """The other users batched with u's layers at its decision's server: (v, p_v) for
        every other user of u's model at that server (batched servers; [] otherwise).  User
        v joins u's layer i when p_v ≤ i."""
        p, k = decision
        if k == ALL_DEVICE or self.users[u].nominal.server_load_model[k - 1] != "batched":
            return []
        me = self.users[u].cfg.model_key
        return [(v, d[0]) for v, d in enumerate(decisions)
                if v != u and d is not None and d[1] == k and self.users[v].cfg.model_key == me]

    def member_work(self, v: int) -> tuple[list[float], list[float]]:
        """User v's own work per layer as a batch member: (FLOPs, :func:`core.load.member_bytes`)."""
        tok = self.users[v].token
        return list(tok.flops), [member_bytes(w, m) for w, m in zip(tok.weight_bytes, tok.mem_bytes)]

    def _batched(self, u: int, inst: Instance, decision: Decision, members: Sequence[tuple[int, int]]) -> Instance:
        """``inst`` with u's server times at its decision's server re-priced for a batch
        step shared with ``members`` (each charged its own work, :mod:`core.load`)."""
        if not members:
            return inst
        p, k = decision
        out = copy.copy(inst)
        out.srv_time = [list(row) for row in inst.srv_time]
        snap, tok = inst.system, inst
        works = [(q, self.member_work(v)) for v, q in members]
        for i in range(p, inst.num_nodes):
            f_o = sum(w[0][i] for q, w in works if q <= i)
            b_o = sum(w[1][i] for q, w in works if q <= i)
            if f_o or b_o:
                out.srv_time[i][k - 1] = batched_step_time_s(
                    tok.flops[i], tok.weight_bytes[i], tok.mem_bytes[i], snap.server_background_users[k - 1],
                    snap.server_flops_per_s[k - 1], snap.server_mem_bw_bytes_per_s[k - 1],
                    others_flops=f_o, others_bytes=b_o)
        return out

    def users_at(self, decisions: Sequence[Decision | None]) -> list[int]:
        return [sum(1 for d in decisions if d is not None and d[1] == k) for k in range(1, self.K + 1)]

    def _resident(self, decisions: Sequence[Decision | None], skip: int = -1) -> list[dict[tuple, float]]:
        """Per server, {(model key, node name): weight bytes} resident, and KV under key None."""
        res: list[dict[tuple, float]] = [dict() for _ in range(self.K)]
        for v, d in enumerate(decisions):
            if v == skip or d is None or d[1] == ALL_DEVICE:
                continue
            user, k = self.users[v], d[1] - 1
            inst, key = user.token, user.cfg.model_key
            kv = 0.0
            for i in range(d[0], user.n):
                res[k][(key, inst.names[i])] = inst.weight_bytes[i]
                kv += inst.kv_bytes[i]
            res[k][("kv", v)] = kv
        return res

    def memory_used(self, decisions: Sequence[Decision | None], skip: int = -1) -> list[float]:
        """Bytes held at each server by the users' decisions (shared weights once), without
        user ``skip``."""
        return [float(sum(r.values())) for r in self._resident(decisions, skip)]

    def extra_memory(self, u: int, decision: Decision, decisions: Sequence[Decision | None]) -> float:
        """Bytes user u adds at its decision's server given the others' ``decisions``
        (weights another user of its model already holds there are free)."""
        p, k = decision
        if k == ALL_DEVICE:
            return 0.0
        user = self.users[u]
        res = self._resident(decisions, skip=u)[k - 1]
        key, inst = user.cfg.model_key, user.token
        return float(sum(inst.kv_bytes[i] + (0.0 if (key, inst.names[i]) in res else inst.weight_bytes[i])
                         for i in range(p, user.n)))

    def fits_all(self, k: int, options: Sequence[Sequence[Decision]]) -> bool:
        """Whether server k holds every user at once with its most memory-hungry option
        there (``options[u]``: user u's options at k; the smallest split holds the most):
        then memory at k cannot bind."""
        decisions = [min(ds, key=lambda d: d[0]) if ds else None for ds in options]
        return fits_memory(self.memory_used(decisions)[k - 1], self.capacity_bytes[k - 1])

    def fitting_options(self, u: int, decisions: Sequence[Decision | None]) -> list[Decision]:
        """The options of user u that fit beside the others' ``decisions`` (u's own entry is
        ignored): :meth:`fits` for every option at once, in O(users·nodes + options)."""
        user, inst, key = self.users[u], self.users[u].token, self.users[u].cfg.model_key
        resident = self._resident(decisions, skip=u)
        used = [float(sum(r.values())) for r in resident]
        out = []
        extra: dict[int, list[float]] = {}
        for k in range(1, self.K + 1):
            acc, res = [0.0] * (user.n + 1), resident[k - 1]
            for i in range(user.n - 1, -1, -1):
                acc[i] = acc[i + 1] + inst.kv_bytes[i] + (0.0 if (key, inst.names[i]) in res else inst.weight_bytes[i])
            extra[k] = acc
        for d in self.options(u):
            p, k = d
            if k == ALL_DEVICE or fits_memory(used[k - 1] + extra[k][p], self.capacity_bytes[k - 1]):
                out.append(d)
        return out

    def fits(self, u: int, decision: Decision, decisions: Sequence[Decision | None]) -> bool:
        """Whether user u's decision fits its server beside the others' ``decisions``."""
        p, k = decision
        if k == ALL_DEVICE:
            return True
        used = self.memory_used(decisions, skip=u)[k - 1]
        return fits_memory(used + self.extra_memory(u, decision, decisions), self.capacity_bytes[k - 1])

    # ------------------------------------------------------------------ engine
    def instance(self, u: int, decisions: Sequence[Decision | None], *, memory: bool = True) -> Instance:
        """User u's instance for this step (``decisions[u]`` its own decision), its snapshot
        reflecting the others' decisions and its batched server times the batch members'
        work; ``memory``: server capacities are what the others leave (else the alone
        capacities)."""
        user = self.users[u]
        mine = decisions[u]
        members = [] if mine is None else self.batch_members(u, mine, decisions)
        snap = user.view(self.coupling(u, decisions))
        if not memory:
            return self._batched(u, user.view_instance(self.coupling(u, decisions)), mine, members)
        if memory:
            used = self.memory_used(decisions)
            own = self.memory_used([d if v == u else None for v, d in enumerate(decisions)])
            caps = [snap.mem_capacity_bytes[0]]
            for k in range(self.K):
                left = snap.mem_capacity_bytes[k + 1] - (used[k] - own[k])
                if left < 0.0:
                    if not fits_memory(used[k] - own[k], snap.mem_capacity_bytes[k + 1]):
                        raise ValueError(f"memory exceeded at edge{k + 1}: the other users hold "
                                         f"{(used[k] - own[k]) / 1e9:.3f} GB of its "
                                         f"{snap.mem_capacity_bytes[k + 1] / 1e9:.3f} GB")
                    left = 0.0  # within the memory tolerance (float rounding of the sums)
                caps.append(left)
            snap = dataclasses.replace(snap, mem_capacity_bytes=caps)
        return self._batched(u, user.token.with_token_state(snap), mine, members)

    def target_s(self, u: int) -> float:
        """User u's latency target this step: TTFT for its prefill, TPOT for a decode token."""
        return self.ttft_target_s if self.users[u].prefill else self.tpot_target_s

    def violated(self, u: int, res: Result) -> bool:
        return res.makespan_s > self.target_s(u)

    def cost(self, res: Result, u: int = 0) -> float:
        """C_u of user u's result under the objective (module docstring)."""
        if self.objective == "weighted":
            return weighted_cost(res.makespan_s, res.energy_j, w_time_per_s=self.w_time_per_s,
                                 w_energy_per_j=self.w_energy_per_j)
        return res.energy_j + (self.slo_penalty_j if self.violated(u, res) else 0.0)

    def check(self, decisions: Sequence[Decision]) -> None:
        """ValueError naming the first bad decision or the first server whose memory the
        joint decision exceeds."""
        if len(decisions) != len(self.users):
            raise ValueError(f"{len(decisions)} decisions for {len(self.users)} users")
        for u, d in enumerate(decisions):
            check_decision(self.users[u], d, self.K)
        used = self.memory_used(decisions)
        for k in range(self.K):
            if not used[k] <= self.capacity_bytes[k] * MEM_TOL:
                raise ValueError(f"memory exceeded at edge{k + 1}: shared weights + caches need "
                                 f"{used[k] / 1e9:.3f} GB, capacity {self.capacity_bytes[k] / 1e9:.3f} GB")

    def evaluate(self, decisions: Sequence[Decision], *, check: bool = True, record: bool = False) -> JointResult:
        """Cost every user's token under the joint decision (one ``core.cost.evaluate`` each)."""
        decisions = [(int(p), int(k)) for p, k in decisions]
        if check:
            self.check(decisions)
        results, costs, insts = [], [], []
        for u, d in enumerate(decisions):
            inst = self.instance(u, decisions, memory=check)
            res = evaluate(inst, placement_of(self.users[u].n, d), record=record, check=check)
            results.append(res)
            costs.append(self.cost(res, u))
            insts.append(inst)
        return JointResult(results, costs, self.memory_used(decisions), self.users_at(decisions), insts,
                           [self.violated(u, r) for u, r in enumerate(results)])

    def option_result(self, u: int, decision: Decision, decisions: Sequence[Decision | None]) -> Result:
        """User u's result of ``decision`` beside the others' ``decisions`` (u's own entry is
        ignored; no memory check): the solvers' hot path, cached per coupling."""
        user = self.users[u]
        trial = list(decisions)
        trial[u] = decision
        inst = self._batched(u, user.view_instance(self.coupling(u, trial)), decision,
                             self.batch_members(u, decision, trial))
        return evaluate(inst, placement_of(user.n, decision), record=False, check=False)

    def option_cost(self, u: int, decision: Decision, decisions: Sequence[Decision | None]) -> float:
        """C_u of one decision beside the others' ``decisions`` (no memory check)."""
        return self.cost(self.option_result(u, decision, decisions), u)

    def alone_cost(self, u: int, decision: Decision) -> float:
        """C_u as if user u were alone on the edge."""
        return self.option_cost(u, decision, [None] * len(self.users))
