"""The main job with the default configuration.

    python main.py [--timesteps N] [--episodes N] [--seed S] [--n-envs K] [--out DIR]
    python main.py --inspect [--model NAME_OR_CONFIG_JSON] [--scenario NAME_OR_YAML]
                   [--granularity block|sublayer|head] [--phase decode|prefill]

1. Prints the default model's layer DAG and the cost of the all-device and all-edge
   placements (the cost engine at work).
2. Trains MaskablePPO on DecoderOffload-v0 (default config) for a short budget, with
   TensorBoard logs.
3. Benchmarks the agent against DeAOff-oracle, DeAOff-static and the heuristics on
   held-out episodes and prints the table.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from agents.hyperparams import ConfigError
from core.cost import evaluate
from core.dag import build_dag, cost_table
from core.instance import Placement, make_instance
from core.models import load_model_spec
from core.system import load_scenario, make_snapshot
from deaoff_cli.evaluate import UsageError


def inspect(model: str, scenario: str, granularity: str, phase: str, prompt_len: int, rows: int | None) -> None:
    spec = load_model_spec(model)
    graph = build_dag(spec, granularity, phase, prompt_len=prompt_len)
    print(f"# {spec.name}: {spec.param_count / 1e9:.3f} B parameters, {graph.number_of_nodes()} nodes "
          f"({granularity}, {phase}, prompt {prompt_len})\n")
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
    sc = load_scenario(scenario)
    inst = make_instance(graph, make_snapshot(sc))
    print(f"\n# scenario {sc.name}: {sc.num_servers} edge server(s), mean channel")
    for k in range(inst.num_locations):
        name = inst.location_names[k]
        try:
            res = evaluate(inst, Placement([k] * inst.num_nodes))
            print(f"all on {name:<7}: {res.makespan_s * 1e3:9.3f} ms, device energy {res.energy_j * 1e3:9.3f} mJ")
        except ValueError as exc:
            print(f"all on {name:<7}: infeasible ({exc})")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inspect", action="store_true", help="only print the DAG and placement costs")
    parser.add_argument("--model", default="qwen2.5-0.5b")
    parser.add_argument("--scenario", default="two-server")
    parser.add_argument("--granularity", default="block")
    parser.add_argument("--phase", default="decode")
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--timesteps", type=int, default=150_000, help="MaskablePPO training steps")
    parser.add_argument("--n-envs", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=10, help="held-out evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/main"))
    args = parser.parse_args(argv)
    try:
        inspect(args.model, args.scenario, args.granularity, args.phase, args.prompt_len,
                rows=None if args.inspect else 8)
        if args.inspect:
            return 0
        from deaoff_cli.evaluate import run_agents
        from deaoff_cli.train import train

        print(f"\n# training MaskablePPO on DecoderOffload-v0 for {args.timesteps:,} steps "
              f"({args.n_envs} envs, seed {args.seed})", flush=True)
        run_dir = train(algo="maskable_ppo", env="DecoderOffload-v0", timesteps=args.timesteps, seed=args.seed,
                        log_dir=str(args.out), n_envs=args.n_envs,
                        command="python main.py " + " ".join(shlex.quote(a) for a in argv))
        print(f"\n# evaluating {run_dir} on {args.episodes} held-out episodes", flush=True)
        out = run_dir / "evaluation"
        run_agents([str(run_dir)], args.episodes, args.seed, out, 10.0, None,
                   f"python evaluate.py agents --model {run_dir} --episodes {args.episodes} "
                   f"--seed {args.seed} --out {out}")
        print(f"summary, per-token CSV and plots: {out}")
        print(f"watch the curves:  .venv/bin/tensorboard --logdir {args.out}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, ConfigError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
