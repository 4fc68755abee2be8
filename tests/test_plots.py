"""The evaluation figures: one colour per method everywhere, the trace on the widest episode."""
from __future__ import annotations

import pytest

from deaoff_cli.plots import FIXED_COLORS, bar_plots, latency_trace, method_color, method_group, widest_episode

AGENT_MODE = ["agent-maskable_ppo", "agent-dqn-1", "deaoff-oracle", "deaoff-static", "all-device", "all-edge",
              "random", "greedy-eft", "heft", "neurosurgeon"]
STATIC_MODE = ["deaoff", "deaoff-relaxed", "all-device", "all-edge", "random", "greedy-eft", "heft", "neurosurgeon"]


def test_a_method_keeps_its_colour_and_methods_differ():
    agents = {n: method_color(n, AGENT_MODE) for n in AGENT_MODE}
    static = {n: method_color(n, STATIC_MODE) for n in STATIC_MODE}
    assert len(set(agents.values())) == len(AGENT_MODE)
    assert len(set(static.values())) == len(STATIC_MODE)
    for name in set(agents) & set(static):  # the heuristics: same colour in both modes
        assert agents[name] == static[name]
    assert agents["agent-maskable_ppo"] != agents["agent-dqn-1"]
    assert {method_group(n) for n in FIXED_COLORS} == {"DeAOff", "heuristics"}


def _tokens(latencies: dict[int, dict[str, list[float]]]) -> list[dict]:
    out = []
    for ep, per_method in latencies.items():
        for method, lats in per_method.items():
            for t, lat in enumerate(lats):
                out.append({"method": method, "episode": ep, "seed": 100 + ep, "token": t + 1, "context": 10 + t,
                            "latency_s": lat, "uplink_mbps": [10.0, 20.0], "servers_up": [True, t != 1]})
    return out


def test_trace_shows_the_widest_episode_ignoring_random():
    """Episode 0: means 1 and 1.5 (spread 0.5) with random at 100; episode 1: means 1 and 3
    (spread 2.0): episode 1 is shown, random does not decide."""
    tokens = _tokens({0: {"deaoff-oracle": [1.0, 1.0], "heft": [1.5, 1.5], "random": [100.0, 100.0]},
                      1: {"deaoff-oracle": [1.0, 1.0], "heft": [3.0, 3.0], "random": [1.0, 1.0]}})
    names = ["deaoff-oracle", "heft", "random"]
    assert widest_episode(tokens, names) == 1


def test_trace_compares_agents_and_deaoff_first():
    """all-device is far off in every episode (spread 10); the agent and DeAOff-oracle
    differ only in episode 2: that episode is shown."""
    tokens = _tokens({ep: {"agent-ppo": [1.0, 1.0 + (ep == 2)], "deaoff-oracle": [1.0, 1.0],
                           "all-device": [11.0, 11.0]} for ep in range(4)})
    assert widest_episode(tokens, ["agent-ppo", "deaoff-oracle", "all-device"]) == 2


def test_figures_are_written(tmp_path):
    names = ["agent-ppo", "deaoff-oracle", "heft", "random"]
    tokens = _tokens({0: {n: [0.002 * (i + 1), 0.003] for i, n in enumerate(names)}})
    methods = {n: {"latency_s": 0.002, "energy_j": 0.01} for n in names}
    errors = {n: {"latency_s": 0.0005, "energy_j": float("nan")} for n in names}
    bar_plots(tmp_path, methods, "test", errors=errors)
    assert latency_trace(tmp_path, names, tokens) == 0
    for name in ("bars.png", "latency_trace.png"):
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.parametrize("name, group", [("deaoff-static", "DeAOff"), ("agent-dqn", "trained agents"),
                                         ("heft", "heuristics")])
def test_groups(name, group):
    assert method_group(name) == group
