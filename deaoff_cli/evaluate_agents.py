"""``evaluate.py agents``: trained agents against DeAOff and the non-learned baselines on held-out episodes.

Every method plays the same episodes (same request, channel, load and outage trajectory:
episode e is ``env.reset(seed=held_out_seeds(seed, episodes)[e])``, see
:mod:`agents.seeds`), and the one cost engine prices every token under the env's scored
objective (``objective``: weighted or slo).

Methods: the agents; ``myopic-optimum`` (DeAOff on every token as it stands, the scored
objective); ``deaoff-static`` (DeAOff's plan at the start, kept); the rule baselines of
:mod:`envs.baselines` (``all-edge-free-ends``, ``lookahead``); the heuristics of
:mod:`solvers.heuristics` re-run every token (``all-edge``, ``neurosurgeon`` = best single
split, ``greedy-eft``, ``heft``, ``all-device``, ``random``).

Statistics per method, over episodes: the pooled cost ratio Σ cost / Σ myopic-optimum cost
with a seeded percentile bootstrap CI over episodes; the mean per-episode ratio with a
Student-t interval; the paired per-episode ratio differences against the best non-learned
baseline (lowest pooled ratio; ``random`` excluded), their t-interval, a Wilcoxon
signed-rank test (``scipy.stats.wilcoxon``) and win/tie/loss counts; SLO violations (the
env's TTFT/TPOT targets); with ``clairvoyant`` (weighted objective), the share of the
clairvoyant gap closed, (Σ best − Σ method) / (Σ best − Σ clairvoyant), the clairvoyant
plan (:func:`solvers.clairvoyant.clairvoyant_plan`) computed on each episode's recorded
snapshots.
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
from deaoff_cli.stats import ci95

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
    episodes: int = 100
    """Held-out episodes (requests) per method."""
    seed: int = 0
    """Held-out seed S: episode e has seed 2*10^9 + 1000*S + e (agents/seeds.py)."""
    deadline_ms: float = DEFAULT_DEADLINE_MS
    """Per-decode-token latency bound of the deadline-miss column (ms)."""
    env_config: str | dict[str, Any] | None = None
    """Env config overrides over the first agent's (a YAML/JSON file, inline text or a mapping)."""
    checkpoint: str = "final"
    """For run directories: ``final`` (model.zip) or ``best`` (best/best_model.zip)."""
    clairvoyant: bool = False
    """Also solve each episode's clairvoyant plan (weighted objective; seconds per episode)."""
    bootstrap: int = 2000
    """Bootstrap resamples of the pooled-ratio CI (seeded with ``seed``)."""
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


POOLS = {"scenario": "scenario_pool", "model": "model_pool", "world_distribution": "world_distribution"}
"""An env-config key naming one world -> the training pool it replaces in evaluation."""


def _one_world(trained: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` plus, for each world key it names (a scenario, a model), the emptied pool the
    agent was trained on (``scenario_pool``, ``model_pool``, ``world_distribution``), so
    ``--env-config '{"scenario": "lte-cell-edge"}'`` evaluates on that world alone; says so
    on stderr.  A pool ``over`` sets itself is kept."""
    out = dict(over)
    for key, pool in POOLS.items():
        targets = ("scenario",) if key == "world_distribution" else (key,)
        if any(t in over for t in targets) and pool not in over and trained.get(pool):
            out[pool] = "" if pool == "world_distribution" else []
            print(f"  --env-config names a {targets[0]}: the run's {pool} ({trained[pool]!r}) is not used",
                  file=sys.stderr, flush=True)
    return out


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        both = isinstance(value, Mapping) and isinstance(merged.get(key), Mapping)
        merged[key] = _merge(merged[key], value) if both else value
    return merged


def _play_episode(method: str, env, seed: int, agent: LoadedAgent | None, heuristic=None,
                  baseline=None) -> list[dict[str, Any]]:
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
            if method == "myopic-optimum":
                plan = u.myopic_placement
            elif method == "deaoff-static":
                # planned once: the prefill's plan, then the first decode token's plan, kept
                if static_plan is None or u.context is None or u.token <= 1:
                    plan = static_plan = u.myopic_placement
                else:
                    plan = _repair(inst, static_plan)
            else:
                try:
                    plan = baseline(u) if baseline is not None else heuristic(inst, rng)
                except ValueError:
                    # no plan of this kind exists right now (e.g. all-edge while every server
                    # is down): the token runs on the device, and the fallback is counted
                    plan = _repair(inst, Placement([0] * inst.num_nodes))
                    fallback = True
            info = u.play_token(plan)
            done = u.token >= u.num_tokens
        records.append({"token": info["token"], "context": info["context"], "latency_s": info["latency_s"],
                        "energy_j": info["energy_j"], "cost": info["cost"], "scale": info["scale"],
                        "slo_violation": bool(info["slo_violation"]), "fallback": fallback, **state})
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
    from envs.baselines import BASELINES
    from solvers.heuristics import HEURISTICS

    cfg = config
    # small MLPs, one observation at a time: more threads only add synchronisation
    torch.set_num_threads(1)
    agents = [load_agent(m, i, cfg.checkpoint) for i, m in enumerate(cfg.models)]
    env_cfg = dict(agents[0].env_config) if agents else {}
    if cfg.env_config is not None:
        env_cfg = _merge(env_cfg, _one_world(env_cfg, read_mapping(cfg.env_config, "--env-config")))
    check_env_config_names(env_cfg, "--env-config")
    if cfg.clairvoyant and any(env_cfg.get(k) for k in POOLS.values()):
        raise CLIError("--clairvoyant needs one world: give --env-config a scenario and a model "
                       "(the run's pools are replaced by them)")
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

    env_for("DecoderOffload-v1")
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
    methods: list[tuple[str, LoadedAgent | None, Any, Any]] = [(a.name, a, None, None) for a in agents]
    methods += [("myopic-optimum", None, None, None), ("deaoff-static", None, None, None)]
    methods += [(name, None, None, fn) for name, fn in BASELINES.items()]
    methods += [(name, None, fn, None) for name, fn in HEURISTICS.items()]
    all_methods = list(methods)
    seeds = list(held_out_seeds(cfg.seed, cfg.episodes))
    tokens: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    t_start = time.perf_counter()
    width = max(len(m[0]) for m in methods)
    snapshots: dict[int, list] = {}
    if cfg.workers > 1 or cfg.backend != "local":
        from deaoff_cli.parallel_agents import play_methods

        tokens, skipped, snapshots = play_methods(
            methods, {a.name: (m, i, cfg.checkpoint) for i, (a, m) in enumerate(zip(agents, cfg.models))},
            env_cfg, seeds, cfg.workers, cfg.backend, cfg.address)
        methods = []  # played
    for name, agent, fn, base in methods:
        env = env_for(agent.env_id if agent else "DecoderOffload-v1")
        bar = _progress(cfg.progress, len(seeds), name.ljust(width))
        try:
            for ep, s in enumerate(seeds):
                for rec in _play_episode(name, env, s, agent, fn, base):
                    tokens.append({"method": name, "episode": ep, "seed": s, **rec})
                if name == "myopic-optimum":  # the episode's recorded future, for the yardstick
                    snapshots[ep] = list(env.unwrapped.snapshots)
                bar.update(1)
        except ValueError as exc:  # a heuristic with no feasible plan (e.g. model too big for the device)
            bar.close()
            tokens = [t for t in tokens if t["method"] != name]
            skipped[name] = str(exc)
            print(f"  {name}: skipped ({exc})", file=sys.stderr)
            continue
        bar.close()
    names = [m[0] for m in all_methods if m[0] not in skipped]
    clair: dict[int, float] | None = None
    if cfg.clairvoyant:
        clair = _clairvoyant_costs(env_for("DecoderOffload-v1").unwrapped, snapshots, cfg.progress)
    summary = _agent_summary(tokens, names, cfg.deadline_ms, learned=[a.name for a in agents],
                             clairvoyant=clair, bootstrap=cfg.bootstrap, seed=cfg.seed)
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
        keys = ["method", "episode", "seed", "token", "context", "latency_s", "energy_j", "cost", "scale",
                "slo_violation", "fallback", "uplink_mbps", "loads", "servers_up"]
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for t in tokens:
            w.writerow({k: (json.dumps(t[k]) if isinstance(t[k], list) else t[k]) for k in keys})


def _clairvoyant_costs(env, snapshots: dict[int, list], progress: bool) -> dict[int, float]:
    """The clairvoyant plan's cost of every episode (weighted objective only)."""
    from solvers.clairvoyant import clairvoyant_plan, episode_contexts

    c = env.config
    if c.objective != "weighted":
        raise CLIError("--clairvoyant needs objective 'weighted' (the yardstick's DP scores w_T·T + w_E·E)")
    contexts = episode_contexts(c.prompt_len, c.new_tokens, c.include_prefill)
    bar = _progress(progress, len(snapshots), "clairvoyant")
    out = {}
    for ep, snaps in sorted(snapshots.items()):
        out[ep] = clairvoyant_plan(env.tokens, snaps, contexts, w_time_per_s=c.latency_weight,
                                   w_energy_per_j=c.energy_weight).cost
        bar.update(1)
    bar.close()
    return out


def _bootstrap_pooled(num: np.ndarray, den: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """95% percentile bootstrap CI of Σ num / Σ den, resampling episodes (seeded)."""
    if num.size < 2 or resamples < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, num.size, size=(resamples, num.size))
    ratios = num[idx].sum(axis=1) / den[idx].sum(axis=1)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def _paired(diff: np.ndarray) -> dict[str, Any]:
    """Mean paired difference, its t half-width, Wilcoxon signed-rank p, win/tie/loss."""
    from scipy import stats

    mean, half = ci95(list(diff))
    tie = np.abs(diff) <= 1e-9
    out = {"mean_diff": mean, "mean_diff_ci95": half, "wins": int(np.sum((diff < 0) & ~tie)),
           "ties": int(np.sum(tie)), "losses": int(np.sum((diff > 0) & ~tie)), "wilcoxon_p": float("nan")}
    if np.sum(~tie) >= 1:
        out["wilcoxon_p"] = float(stats.wilcoxon(diff[~tie]).pvalue)
    elif diff.size:
        out["wilcoxon_p"] = 1.0
    return out


MIN_ROOM = 0.01
"""Room below the best baseline (share of its cost) under which the markdown table does not
show the clairvoyant-gap-closed shares (summary.json keeps them)."""
NOT_A_BASELINE = ("random",)
"""Methods never chosen as the best non-learned baseline."""


def _agent_summary(tokens: list[dict[str, Any]], names: list[str], deadline_ms: float, *,
                   learned: list[str] | None = None, clairvoyant: dict[int, float] | None = None,
                   bootstrap: int = 2000, seed: int = 0) -> dict[str, Any]:
    learned = list(learned or [])
    by: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for t in tokens:
        by.setdefault((t["method"], t["episode"]), []).append(t)
    cost = {name: {ep: sum(r["cost"] for r in recs) for (m, ep), recs in by.items() if m == name} for name in names}
    myopic = cost.get("myopic-optimum", {})
    static = cost.get("deaoff-static", {})
    eps_all = sorted(set.intersection(*(set(c) for c in cost.values()))) if cost else []
    if myopic:
        eps_all = [ep for ep in eps_all if ep in myopic]
    den = np.array([myopic[ep] for ep in eps_all]) if myopic else None

    def pooled(name: str) -> float:
        return float(sum(cost[name][ep] for ep in eps_all) / den.sum()) if den is not None and eps_all else float("nan")

    candidates = [n for n in names if n not in learned and n not in NOT_A_BASELINE]
    best = min(candidates, key=pooled) if candidates and den is not None and eps_all else None
    out: dict[str, Any] = {"methods": {}, "best_baseline": best, "paired_episodes": len(eps_all),
                           "clairvoyant": None}
    if clairvoyant is not None and best is not None:
        clair_total = float(sum(clairvoyant[ep] for ep in eps_all))
        out["clairvoyant"] = {"pooled_vs_myopic": clair_total / float(den.sum()),
                              "room_vs_best_baseline": 1.0 - clair_total / sum(cost[best][ep] for ep in eps_all)}
    for name in names:
        eps = sorted(ep for (m, ep) in by if m == name)
        lat, ene, vs_static, miss, slo = [], [], [], [], []
        for ep in eps:
            recs = by[(name, ep)]
            decode = [r for r in recs if r["context"] is not None]
            lat.append(float(np.mean([r["latency_s"] for r in recs])))
            ene.append(float(np.mean([r["energy_j"] for r in recs])))
            slo.append(float(np.mean([r["slo_violation"] for r in recs])))
            if ep in static:
                vs_static.append(cost[name][ep] / static[ep])
            if decode:
                miss.append(float(np.mean([r["latency_s"] * 1e3 > deadline_ms for r in decode])))
        entry: dict[str, Any] = {}
        for key, vals in (("latency_s", lat), ("energy_j", ene), ("cost_vs_static", vs_static),
                          ("deadline_miss", miss), ("slo_violation_share", slo)):
            mean, half = ci95(vals)
            entry[key] = mean
            entry[key + "_ci95"] = half
        entry["slo_violations"] = int(sum(r["slo_violation"] for ep in eps for r in by[(name, ep)]))
        if den is not None and eps_all:
            num = np.array([cost[name][ep] for ep in eps_all])
            entry["cost_vs_myopic_pooled"] = pooled(name)
            entry["cost_vs_myopic_pooled_ci95"] = list(_bootstrap_pooled(num, den, bootstrap, seed))
            ratio = num / den
            entry["cost_vs_myopic_mean"], entry["cost_vs_myopic_mean_ci95"] = ci95(list(ratio))
            if best is not None and name != best:
                best_ratio = np.array([cost[best][ep] for ep in eps_all]) / den
                entry["vs_best_baseline"] = {"baseline": best, **_paired(ratio - best_ratio)}
            if out["clairvoyant"] is not None:
                b = sum(cost[best][ep] for ep in eps_all)
                c = sum(clairvoyant[ep] for ep in eps_all)
                entry["clairvoyant_gap_closed"] = float((b - num.sum()) / (b - c)) if b - c > 1e-12 else float("nan")
        entry["episodes"] = len(eps)
        entry["fallback_tokens"] = int(sum(r.get("fallback", False) for ep in eps for r in by[(name, ep)]))
        out["methods"][name] = entry
    return out


def _fmt(v: float | None, digits: int = 3, scale: float = 1.0) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v * scale:.{digits}f}"


def _agent_markdown(summary: dict[str, Any]) -> str:
    def pm(m, key, scale=1.0, digits=3):
        v, h = m.get(key), m.get(key + "_ci95")
        if v is None or not math.isfinite(v):
            return "n/a"
        return f"{v * scale:.{digits}f} ± {h * scale:.{digits}f}" if h is not None and math.isfinite(h) \
            else f"{v * scale:.{digits}f}"

    best = summary.get("best_baseline")
    clair = summary.get("clairvoyant")
    # a share of a gap within the noise says nothing: shown only when the room is >= MIN_ROOM
    room_ok = bool(clair) and clair["room_vs_best_baseline"] >= MIN_ROOM
    lines = [f"## Agents vs DeAOff and the baselines: {summary['episodes']} held-out episodes", "",
             f"| method | latency per token (ms) | device energy per token (mJ) | pooled cost / myopic [95% CI] | "
             f"mean episode ratio ± 95% CI | vs {best or 'best baseline'}: Δ ratio ± CI (Wilcoxon p) | W/T/L | "
             f"SLO violations | clairvoyant gap closed |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in summary["methods"].items():
        lo, hi = m.get("cost_vs_myopic_pooled_ci95", [float("nan")] * 2)
        pooled = f"{_fmt(m.get('cost_vs_myopic_pooled'))} [{_fmt(lo)}, {_fmt(hi)}]"
        vs = m.get("vs_best_baseline")
        if vs:
            d = f"{vs['mean_diff']:+.4f} ± {_fmt(vs['mean_diff_ci95'], 4)} (p = {vs['wilcoxon_p']:.2g})"
            wtl = f"{vs['wins']}/{vs['ties']}/{vs['losses']}"
        else:
            d, wtl = ("(best)" if name == best else "n/a"), "–"
        gap = _fmt(m.get("clairvoyant_gap_closed"), 3) if room_ok else "n/a"
        lines.append(f"| {name} | {pm(m, 'latency_s', 1e3, 2)} | {pm(m, 'energy_j', 1e3, 2)} | {pooled} | "
                     f"{pm(m, 'cost_vs_myopic_mean')} | {d} | {wtl} | {m['slo_violations']} "
                     f"({pm(m, 'slo_violation_share', 100, 1)} %) | {gap} |")
    lines += ["", "cost = the env's scored objective summed over the request; ratios are to the myopic "
              "optimum (DeAOff re-solved on every token) on the same episode (same channel, load and outage "
              "trajectory).  Pooled = Σ cost / Σ myopic cost with a seeded percentile bootstrap over episodes; "
              "Δ ratio = paired per-episode ratio difference to the best non-learned baseline (negative: "
              "better), W/T/L = episodes won/tied/lost against it.", ""]
    if clair:
        lines.append(f"- clairvoyant plan: pooled cost / myopic {clair['pooled_vs_myopic']:.4f}; room below the "
                     f"best baseline {100 * clair['room_vs_best_baseline']:.2f} %"
                     + ("" if room_ok else f" (under {100 * MIN_ROOM:g} %: the gap-closed shares are not shown, "
                                           "summary.json has them)"))
    for name, m in summary["methods"].items():
        if m.get("fallback_tokens"):
            lines.append(f"- {name}: {m['fallback_tokens']} token(s) had no plan of its kind and ran on the device")
    if summary.get("skipped"):
        for name, why in summary["skipped"].items():
            lines.append(f"- {name}: not run ({why})")
    return "\n".join(lines)
