"""Sweep configuration: the YAML schema, its validation, and the list of trials it expands to.

A sweep file (``configs/sweeps/*.yaml``)::

    algo: maskable_ppo            # fixed settings of every trial (train.py's run-config keys)
    env: DecoderOffload-v1
    timesteps: 20000
    n_envs: 2
    eval_freq: 0                  # train.py's periodic evaluation (0: off, the final model is evaluated)
    hyperparams: {n_steps: 256}   # merged over configs/agents/{algo}.yaml
    env_config: {new_tokens: 8}   # merged over EnvConfig
    seeds: [0, 1, 2]              # training seeds: every configuration runs once per seed
    search: grid                  # grid: every combination of `space`; random: `samples` draws
    samples: 8                    # random search only (a configuration drawn twice runs once)
    sampler_seed: 0               # random search only: seed of the draws
    space:                        # swept settings, by dotted path
      hyperparams.learning_rate: [1.0e-4, 3.0e-4]                 # a list: a grid axis / a uniform choice
      hyperparams.gamma: {low: 0.9, high: 0.999}                  # random only: uniform
      hyperparams.ent_coef: {low: 1.0e-4, high: 1.0e-2, log: true} # random only: log-uniform
      env_config.scenario: [two-server, wifi]
    evaluation: {episodes: 10, seed: 0, metric: cost_vs_myopic_pooled}  # evaluate.py agents, held-out seeds

Swept paths: ``algo``, ``timesteps``, ``n_envs``, ``hyperparams.KEY[.SUBKEY]`` and
``env_config.KEY[.SUBKEY]`` (the scenario, the model, the request length, the dynamics...).
Every problem is a :class:`SweepConfigError` (a ``ValueError``) naming the key.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

TOP_KEYS = frozenset({"name", "algo", "env", "timesteps", "n_envs", "eval_freq", "eval_episodes", "hyperparams",
                      "env_config", "seeds", "search", "samples", "sampler_seed", "space", "evaluation"})
EVAL_KEYS = frozenset({"episodes", "seed", "metric", "deadline_ms"})
SWEEPABLE_TOP = frozenset({"algo", "timesteps", "n_envs"})
METRICS = ("cost_vs_myopic_pooled", "cost_vs_myopic_mean", "cost_vs_static", "latency_s", "energy_j", "deadline_miss",
           "slo_violation_share")
"""Per-agent figures of ``evaluate.py agents``' summary.json (all lower-is-better)."""


class SweepConfigError(ValueError):
    """A bad sweep file: reported in one line, exit code 2."""


@dataclass(frozen=True)
class Trial:
    """One train.py run plus its held-out evaluation."""
    trial_id: str
    """Stable name: a hash of the settings and the seed (the directory under OUT/trials)."""
    seed: int
    params: dict[str, Any]
    """The swept values, by dotted path (empty for a seeds-only sweep)."""
    run: dict[str, Any]
    """train.py's resolved run config: algo, env_id, timesteps, n_envs, eval_freq, eval_episodes, hyperparams, env_config."""

    @property
    def config_key(self) -> str:
        """The swept values without the seed: trials sharing it are repeats over seeds."""
        return json.dumps(self.params, sort_keys=True, default=str)


@dataclass
class SweepConfig:
    name: str
    algo: str
    env: str
    timesteps: int
    seeds: list[int]
    n_envs: int | None = None
    eval_freq: int = 0
    eval_episodes: int | None = None
    hyperparams: dict[str, Any] = field(default_factory=dict)
    env_config: dict[str, Any] = field(default_factory=dict)
    search: str = "grid"
    samples: int | None = None
    sampler_seed: int = 0
    space: dict[str, Any] = field(default_factory=dict)
    episodes: int = 10
    eval_seed: int = 0
    metric: str = "cost_vs_myopic_pooled"
    deadline_ms: float | None = None

    @property
    def evaluation(self) -> dict[str, Any]:
        return {"episodes": self.episodes, "seed": self.eval_seed, "metric": self.metric,
                "deadline_ms": self.deadline_ms}

    def trials(self) -> list[Trial]:
        """Every (configuration, seed) pair, in a fixed order: configurations first, seeds inner.

        A trial's id is ``{hash of its settings and evaluation}_s{seed}``: content, not position,
        so a sweep extended with more values or seeds still finds the trials it already ran."""
        out = []
        for params in self._configurations():
            run = self._run_config(params)
            digest = hashlib.sha1(json.dumps({"run": run, "evaluation": self.evaluation}, sort_keys=True,
                                             default=str).encode()).hexdigest()[:10]
            if any(t.trial_id.startswith(digest) for t in out):
                continue  # random search drew a configuration again: it runs once
            out += [Trial(f"{digest}_s{seed}", seed, params, run) for seed in self.seeds]
        return out

    def _configurations(self) -> list[dict[str, Any]]:
        keys = list(self.space)
        if self.search == "grid":
            return [dict(zip(keys, combo)) for combo in itertools.product(*(self.space[k] for k in keys))]
        rng = np.random.default_rng(self.sampler_seed)
        return [{k: _draw(rng, self.space[k]) for k in keys} for _ in range(self.samples)]

    def _run_config(self, params: dict[str, Any]) -> dict[str, Any]:
        run = {"algo": self.algo, "env_id": self.env, "timesteps": self.timesteps, "n_envs": self.n_envs,
               "eval_freq": self.eval_freq, "eval_episodes": self.eval_episodes,
               "hyperparams": copy.deepcopy(self.hyperparams), "env_config": copy.deepcopy(self.env_config)}
        for path, value in params.items():
            head, *rest = path.split(".")
            if not rest:
                run[head] = value
                continue
            node = run[head]
            for part in rest[:-1]:
                node = node.setdefault(part, {})
            node[rest[-1]] = value
        return {k: v for k, v in run.items() if v is not None}


def _draw(rng: np.random.Generator, spec: Any) -> Any:
    if isinstance(spec, list):
        return spec[int(rng.integers(len(spec)))]
    low, high = float(spec["low"]), float(spec["high"])
    if spec.get("log", False):
        value = float(math.exp(rng.uniform(math.log(low), math.log(high))))
    else:
        value = float(rng.uniform(low, high))
    return int(round(value)) if spec.get("integer", False) else value


def _int(data: dict[str, Any], key: str, minimum: int, default: Any = ...) -> Any:
    if key not in data or data[key] is None:
        if default is ...:
            raise SweepConfigError(f"missing key {key!r}")
        return default
    value = data[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SweepConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_space(space: Any, search: str) -> dict[str, Any]:
    if not isinstance(space, dict):
        raise SweepConfigError(f"space must be a mapping of dotted paths to values, got {type(space).__name__}")
    for path, spec in space.items():
        head, *rest = str(path).split(".")
        if head in SWEEPABLE_TOP and not rest:
            pass
        elif head in ("hyperparams", "env_config") and rest and all(rest):
            pass
        else:
            raise SweepConfigError(f"space: cannot sweep {path!r}; sweepable: {', '.join(sorted(SWEEPABLE_TOP))}, "
                                   "hyperparams.KEY, env_config.KEY")
        if isinstance(spec, list):
            if not spec:
                raise SweepConfigError(f"space.{path}: empty list")
            if len({json.dumps(v, sort_keys=True, default=str) for v in spec}) != len(spec):
                raise SweepConfigError(f"space.{path}: repeated value in {spec}")
            continue
        if isinstance(spec, dict):
            if search == "grid":
                raise SweepConfigError(f"space.{path}: a distribution ({{low, high}}) needs search: random; "
                                       "a grid takes a list")
            unknown = set(spec) - {"low", "high", "log", "integer"}
            if unknown:
                raise SweepConfigError(f"space.{path}: unknown key(s) {sorted(unknown)}; known: high, integer, log, low")
            low, high = spec.get("low"), spec.get("high")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or not low < high:
                raise SweepConfigError(f"space.{path}: needs numbers low < high, got low={low!r} high={high!r}")
            if spec.get("log", False) and low <= 0:
                raise SweepConfigError(f"space.{path}: log-uniform needs low > 0, got {low!r}")
            continue
        raise SweepConfigError(f"space.{path}: expected a list of values or {{low, high[, log]}}, got {spec!r}")
    return dict(space)


def parse_config(data: Any, name: str = "sweep") -> SweepConfig:
    """Check a sweep mapping (the parsed YAML) and return its :class:`SweepConfig`."""
    if not isinstance(data, dict):
        raise SweepConfigError("a sweep file must be a mapping")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise SweepConfigError(f"unknown key(s) {unknown}; known: {', '.join(sorted(TOP_KEYS))}")
    for key in ("algo", "env"):
        if not isinstance(data.get(key), str):
            raise SweepConfigError(f"missing or non-string key {key!r}")
    seeds = data.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise SweepConfigError(f"seeds: a count must be >= 1, got {seeds}")
        seeds = list(range(seeds))
    if not isinstance(seeds, list) or not seeds or \
            not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise SweepConfigError(f"seeds must be a count or a non-empty list of integers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SweepConfigError(f"seeds: repeated seed in {seeds}")
    search = data.get("search", "grid")
    if search not in ("grid", "random"):
        raise SweepConfigError(f"search must be grid or random, got {search!r}")
    samples = _int(data, "samples", 1, None)
    if search == "random" and samples is None:
        raise SweepConfigError("search: random needs samples (the number of configurations drawn)")
    if search == "grid" and samples is not None:
        raise SweepConfigError("samples is for search: random only")
    for key in ("hyperparams", "env_config"):
        if not isinstance(data.get(key, {}) or {}, dict):
            raise SweepConfigError(f"{key} must be a mapping")
    evaluation = data.get("evaluation", {}) or {}
    if not isinstance(evaluation, dict):
        raise SweepConfigError("evaluation must be a mapping")
    unknown = sorted(set(evaluation) - EVAL_KEYS)
    if unknown:
        raise SweepConfigError(f"evaluation: unknown key(s) {unknown}; known: {', '.join(sorted(EVAL_KEYS))}")
    metric = evaluation.get("metric", "cost_vs_myopic_pooled")
    if metric not in METRICS:
        raise SweepConfigError(f"evaluation.metric must be one of {', '.join(METRICS)}, got {metric!r}")
    deadline = evaluation.get("deadline_ms")
    if deadline is not None and (not isinstance(deadline, (int, float)) or isinstance(deadline, bool) or deadline <= 0):
        raise SweepConfigError(f"evaluation.deadline_ms must be a number > 0, got {deadline!r}")
    cfg = SweepConfig(
        name=str(data.get("name", name)), algo=data["algo"], env=data["env"],
        timesteps=_int(data, "timesteps", 1), seeds=seeds, n_envs=_int(data, "n_envs", 1, None),
        eval_freq=_int(data, "eval_freq", 0, 0), eval_episodes=_int(data, "eval_episodes", 1, None),
        hyperparams=dict(data.get("hyperparams") or {}), env_config=dict(data.get("env_config") or {}),
        search=search, samples=samples, sampler_seed=_int(data, "sampler_seed", 0, 0),
        space=_check_space(data.get("space", {}) or {}, search),
        episodes=_int(evaluation, "episodes", 1, 10), eval_seed=_int(evaluation, "seed", 0, 0), metric=metric,
        deadline_ms=None if deadline is None else float(deadline))
    _check_names(cfg)
    return cfg


def _check_names(cfg: SweepConfig) -> None:
    """Algorithms, env ids and hyper-parameters of every configuration, before any trial starts."""
    import envs
    from agents.hyperparams import ConfigError, load_hyperparams, merge, validate

    seen = set()
    for trial in cfg.trials():
        run = trial.run
        key = json.dumps({k: run[k] for k in ("algo", "env_id", "hyperparams")}, sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        if run["env_id"] not in envs.ENV_IDS:
            raise SweepConfigError(f"env: unknown env id {run['env_id']!r}; choose from {', '.join(envs.ENV_IDS)}")
        try:
            validate(run["algo"], run["hyperparams"], where="hyperparams")
            validate(run["algo"], merge(load_hyperparams(run["algo"], run["env_id"]), run["hyperparams"]),
                     where="hyperparams")
        except ConfigError as exc:
            raise SweepConfigError(str(exc)) from None


def load_config(path: str | Path) -> SweepConfig:
    path = Path(path)
    if not path.is_file():
        raise SweepConfigError(f"sweep file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SweepConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    try:
        return parse_config(data, name=path.stem)
    except SweepConfigError as exc:
        raise SweepConfigError(f"{path}: {exc}") from None
