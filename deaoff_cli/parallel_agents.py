"""``evaluate.py agents --workers N [--backend local|ray]``: the methods played in parallel.

One case per method (an agent, DeAOff-oracle, DeAOff-static, a heuristic): the worker builds
its own env from the same config, loads the agent from its file, and plays the held-out
episodes; every episode is seeded from its held-out seed (env and random choices alike),
so the tokens are the same as in the sequential loop of :func:`run_agents`.
"""
from __future__ import annotations

from typing import Any

from deaoff_cli.parallel import parallel_map


def _play_method(case: tuple) -> tuple[str, list[dict[str, Any]], str | None]:
    """(name, token records, error if the method had no feasible plan)."""
    import gymnasium as gym
    import torch

    import envs  # noqa: F401  (registers the environments)
    from deaoff_cli.evaluate_agents import _play_episode, load_agent
    from solvers.heuristics import HEURISTICS

    torch.set_num_threads(1)
    name, agent_spec, heuristic, env_id, env_cfg, seeds = case
    agent = load_agent(*agent_spec) if agent_spec is not None else None
    env = gym.make(env_id, config=env_cfg)
    fn = HEURISTICS[heuristic] if heuristic is not None else None
    tokens: list[dict[str, Any]] = []
    try:
        for ep, s in enumerate(seeds):
            for rec in _play_episode(name, env, s, agent, fn):
                tokens.append({"method": name, "episode": ep, "seed": s, **rec})
    except ValueError as exc:  # a heuristic with no feasible plan (e.g. model too big for the device)
        return name, [], str(exc)
    finally:
        env.close()
    return name, tokens, None


def play_methods(methods: list[tuple[str, Any, Any]], agent_specs: dict[str, tuple], heuristic_names: dict[Any, str],
                 env_cfg: dict[str, Any], seeds: list[int], workers: int, backend: str,
                 address: str | None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Tokens of every method in the order of ``methods`` and the skipped methods with their errors."""
    import sys

    cases = [(name, agent_specs.get(name), heuristic_names.get(fn) if fn is not None else None,
              agent.env_id if agent is not None else "DecoderOffload-v0", env_cfg, seeds)
             for name, agent, fn in methods]

    def progress(i: int, result: tuple) -> None:
        name, _, error = result
        print(f"  {name}: {'skipped (' + error + ')' if error else f'{len(seeds)} episodes done'}",
              file=sys.stderr, flush=True)

    tokens: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for name, recs, error in parallel_map(_play_method, cases, workers, backend, address, on_result=progress):
        if error is not None:
            skipped[name] = error
        tokens += recs
    return tokens, skipped
