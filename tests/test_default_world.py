"""The default world's dynamics (docs/system-model.md, dynamics): what is on, and how a
scenario's own ``dynamics:`` section is layered between the defaults and the user's keys."""
from __future__ import annotations

import pytest

from core.dynamics import DynamicsConfig, scenario_dynamics
from core.system import load_scenario
from envs.offload_env import EnvConfig


def test_default_request_and_dynamics():
    cfg = EnvConfig()
    assert cfg.new_tokens == 256
    d = cfg.dynamics
    assert d.thermal and d.background_users and d.outages and d.fading and d.load
    assert d.mobility_model == "random-walk"  # urban-5g: one server, no road of edges


@pytest.mark.parametrize("name", ["two-edge", "city-multi-edge"])
def test_multi_edge_presets_hand_over(name):
    assert scenario_dynamics(name) == {"mobility_model": "path"}
    assert EnvConfig(scenario=name).dynamics.mobility_model == "path"
    load_scenario(name)  # the section is not a Scenario key: load_scenario skips it


def test_user_keys_win_and_to_dict_keeps_only_them():
    cfg = EnvConfig(scenario="two-edge", dynamics={"mobility_model": "random-walk", "thermal": False})
    assert cfg.dynamics.mobility_model == "random-walk" and not cfg.dynamics.thermal
    assert cfg.to_dict()["dynamics"] == {"mobility_model": "random-walk", "thermal": False}
    assert EnvConfig.from_dict(cfg.to_dict()) == cfg
    # the same settings on another scenario pick up that scenario's section
    plain = EnvConfig.from_dict({**EnvConfig(scenario="urban-5g").to_dict(), "scenario": "city-multi-edge"})
    assert plain.dynamics.mobility_model == "path"
    pool = EnvConfig(scenario_pool=["urban-5g", "two-edge"])
    assert pool.world_dynamics("two-edge").mobility_model == "path"
    assert pool.world_dynamics("urban-5g").mobility_model == "random-walk"


def test_a_dynamics_instance_is_taken_whole():
    cfg = EnvConfig(scenario="two-edge", dynamics=DynamicsConfig())
    assert cfg.dynamics.mobility_model == "random-walk"


def test_bad_scenario_section_and_bad_dynamics_are_rejected(tmp_path):
    src = (load_scenario.__globals__["SCENARIO_DIR"] / "urban-5g.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(src + "dynamics:\n  spin: 1\n")
    with pytest.raises(ValueError, match=r"bad.yaml: dynamics: unknown key\(s\) \['spin'\]"):
        EnvConfig(scenario=str(bad))
    with pytest.raises(ValueError, match="config.dynamics must be a mapping"):
        EnvConfig(dynamics=[1])
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['spin'\]"):
        EnvConfig(dynamics={"spin": 1})
