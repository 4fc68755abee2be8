"""``MultiUserOffload-v0``: many phones sharing the edge, a PettingZoo ``ParallelEnv``.

``parallel_env(config=None, render_mode=None)`` returns the environment (PettingZoo's
convention).  One step is one token for every active request, in lock-step (a prefill is
one step); the system model is :mod:`core.multi` (shared batches, shared cell uplinks,
shared weights), costed by the single-user engine.

Agents.  Each request is one agent ``user_<i>`` (i = its arrival number, < ``max_requests``),
live from its arrival until its last token (terminated) or the horizon (truncated); a
finished agent never returns (PettingZoo's rule), a new request is a new agent.

Requests.  ``initial_users`` at reset; then a Poisson(``arrival_rate_per_step``) number of
arrivals after every step, admitted while fewer than ``max_devices`` requests are live
(the others are counted as blocked in ``infos``).  Each request draws its model uniformly
from ``models``, its prompt length uniformly from ``prompt_len_range``, its output length
from a geometric distribution with mean ``mean_new_tokens`` (P(L = l) = (1−q)^(l−1)·q,
q = 1/mean, l ≥ 1: a memoryless end, each token ends the request with probability q), its
distance factor uniformly from ``distance_scale_range`` and log-normal shadowing per
server (σ from the scenario); Rayleigh fading per server follows the Gauss-Markov process
of the single-user dynamics (:mod:`core.dynamics`), ρ = the server's ``fading_correlation``.
When no request is live the clock jumps to the next arrival (no decision is due).

Actions.  ``Discrete(n_max·K + 1)``: a < n_max·K is the split (p, k) = (a // K, a % K + 1)
(nodes < p on the phone, the rest on server k); the last action runs everything on the
phone.  The observation's ``action_mask`` marks the splits that exist for this user's
model, fit its phone, whose server is up and fits beside the others' last decisions (or,
from :meth:`MultiUserOffloadEnv.observe` with pending actions, beside those).
Admission of simultaneous choices (memory): agents in arrival order; a choice that does
not fit beside those admitted before it, or an invalid one (a split its model does not
have, that does not fit its phone, on a server that is down or could never hold it), is
replaced by the user's best response to them (``infos[agent]["replaced"]``), and an
invalid action also costs ``invalid_action_penalty`` (``infos[agent]["invalid"]``).  A
valid action the mask advised against for memory is admitted if it fits.

Observation (``observation``, float32, all ≥ 0): own request (prefill flag, context/1024,
prompt/1024, remaining tokens/64, nodes/n_max, model one-hot), own DAG (per node up to
n_max: log10(1+FLOPs)/13, weight GB, KV GB, where its cache lives (loc+1)/(K+1)), own
channel per server (uplink Mb/s/100 at the top power level on the share it would get by
joining, distance km, and at that rate the log-scaled times log10(1 + t/1 ms)/4 to move
every cache of the request not at that server there and to upload one activation after a
split at 1), and per server: users there/16, users of its model there/16 (a fixed scale,
so the features mean the same at every ``max_devices``), free memory fraction, the cell
share 1/(users+1), time-sliced load ρ, up.  "There" is the others' last decisions.

Reward: −C_u/scale_u − penalty, C_u the user's token cost under ``objective``
(``weighted``: w_T·T_u + w_E·E_u; ``slo``: E_u + ``slo_penalty_j``·[T_u > TTFT / TPOT
target], :class:`core.multi.MultiUserSystem`), ``infos[agent]["slo_violation"]`` whether
the token missed its target (either objective), scale_u the user's alone cost at the mean channel, all on
the phone (split 0 on server 1 if the model does not fit the phone), of its prefill for
the prefill step and of its first decode token for the decode steps: per-request
constants, independent of the state.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, Mapping

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from core.multi import ALL_DEVICE, Decision, MultiUserSystem, User, UserConfig
from core.system import load_scenario, reject_unknown_keys
from solvers.joint import best_response

from .objective import OBJECTIVES

ENV_NAME = "MultiUserOffload-v0"
USERS_SCALE = 16.0
"""Divisor of the user counts in the observation (the same at every ``max_devices``)."""


@dataclass
class MultiUserConfig:
    """Configuration of ``MultiUserOffload-v0`` (unknown keys are rejected)."""

    scenario: str = "multi-user"
    """Scenario preset (configs/scenarios) or YAML path: the shared servers and the phone."""
    models: tuple[str, ...] = ("gpt2", "qwen2.5-0.5b", "llama-3.2-1b")
    weight_dtype: str = "fp16"
    granularity: str = "block"
    prompt_len_range: tuple[int, int] = (16, 256)
    mean_new_tokens: float = 16.0
    include_prefill: bool = True
    max_devices: int = 4
    """Most requests live at once (the cell's phones)."""
    initial_users: int = 2
    arrival_rate_per_step: float = 0.3
    max_requests: int = 64
    """Agents an episode can have (``possible_agents``)."""
    max_steps: int = 64
    """Horizon in token steps (live agents are truncated there)."""
    distance_scale_range: tuple[float, float] = (0.5, 3.0)
    fading: bool = True
    shadowing: bool = True
    objective: str = "weighted"
    """What each user's token costs (:mod:`envs.objective`, :class:`core.multi.MultiUserSystem`):
    ``weighted`` (C = w_T·T + w_E·E) or ``slo`` (device energy, plus ``slo_penalty_j`` for a
    token over its TTFT / TPOT target)."""
    latency_weight: float = 1.0
    energy_weight: float = 1.0
    ttft_target_s: float = 0.2
    """``slo``: time-to-first-token target of a prefill (s); the single-user env's default."""
    tpot_target_s: float = 0.05
    """``slo``: time-per-output-token target of a decode token (s); the single-user env's default."""
    slo_penalty_j: float = 1.0
    """``slo``: cost of one token over its target, in joules of device energy."""
    invalid_action_penalty: float = 0.1
    shared_reward_clip: float = 100.0
    """:class:`SharedPolicyEnv` only: each agent's token cost counts at most this many times
    its all-device scale in the team reward (see there)."""

    def __post_init__(self) -> None:
        self.models = tuple(self.models)
        if not self.models:
            raise ValueError("config.models needs at least one model")
        for key in ("max_devices", "initial_users", "max_requests", "max_steps"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if key == "initial_users" else 1):
                raise ValueError(f"config.{key} must be an integer >= {0 if key == 'initial_users' else 1}, got {v!r}")
        if self.initial_users > min(self.max_devices, self.max_requests):
            raise ValueError("config.initial_users exceeds max_devices or max_requests")
        lo, hi = self.prompt_len_range
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
            raise ValueError(f"config.prompt_len_range must be integers 1 <= lo <= hi, got {self.prompt_len_range!r}")
        dlo, dhi = self.distance_scale_range
        if not (math.isfinite(dlo) and math.isfinite(dhi) and 0 < dlo <= dhi):
            raise ValueError(f"config.distance_scale_range must be 0 < lo <= hi, got {self.distance_scale_range!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"config.objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        for key in ("ttft_target_s", "tpot_target_s"):
            v = getattr(self, key)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"config.{key} must be finite and > 0, got {v!r}")
        if not (isinstance(self.shared_reward_clip, (int, float)) and math.isfinite(self.shared_reward_clip)
                and self.shared_reward_clip > 0):
            raise ValueError(f"config.shared_reward_clip must be finite and > 0, got {self.shared_reward_clip!r}")
        for key in ("arrival_rate_per_step", "latency_weight", "energy_weight", "invalid_action_penalty",
                    "slo_penalty_j"):
            v = getattr(self, key)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"config.{key} must be finite and >= 0, got {v!r}")
        if not (isinstance(self.mean_new_tokens, (int, float)) and self.mean_new_tokens >= 1):
            raise ValueError(f"config.mean_new_tokens must be >= 1, got {self.mean_new_tokens!r}")
        if self.latency_weight + self.energy_weight <= 0:
            raise ValueError("config: latency_weight + energy_weight must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: "Mapping[str, Any] | MultiUserConfig | None") -> "MultiUserConfig":
        if data is None:
            return cls()
        if isinstance(data, cls):
            return data
        reject_unknown_keys(cls, data, "config")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class MultiUserOffloadEnv(ParallelEnv):
    """See the module docstring."""

    metadata = {"name": ENV_NAME, "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, config: "Mapping[str, Any] | MultiUserConfig | None" = None,
                 render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.config = cfg = MultiUserConfig.from_dict(config)
        self.render_mode = render_mode
        self.scenario = load_scenario(cfg.scenario)
        self.K = self.scenario.num_servers
        # node counts per model (a probe user at the mean channel)
        self._probe = {m: User(UserConfig(model=m, prompt_len=cfg.prompt_len_range[0], weight_dtype=cfg.weight_dtype,
                                          granularity=cfg.granularity), self.scenario, include_prefill=False)
                       for m in cfg.models}
        self.n_max = max(u.n for u in self._probe.values())
        self.num_actions = self.n_max * self.K + 1
        self.possible_agents = [f"user_{i}" for i in range(cfg.max_requests)]
        n_obs = 5 + len(cfg.models) + 4 * self.n_max + 4 * self.K + 6 * self.K
        self._obs_space = spaces.Dict({
            "observation": spaces.Box(0.0, np.inf, (n_obs,), np.float32),
            "action_mask": spaces.Box(0, 1, (self.num_actions,), np.int8)})
        self._act_space = spaces.Discrete(self.num_actions)
        self._rng = np.random.default_rng()
        self.agents: list[str] = []
        self.users: dict[str, User] = {}

    # ------------------------------------------------------------------ spaces
    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_space

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent: str) -> spaces.Space:
        return self._act_space

    def decode(self, agent: str, action: int) -> Decision:
        """The split of an action for this agent's model."""
        user = self.users[agent]
        a = int(action)
        if not (0 <= a < self.num_actions):
            raise ValueError(f"action {action!r} of {agent} is outside 0..{self.num_actions - 1}")
        if a == self.num_actions - 1:
            return (user.n, ALL_DEVICE)
        return (a // self.K, a % self.K + 1)

    def encode(self, decision: Decision) -> int:
        p, k = decision
        return self.num_actions - 1 if k == ALL_DEVICE else p * self.K + (k - 1)

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = []
        self.users = {}
        self._last: dict[str, Decision] = {}
        self._scale: dict[str, tuple[float, float]] = {}
        self._h: dict[str, np.ndarray] = {}
        self._next_id = 0
        self.step_count = 0
        self.blocked = 0
        for _ in range(self.config.initial_users):
            self._arrive()
        if not self.agents:
            self._skip_idle()
        return {a: self._observe(a) for a in self.agents}, {a: {} for a in self.agents}

    def _arrive(self) -> str | None:
        cfg, rng = self.config, self._rng
        if len(self.agents) >= cfg.max_devices or self._next_id >= cfg.max_requests:
            self.blocked += 1
            return None
        model = cfg.models[int(rng.integers(len(cfg.models)))]
        prompt = int(rng.integers(cfg.prompt_len_range[0], cfg.prompt_len_range[1] + 1))
        new_tokens = int(rng.geometric(1.0 / cfg.mean_new_tokens))
        scale = float(rng.uniform(*cfg.distance_scale_range))
        shadow = [float(rng.normal(0.0, s.shadowing_std_db)) if cfg.shadowing else 0.0 for s in self.scenario.servers]
        h = (rng.normal(size=self.K) + 1j * rng.normal(size=self.K)) / math.sqrt(2.0) if cfg.fading \
            else np.ones(self.K, dtype=complex)
        ucfg = UserConfig(model=model, prompt_len=prompt, new_tokens=new_tokens, distance_scale=scale,
                          weight_dtype=cfg.weight_dtype, granularity=cfg.granularity)
        user = User(ucfg, self.scenario, fading_power=list(np.abs(h) ** 2), shadowing_db=shadow,
                    include_prefill=cfg.include_prefill)
        agent = f"user_{self._next_id}"
        self._next_id += 1
        self.agents.append(agent)
        self.users[agent] = user
        self._h[agent] = h
        self._scale[agent] = self._reward_scale(ucfg)
        return agent

    def _reward_scale(self, ucfg: UserConfig) -> tuple[float, float]:
        """(prefill, decode) scales of a request: its alone cost at the mean channel of the
        prefill and of the first decode token, all on the phone (split 0 on server 1 if
        the model does not fit it)."""
        out = []
        for prefill in (True, False):
            probe = User(dataclasses.replace(ucfg, new_tokens=max(ucfg.new_tokens, 1)), self.scenario,
                         include_prefill=prefill)
            system = self.make_system([probe])
            options = system.options(0)
            d = (probe.n, ALL_DEVICE) if (probe.n, ALL_DEVICE) in options else min(options)
            out.append(system.alone_cost(0, d))
        return out[0], out[1]

    def make_system(self, users: list[User]) -> MultiUserSystem:
        """The shared edge of ``users`` under this environment's objective."""
        cfg = self.config
        return MultiUserSystem(self.scenario, users, w_time_per_s=cfg.latency_weight,
                               w_energy_per_j=cfg.energy_weight, objective=cfg.objective,
                               ttft_target_s=cfg.ttft_target_s, tpot_target_s=cfg.tpot_target_s,
                               slo_penalty_j=cfg.slo_penalty_j)

    def live_system(self) -> MultiUserSystem:
        """The shared edge of the live agents, in ``self.agents`` order (user u = agent u):
        what a reference method plans the next token step on."""
        return self._system(list(self.agents))

    def _system(self, agents: list[str]) -> MultiUserSystem:
        return self.make_system([self.users[a] for a in agents])

    def _skip_idle(self) -> None:
        """No request is live: advance the clock until one arrives or the horizon."""
        while not self.agents and self.step_count < self.config.max_steps:
            self.step_count += 1
            for _ in range(int(self._rng.poisson(self.config.arrival_rate_per_step))):
                self._arrive()

    # ------------------------------------------------------------------ step
    def step(self, actions: Mapping[str, int]):
        cfg = self.config
        acting = list(self.agents)
        missing = [a for a in acting if a not in actions]
        if missing:
            raise ValueError(f"no action for live agent(s) {missing}")
        system = self._system(acting)
        placed: list[Decision | None] = [None] * len(acting)
        infos: dict[str, dict] = {}
        penalties = {}
        for u, agent in enumerate(acting):
            wanted = self.decode(agent, actions[agent])  # raises on an action outside the space
            masked = wanted not in system.options(u)
            trial = list(placed)
            trial[u] = wanted
            if not masked and system.fits(u, wanted, trial):
                placed[u] = wanted
                replaced = False
            else:
                placed[u] = best_response(system, u, placed)
                replaced = True
            penalties[agent] = cfg.invalid_action_penalty if masked else 0.0
            infos[agent] = {"replaced": replaced, "invalid": masked, "penalty": penalties[agent]}
        result = system.evaluate(placed)  # type: ignore[arg-type]
        rewards, terminations, truncations = {}, {}, {}
        for u, agent in enumerate(acting):
            res = result.results[u]
            user = self.users[agent]
            scale = self._scale[agent][0 if user.context is None else 1]
            rewards[agent] = -result.costs[u] / scale - penalties[agent]
            infos[agent].update(cost=result.costs[u], scale=scale, makespan_s=res.makespan_s, energy_j=res.energy_j,
                                slo_violation=result.violations[u], decision=placed[u],
                                users_at=list(result.users_at))
            user = self.users[agent]
            user.advance(placed[u])  # type: ignore[arg-type]
            self._last[agent] = placed[u]  # type: ignore[assignment]
            terminations[agent] = user.done
            if not user.done and cfg.fading:
                rho = np.array([s.fading_correlation for s in self.scenario.servers])
                w = (self._rng.normal(size=self.K) + 1j * self._rng.normal(size=self.K)) / math.sqrt(2.0)
                self._h[agent] = rho * self._h[agent] + np.sqrt(1.0 - rho ** 2) * w
                user.set_channel(list(np.abs(self._h[agent]) ** 2))
        self.step_count += 1
        horizon = self.step_count >= cfg.max_steps
        for agent in acting:
            truncations[agent] = horizon and not terminations[agent]
        self.agents = [a for a in acting if not (terminations[a] or truncations[a])]
        for a in acting:
            if a not in self.agents:
                self._last.pop(a, None)
        if not horizon:
            for _ in range(int(self._rng.poisson(cfg.arrival_rate_per_step))):
                self._arrive()
            if not self.agents:
                self._skip_idle()
        new = [a for a in self.agents if a not in acting]
        for agent in new:
            rewards[agent] = 0.0
            terminations[agent] = truncations[agent] = False
            infos[agent] = {}
        observations = {a: self._observe(a) if a in self.agents else self._final_obs() for a in acting + new}
        for agent in acting + new:
            infos[agent]["blocked"] = self.blocked
        return observations, rewards, terminations, truncations, infos

    # ------------------------------------------------------------------ observation
    def _others(self, agent: str, pending: Mapping[str, int] | None = None
                ) -> tuple[list[str], list[Decision | None]]:
        """The live agents and, for the others, their last decisions (this agent: None);
        ``pending`` actions of this step replace the last decisions of their agents."""
        agents = list(self.agents)
        pending = pending or {}
        return agents, [None if a == agent else (self.decode(a, pending[a]) if a in pending else self._last.get(a))
                        for a in agents]

    def _mask(self, agent: str, pending: Mapping[str, int] | None = None) -> np.ndarray:
        agents, decisions = self._others(agent, pending)
        system = self._system(agents)
        u = agents.index(agent)
        mask = np.zeros(self.num_actions, dtype=np.int8)
        for d in system.fitting_options(u, decisions):
            mask[self.encode(d)] = 1
        if not mask.any():  # the others' last decisions leave no room: the options alone
            for d in system.options(u):
                mask[self.encode(d)] = 1
        return mask

    def _final_obs(self) -> dict[str, np.ndarray]:
        mask = np.zeros(self.num_actions, dtype=np.int8)
        mask[-1] = 1
        return {"observation": np.zeros(self._obs_space["observation"].shape, np.float32), "action_mask": mask}

    def observe(self, agent: str, pending: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
        """A live agent's observation, with the ``pending`` actions of agents that already
        chose this step taken as their decisions (the sequential view of :class:`SharedPolicyEnv`)."""
        if agent not in self.agents:
            raise ValueError(f"{agent} is not live; live: {self.agents}")
        return self._observe(agent, pending)

    def _observe(self, agent: str, pending: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
        cfg, K = self.config, self.K
        agents, decisions = self._others(agent, pending)
        system = self._system(agents)
        u = agents.index(agent)
        user = self.users[agent]
        inst = user.token
        remaining = user.total_steps - user.steps_done
        own = [1.0 if user.context is None else 0.0, (user.context or 0) / 1024.0, user.cfg.prompt_len / 1024.0,
               remaining / 64.0, user.n / self.n_max]
        own += [1.0 if m == user.cfg.model else 0.0 for m in cfg.models]
        dag = np.zeros((self.n_max, 4))
        for i in range(user.n):
            dag[i] = (math.log10(1.0 + inst.flops[i]) / 13.0, inst.weight_bytes[i] / 1e9, inst.kv_bytes[i] / 1e9,
                      (user.kv_loc[i] + 1) / (K + 1))
        view = user.view(system.coupling(u, decisions))
        channel = []
        for k in range(K):
            rate = view.uplink_bps[k][-1]
            # upload times at this share (s, log-scaled): every cache not at server k moved
            # there, and one activation (embedding output) sent after a split at 1
            move = sum(inst.kv_move_bytes[i] for i in range(user.n) if user.kv_loc[i] not in (-1, k + 1))
            channel += [rate / 1e8, user.distances_km[k], _log_time(move * 8.0 / rate),
                        _log_time(inst.out_bytes[0] * 8.0 / rate)]
        at = system.users_at(decisions)
        used = system.memory_used(decisions)
        me = user.cfg.model_key
        servers = []
        for k in range(1, K + 1):
            same = sum(1 for v, d in enumerate(decisions) if d is not None and d[1] == k
                       and system.users[v].cfg.model_key == me)
            cap = system.capacity_bytes[k - 1]
            servers += [at[k - 1] / USERS_SCALE, same / USERS_SCALE,
                        max(cap - used[k - 1], 0.0) / cap if cap > 0 else 0.0,
                        1.0 / (at[k - 1] + 1), view.server_load[k - 1], float(view.server_up[k - 1])]
        obs = np.concatenate([own, dag.ravel(), channel, servers]).astype(np.float32)
        return {"observation": obs, "action_mask": self._mask(agent, pending)}

    # ------------------------------------------------------------------ render
    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        lines = [f"step {self.step_count}  live {len(self.agents)}  blocked {self.blocked}"]
        for a in self.agents:
            u = self.users[a]
            where = self._last.get(a)
            lines.append(f"  {a}: {u.cfg.model} ctx {u.context or 'prefill'}  last {where}")
        return "\n".join(lines)

    def close(self) -> None:
        pass


def _log_time(seconds: float) -> float:
    """log10(1 + t / 1 ms) / 4: 0 for nothing, 1 at ~10 s."""
    return math.log10(1.0 + seconds / 1e-3) / 4.0


def parallel_env(config: "Mapping[str, Any] | MultiUserConfig | None" = None,
                 render_mode: str | None = None) -> MultiUserOffloadEnv:
    """``MultiUserOffload-v0`` (PettingZoo's ``parallel_env`` convention)."""
    return MultiUserOffloadEnv(config, render_mode)


class SharedPolicyEnv(gym.Env):
    """A Gymnasium view of ``MultiUserOffload-v0`` for one policy acting for every agent
    (parameter sharing; e.g. sb3-contrib's MaskablePPO through :meth:`action_masks`).

    The live agents of a token step act one after another, in arrival order: each gym step
    shows one agent's observation (with the actions already chosen this step taken as the
    others' decisions) and takes its action; the step that completes the token step runs
    the parallel environment.  Reward: 0 on the intermediate gym steps and, on the completing
    one, −Σ_u min(C_u, clip·scale_u) − Σ_u penalty_u over the agents of that token step,
    clip = ``shared_reward_clip`` (a team reward: the joint reference's objective Σ_u C_u,
    the figure evaluate.py multi reports, up to the cap; the parallel env's per-agent
    rewards C_u/scale_u would weight a cheap request's token far above an expensive one's).
    Why the cap: exploration meets rare catastrophic tokens (a cache migrated over a deeply
    faded, shared uplink costs up to ~10³ times its all-device scale), and such returns
    swamp PPO's value loss (its gradient norm is clipped jointly with the policy's, which
    then stops learning).  A capped token costs more than its user's all-device decision
    (≈ 1 scale, and that frees the edge for the others), so the cap leaves the ordering of
    every sensible decision intact.  ``info["costs"]`` holds the true costs.
    The episode ends with the parallel one (terminated; truncated at its horizon).
    Observations are ``{"observation": ...}`` (a Dict, like the single-user envs', so
    train.py's MultiInputPolicy serves every env); the mask is :meth:`action_masks`.
    """

    metadata = {"render_modes": []}

    def __init__(self, config: "Mapping[str, Any] | MultiUserConfig | None" = None) -> None:
        self.par = MultiUserOffloadEnv(config)
        self.observation_space = spaces.Dict({"observation": self.par._obs_space["observation"]})
        self.action_space = self.par._act_space
        self._queue: list[str] = []
        self._pending: dict[str, int] = {}
        self._obs: dict[str, np.ndarray] | None = None

    def _show(self) -> dict[str, np.ndarray]:
        self._obs = self.par.observe(self._queue[0], self._pending)
        return {"observation": self._obs["observation"]}

    def action_masks(self) -> np.ndarray:
        if self._obs is None:
            raise RuntimeError("call reset() first")
        return self._obs["action_mask"].astype(bool)

    @property
    def pending(self) -> dict[str, int]:
        """The actions chosen so far in this token step, in the order asked (a copy)."""
        return dict(self._pending)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.par.reset(seed=seed)
        while not self.par.agents:  # an episode without a request: draw another
            self.par.reset()
        self._queue, self._pending = list(self.par.agents), {}
        return self._show(), {}

    def step(self, action: int):
        if self._obs is None or not self._queue:
            raise RuntimeError("call reset() first")
        self._pending[self._queue.pop(0)] = int(action)
        if self._queue:
            return self._show(), 0.0, False, False, {}
        _, rewards, terms, truncs, infos = self.par.step(self._pending)
        clip = self.par.config.shared_reward_clip
        reward = -float(sum(min(infos[a]["cost"], clip * infos[a]["scale"]) + infos[a]["penalty"]
                            for a in self._pending))
        info = {"costs": {a: infos[a]["cost"] for a in self._pending},
                "slo_violations": {a: infos[a]["slo_violation"] for a in self._pending}}
        self._pending = {}
        if not self.par.agents:
            self._obs = None
            truncated = any(truncs.values())
            final = {"observation": np.zeros(self.observation_space["observation"].shape, np.float32)}
            return final, reward, not truncated, truncated, info
        self._queue = list(self.par.agents)
        return self._show(), reward, False, False, info

