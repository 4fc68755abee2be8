"""Gymnasium environments for per-token placement of decoder layers on device and edge."""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from core.cost import DEVICE, Result, Simulator, evaluate, fallback_location, feasible_locations, split_fits
from core.dynamics import DynamicsConfig, MECProcess, scenario_dynamics
from core.instance import Instance, Placement
from core.models import load_model_spec
from core.system import Scenario, load_scenario, make_snapshot, reject_unknown_keys
from core.tokens import TokenModel

from .objective import OBJECTIVES, slo_violated, token_cost
from .observation import KINDS, NODE_FEATURES, ObservationLayout, log_energy, log_time


@dataclass
class EnvConfig:
    """Configuration of both environments (unknown keys are rejected)."""

    model: str = "qwen2.5-0.5b"
    """Preset name or path of a Hugging Face config.json."""
    granularity: str = "block"
    """``block`` (a chain), ``sublayer`` or ``head``."""
    scenario: str = "urban-5g"
    """Scenario preset in configs/scenarios, or a YAML path (default: the resource-constrained
    ``urban-5g``: a Snapdragon-8-Gen-3 phone, a shared L4 over 5G NR)."""
    prompt_len: int = 128
    """Prompt tokens (the prefill)."""
    new_tokens: int = 256
    """Decode tokens generated after the prefill (256: a chat-length reply, the middle of
    128-512, long enough that the KV cache grows to a size that is costly to move and
    that outages and handovers fall inside a request; docs/system-model.md, dynamics)."""
    include_prefill: bool = True
    """Whether the prefill is the episode's first token (else the prompt's caches start on the device)."""
    weight_dtype: str = "fp16"
    act_dtype: str = "fp16"
    objective: str = "weighted"
    """What the environment scores (:mod:`envs.objective`): ``weighted`` (C = w_T·T + w_E·E
    per token) or ``slo`` (device energy per token, plus ``slo_penalty_j`` for a token over
    its latency target)."""
    latency_weight: float = 1.0
    """w_T in the cost C = w_T·latency_s + w_E·energy_j (per second; ``weighted``)."""
    energy_weight: float = 1.0
    """w_E (per joule; ``weighted``)."""
    ttft_target_s: float = 0.2
    """``slo``: time-to-first-token target of the prefill (s); GuideLLM README's chat example."""
    tpot_target_s: float = 0.05
    """``slo``: time-per-output-token target of each decode token (s); GuideLLM README's example."""
    slo_penalty_j: float = 1.0
    """``slo``: cost of one token over its target, in joules of device energy."""
    reference_mode: str = "exact"
    """DeAOff mode of the reset plan (the reward's scale) and the myopic optimum: ``exact`` or ``relaxed``."""
    reference_slack: float = 0.10
    """Phase-2 latency slack of DeAOff when it has no weighted-sum mode (older solvers)."""
    reference_levels: bool = True
    """DeAOff may lower DVFS / transmit power (the agent always uses the highest)."""
    report_myopic: bool = False
    """Solve every token's myopic optimum (DeAOff on the token as it stands, the scored
    objective) and report it in ``info["myopic_cost"]`` (slower: one solve per token)."""
    invalid_action_penalty: float = 0.1
    """Subtracted from the reward when a masked action arrives."""
    reference_cache_size: int = 4096
    """DeAOff solutions kept (keyed by the exact instance)."""
    scenario_pool: list[str] = field(default_factory=list)
    """Training on randomised worlds: when non-empty, every reset draws one of these
    scenarios (presets or YAML paths) uniformly from the env's seeded generator instead of
    ``scenario`` (servers 1..max_servers, their distances, bandwidths, loads, hardware)."""
    model_pool: list[str] = field(default_factory=list)
    """Training on several models: when non-empty, every reset draws one of these models
    (presets or config.json paths) uniformly from the env's seeded generator instead of
    ``model`` (the worlds are every model × every scenario of the pools).
    ``DecoderSplit-v1`` needs ``split_grid`` > 0 when their depths differ."""
    world_distribution: str = ""
    """Training on random worlds: a distribution of :mod:`core.worlds` (a preset of
    configs/worlds, e.g. ``default``, or a YAML path).  When set, a reset draws a fresh world
    from it (phone, 1-4 edge servers, link type, uplink rates, background users) with
    probability ``random_world_share``, from the env's seeded generator; otherwise the world
    is ``scenario`` (or one of ``scenario_pool``).  Random worlds take the dynamics defaults
    and this config's ``dynamics`` keys (no scenario section)."""
    random_world_share: float = 1.0
    """The share of resets that draw a random world when ``world_distribution`` is set."""
    split_grid: int = 0
    """``DecoderSplit-v1``'s cuts.  0: every cut of the model's priority order (N + 1 of
    them, so the action space depends on the depth).  G >= 1: G + 2 depth-free cuts, the
    same for every model: all on the server, the embedding on the device, then the nodes up
    to depth j/G on the device for j = 1..G-1 (depth = layer / (layers + 1); the embedding
    0, the head 1), and all on the device."""
    max_servers: int = 4
    """Servers the observation and action spaces have room for (the scenario may have 1 ..
    max_servers): absent servers are zero rows with presence 0 and always masked, so one
    policy runs on every scenario with up to this many servers."""
    dynamics: DynamicsConfig | dict = field(default_factory=dict)
    """Which dynamics are on (see core.dynamics.DynamicsConfig).  A mapping is layered:
    DynamicsConfig's defaults, then the scenario's own ``dynamics:`` section
    (:func:`core.dynamics.scenario_dynamics`, e.g. path mobility in the multi-edge presets),
    then these keys; after construction this attribute holds the resolved DynamicsConfig of
    ``scenario`` (each world of ``scenario_pool`` resolves its own, ``world_dynamics``).  A
    DynamicsConfig instance is taken whole (no scenario section)."""

    def __post_init__(self) -> None:
        if isinstance(self.dynamics, DynamicsConfig):
            self._dynamics_overrides = dataclasses.asdict(self.dynamics)
        elif isinstance(self.dynamics, Mapping):
            self._dynamics_overrides = dict(self.dynamics)
            DynamicsConfig.from_dict(self._dynamics_overrides)  # the user's keys, named in any error
        else:
            raise ValueError(f"config.dynamics must be a mapping, got {type(self.dynamics).__name__}")
        if not isinstance(self.scenario, str):
            raise ValueError(f"config.scenario must be a preset name or a YAML path, got {self.scenario!r}")
        self.dynamics = self.world_dynamics(self.scenario)
        if isinstance(self.max_servers, bool) or not isinstance(self.max_servers, int) or self.max_servers < 1:
            raise ValueError(f"config.max_servers must be an integer >= 1, got {self.max_servers!r}")
        if isinstance(self.split_grid, bool) or not isinstance(self.split_grid, int) or self.split_grid < 0:
            raise ValueError(f"config.split_grid must be an integer >= 0, got {self.split_grid!r}")
        if not isinstance(self.world_distribution, str):
            raise ValueError(f"config.world_distribution must be a preset name or a YAML path, "
                             f"got {self.world_distribution!r}")
        share = self.random_world_share
        if isinstance(share, bool) or not (isinstance(share, (int, float)) and 0.0 <= share <= 1.0):
            raise ValueError(f"config.random_world_share must be a number in [0, 1], got {share!r}")
        for key in ("scenario_pool", "model_pool"):
            pool = getattr(self, key)
            if not isinstance(pool, (list, tuple)) or not all(isinstance(x, str) and x for x in pool):
                raise ValueError(f"config.{key} must be a list of names or paths, got {pool!r}")
            if len(set(pool)) != len(pool):
                raise ValueError(f"config.{key} lists an entry twice: {list(pool)!r}")
            setattr(self, key, list(pool))
        for key in ("prompt_len", "new_tokens"):
            v = getattr(self, key)
            if not isinstance(v, int) or v < (1 if key == "prompt_len" else 0):
                raise ValueError(f"config.{key} must be an integer >= {1 if key == 'prompt_len' else 0}, got {v!r}")
        for key in ("latency_weight", "energy_weight", "invalid_action_penalty", "reference_slack", "slo_penalty_j"):
            v = getattr(self, key)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"config.{key} must be finite and >= 0, got {v!r}")
        if self.latency_weight + self.energy_weight <= 0:
            raise ValueError("config: latency_weight + energy_weight must be > 0")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"config.objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        for key in ("ttft_target_s", "tpot_target_s"):
            v = getattr(self, key)
            if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"config.{key} must be a finite number > 0, got {v!r}")
        if self.reference_mode not in ("exact", "relaxed"):
            raise ValueError(f"config.reference_mode must be 'exact' or 'relaxed', got {self.reference_mode!r}")
        if self.granularity not in ("block", "sublayer", "head"):
            raise ValueError(f"config.granularity must be block, sublayer or head, got {self.granularity!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | "EnvConfig" | None) -> "EnvConfig":
        if data is None:
            return cls()
        if isinstance(data, EnvConfig):
            return data
        reject_unknown_keys(cls, data, "env config")
        return cls(**dict(data))

    def world_dynamics(self, scenario: str | None) -> DynamicsConfig:
        """The dynamics of one world: the defaults, the scenario's section (None: a random
        world, which has none), the user's keys."""
        if not isinstance(getattr(self, "_dynamics_overrides", None), dict):
            return self.dynamics
        section = scenario_dynamics(scenario) if scenario is not None else {}
        return DynamicsConfig.from_dict({**section, **self._dynamics_overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain data that rebuilds this config: ``dynamics`` holds the keys that were set
        (the scenario's section and the defaults fill the rest again), so the same config
        run on another scenario picks up that scenario's own dynamics."""
        out = dataclasses.asdict(self)
        out["dynamics"] = copy.deepcopy(self._dynamics_overrides)
        return out


def _log_scale(x: float, decades: float) -> float:
    v = math.log10(1.0 + x) / decades
    return 0.0 if v < 0 else (1.0 if v > 1 else v)


def _unit(x: float) -> float:
    return 0.0 if x < 0 else (1.0 if x > 1 else x)


class _OffloadBase(gym.Env):
    """Shared machinery: the request, the dynamics, the KV state and the reference."""

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(self, config: Mapping[str, Any] | EnvConfig | None = None, render_mode: str | None = None,
                 reference_fn: Callable[[Instance], Placement] | None = None) -> None:
        self.config = cfg = EnvConfig.from_dict(config)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        specs = {}
        for name in cfg.model_pool or [cfg.model]:
            spec = specs[name] = load_model_spec(name)
            if spec.max_positions and cfg.prompt_len + cfg.new_tokens > spec.max_positions:
                raise ValueError(f"prompt_len + new_tokens = {cfg.prompt_len + cfg.new_tokens} exceeds "
                                 f"{name}'s {spec.max_positions} positions")
        self.max_locations = 1 + cfg.max_servers
        """Locations of the observation and action spaces (the real ones first, then padding)."""
        self._specs = specs
        self._worlds = [self._make_world(scenario, specs[model], model)
                        for model in specs for scenario in (cfg.scenario_pool or [cfg.scenario])]
        self._world_dist = None
        self._random_worlds = 0
        if cfg.world_distribution:
            from core.worlds import load_world_distribution
            self._world_dist = load_world_distribution(cfg.world_distribution)
            if self._world_dist.num_servers[1] > cfg.max_servers:
                raise ValueError(f"world_distribution {cfg.world_distribution!r} draws up to "
                                 f"{self._world_dist.num_servers[1]} servers, more than config.max_servers = "
                                 f"{cfg.max_servers}")
        self._use_world(0)
        self._reference_fn = reference_fn
        self._ref_cache: OrderedDict[tuple, tuple[Placement, Result]] = OrderedDict()
        self.ref_solves = 0
        self.ref_time_s = 0.0
        self.inst: Instance | None = None

    def _make_world(self, name: str | Scenario, spec: Any, model: str) -> dict[str, Any]:
        """One (scenario, model) world: its token builder, random process and checks (a
        Scenario object: a random world, with no dynamics section)."""
        cfg = self.config
        scenario = load_scenario(name)
        name_str = scenario.name if isinstance(name, Scenario) else name
        if scenario.num_servers > cfg.max_servers:
            raise ValueError(f"scenario {name!r} has {scenario.num_servers} servers, more than "
                             f"config.max_servers = {cfg.max_servers}")
        tokens = TokenModel(spec, cfg.granularity, cfg.prompt_len, make_snapshot(scenario),
                            cfg.weight_dtype, cfg.act_dtype)
        full = tokens.instance(cfg.prompt_len + cfg.new_tokens, make_snapshot(scenario), [-1] * tokens.num_nodes)
        model_bytes = sum(full.mem_need)
        dyn = cfg.world_dynamics(None if isinstance(name, Scenario) else name)
        if ((dyn.outages or dyn.mobility_model == "path")
                and model_bytes > scenario.device.mem_capacity_bytes):
            raise ValueError(f"outages or path mobility are on but {model} ({model_bytes / 1e9:.2f} GB with its cache) "
                             f"does not fit the device of {name_str!r} ({scenario.device.mem_capacity_bytes / 1e9:.2f} GB): "
                             "a token could have nowhere to run")
        return {"scenario": scenario, "tokens": tokens, "process": MECProcess(scenario, dyn), "dynamics": dyn,
                "num_locations": 1 + scenario.num_servers, "num_nodes": tokens.num_nodes, "model_bytes": model_bytes,
                "spec": spec, "model": model}

    def _use_world(self, i: int, w: dict[str, Any] | None = None) -> None:
        """Make world ``i`` of the pool current (or ``w``, a random world with id ``i`` < 0)."""
        w = self._worlds[i] if w is None else w
        self.world = i
        self.scenario, self.tokens, self.process = w["scenario"], w["tokens"], w["process"]
        self.spec_model, self.model_name = w["spec"], w["model"]
        self.num_locations, self.num_nodes, self._model_bytes = w["num_locations"], w["num_nodes"], w["model_bytes"]
        self._world_changed()

    def _world_changed(self) -> None:
        pass

    def node_depth(self, i: int) -> float:
        """Node i's depth in the current model, in [0, 1]: the embedding 0, a node of layer l
        (0-based) (l + 1) / (L + 1), the head 1."""
        tm = self.tokens
        kind, name = tm.kinds[i], tm.names[i]
        layers = self.spec_model.num_layers
        if name.startswith("L"):
            return (int(name[1:].split(".")[0]) + 1) / (layers + 1)
        return 0.0 if kind == "embed" else 1.0

    # ------------------------------------------------------------------ request state
    def _reset_request(self) -> None:
        cfg = self.config
        rng = self.np_random
        if self._world_dist is not None and (cfg.random_world_share >= 1.0 or rng.random() < cfg.random_world_share):
            from core.worlds import sample_world
            self._random_worlds += 1
            scenario = sample_world(self._world_dist, rng, name=f"random-world-{self._random_worlds}")
            model = list(self._specs)[int(rng.integers(len(self._specs)))]
            self._use_world(-self._random_worlds, self._make_world(scenario, self._specs[model], model))
        elif len(self._worlds) > 1:  # a randomised world: drawn from the seeded generator
            self._use_world(int(rng.integers(len(self._worlds))))
        elif self.world != 0:
            self._use_world(0)
        self.process.reset(self.np_random)
        self.kv_loc = [-1] * self.num_nodes
        self.lost = [False] * self.num_nodes
        self.token = 0
        self.num_tokens = cfg.new_tokens + (1 if cfg.include_prefill else 0)
        self.episode_cost = 0.0
        self.episode_violations = 0
        self.snapshots = []
        self.scale = 0.0
        if not cfg.include_prefill:  # the prompt's caches start on the device
            self.kv_loc = [DEVICE if kv > 0 else -1 for kv in self.tokens.kv_per_token]
        self.last_result: Result | None = None
        self.last_placement: Placement | None = None
        self.last_token_info: dict[str, Any] | None = None

    @property
    def context(self) -> int | None:
        """Context length of the current token (None during the prefill)."""
        cfg = self.config
        if cfg.include_prefill:
            return None if self.token == 0 else cfg.prompt_len + self.token
        return cfg.prompt_len + self.token + 1

    def _build_token(self) -> None:
        self.snapshot = self.process.snapshot()
        self.snapshots.append(self.snapshot)  # the episode's recorded future, for the clairvoyant yardstick
        self.inst = self.tokens.instance(self.context, self.snapshot, self.kv_loc, self.lost)
        self._myopic: tuple[Placement, Result] | None = None
        if self.token == 0:
            self.scale = self._reset_scale()

    def token_cost(self, makespan_s: float, energy_j: float, prefill: bool) -> float:
        """The scored objective's cost of one token (:func:`envs.objective.token_cost`)."""
        cfg = self.config
        return token_cost(cfg.objective, makespan_s, energy_j, prefill=prefill, w_time_per_s=cfg.latency_weight,
                          w_energy_per_j=cfg.energy_weight, ttft_target_s=cfg.ttft_target_s,
                          tpot_target_s=cfg.tpot_target_s, slo_penalty_j=cfg.slo_penalty_j)

    def cost(self, res: Result, prefill: bool | None = None) -> float:
        """The scored objective's cost of a result of the current token (or of ``prefill``)."""
        return self.token_cost(res.makespan_s, res.energy_j, self.context is None if prefill is None else prefill)

    def _deadline_s(self, context: int | None) -> float:
        return self.config.ttft_target_s if context is None else self.config.tpot_target_s

    def _reset_scale(self) -> float:
        """The reward's scale, fixed at reset: the cost of DeAOff's plan for the whole request
        made at reset under the conditions known then (the reset snapshot, frozen): DeAOff
        plans the first token, then the first decode token with the caches where that plan
        left them, and the decode plan is kept for every later token (under frozen
        conditions it stays feasible and moves no cache).  Every token is priced by the
        engine at its own context.  It depends on the seed only, never on the agent."""
        cfg = self.config
        snap, inst = self.snapshot, self.inst
        prefill = self.context is None
        plan, res = self._reference(inst, prefill)
        total = self.token_cost(res.makespan_s, res.energy_j, prefill)
        kv = list(inst.kv_loc)
        for i, kvb in enumerate(self.tokens.kv_per_token):
            if kvb > 0:
                kv[i] = plan.loc[i]
        decode_plan = None if prefill else plan
        for t in range(1, self.num_tokens):
            ctx = cfg.prompt_len + t + (0 if cfg.include_prefill else 1)
            d_inst = self.tokens.instance(ctx, snap, kv, [False] * self.num_nodes)
            if decode_plan is None:
                decode_plan, res = self._reference(d_inst, False)
                for i, kvb in enumerate(self.tokens.kv_per_token):
                    if kvb > 0:
                        kv[i] = decode_plan.loc[i]
            else:
                res = evaluate(d_inst, decode_plan, record=False)
            total += self.token_cost(res.makespan_s, res.energy_j, False)
        if not (total > 0 and math.isfinite(total)):
            raise RuntimeError(f"the reset plan's episode cost is {total!r}: the reward needs a positive scale")
        return total

    @property
    def myopic(self) -> tuple[Placement, Result]:
        """The myopic optimum of the current token: DeAOff on the token as it stands (the
        present conditions, migrations from the present caches), for the scored objective.
        A baseline, never the reward's scale; solved on first use."""
        if self.inst is None or self.token >= self.num_tokens:
            raise RuntimeError("myopic needs a reset() environment with tokens left")
        if self._myopic is None:
            self._myopic = self._reference(self.inst, self.context is None)
        return self._myopic

    @property
    def myopic_placement(self) -> Placement:
        return self.myopic[0]

    def _reference(self, inst: Instance, prefill: bool) -> tuple[Placement, Result]:
        """DeAOff's plan of one token for the scored objective (or ``reference_fn``'s), cached."""
        key = (self.world, prefill, tuple(inst.flops), tuple(inst.kv_loc), tuple(inst.kv_move_bytes),
               tuple(map(tuple, inst.up_bps)), tuple(inst.down_bps), tuple(inst.system.server_flops_per_s),
               tuple(inst.system.server_up),
               tuple(inst.system.device.freqs_hz), inst.system.device.mem_bw_bytes_per_s)
        hit = self._ref_cache.get(key)
        if hit is not None:
            self._ref_cache.move_to_end(key)
            return hit
        cfg = self.config
        t0 = time.perf_counter()
        if self._reference_fn is not None:
            placement = self._reference_fn(inst)
            res = (placement, evaluate(inst, placement, record=False))  # the engine has the last word
        else:  # DeAOff's answer carries the engine's evaluation of its plan already
            from .reference import deaoff_reference_result
            res = deaoff_reference_result(inst, objective=cfg.objective, w_time_per_s=cfg.latency_weight,
                                          w_energy_per_j=cfg.energy_weight,
                                          deadline_s=self._deadline_s(None if prefill else 1),
                                          slo_penalty_j=cfg.slo_penalty_j,
                                          mode=cfg.reference_mode, slack=cfg.reference_slack,
                                          levels=cfg.reference_levels)
        self.ref_solves += 1
        self.ref_time_s += time.perf_counter() - t0
        self._ref_cache[key] = res
        if len(self._ref_cache) > cfg.reference_cache_size:
            self._ref_cache.popitem(last=False)
        return res

    def _finish_token(self, placement: Placement, check: bool = False) -> tuple[Result, dict[str, Any]]:
        """Engine cost of the token's placement; move the caches; advance the system."""
        inst = self.inst
        assert inst is not None
        loc = placement.loc
        # the agent's masks guarantee a valid placement; outside plans are checked
        res = evaluate(inst, placement, record=self.render_mode is not None, check=check)
        prefill = self.context is None
        c = self.cost(res, prefill)
        cfg = self.config
        violated = slo_violated(res.makespan_s, prefill=prefill, ttft_target_s=cfg.ttft_target_s,
                                tpot_target_s=cfg.tpot_target_s)
        info = {"token": self.token, "context": self.context, "latency_s": res.makespan_s,
                "energy_j": res.energy_j, "cost": c, "slo_violation": violated, "scale": self.scale,
                "cost_ratio": c * self.num_tokens / self.scale,
                "placement": list(loc)}
        if cfg.report_myopic:
            _, mres = self.myopic
            info.update({"myopic_cost": self.cost(mres, prefill), "myopic_latency_s": mres.makespan_s,
                         "myopic_energy_j": mres.energy_j})
        self.episode_cost += c
        self.episode_violations += int(violated)
        self.last_result = res
        self._last_inst = inst
        self.last_placement = placement  # with last_token_info: what render() shows once the token is done
        self.last_token_info = info
        # the cache lives where attention ran (a migrated cache moved with it)
        for i, kv in enumerate(self.tokens.kv_per_token):
            if kv > 0:
                self.kv_loc[i] = loc[i]
        self.lost = [False] * self.num_nodes
        self.token += 1
        if self.token < self.num_tokens:
            for k in self.process.advance(self.np_random, device_energy_j=res.energy_j, elapsed_s=res.makespan_s):
                for i in range(self.num_nodes):
                    if self.kv_loc[i] == k:
                        self.kv_loc[i] = -1
                        self.lost[i] = True
            self._build_token()
        return res, info

    def play_token(self, placement: Placement) -> dict[str, Any]:
        """Run the whole current token with an outside plan (levels included), e.g. DeAOff's
        or a heuristic's, instead of the agent's actions.  The plan is validated (a server
        that is down, memory) and costed by the engine; the caches move and the system
        advances exactly as after an agent's token.  Returns the token's info."""
        if self.inst is None or self.token >= self.num_tokens:
            raise RuntimeError("play_token() needs a reset() environment with tokens left")
        _, info = self._finish_token(placement, check=True)
        if self.token < self.num_tokens:
            self._start_token()
        return info

    def _start_token(self) -> None:
        pass

    # ------------------------------------------------------------------ shared obs parts
    def _location_features(self) -> np.ndarray:
        """Per location (padded to max_locations): present, up, uplink rate, throughput left,
        free memory (before this token)."""
        s = self.snapshot
        out = np.zeros((self.max_locations, 5), dtype=np.float32)
        d = s.device
        out[0] = (1.0, 1.0, 1.0, _log_scale(d.freqs_hz[-1] * d.flops_per_cycle, 16.0),
                  _unit(1.0 - self._model_bytes / max(d.mem_capacity_bytes, 1.0)))
        for k in range(1, self.num_locations):
            out[k] = (1.0, float(s.server_up[k - 1]), _log_scale(s.uplink_bps[k - 1][-1], 10.0),
                      _log_scale(s.server_flops_per_s[k - 1], 16.0),
                      _unit(1.0 - self._model_bytes / max(s.mem_capacity_bytes[k], 1.0)))
        return out

    def _kv_share(self) -> np.ndarray:
        """Fraction of the existing KV bytes at each location (last entry: none yet)."""
        share = np.zeros(self.max_locations + 1, dtype=np.float32)
        for i, kv in enumerate(self.tokens.kv_per_token):
            if kv > 0:
                share[self.kv_loc[i]] += kv  # -1 lands on the last entry
        total = share.sum()
        if total > 0:
            share /= total
        else:
            share[-1] = 1.0
        return share

    def _loads(self) -> np.ndarray:
        """Server load ρ per location, padded (device and absent servers 0)."""
        out = np.zeros(self.max_locations, dtype=np.float32)
        out[1:self.num_locations] = self.snapshot.server_load
        return out

    def _progress(self) -> np.ndarray:
        cfg = self.config
        ctx = self.context or cfg.prompt_len
        return np.array([self.token / max(self.num_tokens, 1), float(self.context is None),
                         ctx / (cfg.prompt_len + cfg.new_tokens + 1)], dtype=np.float32)

    def _episode_end_info(self) -> dict[str, Any]:
        """What the last step's info adds: the episode's true cost and its ratio to the scale."""
        return {"episode_cost": self.episode_cost, "episode_scale": self.scale,
                "episode_cost_ratio": self.episode_cost / self.scale,
                "episode_slo_violations": self.episode_violations}

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode")
            return None
        from .render import gantt_rgb, placement_table
        if self.render_mode == "ansi":
            return placement_table(self)
        return gantt_rgb(self)


class DecoderOffloadEnv(_OffloadBase):
    """Place a decoder model's layers, one node per step, on the device or an edge server.

    ## Description
    An episode is one generation request: the prefill of a prompt, then ``new_tokens``
    decode tokens.  Each token is the model's layer DAG (``granularity``: block chain,
    sublayers with residual skips, or attention head groups); the agent places its nodes
    one at a time in the DAG's priority order.  Between tokens the channel fades, the
    device moves, the servers' background load changes and (optionally) servers go down.
    The KV cache of an attention node lives where it last ran; placing it elsewhere
    migrates the cache (its bytes cross the links; time and device energy are charged
    once, by the cost engine).  Latency and energy come from ``core.cost``.

    ## Action Space
    ``Discrete(K)``, K = 1 + ``max_servers``: 0 = device, k = edge server k (servers the
    scenario does not have are always masked).  The
    device runs at its highest DVFS level and uploads at its highest power level.
    ``action_masks()`` marks locations that are down or lack memory (weights + KV of the
    nodes already placed this token plus this node), with the solver's feasibility helper.
    It is a method of the env itself: on a ``gymnasium.make`` env call
    ``env.unwrapped.action_masks()`` (SB3's vector envs and sb3-contrib's MaskablePPO
    reach it through ``env_method``, which looks through wrappers).  The same mask, for
    the observation just returned, is ``info["action_mask"]`` of ``reset()`` and
    ``step()`` (gymnasium's convention, as in ``Taxi-v3``).
    A masked action that arrives anyway runs the node on the device (or, if the device
    cannot take it, on the first feasible location), sets ``info["invalid_action"]`` and
    adds ``-invalid_action_penalty`` to the reward.

    ## Observation Space
    A ``Dict`` of float32 Boxes, every entry in [0, 1]; the shape depends on K only,
    not on the model's depth nor the scenario's server count.  log(x) means log10(1+x) divided by the stated decades.

    | Key | Shape | Min | Max | Unit |
    |-----|-------|-----|-----|------|
    | node | (14,) | 0 | 1 | kind one-hot (embed, block, attn, heads, o_proj, add, mlp, head); log FLOPs /16; log output bytes /10; log weight bytes /12; log KV bytes /12; index / N; layer / L |
    | inputs | (2K+1,) | 0 | 1 | share of this node's input bytes already at each location (K); where its existing KV cache lives (K one-hot + "none") |
    | locations | (K, 8) | 0 | 1 | present (0: a padding row, all zeros); up; log uplink bit/s /10 (device 1); log FLOP/s left /16; free memory share this token; processor busy-for after the node's latest input (log time); the engine's probe of placing the node there at the highest levels (``Simulator.probe``): its finish after its latest input (log time), the device energy it adds (log energy) |
    | system | (2K+1,) | 0 | 1 | share of all existing KV bytes per location (K + "none"); server load ρ per location (device 0) |
    | progress | (3,) | 0 | 1 | token / tokens; is prefill; context / max context |

    log time = log10(1 + t / 0.1 ms) / 5 and log energy = log10(1 + E / 10 µJ) / 6, both
    clipped (:func:`envs.observation.log_time`, :func:`~envs.observation.log_energy`):
    fixed scales, so no entry is a solver output.  Keys,
    shapes and column names: ``env.unwrapped.layout`` (:class:`envs.observation.ObservationLayout`).

    ## Rewards
    The scored objective (``objective``, :mod:`envs.objective`) gives each token a cost
    C_t: ``weighted``, C_t = w_T·latency_s + w_E·energy_j; ``slo``, C_t = energy_j +
    ``slo_penalty_j`` when the token misses its target (TTFT for the prefill, TPOT for
    decode).  S is a scale fixed at reset: the cost of DeAOff's plan for the whole request,
    made at reset under the conditions known then (``info["scale"]``); it depends on the
    seed only, never on the agent's state.  Each step gives
    ``-(C_partial(after) - C_partial(before)) / S``, where C_partial is the engine's running
    cost of the token's nodes placed so far (``slo``: their energy); the step that completes
    a token replaces C_partial by the token's exact cost C_t and adds ``1 / tokens``.  The
    return is therefore ``1 - Σ_t C_t / S`` (plus invalid-action penalties): it orders
    policies exactly as their true episode costs, a decision that makes later tokens
    expensive is charged for them, and 0 means as good as the plan made at reset.
    ``info["rewards"]`` has the parts ``cost``, ``completion`` and ``invalid``.  The
    per-token myopic optimum (DeAOff on each token as it stands) is a baseline, reported as
    ``info["myopic_cost"]`` with ``report_myopic``.

    ## Starting State
    Prefill token, node 0; fading, shadowing drawn from the seeded generator; loads at
    the scenario's levels; no KV cache anywhere.

    ## Episode End
    Termination: the last decode token has been placed (after (1 + new_tokens) × N
    steps with the prefill).  Truncation: never inside the env; wrap it in
    ``TimeLimit`` if you need one.

    ## Arguments
    | Argument | Default | Meaning |
    |----------|---------|---------|
    | config | EnvConfig() | dict or EnvConfig: model, granularity, scenario (or scenario_pool), max_servers, prompt_len, new_tokens, objective and its weights / SLO targets, reference, dynamics |
    | render_mode | None | "ansi" (placement table) or "rgb_array" (Gantt of the last token) |

    ## Version History
    * v1: reward = the episode's true cost under ``objective`` (``weighted`` or ``slo``) over
      a scale fixed at reset (was: each token against DeAOff re-solved from the agent's
      own state); observation without solver outputs (fixed log scales; ``progress`` lost
      its episode-cost-ratio entry); spaces padded to ``max_servers`` (a ``present``
      column per location, absent servers masked); ``scenario_pool`` draws a world per reset.
    * v0: initial version.
    """

    def __init__(self, config: Mapping[str, Any] | EnvConfig | None = None, render_mode: str | None = None,
                 reference_fn: Callable[[Instance], Placement] | None = None) -> None:
        super().__init__(config, render_mode, reference_fn)
        k = self.max_locations
        self.action_space = spaces.Discrete(k)
        self.layout = ObservationLayout(k, per_node=True)  # k = max_locations: room for absent servers
        self.observation_space = self.layout.space()
        self._kv_here = self.layout.offset("inputs", "kv_here")
        self._world_changed()

    def _world_changed(self) -> None:
        """The node rows of the current world's priority order."""
        if not hasattr(self, "layout"):
            return  # called by the base __init__ before the layout exists; __init__ calls it again
        col = NODE_FEATURES.index
        self._node_static = np.zeros((self.num_nodes, len(NODE_FEATURES)), dtype=np.float32)
        for i, kind in enumerate(self.tokens.kinds):
            self._node_static[i, KINDS.index(kind)] = 1.0
            self._node_static[i, col("index")] = i / max(self.num_nodes - 1, 1)
            self._node_static[i, col("layer")] = self.node_depth(i)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._reset_request()
        self._build_token()
        self._start_token()
        obs = self._obs()
        return obs, {"action_mask": np.array(self._mask, dtype=bool)}

    def _start_token(self) -> None:
        inst = self.inst
        self.node = 0
        self.sim = Simulator(inst)
        self.used = [0.0] * self.num_locations
        self.partial_cost = 0.0
        self.loc = [0] * self.num_nodes
        self._vmax = len(inst.system.device.freqs_hz) - 1
        self._qmax = len(inst.system.device.tx_powers_w) - 1

    def action_masks(self) -> np.ndarray:
        """Locations that can take the current node (up, memory left)."""
        return np.array(self._mask, dtype=bool)

    def step(self, action):
        inst = self.inst
        i = self.node
        mask = self._mask
        a = int(action)
        invalid = not (0 <= a < self.max_locations and mask[a])
        if invalid:
            a = fallback_location(inst, i, self.used)
        self.sim.place(i, a, self._vmax, self._qmax)
        self.used[a] += inst.mem_need[i]
        self.loc[i] = a
        rewards = {"cost": 0.0, "completion": 0.0, "invalid": -self.config.invalid_action_penalty if invalid else 0.0}
        info: dict[str, Any] = {"invalid_action": invalid, "token_done": False}
        terminated = False
        if i + 1 < self.num_nodes:
            t, e = self.sim.partial_cost()
            # the running cost of the nodes placed so far (``slo``: its energy; the penalty,
            # if any, arrives with the token's exact latency on its last step)
            c = self.token_cost(t, e, self.context is None) if self.config.objective == "weighted" else e
            rewards["cost"] = -(c - self.partial_cost) / self.scale
            self.partial_cost = c
            self.node = i + 1
        else:
            res, tok = self._finish_token(Placement(self.loc))
            rewards["cost"] = -(tok["cost"] - self.partial_cost) / self.scale
            rewards["completion"] = 1.0 / self.num_tokens
            info.update(tok)
            info["token_done"] = True
            if self.token >= self.num_tokens:
                terminated = True
                info.update(self._episode_end_info())
            else:
                self._start_token()
        info["rewards"] = rewards
        reward = float(rewards["cost"] + rewards["completion"] + rewards["invalid"])
        obs = self._obs() if not terminated else self._terminal_obs()
        info["action_mask"] = np.array(self._mask, dtype=bool)  # for the observation returned
        return obs, reward, terminated, False, info

    # ------------------------------------------------------------------ observation
    def _terminal_obs(self) -> dict[str, np.ndarray]:
        self._mask = [True] * self.max_locations
        return {key: np.zeros(space.shape, dtype=np.float32) for key, space in self.observation_space.spaces.items()}

    def _obs(self) -> dict[str, np.ndarray]:
        """Built as one flat list and one float32 array; the Dict entries are views of it
        (a fresh array every step, so observations a caller keeps are never overwritten)."""
        inst, sim, i = self.inst, self.sim, self.node
        k_all = self.num_locations  # real locations; the spaces have k_pad
        k_pad = self.max_locations
        out_bytes = inst.out_bytes
        flat = list(self._node_rows[i])  # node

        # where this node's inputs already are, and its cache
        share = [0.0] * (2 * k_pad + 1)  # the layout's "inputs" parts
        preds = inst.preds[i]
        now = 0.0
        if preds:
            total = 0.0
            arrival, finish = sim.arrival, sim.finish
            for p in preds:
                b = out_bytes[p]
                for l in arrival[p]:
                    share[l] += b
                total += b
                f = finish[p]
                if f > now:
                    now = f
            if total > 0:
                for l in range(k_all):
                    v = share[l] / total
                    share[l] = v if v < 1.0 else 1.0
        else:
            share[DEVICE] = 1.0
        kvl = inst.kv_loc[i]
        share[self._kv_here + (kvl if kvl >= 0 else k_pad)] = 1.0
        flat += share

        # per location: static part, then free memory, busy-for, and the engine's probe of
        # placing the node there (its finish after its latest input, the device energy it adds)
        cap = inst.system.mem_capacity_bytes
        need = inst.mem_need[i]
        used = self.used
        free = sim.free
        mask = feasible_locations(inst, i, used)
        now_abs = sim.t_mig + now
        v, q = self._vmax, self._qmax
        for k in range(k_all):
            ck = cap[k]
            room = ck - used[k] - need
            flat += self._loc_static_rows[k]
            mem = room / ck if ck > 0 else 0.0
            mem = 0.0 if mem < 0.0 else (1.0 if mem > 1.0 else mem)
            if not mask[k]:
                flat += (mem, 1.0, 1.0, 1.0)
                continue
            probe = sim.probe(i, k, v, q)
            flat += (mem, log_time(free[k] - now), log_time(probe.finish_s - now_abs), log_energy(probe.energy_j))
        if k_pad > k_all:  # absent servers: zero rows (presence 0), never allowed
            flat += self._pad_rows
            mask = mask + [False] * (k_pad - k_all)
        flat += self._system_row
        flat += self._progress_row
        self._mask = mask
        return self.layout.unflatten(np.array(flat, dtype=np.float32))

    def _build_token(self) -> None:
        super()._build_token()
        inst = self.inst
        self._loc_static_rows = [list(map(float, row[:4])) for row in self._location_features()]
        self._pad_rows = [0.0] * ((self.max_locations - self.num_locations) * len(self.layout.location_features))
        # the per-token parts of the observation, as Python rows for _obs's flat list
        feats = self._node_static.copy()
        for name, values, decades in (("log_flops", inst.flops, 16.0), ("log_out_bytes", inst.out_bytes, 10.0),
                                      ("log_weight_bytes", inst.weight_bytes, 12.0),
                                      ("log_kv_bytes", inst.kv_bytes, 12.0)):
            feats[:, NODE_FEATURES.index(name)] = np.clip(np.log10(1.0 + np.asarray(values)) / decades, 0.0, 1.0)
        self._node_rows = feats.tolist()
        self._system_row = np.concatenate([self._kv_share(), self._loads()]).tolist()
        self._progress_row = self._progress().tolist()


class DecoderSplitEnv(_OffloadBase):
    """One action per token: a split point on the layer chain and a server (Neurosurgeon-style).

    ## Description
    Same request, dynamics, KV state, cost engine and reward as
    ``DecoderOffload-v1``; each step places a whole token: the first ``p`` nodes of the
    priority order (a topological order, so this is a valid cut) run on the device, the
    rest on server ``k``.

    ## Action Space
    ``Discrete(C·M)``, M = ``max_servers``, C cuts: action a means cut c = a // M and server
    k = a % M + 1; cut c puts the first ``cuts[c]`` nodes on the device (the last cut: all
    of them).  ``split_grid`` 0: C = N + 1, every cut (cuts[c] = c); ``split_grid`` G >= 1:
    C = G + 2 depth-free cuts (all on the server, the embedding on the device, the layers
    up to depth j/G on the device, all on the device), the same actions for any model.
    ``action_masks()`` marks splits whose device
    part or server part does not fit in memory or whose server is down.  A masked action
    falls back to the first feasible one, with the penalty and ``info["invalid_action"]``.
    As in ``DecoderOffload-v1``: ``env.unwrapped.action_masks()``, or ``info["action_mask"]``.

    ## Observation Space
    | Key | Shape | Min | Max | Unit |
    |-----|-------|-----|-----|------|
    | locations | (K, 7) | 0 | 1 | present (0: padding, all zeros); up; log uplink bit/s /10; log FLOP/s left /16; free memory share; the engine's latency (``log_time``) and device energy (``log_energy``) of the whole token on this location alone, from the caches where they are (1 if it cannot take it) |
    | system | (2K+1,) | 0 | 1 | KV share per location (K + "none"); load ρ per location |
    | progress | (3,) | 0 | 1 | token / tokens; is prefill; context / max context |
    | model | (5,) | 0 | 1 | the token's log FLOPs /16, log weight bytes /12, log existing KV bytes /12, log largest activation bytes /10; layers / 128 |

    Nothing in it depends on the model's depth or the scenario's server count (up to
    ``max_servers``): with ``split_grid`` >= 1 one policy runs on any model and world.

    ## Rewards
    As ``DecoderOffload-v1``: ``1 / tokens - C_t / S`` per token, S the scale fixed at reset
    (parts ``cost`` = -C_t/S, ``completion`` = 1/tokens, ``invalid``); the return is
    ``1 - Σ_t C_t / S``.

    ## Starting State / Episode End
    As ``DecoderOffload-v1``; one step per token, termination after the last token.

    ## Arguments
    As ``DecoderOffload-v1``.

    ## Version History
    * v1: reward = the episode's true cost over a scale fixed at reset (as
      ``DecoderOffload-v1``); ``progress`` lost its episode-cost-ratio entry; actions
      ``cuts × max_servers`` (absent servers masked; ``split_grid`` for depth-free cuts), a
      ``present`` column per location, each location's all-on-one token estimate and a
      ``model`` key (one policy for many models and worlds).
    * v0: initial version.
    """

    def __init__(self, config: Mapping[str, Any] | EnvConfig | None = None, render_mode: str | None = None,
                 reference_fn: Callable[[Instance], Placement] | None = None) -> None:
        super().__init__(config, render_mode, reference_fn)
        grid = self.config.split_grid
        if not grid and len({w["num_nodes"] for w in self._worlds}) != 1:
            raise ValueError("config.model_pool: the models' DAGs have different node counts; DecoderSplit-v1 "
                             "needs split_grid >= 1 (depth-free cuts) for them")
        self.max_servers = self.max_locations - 1
        self.num_cuts = grid + 2 if grid else self.num_nodes + 1
        """Cuts of the action space: N + 1 (``split_grid`` 0) or G + 2, whatever the model."""
        self.action_space = spaces.Discrete(self.num_cuts * self.max_servers)
        self.layout = ObservationLayout(self.max_locations, per_node=False)
        self.observation_space = self.layout.space()
        self._world_changed()

    def _world_changed(self) -> None:
        """The cuts of the current world's model (nodes on the device per cut)."""
        grid = self.config.split_grid
        n = self.num_nodes
        if not grid:
            self.cuts = list(range(n + 1))
            return
        depth = [self.node_depth(i) for i in range(n)]

        def prefix(limit: float) -> int:  # the leading nodes of the priority order within the depth
            p = 0
            while p < n and depth[p] <= limit + 1e-12:
                p += 1
            return p

        self.cuts = [0] + [prefix((j - 1) / grid) for j in range(1, grid + 1)] + [n]

    @property
    def num_servers(self) -> int:
        """Servers of the current world (``max_servers`` bounds them)."""
        return self.num_locations - 1

    def decode_action(self, action: int) -> list[int]:
        """Action a = c·M + (k - 1): the first ``cuts[c]`` nodes on the device, the rest on server k."""
        c, k = divmod(int(action), self.max_servers)
        p = self.cuts[c]
        return [DEVICE] * p + [k + 1] * (self.num_nodes - p)

    def _split_fits(self) -> list[list[bool]]:
        """:func:`core.cost.split_fits` of the current token, computed once per token (the
        step's mask, its observation and the returned mask all read it)."""
        if getattr(self, "_fits_of", None) is not self.inst:
            self._fits_of, self._fits = self.inst, split_fits(self.inst)
        return self._fits

    def action_masks(self) -> np.ndarray:
        """Cuts that fit (:func:`core.cost.split_fits`), action a = c·M + (k - 1), M =
        max_servers; the columns of absent servers are False."""
        fits = np.zeros((self.num_cuts, self.max_servers), dtype=bool)
        fits[:, :self.num_servers] = np.asarray(self._split_fits(), dtype=bool)[self.cuts]
        return fits.reshape(-1)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._reset_request()
        self._build_token()
        return self._obs(), {"action_mask": self.action_masks()}

    def step(self, action):
        mask = self.action_masks()
        a = int(action)
        invalid = not (0 <= a < mask.size and mask[a])
        if invalid:
            a = int(np.flatnonzero(mask)[0])
        _, tok = self._finish_token(Placement(self.decode_action(a)))
        rewards = {"cost": -tok["cost"] / self.scale, "completion": 1.0 / self.num_tokens,
                   "invalid": -self.config.invalid_action_penalty if invalid else 0.0}
        info = {**tok, "invalid_action": invalid, "token_done": True, "rewards": rewards}
        terminated = self.token >= self.num_tokens
        if terminated:
            info.update(self._episode_end_info())
        obs = self._obs() if not terminated else {key: np.zeros(s.shape, dtype=np.float32)
                                                   for key, s in self.observation_space.spaces.items()}
        # for the observation returned (after the last token: every action, as DecoderOffload-v1)
        info["action_mask"] = self.action_masks() if not terminated else np.ones(mask.size, dtype=bool)
        return obs, float(sum(rewards.values())), terminated, False, info

    def _obs(self) -> dict[str, np.ndarray]:
        inst = self.inst
        locations = np.zeros((self.max_locations, len(self.layout.location_features)), dtype=np.float32)
        locations[:, :5] = self._location_features()
        fits = self._split_fits()
        n = self.num_nodes
        for k in range(self.num_locations):
            # the engine's cost of the whole token on location k alone (the device: all-on-device)
            if fits[0][k - 1] if k != DEVICE else fits[n][0]:
                res = evaluate(inst, Placement([k] * n), record=False, check=False)
                locations[k, 5] = log_time(res.makespan_s)
                locations[k, 6] = log_energy(res.energy_j)
            else:
                locations[k, 5:7] = 1.0  # down or full: as slow and costly as the scale goes
        activation = max(inst.out_bytes) if n else 0.0
        model = np.array([_log_scale(sum(inst.flops), 16.0), _log_scale(sum(inst.weight_bytes), 12.0),
                          _log_scale(sum(inst.kv_bytes), 12.0), _log_scale(activation, 10.0),
                          _unit(self.spec_model.num_layers / 128.0)], dtype=np.float32)
        system = np.concatenate([self._kv_share(), self._loads()])
        return {"locations": locations, "system": system, "progress": self._progress(), "model": model}
