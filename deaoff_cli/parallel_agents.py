"""``evaluate.py agents --workers N [--backend local|ray]``: the methods played in parallel.

One case per method (an agent, the myopic optimum, DeAOff-static, an episode baseline, a
heuristic): the worker builds its own env from the same config, loads the agent from its
file, and plays the held-out episodes; every episode is seeded from its held-out seed (env
and random choices alike), so the tokens are the same as in the sequential loop of
:func:`deaoff_cli.evaluate_agents.run_agents`.
"""
from __future__ import annotations

from typing import Any

from deaoff_cli.parallel import parallel_map


def _play_method(case: tuple) -> tuple[str, list[dict[str, Any]], str | None, dict[int, list]]:
    """(name, token records, error if the method had no feasible plan, recorded snapshots per
    episode for the myopic optimum: the clairvoyant yardstick's future)."""
    import gymnasium as gym
    import torch

    import envs  # noqa: F401  (registers the environments)
    from deaoff_cli.evaluate_agents import _play_episode, load_agent
    from envs.baselines import BASELINES
    from solvers.heuristics import HEURISTICS

    torch.set_num_threads(1)
    name, agent_spec, env_id, env_cfg, seeds = case
    agent = load_agent(*agent_spec) if agent_spec is not None else None
    env = gym.make(env_id, config=env_cfg)
    fn, base = HEURISTICS.get(name), BASELINES.get(name)
    tokens: list[dict[str, Any]] = []
    snapshots: dict[int, list] = {}
    try:
        for ep, s in enumerate(seeds):
            for rec in _play_episode(name, env, s, agent, fn, base):
                tokens.append({"method": name, "episode": ep, "seed": s, **rec})
            if name == "myopic-optimum":
                snapshots[ep] = list(env.unwrapped.snapshots)
    except ValueError as exc:  # a heuristic with no feasible plan (e.g. model too big for the device)
        return name, [], str(exc), {}
    finally:
        env.close()
    return name, tokens, None, snapshots


def play_methods(methods: list[tuple[str, Any, Any, Any]], agent_specs: dict[str, tuple], env_cfg: dict[str, Any],
                 seeds: list[int], workers: int, backend: str,
                 address: str | None) -> tuple[list[dict[str, Any]], dict[str, str], dict[int, list]]:
    """Tokens of every method in the order of ``methods``, the skipped methods with their
    errors, and the myopic optimum's recorded snapshots per episode."""
    import sys

    cases = [(name, agent_specs.get(name), agent.env_id if agent is not None else "DecoderOffload-v1", env_cfg, seeds)
             for name, agent, _fn, _base in methods]

    def progress(i: int, result: tuple) -> None:
        name, _, error, _ = result
        print(f"  {name}: {'skipped (' + error + ')' if error else f'{len(seeds)} episodes done'}",
              file=sys.stderr, flush=True)

    tokens: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    snapshots: dict[int, list] = {}
    for name, recs, error, snaps in parallel_map(_play_method, cases, workers, backend, address, on_result=progress):
        if error is not None:
            skipped[name] = error
        tokens += recs
        snapshots.update(snaps)
    return tokens, skipped, snapshots
