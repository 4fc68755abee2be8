"""``evaluate.py agents``: trained agents against DeAOff and the heuristics on held-out episodes.

Every method plays the same episodes (same request, channel, load and outage trajectory:
episode e is ``env.reset(seed=held_out_seeds(seed, episodes)[e])``, see
:mod:`agents.seeds`), and the one cost engine prices every token.
"""
from __future__ import annotations

import csv
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from deaoff_cli.config_io import CLIError, check_env_config_names, positive_finite, read_mapping
from deaoff_cli.plots import bar_plots, latency_trace

DEFAULT_DEADLINE_MS = 10.0
"""Per-decode-token latency bound of the deadline-miss column."""
CHECKPOINTS = {"final": "model.zip", "best": "best/best_model.zip"}
"""What ``--checkpoint`` picks in a run directory: the model the run ended with, or the
best periodic evaluation (chosen on the run's model-selection seeds)."""


@dataclass
class AgentsEvalConfig:
    """One held-out comparison: what evaluate.py agents (and main.py) run."""

    out: Path
    """Directory of summary.json, tokens.csv and the plots (created on success only)."""
    models: list[str] = field(default_factory=list)
    """train.py run directories or model zips; none: only DeAOff and the heuristics."""
    episodes: int = 10
    """Held-out episodes (requests) per method."""
    seed: int = 0
    """Held-out seed S: episode e has seed 2*10^9 + 1000*S + e (agents/seeds.py)."""
    deadline_ms: float = DEFAULT_DEADLINE_MS
    """Per-decode-token latency bound of the deadline-miss column (ms)."""
    env_config: str | dict[str, Any] | None = None
    """Env config overrides over the first agent's (a YAML/JSON file, inline text or a mapping)."""
    checkpoint: str = "final"
    """For run directories: ``final`` (model.zip) or ``best`` (best/best_model.zip)."""
    progress: bool = True
    """A progress bar per method on stderr."""
    command: str = ""
    """The command line, recorded in summary.json."""
    workers: int = 1
    """Methods played at once (deaoff_cli/parallel_agents.py); the tokens do not depend on it."""
    backend: str = "local"
    """``local`` (a process pool) or ``ray``, for ``workers`` > 1 or a Ray cluster."""
    address: str | None = None
    """Ray cluster address (``backend`` ray); None: a local instance."""

    def __post_init__(self) -> None:
        from agents.seeds import MAX_EPISODES, check_run_seed

        self.out = Path(self.out)
        self.models = [str(m) for m in self.models]
        if not isinstance(self.episodes, int) or isinstance(self.episodes, bool) \
                or not 1 <= self.episodes <= MAX_EPISODES:
            raise CLIError(f"--episodes must be an integer in [1, {MAX_EPISODES}], got {self.episodes!r}")
        try:
            check_run_seed(self.seed, "--seed")
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        self.deadline_ms = positive_finite(self.deadline_ms, "--deadline-ms")
        if self.checkpoint not in CHECKPOINTS:
            raise CLIError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, got {self.checkpoint!r}")
        from deaoff_cli.parallel import check

        try:
            check(self.workers, self.backend, self.address)
        except ValueError as exc:
            raise CLIError(str(exc)) from None


@dataclass
class LoadedAgent:
    name: str
    algo: str
    env_id: str
    env_config: dict[str, Any]
    model: Any
    path: Path
    checkpoint: str
    """``final``, ``best``, or ``file`` (a zip given by path)."""


def load_agent(spec: str, index: int, checkpoint: str = "final") -> LoadedAgent:
    """A run directory (its ``checkpoint``: model.zip or best/best_model.zip) or a model
    zip (its run directory's config.yaml is read for the algorithm and env)."""
    from agents import ALGOS

    path = Path(spec)
    if not path.exists():
        raise CLIError(f"model path not found: {path}")
    if path.is_dir():
        run_dir = path
        zip_path = path / CHECKPOINTS[checkpoint]
        if not zip_path.is_file():
            if checkpoint == "best" and (path / "model.zip").is_file():
                raise CLIError(f"{path} has no {CHECKPOINTS['best']} (trained with --eval-freq 0?); "
                               "use --checkpoint final")
            raise CLIError(f"{path} holds no {CHECKPOINTS[checkpoint]} (is it a run directory of train.py?)")
    else:
        zip_path = path
        checkpoint = "file"
        run_dir = path.parent.parent if path.parent.name in ("best", "checkpoints") else path.parent
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise CLIError(f"no config.yaml next to {zip_path}: cannot tell its algorithm and environment")
    try:
        cfg = yaml.safe_load(cfg_path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CLIError(f"{cfg_path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(cfg, dict):
        raise CLIError(f"{cfg_path}: expected a mapping")
    algo, env_id = cfg.get("algo"), cfg.get("env_id")
    if algo not in ALGOS:
        raise CLIError(f"{cfg_path}: unknown algorithm {algo!r}")
    try:
        model = ALGOS[algo].load(str(zip_path), device="cpu")
    except Exception as exc:  # a corrupt or foreign zip
        raise CLIError(f"cannot load {zip_path} as a {algo} model: {' '.join(str(exc).split())}") from None
    name = f"agent-{algo}" if index == 0 else f"agent-{algo}-{index}"
    return LoadedAgent(name, algo, env_id, dict(cfg.get("env_config") or {}), model, zip_path, checkpoint)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        both = isinstance(value, Mapping) and isinstance(merged.get(key), Mapping)
        merged[key] = _merge(merged[key], value) if both else value
    return merged


def _ci95(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% Student-t confidence interval."""
    from scipy import stats

    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan")
    if arr.size == 1:
        return float(arr[0]), float("nan")
    half = stats.t.ppf(0.975, arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size)
    return float(arr.mean()), float(half)


def _play_episode(method: str, env, seed: int, agent: LoadedAgent | None, heuristic=None) -> list[dict[str, Any]]:
    """One request under ``method``; returns a record per token."""
    from agents.algos import MASKABLE
    from core.instance import Placement

    u = env.unwrapped
    obs, _ = env.reset(seed=seed)
    records: list[dict[str, Any]] = []
    static_plan: Placement | None = None
    rng = np.random.default_rng(seed)
    done = False
    while not done:
        snap = u.snapshot
        state = {"uplink_mbps": [r[-1] / 1e6 for r in snap.uplink_bps], "loads": list(snap.server_load),
                 "servers_up": list(snap.server_up)}
        fallback = False
        if agent is not None:
            info: dict[str, Any] = {}
            while not info.get("token_done"):
                if agent.algo in MASKABLE:
                    action, _ = agent.model.predict(obs, deterministic=True, action_masks=u.action_masks())
                else:
                    action, _ = agent.model.predict(obs, deterministic=True)
                obs, _, done, _, info = env.step(int(action))
        else:
            inst = u.inst
            if method == "deaoff-oracle":
                plan = u.ref_placement
            elif method == "deaoff-static":
                # planned once: the prefill's plan, then the first decode token's plan, kept
                if static_plan is None or u.context is None or u.token <= 1:
                    plan = static_plan = u.ref_placement
                else:
                    plan = _repair(inst, static_plan)
            else:
                try:
                    plan = heuristic(inst, rng)
                except ValueError:
                    # no plan of this kind exists right now (e.g. all-edge while every server
                    # is down): the token runs on the device, and the fallback is counted
                    plan = _repair(inst, Placement([0] * inst.num_nodes))
                    fallback = True
            info = u.play_token(plan)
            done = u.token >= u.num_tokens
        records.append({"token": info["token"], "context": info["context"], "latency_s": info["latency_s"],
                        "energy_j": info["energy_j"], "cost": info["cost"], "ref_cost": info["ref_cost"],
                        "fallback": fallback, **state})
    return records


def _repair(inst, plan):
    """Keep a stored plan; a node whose location is down or out of memory moves to the
    first feasible location (device first)."""
    from core.cost import feasible_locations
    from core.instance import Placement

    used = [0.0] * inst.num_locations
    loc = []
    for i, k in enumerate(plan.loc):
        ok = feasible_locations(inst, i, used)
        if not ok[k]:
            k = ok.index(True)
        used[k] += inst.mem_need[i]
        loc.append(k)
    return Placement(loc, plan.dvfs, plan.tx)


def run_agents(config: AgentsEvalConfig) -> dict[str, Any]:
    """Play every method on the held-out episodes; write summary.json, tokens.csv and the
    plots under ``config.out`` (only once everything succeeded); return the summary."""
    import gymnasium as gym
    import torch

    import envs  # noqa: F401  (registers the environments)
    from agents.seeds import held_out_seeds
    from solvers.heuristics import HEURISTICS

    cfg = config
    # small MLPs, one observation at a time: more threads only add synchronisation
    torch.set_num_threads(1)
    agents = [load_agent(m, i, cfg.checkpoint) for i, m in enumerate(cfg.models)]
    env_cfg = dict(agents[0].env_config) if agents else {}
    if cfg.env_config is not None:
        env_cfg = _merge(env_cfg, read_mapping(cfg.env_config, "--env-config"))
    check_env_config_names(env_cfg, "--env-config")
    # the side-by-side runs every method under the same conditions: every agent's env
    # must share the first agent's model, scenario, request length and dynamics
    envs_by_id: dict[str, Any] = {}

    def env_for(env_id: str):
        if env_id not in envs_by_id:
            try:
                envs_by_id[env_id] = gym.make(env_id, config=env_cfg)
            except (TypeError, ValueError, FileNotFoundError) as exc:
                raise CLIError(f"env {env_id}: {' '.join(str(exc).split())}") from None
        return envs_by_id[env_id]

    env_for("DecoderOffload-v0")
    for a in agents:
        env = env_for(a.env_id)
        if a.model.observation_space != env.observation_space:
            raise CLIError(f"{a.path} was trained on a different observation space than {a.env_id} with this "
                           f"config: {a.model.observation_space} vs {env.observation_space}")
        if a.model.action_space != env.action_space:
            raise CLIError(f"{a.path} was trained on a different action space than {a.env_id} with this "
                           f"config: {a.model.action_space} vs {env.action_space}")
    for a in agents:  # all checked: say which file each agent is
        what = {"final": "final model (the one the run ended with)", "best": "best periodic-evaluation model",
                "file": "the given file"}[a.checkpoint]
        print(f"  {a.name}: {a.path}, {what}, step {a.model.num_timesteps:,}", file=sys.stderr, flush=True)
    methods: list[tuple[str, LoadedAgent | None, Any]] = [(a.name, a, None) for a in agents]
    methods += [("deaoff-oracle", None, None), ("deaoff-static", None, None)]
    methods += [(name, None, fn) for name, fn in HEURISTICS.items()]
    all_methods = list(methods)
    seeds = list(held_out_seeds(cfg.seed, cfg.episodes))
    tokens: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    t_start = time.perf_counter()
    width = max(len(m[0]) for m in methods)
    if cfg.workers > 1 or cfg.backend != "local":
        from deaoff_cli.parallel_agents import play_methods

        tokens, skipped = play_methods(methods, {a.name: (m, i, cfg.checkpoint) for i, (a, m) in
                                                 enumerate(zip(agents, cfg.models))},
                                       {fn: name for name, fn in HEURISTICS.items()}, env_cfg, seeds,
                                       cfg.workers, cfg.backend, cfg.address)
        methods = []  # played
    for name, agent, fn in methods:
        env = env_for(agent.env_id if agent else "DecoderOffload-v0")
        bar = _progress(cfg.progress, len(seeds), name.ljust(width))
        try:
            for ep, s in enumerate(seeds):
                for rec in _play_episode(name, env, s, agent, fn):
                    tokens.append({"method": name, "episode": ep, "seed": s, **rec})
                bar.update(1)
        except ValueError as exc:  # a heuristic with no feasible plan (e.g. model too big for the device)
            bar.close()
            tokens = [t for t in tokens if t["method"] != name]
            skipped[name] = str(exc)
            print(f"  {name}: skipped ({exc})", file=sys.stderr)
            continue
        bar.close()
    names = [m[0] for m in all_methods if m[0] not in skipped]
    summary = _agent_summary(tokens, names, cfg.deadline_ms)
    summary.update({"mode": "agents", "command": cfg.command, "episodes": cfg.episodes, "seed": cfg.seed,
                    "seeds": seeds, "env_config": env_cfg, "deadline_ms": cfg.deadline_ms, "skipped": skipped,
                    "agents": {a.name: {"path": str(a.path), "checkpoint": a.checkpoint, "algo": a.algo,
                                        "env_id": a.env_id, "num_timesteps": int(a.model.num_timesteps)}
                               for a in agents},
                    "wall_time_s": time.perf_counter() - t_start})
    _write_agents(cfg.out, summary, tokens, names)
    print(_agent_markdown(summary))
    return summary


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="episode", file=sys.stderr, dynamic_ncols=True)


def _write_agents(out: Path, summary: dict[str, Any], tokens: list[dict[str, Any]], names: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    methods = summary["methods"]
    errors = {n: {"latency_s": m["latency_s_ci95"], "energy_j": m["energy_j_ci95"]} for n, m in methods.items()}
    bar_plots(out, methods, "held-out episodes", errors=errors)
    summary["trace_episode"] = latency_trace(out, names, tokens)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    with open(out / "tokens.csv", "w", newline="") as fh:
        keys = ["method", "episode", "seed", "token", "context", "latency_s", "energy_j", "cost", "ref_cost",
                "fallback", "uplink_mbps", "loads", "servers_up"]
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for t in tokens:
            w.writerow({k: (json.dumps(t[k]) if isinstance(t[k], list) else t[k]) for k in keys})


def _agent_summary(tokens: list[dict[str, Any]], names: list[str], deadline_ms: float) -> dict[str, Any]:
    by = {}
    for t in tokens:
        by.setdefault((t["method"], t["episode"]), []).append(t)
    oracle = {ep: recs for (m, ep), recs in by.items() if m == "deaoff-oracle"}
    static = {ep: recs for (m, ep), recs in by.items() if m == "deaoff-static"}
    out: dict[str, Any] = {"methods": {}}
    for name in names:
        eps = sorted(ep for (m, ep) in by if m == name)
        lat, ene, vs_oracle, vs_static, ref_ratio, miss = [], [], [], [], [], []
        for ep in eps:
            recs = by[(name, ep)]
            decode = [r for r in recs if r["context"] is not None]
            lat.append(float(np.mean([r["latency_s"] for r in recs])))
            ene.append(float(np.mean([r["energy_j"] for r in recs])))
            cost = sum(r["cost"] for r in recs)
            if ep in oracle:
                vs_oracle.append(cost / sum(r["cost"] for r in oracle[ep]))
            if ep in static:
                vs_static.append(cost / sum(r["cost"] for r in static[ep]))
            ref_ratio.append(cost / sum(r["ref_cost"] for r in recs))
            if decode:
                miss.append(float(np.mean([r["latency_s"] * 1e3 > deadline_ms for r in decode])))
        entry = {}
        for key, vals in (("latency_s", lat), ("energy_j", ene), ("cost_vs_oracle", vs_oracle),
                          ("cost_vs_static", vs_static), ("cost_vs_reference", ref_ratio),
                          ("deadline_miss", miss)):
            mean, half = _ci95(vals)
            entry[key] = mean
            entry[key + "_ci95"] = half
        entry["episodes"] = len(eps)
        entry["fallback_tokens"] = int(sum(r.get("fallback", False) for ep in eps for r in by[(name, ep)]))
        out["methods"][name] = entry
    return out


def _agent_markdown(summary: dict[str, Any]) -> str:
    def pm(m, key, scale=1.0, digits=3):
        v, h = m[key], m[key + "_ci95"]
        if v is None or not math.isfinite(v):
            return "n/a"
        return f"{v * scale:.{digits}f} ± {h * scale:.{digits}f}" if math.isfinite(h) else f"{v * scale:.{digits}f}"

    lines = [f"## Agents vs DeAOff: {summary['episodes']} held-out episodes, mean ± 95% CI over episodes", "",
             f"| method | latency per token (ms) | device energy per token (mJ) | cost / DeAOff-oracle | "
             f"cost / DeAOff-static | decode tokens over {summary['deadline_ms']:g} ms |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, m in summary["methods"].items():
        lines.append(f"| {name} | {pm(m, 'latency_s', 1e3, 2)} | {pm(m, 'energy_j', 1e3, 2)} | "
                     f"{pm(m, 'cost_vs_oracle')} | {pm(m, 'cost_vs_static')} | {pm(m, 'deadline_miss', 100, 1)} % |")
    lines += ["", "cost = w_T·latency_s + w_E·energy_j summed over the request, divided by the same "
              "sum for DeAOff-oracle (re-solved every token) or DeAOff-static (planned once) on the same "
              "episode (same channel, load and outage trajectory).", ""]
    for name, m in summary["methods"].items():
        if m.get("fallback_tokens"):
            lines.append(f"- {name}: {m['fallback_tokens']} token(s) had no plan of its kind and ran on the device")
    if summary.get("skipped"):
        for name, why in summary["skipped"].items():
            lines.append(f"- {name}: not run ({why})")
    return "\n".join(lines)
