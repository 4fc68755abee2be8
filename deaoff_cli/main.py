"""The main job with the default configuration.

    python main.py [--model NAME_OR_CONFIG_JSON] [--scenario NAME_OR_YAML] [--granularity G]
                   [--prompt-len N] [--timesteps N] [--episodes N] [--seed S] [--n-envs K] [--out DIR]
    python main.py --inspect [--model ...] [--scenario ...] [--granularity block|sublayer|head]
                   [--prompt-len N] [--phase decode|prefill]

1. Prints the model's layer DAG and the cost of the all-device and all-edge placements
   (the cost engine at work).
2. Trains MaskablePPO on DecoderSplit-v1 for a short budget, with TensorBoard logs: the
   split agent's recipe of configs/agents/maskable_ppo.yaml (behaviour cloning of the
   myopic optimum on 60 demonstration episodes, then gentle PPO updates).
3. Benchmarks the agent (its final model) against the myopic optimum, DeAOff-static and the
   non-learned baselines on held-out episodes and prints the table.

Every option reaches all three steps through one :class:`MainJob`: --model, --scenario,
--granularity and --prompt-len are the env config of the DAG print, of training and of
the evaluation (which reads it back from the run's config.yaml).  Defaults are
EnvConfig's and MainJob's own; all options are checked before anything is printed.
--phase only chooses the DAG printed by --inspect (an episode plays a prefill and then
decode tokens).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.cost import evaluate
from core.dag import build_dag, cost_table
from core.instance import Placement, make_instance
from core.models import load_model_spec
from core.system import load_scenario, make_snapshot
from deaoff_cli.config_io import CLIError, positive_finite
from deaoff_cli.evaluate_agents import DEFAULT_DEADLINE_MS

ENV_OPTIONS = ("model", "scenario", "granularity", "prompt_len")
"""Command-line options that are EnvConfig fields (same names)."""
PHASES = ("decode", "prefill")


@dataclass
class MainJob:
    """The main job: the DAG print, training and the held-out evaluation read this one object."""

    env_config: dict[str, Any] = field(default_factory=dict)
    """EnvConfig overrides (model, scenario, granularity, prompt_len); EnvConfig fills the rest."""
    phase: str = "decode"
    """Phase of the DAG printed by --inspect."""
    timesteps: int = 20_000
    """MaskablePPO training steps after the warm start (one step = one token; 20k ≈ 78
    requests of 257 tokens: the main job stays within ~3 minutes on 2 cores)."""
    n_envs: int | None = None
    """Training envs (None: train.py's choice for speed, deaoff_cli/vectorise.py)."""
    episodes: int = 10
    """Held-out evaluation episodes."""
    seed: int = 0
    """Run seed of training, and the held-out seed of the evaluation (agents/seeds.py)."""
    out: Path = Path("runs/main")
    """Parent of the run directory; the evaluation goes to RUN_DIR/evaluation."""
    deadline_ms: float = DEFAULT_DEADLINE_MS
    """Per-decode-token latency bound of the evaluation table (ms)."""
    algo: str = "maskable_ppo"
    env_id: str = "DecoderSplit-v1"

    def env(self):
        """The resolved EnvConfig (defaults under the overrides), or CLIError."""
        from envs.offload_env import EnvConfig

        try:
            return EnvConfig.from_dict(self.env_config)
        except (TypeError, ValueError) as exc:
            raise CLIError(" ".join(str(exc).split())) from None


def _int_option(value: Any, name: str, low: int, high: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise CLIError(f"--{name.replace('_', '-')} must be an integer {bound}, got {value!r}")


def validate(job: MainJob, inspect_only: bool) -> None:
    """Every option, before anything is printed or trained: one CLIError naming the first bad one."""
    env = job.env()
    for what, load, name in (("--model", load_model_spec, env.model), ("--scenario", load_scenario, env.scenario)):
        try:
            load(name)
        except (ValueError, FileNotFoundError, OSError) as exc:
            raise CLIError(f"{what}: {' '.join(str(exc).split())}") from None
    if job.phase not in PHASES:
        raise CLIError(f"--phase must be one of {', '.join(PHASES)}, got {job.phase!r}")
    if inspect_only:
        return
    from agents.seeds import MAX_ENVS, MAX_EPISODES, RUN_SEEDS

    _int_option(job.timesteps, "timesteps", 1)
    if job.n_envs is not None:
        _int_option(job.n_envs, "n_envs", 1, MAX_ENVS)
    _int_option(job.episodes, "episodes", 1, MAX_EPISODES)
    _int_option(job.seed, "seed", RUN_SEEDS.start, RUN_SEEDS.stop - 1)
    positive_finite(job.deadline_ms, "deadline_ms")
    import envs
    try:  # what only the env checks (e.g. prompt + new tokens within the model's positions)
        envs.offload_env.DecoderOffloadEnv(env).close()
    except (TypeError, ValueError, FileNotFoundError) as exc:
        raise CLIError(f"env config: {' '.join(str(exc).split())}") from None


def inspect(job: MainJob, rows: int | None) -> None:
    """Print the DAG of one token and the all-on-one-location costs."""
    env = job.env()
    spec = load_model_spec(env.model)
    graph = build_dag(spec, env.granularity, job.phase, prompt_len=env.prompt_len)
    print(f"# {spec.name}: {spec.param_count / 1e9:.3f} B parameters, {graph.number_of_nodes()} nodes "
          f"({env.granularity}, {job.phase}, prompt {env.prompt_len})\n")
    print(f"| {'node':<12} | {'kind':<6} | {'GFLOP':>9} | {'weights MB':>10} | {'out KB':>8} | {'KV MB':>8} |")
    print(f"|{'-' * 14}|{'-' * 8}|{'-' * 11}|{'-' * 12}|{'-' * 10}|{'-' * 10}|")
    table = cost_table(graph)
    shown = table if rows is None or len(table) <= rows else table[: rows - 1] + [None] + table[-1:]
    for row in shown:
        if row is None:
            print(f"| {'…':<12} | {'':<6} | {'':>9} | {'':>10} | {'':>8} | {'':>8} |")
            continue
        print(f"| {row['name']:<12} | {row['kind']:<6} | {row['flops'] / 1e9:>9.4f} | "
              f"{row['weight_bytes'] / 1e6:>10.2f} | {row['out_bytes'] / 1e3:>8.2f} | {row['kv_bytes'] / 1e6:>8.3f} |")
    sc = load_scenario(env.scenario)
    inst = make_instance(graph, make_snapshot(sc))
    print(f"\n# scenario {sc.name}: {sc.num_servers} edge server(s), mean channel")
    for k in range(inst.num_locations):
        name = inst.location_names[k]
        try:
            res = evaluate(inst, Placement([k] * inst.num_nodes))
            print(f"all on {name:<7}: {res.makespan_s * 1e3:9.3f} ms, device energy {res.energy_j * 1e3:9.3f} mJ")
        except ValueError as exc:
            print(f"all on {name:<7}: infeasible ({exc})")


def run(job: MainJob, command: str) -> Path:
    """Train, then evaluate on held-out episodes; return the run directory."""
    from deaoff_cli.evaluate_agents import AgentsEvalConfig, run_agents
    from deaoff_cli.train import resolve_new, train

    env_config = job.env().to_dict()  # dynamics: the keys set (the scenario fills its own section)
    options = {"algo": job.algo, "env": job.env_id, "timesteps": job.timesteps, "seed": job.seed,
               "log_dir": str(job.out), "n_envs": job.n_envs, "env_config": env_config, "config": None}
    resolve_new({**dict.fromkeys(("resume", "eval_freq", "eval_episodes")), **options})  # fails before training
    print(f"\n# training MaskablePPO on {job.env_id} for {job.timesteps:,} steps "
          f"({job.n_envs or 'auto'} envs, seed {job.seed})", flush=True)
    run_dir = train(**options, command=command)
    out = run_dir / "evaluation"
    print(f"\n# evaluating {run_dir} (final model) on {job.episodes} held-out episodes", flush=True)
    run_agents(AgentsEvalConfig(
        out=out, models=[str(run_dir)], episodes=job.episodes, seed=job.seed, deadline_ms=job.deadline_ms,
        checkpoint="final",
        command=f"python evaluate.py agents --model {shlex.quote(str(run_dir))} --episodes {job.episodes} "
                f"--seed {job.seed} --deadline-ms {job.deadline_ms:g} --out {shlex.quote(str(out))}"))
    print(f"summary, per-token CSV and plots: {out}")
    print(f"watch the curves:  .venv/bin/tensorboard --logdir {job.out}")
    return run_dir


def build_parser() -> argparse.ArgumentParser:
    defaults = MainJob()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inspect", action="store_true", help="only print the DAG and placement costs")
    parser.add_argument("--model", help="model preset or config.json path (default: EnvConfig's)")
    parser.add_argument("--scenario", help="scenario preset or YAML path (default: EnvConfig's)")
    parser.add_argument("--granularity", help="block, sublayer or head (default: EnvConfig's)")
    parser.add_argument("--prompt-len", type=int, help="prompt tokens (default: EnvConfig's)")
    parser.add_argument("--phase", help=f"DAG printed by --inspect: decode or prefill (default {defaults.phase})")
    parser.add_argument("--timesteps", type=int, help=f"MaskablePPO training steps (default {defaults.timesteps:,})")
    parser.add_argument("--n-envs", type=int, help="training envs (default: train.py's choice for speed)")
    parser.add_argument("--episodes", type=int, help=f"held-out evaluation episodes (default {defaults.episodes})")
    parser.add_argument("--seed", type=int, help=f"run seed (default {defaults.seed})")
    parser.add_argument("--out", type=Path, help=f"parent of the run directory (default {defaults.out})")
    return parser


def job_from_args(args: argparse.Namespace) -> MainJob:
    """The one MainJob of a command line: given options over MainJob's defaults."""
    if args.phase is not None and not args.inspect:
        raise CLIError("--phase only applies with --inspect (an episode plays a prefill, then decode tokens)")
    env_config = {key: getattr(args, key) for key in ENV_OPTIONS if getattr(args, key) is not None}
    given = {key: getattr(args, key) for key in ("phase", "timesteps", "n_envs", "episodes", "seed", "out")
             if getattr(args, key) is not None}
    return MainJob(env_config=env_config, **given)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        job = job_from_args(args)
        validate(job, inspect_only=args.inspect)
        inspect(job, rows=None if args.inspect else 8)
        if args.inspect:
            return 0
        run(job, command="python main.py " + " ".join(shlex.quote(a) for a in argv))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, FileNotFoundError) as exc:  # ConfigError is a ValueError
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
