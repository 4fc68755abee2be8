"""The main job with the default configuration: inspect the default model's DAG and cost.

    python main.py [--model NAME_OR_CONFIG_JSON] [--scenario NAME_OR_YAML]
                   [--granularity block|sublayer|head] [--phase decode|prefill]
"""
from __future__ import annotations

import argparse
import sys

from envs.cost import evaluate
from envs.dag import build_dag, cost_table
from envs.instance import Placement, make_instance
from envs.models import load_model_spec
from envs.system import load_scenario, make_snapshot


def inspect(model: str, scenario: str, granularity: str, phase: str, prompt_len: int) -> None:
    spec = load_model_spec(model)
    graph = build_dag(spec, granularity, phase, prompt_len=prompt_len)
    print(f"# {spec.name}: {spec.param_count / 1e9:.3f} B parameters, {graph.number_of_nodes()} nodes "
          f"({granularity}, {phase}, prompt {prompt_len})\n")
    print(f"| {'node':<12} | {'kind':<6} | {'GFLOP':>9} | {'weights MB':>10} | {'out KB':>8} | {'KV MB':>8} |")
    print(f"|{'-' * 14}|{'-' * 8}|{'-' * 11}|{'-' * 12}|{'-' * 10}|{'-' * 10}|")
    for row in cost_table(graph):
        print(f"| {row['name']:<12} | {row['kind']:<6} | {row['flops'] / 1e9:>9.4f} | "
              f"{row['weight_bytes'] / 1e6:>10.2f} | {row['out_bytes'] / 1e3:>8.2f} | {row['kv_bytes'] / 1e6:>8.3f} |")
    sc = load_scenario(scenario)
    inst = make_instance(graph, make_snapshot(sc))
    print(f"\n# scenario {sc.name}: {sc.num_servers} edge server(s), mean channel")
    for k in range(1, inst.num_locations):
        name = inst.location_names[k]
        try:
            res = evaluate(inst, Placement([k] * inst.num_nodes))
            print(f"all on {name:<7}: {res.makespan_s * 1e3:9.3f} ms, device {res.energy_j * 1e3:9.3f} mJ")
        except ValueError as exc:
            print(f"all on {name:<7}: infeasible ({exc})")
    try:
        res = evaluate(inst, Placement([0] * inst.num_nodes))
        print(f"all on device : {res.makespan_s * 1e3:9.3f} ms, device {res.energy_j * 1e3:9.3f} mJ "
              f"(compute {res.compute_j * 1e3:.3f}, idle {res.idle_j * 1e3:.3f})")
    except ValueError as exc:
        print(f"all on device : infeasible ({exc})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-0.5b")
    parser.add_argument("--scenario", default="urban-5g")
    parser.add_argument("--granularity", default="block")
    parser.add_argument("--phase", default="decode")
    parser.add_argument("--prompt-len", type=int, default=128)
    args = parser.parse_args(argv)
    try:
        inspect(args.model, args.scenario, args.granularity, args.phase, args.prompt_len)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
