"""The realistic world: scenario presets built from the catalogue, the environment's default,
the latency-optimal baseline and the static map's "best traditional" rule."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from core.dag import build_dag
from core.instance import make_instance
from core.radio import MEASURED_UPLINK_BPS, UE_MAX_TX_POWER_W
from core.system import (SCENARIO_DIR, DeviceConfig, Scenario, ServerConfig, list_scenarios, load_scenario,
                         make_snapshot)
from deaoff_cli.evaluate import StaticSuite, UsageError
from deaoff_cli.static_map import MapGrid, best_traditional, map_scenario, reduction_pct
from envs.offload_env import EnvConfig
from solvers.brute_force import brute_force
from solvers.deaoff import solve
from solvers.heuristics import HEURISTICS, SOLVER_BASELINES, TRADITIONAL, latency_optimal, run_heuristic

PRESETS = ("urban-5g", "wifi-campus", "lte-cell-edge", "two-edge", "city-multi-edge", "a100-dedicated")
CONSTRAINED = PRESETS[:-1]


def test_the_single_user_presets_exist_and_the_old_names_are_gone():
    names = set(list_scenarios())
    assert set(PRESETS) <= names
    assert not names & {"wifi", "cell-edge", "two-server", "multi-server"}


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_has_a_header_and_loads(name):
    text = (SCENARIO_DIR / f"{name}.yaml").read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert len(header) >= 5 and name in header[0]  # says what it models and where numbers come from
    snap = make_snapshot(load_scenario(name))
    assert snap.num_locations == 1 + load_scenario(name).num_servers


@pytest.mark.parametrize("name", CONSTRAINED)
def test_constrained_presets_use_the_catalogue_and_class_3_levels(name):
    scen = load_scenario(name)
    assert scen.device.hardware == "snapdragon-8-gen-3"
    assert max(scen.device.tx_powers_w) <= UE_MAX_TX_POWER_W
    for s in scen.servers:
        assert s.hardware is not None and s.link_type in ("5g-nr", "lte", "wifi")
        assert s.load_model == "batched" and s.latency_s >= 3e-3


def test_preset_uplinks_are_the_rates_their_headers_state():
    """Top level, mean channel: urban-5g and server 1 of two-edge / server 2 of city-multi-edge at
    the Ookla median 5G upload (21.08 Mb/s), lte-cell-edge at 2 Mb/s, wifi-campus at 50 Mb/s;
    distances are written with 4 significant digits, hence rel=1e-3."""
    top = {name: [rates[-1] for rates in make_snapshot(load_scenario(name)).uplink_bps] for name in PRESETS}
    assert top["urban-5g"][0] == pytest.approx(MEASURED_UPLINK_BPS["5g-nr"], rel=1e-3)
    assert top["two-edge"][0] == pytest.approx(MEASURED_UPLINK_BPS["5g-nr"], rel=1e-3)
    assert top["city-multi-edge"][1] == pytest.approx(MEASURED_UPLINK_BPS["5g-nr"], rel=1e-3)
    assert top["lte-cell-edge"][0] == pytest.approx(2e6, rel=1e-3)
    assert top["wifi-campus"][0] == pytest.approx(50e6, rel=1e-3)


def test_background_kv_is_llama_2_7b_fp16_at_1024_tokens():
    """2 (K, V) × 32 layers × 32 KV heads × 128 head size × 2 B = 524,288 B/token; × 1,024 = 536,870,912 B."""
    assert 2 * 32 * 32 * 128 * 2 * 1024 == 536_870_912
    for name in CONSTRAINED:
        for s in load_scenario(name).servers:
            assert s.background_kv_bytes_per_user == 536_870_912


def test_a100_dedicated_is_exactly_the_original_defaults():
    scen = load_scenario("a100-dedicated")
    assert scen.device == DeviceConfig() and scen.servers == [ServerConfig()]
    assert dataclasses.replace(scen, name="custom") == Scenario()


def test_environment_default_is_constrained_and_the_model_fits_the_phone():
    cfg = EnvConfig()
    assert cfg.scenario == "urban-5g"
    scen = load_scenario(cfg.scenario)
    for phase, kw in (("prefill", {}), ("decode", {"context_len": cfg.prompt_len + cfg.new_tokens})):
        inst = make_instance(build_dag(cfg.model, cfg.granularity, phase, prompt_len=cfg.prompt_len,
                                       weight_dtype=cfg.weight_dtype, **kw), make_snapshot(scen))
        assert sum(inst.mem_need) <= inst.system.mem_capacity_bytes[0]  # every placement is open to the agent


def test_llama_2_7b_fp16_does_not_fit_the_phone_but_int4_does():
    snap = make_snapshot(load_scenario("urban-5g"))
    need = {d: sum(make_instance(build_dag("llama-2-7b", "block", "decode", weight_dtype=d), snap).mem_need)
            for d in ("fp16", "int4")}
    assert need["fp16"] > snap.mem_capacity_bytes[0] > need["int4"]


# --------------------------------------------------------------------------- latency-optimal
def test_latency_optimal_is_registered_apart_from_the_heuristics():
    assert "latency-optimal" in SOLVER_BASELINES and "latency-optimal" not in HEURISTICS
    assert set(TRADITIONAL) == set(HEURISTICS) | {"latency-optimal"}


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A 3-layer Llama config (5 block nodes): small enough for brute force over 3 locations."""
    import json

    path = tmp_path_factory.mktemp("tiny") / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 512,
                                "intermediate_size": 1376, "num_attention_heads": 8, "num_key_value_heads": 8,
                                "num_hidden_layers": 3, "vocab_size": 32000, "max_position_embeddings": 2048,
                                "tie_word_embeddings": False}))
    return str(path)


@pytest.mark.parametrize("name", ["two-edge", "urban-5g", "a100-dedicated"])
@pytest.mark.parametrize("phase", ["decode", "prefill"])
def test_latency_optimal_equals_brute_force_minimum_makespan(tiny_llama, name, phase):
    kw = {"context_len": 64} if phase == "decode" else {}
    inst = make_instance(build_dag(tiny_llama, "block", phase, prompt_len=32, **kw), make_snapshot(load_scenario(name)))
    _, res = run_heuristic("latency-optimal", inst)
    _, best = brute_force(inst, "makespan", levels=False)
    assert res.makespan_s == pytest.approx(best.makespan_s, rel=1e-9)
    sol = solve(inst)
    assert res.makespan_s == pytest.approx(sol.phase1_makespan_s, rel=1e-9)
    assert sol.energy_j <= res.energy_j * (1 + 1e-9)  # the energy phase never costs energy
    assert latency_optimal(inst).loc == sol.phase1_placement.loc


# --------------------------------------------------------------------------- the map's rule
def test_best_traditional_by_hand():
    """Bound 10 ms: a (9 ms, 5 J) and b (10 ms, 4 J) meet it, c (11 ms, 1 J) does not, d is
    infeasible -> b; its reductions for DeAOff at (10.5 ms, 3 J): 1 − 10.5/10 = −5%, 1 − 3/4 = 25%."""
    methods = {"a": {"latency_s": 9e-3, "energy_j": 5.0}, "b": {"latency_s": 10e-3, "energy_j": 4.0},
               "c": {"latency_s": 11e-3, "energy_j": 1.0}, "d": {"latency_s": None, "energy_j": None}}
    assert best_traditional(methods, 10e-3, list(methods)) == "b"
    assert best_traditional(methods, 8e-3, list(methods)) is None
    assert reduction_pct(10.5e-3, 10e-3) == pytest.approx(-5.0)
    assert reduction_pct(3.0, 4.0) == pytest.approx(25.0)
    assert reduction_pct(1.0, 0.0) == 0.0


@pytest.mark.parametrize("rate_mbps", MapGrid().uplink_mbps)
def test_map_points_have_the_requested_uplink(rate_mbps):
    snap = make_snapshot(map_scenario("nvidia-t4", 4, rate_mbps))
    assert snap.uplink_bps[0][-1] == pytest.approx(rate_mbps * 1e6, rel=1e-9)
    assert snap.server_background_users == [4]


# --------------------------------------------------------------------------- suite files
def test_suites_use_the_new_presets_and_precisions():
    from deaoff_cli.evaluate import STATIC_QUICK, STATIC_SUITE

    full, quick = StaticSuite.load(STATIC_SUITE), StaticSuite.load(STATIC_QUICK)
    assert full.weight_dtypes == ["fp16", "int8", "int4"] and set(full.scenarios) == set(PRESETS)
    assert set(quick.scenarios) <= set(PRESETS) and "urban-5g" in quick.scenarios
    full.check_names()
    quick.check_names()


def test_suite_rejects_an_unknown_precision(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("models: [gpt2]\ngranularities: [block]\nphases: [decode]\nscenarios: [urban-5g]\n"
                    "weight_dtypes: [fp8]\n")
    with pytest.raises(UsageError, match="weight_dtypes must be a non-empty list"):
        StaticSuite.load(path)


def test_rates_are_finite_and_ascending_with_the_level():
    for name in PRESETS:
        for rates in make_snapshot(load_scenario(name)).uplink_bps:
            assert rates == sorted(rates) and all(math.isfinite(r) and r > 0 for r in rates)
    assert np.all(np.diff(MapGrid().uplink_mbps) > 0)
