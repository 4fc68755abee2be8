"""The hardware catalogue, its validation, predict == engine, calibration, and the CLI."""
from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
import yaml
from hypothesis import given, settings, strategies as st

from core.calibration import TARGET_ERROR_PCT, calibration_table, fit_class_fractions, load_points
from core.cost import evaluate
from core.dag import PRECISION_BYTES, WEIGHT_BYTES_PER_PARAM, build_dag, dag_param_count
from core.hardware import (HARDWARE_DIR, PRECISIONS, SCALAR_FIELDS, SOURCED_FIELDS, list_profiles, load_classes,
                           load_profile, parse_profile, predict)
from core.instance import Placement, make_instance, roofline_time_s
from core.models import list_presets, load_model_spec
from core.system import DeviceConfig, Scenario, ServerConfig, make_snapshot

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ["snapdragon-8-gen-2", "snapdragon-8-gen-3", "snapdragon-8-elite", "apple-a17-pro",
             "jetson-agx-orin-64gb", "jetson-orin-nx-16gb", "jetson-orin-nano-super", "nvidia-l4",
             "nvidia-t4", "nvidia-a2", "nvidia-a100-40gb"]


# ----- the catalogue ---------------------------------------------------------------------
def test_catalogue_lists_every_issue_entry():
    assert sorted(list_profiles()) == sorted(CATALOGUE)


@pytest.mark.parametrize("name", CATALOGUE)
def test_profile_loads_with_sources(name):
    p = load_profile(name)
    assert p.name == name and p.hw_class in ("phone", "edge")
    assert p.hw_class == ("phone" if name.startswith(("snapdragon", "apple")) else "edge")
    for key in SCALAR_FIELDS:
        assert math.isfinite(getattr(p, key)) and getattr(p, key) >= 0
    assert 0 < p.decode_bw_fraction <= 1 and 0 < p.prefill_flops_fraction <= 1
    assert p.compute_flops_per_s > 0
    # every field has a source; a value taken from the class says so in its source
    raw = yaml.safe_load((HARDWARE_DIR / f"{name}.yaml").read_text())
    for key in p.sources:
        assert p.sources[key].strip()
    for key in p.class_defaults:
        assert any(m in p.sources[key].lower() for m in ("not found", "class default", "no own measurement"))
    for key in SCALAR_FIELDS:
        assert (raw[key]["value"] is None) == (key in p.class_defaults)


def test_fitted_devices_carry_their_own_fraction_and_others_the_class_one():
    classes = load_classes()
    for name in CATALOGUE:
        p = load_profile(name)
        own = name in ("snapdragon-8-elite", "jetson-agx-orin-64gb")
        assert ("decode_bw_fraction" in p.class_defaults) == (not own)
        cls = classes[p.hw_class]["values"]
        assert p.decode_bw_fraction == cls["decode_bw_fraction"]  # one point per class: same fit
        assert p.prefill_flops_fraction == cls["prefill_flops_fraction"]


def test_datasheet_numbers_of_the_issue():
    """Spot checks against the datasheet figures quoted in issue 10."""
    orin = load_profile("jetson-agx-orin-64gb")
    assert (orin.mem_bw_bytes_per_s, orin.mem_capacity_bytes, orin.active_power_w) == (204.8e9, 64e9, 60.0)
    l4 = load_profile("nvidia-l4")
    assert (l4.mem_bw_bytes_per_s, l4.mem_capacity_bytes, l4.compute_flops_per_s, l4.active_power_w) == \
        (300e9, 24e9, 121e12, 72.0)
    t4 = load_profile("nvidia-t4")
    assert (t4.mem_bw_bytes_per_s, t4.mem_capacity_bytes, t4.compute_flops_per_s, t4.active_power_w) == \
        (320e9, 16e9, 65e12, 70.0)
    a100 = load_profile("nvidia-a100-40gb")
    assert (a100.mem_bw_bytes_per_s, a100.compute_flops_per_s, a100.active_power_w) == (1555e9, 312e12, 400.0)
    assert load_profile("snapdragon-8-gen-3").mem_bw_bytes_per_s == 76.8e9


# ----- validation ------------------------------------------------------------------------
def _raw(name="jetson-agx-orin-64gb"):
    return yaml.safe_load((HARDWARE_DIR / f"{name}.yaml").read_text())


@pytest.mark.parametrize("field", ["name", "class", "description", *SOURCED_FIELDS])
def test_missing_field_is_named(field):
    data = _raw()
    del data[field]
    with pytest.raises(ValueError, match=field):
        parse_profile(data)


@pytest.mark.parametrize("field", [*SCALAR_FIELDS, "peak_flops_per_s.fp16", "peak_flops_per_s.int8",
                                   "dvfs_freqs_hz"])
@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "abc", True])
def test_bad_value_is_named(field, bad):
    data = _raw()
    entry = data
    parts = field.split(".")
    for part in parts[:-1]:
        entry = entry[part]
    entry[parts[-1]]["value"] = [bad] if field == "dvfs_freqs_hz" else bad
    with pytest.raises(ValueError, match=parts[-1]):
        parse_profile(data)


@pytest.mark.parametrize("field", ["decode_bw_fraction", "prefill_flops_fraction"])
def test_fraction_above_one_or_zero_refused(field):
    for bad in (1.5, 0.0):
        data = _raw()
        data[field]["value"] = bad
        with pytest.raises(ValueError, match=field):
            parse_profile(data)


def test_structural_errors():
    data = _raw()
    data["color"] = "green"
    with pytest.raises(ValueError, match="unknown key"):
        parse_profile(data)
    data = _raw()
    data["mem_bw_bytes_per_s"] = {"value": 1e9}
    with pytest.raises(ValueError, match="mem_bw_bytes_per_s.*missing"):
        parse_profile(data)
    data = _raw()
    data["mem_bw_bytes_per_s"]["source"] = " "
    with pytest.raises(ValueError, match="mem_bw_bytes_per_s.source"):
        parse_profile(data)
    data = _raw()
    data["mem_bw_bytes_per_s"] = {"value": None, "source": "datasheet"}  # null must say "not found"
    with pytest.raises(ValueError, match="mem_bw_bytes_per_s"):
        parse_profile(data)
    data = _raw()
    data["class"] = "laptop"
    with pytest.raises(ValueError, match="class"):
        parse_profile(data)
    data = _raw()
    data["dvfs_freqs_hz"]["value"] = [2e9, 1e9]
    with pytest.raises(ValueError, match="ascending"):
        parse_profile(data)
    data = _raw()
    del data["peak_flops_per_s"]["int4"]
    with pytest.raises(ValueError, match="peak_flops_per_s"):
        parse_profile(data)


def test_active_power_must_exceed_idle():
    data = _raw()
    data["idle_power_w"] = {"value": 70.0, "source": "test"}
    with pytest.raises(ValueError, match="active_power_w"):
        parse_profile(data)


def test_null_value_takes_the_class_default():
    data = _raw()
    data["mem_bw_bytes_per_s"] = {"value": None, "source": "not found; class default"}
    p = parse_profile(data)
    assert p.mem_bw_bytes_per_s == load_classes()["edge"]["values"]["mem_bw_bytes_per_s"]
    assert "mem_bw_bytes_per_s" in p.class_defaults


def test_unknown_hardware_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        load_profile("jetson-tx1")
    for name in CATALOGUE:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="known"):
        DeviceConfig(hardware="jetson-tx1")
    with pytest.raises(FileNotFoundError):
        load_profile("/nonexistent/profile.yaml")


def test_user_profile_by_path(tmp_path):
    data = _raw("nvidia-t4")
    data["name"] = "my-t4"
    data["mem_capacity_bytes"]["value"] = 8e9
    path = tmp_path / "my-t4.yaml"
    path.write_text(yaml.safe_dump(data))
    p = load_profile(str(path))
    assert p.name == "my-t4" and p.mem_capacity_bytes == 8e9
    server = ServerConfig(hardware=str(path))
    assert server.mem_capacity_bytes == 8e9 and server.peak_flops == 65e12


# ----- scenarios refer to profiles by name -----------------------------------------------
def test_defaults_unchanged_without_hardware():
    d, s = DeviceConfig(), ServerConfig()
    assert d.freqs_hz == (0.4e9, 0.7e9, 1.0e9, 1.3e9) and d.flops_per_cycle == 8192.0
    assert (d.mem_bw_bytes_per_s, d.mem_capacity_bytes, d.kappa, d.idle_power_w) == (68e9, 6e9, 1e-27, 0.3)
    assert (d.flops_fraction, d.mem_bw_fraction) == (1.0, 1.0)
    assert (s.peak_flops, s.mem_bw_bytes_per_s, s.mem_capacity_bytes, s.power_w) == (312e12, 1.555e12, 40e9, 400.0)
    assert (s.achieved_flops_per_s, s.achieved_mem_bw_bytes_per_s) == (312e12, 1.555e12)


def test_scenario_by_name_fills_fields_and_explicit_values_override():
    sc = Scenario.from_dict({"device": {"hardware": "snapdragon-8-elite"},
                             "servers": [{"hardware": "nvidia-l4", "load": 0.5, "mem_capacity_bytes": 6e9}]})
    elite, l4 = load_profile("snapdragon-8-elite"), load_profile("nvidia-l4")
    assert sc.device.mem_bw_bytes_per_s == 84.8e9 and sc.device.mem_bw_fraction == elite.decode_bw_fraction
    assert sc.device.freqs_hz[-1] * sc.device.flops_per_cycle == pytest.approx(elite.compute_flops_per_s)
    assert sc.servers[0].peak_flops == 121e12 and sc.servers[0].power_w == 72.0
    assert sc.servers[0].mem_capacity_bytes == 6e9  # explicit wins over the profile's 24 GB
    snap = make_snapshot(sc)
    assert snap.server_flops_per_s[0] == pytest.approx(0.5 * l4.achieved_flops_per_s)
    assert snap.server_mem_bw_bytes_per_s[0] == pytest.approx(0.5 * l4.achieved_mem_bw_bytes_per_s)
    with pytest.raises(ValueError, match="unknown key"):
        Scenario.from_dict({"device": {"hardware": "snapdragon-8-elite", "npu": 1}})
    # round trip through the snapshot JSON keeps every number
    from core.system import SystemSnapshot
    again = SystemSnapshot.from_dict(snap.to_dict())
    assert again.device == snap.device


def test_device_power_at_the_top_level_is_the_profiles_active_power():
    """κ·f²·(cycles/s) at the top level = active − idle (see HardwareProfile.device_fields)."""
    p = load_profile("snapdragon-8-elite")
    d = DeviceConfig(hardware="snapdragon-8-elite")
    f = d.freqs_hz[-1]
    cycles_per_s = f * d.flops_fraction  # a compute-bound node runs fraction·f·FPC FLOP/s
    assert d.kappa * f * f * cycles_per_s == pytest.approx(p.active_power_w - p.idle_power_w)


# ----- the engine --------------------------------------------------------------------------
def test_roofline_golden_one_node():
    """One node, 1e12 FLOPs and 1e9 bytes, on the Snapdragon 8 Elite profile:
    compute 1e12 / (45e12 · 0.00743) = 2.99088 s; memory 1e9 / (84.8e9 · 0.423) = 0.027878 s;
    the roofline is the larger, 2.99088 s.  On an L4 server at load 0.5: compute
    1e12 / (0.5 · 121e12 · 0.196) = 0.084331 s, memory 1e9 / (0.5 · 300e9 · 0.861) = 0.0077429 s."""
    g = nx.DiGraph()
    g.add_node("x", kind="block", flops=1e12, weight_bytes=1.0, out_bytes=4.0, kv_bytes=0.0, mem_bytes=1e9)
    sc = Scenario(device=DeviceConfig(hardware="snapdragon-8-elite"),
                  servers=[ServerConfig(hardware="nvidia-l4", load=0.5)])
    inst = make_instance(g, make_snapshot(sc))
    assert inst.dev_time[0][-1] == pytest.approx(1e12 / (45e12 * 0.00743), rel=1e-12)
    assert inst.dev_time[0][-1] == pytest.approx(2.99088, rel=1e-5)
    assert inst.srv_time[0][0] == pytest.approx(1e12 / (0.5 * 121e12 * 0.196), rel=1e-12)
    assert roofline_time_s(1e12, 1e9, 1e12, 1e9) == 1.0
    assert roofline_time_s(0.0, 2e9, 1e12, 1e9) == 2.0


def test_effective_weight_bytes():
    assert WEIGHT_BYTES_PER_PARAM == {"fp16": 2.0, "int8": 34 / 32, "int4": 18 / 32}  # Q8_0 / Q4_0 blocks
    assert 8 * WEIGHT_BYTES_PER_PARAM["int4"] == 4.5 and 8 * WEIGHT_BYTES_PER_PARAM["int8"] == 8.5
    assert PRECISION_BYTES == {"fp16": 2.0, "int8": 1.0, "int4": 0.5}  # activations / KV stay nominal
    spec = load_model_spec("llama-2-7b")  # untied: every parameter held once
    for dtype, w in WEIGHT_BYTES_PER_PARAM.items():
        g = build_dag(spec, "block", "decode", context_len=10, weight_dtype=dtype)
        assert sum(a["weight_bytes"] for _, a in g.nodes(data=True)) == pytest.approx(dag_param_count(g) * w)
        assert g.nodes["L0"]["out_bytes"] == 4096 * 2  # activation stays fp16


def _engine(hw, model, dtype, phase, tokens):
    """The engine's evaluation built independently of predict: a scenario from a mapping."""
    prof = load_profile(hw)
    if prof.hw_class == "phone":
        sc = Scenario.from_dict({"device": {"hardware": hw}, "servers": [{}]})
    else:
        sc = Scenario.from_dict({"servers": [{"hardware": hw, "latency_s": 0.0, "distance_km": 0.01,
                                              "uplink_bandwidth_hz": 100e6, "downlink_bandwidth_hz": 100e6}]})
    kw = ({"prompt_len": tokens} if phase == "prefill" else {"prompt_len": max(tokens - 1, 1), "context_len": tokens})
    g = build_dag(model, "block", phase, weight_dtype=dtype, **kw)
    inst = make_instance(g, make_snapshot(sc))
    where = 0 if prof.hw_class == "phone" else 1
    return evaluate(inst, Placement([where] * inst.num_nodes), check=False)


@pytest.mark.parametrize("hw", ["snapdragon-8-elite", "apple-a17-pro", "jetson-agx-orin-64gb", "nvidia-a2"])
@pytest.mark.parametrize("case", [("llama-3.2-1b", "int4", "decode", 300), ("llama-2-7b", "fp16", "prefill", 64),
                                  ("qwen2.5-0.5b", "int8", "decode", 2048), ("gpt2", "int4", "prefill", 1024)])
def test_predict_equals_engine(hw, case):
    model, dtype, phase, tokens = case
    out = predict(hw, model, dtype, phase, tokens)
    res = _engine(hw, model, dtype, phase, tokens)
    assert out["latency_s"] == res.makespan_s
    assert out["device_energy_j"] == res.energy_j and out["edge_energy_j"] == res.edge_energy_j
    n = tokens if phase == "prefill" else 1
    assert out["tokens_per_s"] == n / res.makespan_s
    assert 0 <= out["transfer_s"] < 2e-3 * out["latency_s"]  # edge: ids up, one token back


def test_predict_every_entry_preset_and_precision():
    for hw in CATALOGUE:
        for model in list_presets():
            for dtype in PRECISIONS:
                for phase in ("decode", "prefill"):
                    out = predict(hw, model, dtype, phase, 256)
                    assert out["tokens_per_s"] > 0 and math.isfinite(out["latency_s"])
                    assert isinstance(out["fits_memory"], bool)


def test_predict_user_config_json(tmp_path):
    cfg = {"model_type": "llama", "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
           "num_key_value_heads": 2, "intermediate_size": 512, "vocab_size": 1000, "tie_word_embeddings": False}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    out = predict("nvidia-t4", str(path), "int8", "decode", 50)
    assert out["tokens_per_s"] > 0


@settings(max_examples=15, deadline=None)
@given(t=st.integers(min_value=2, max_value=4000), dt=st.integers(min_value=1, max_value=4000))
def test_decode_slows_and_prefill_grows_with_tokens(t, dt):
    a = predict("snapdragon-8-gen-3", "llama-3.2-1b", "int4", "decode", t)
    b = predict("snapdragon-8-gen-3", "llama-3.2-1b", "int4", "decode", t + dt)
    assert b["tokens_per_s"] <= a["tokens_per_s"]
    p = predict("nvidia-l4", "qwen2.5-0.5b", "fp16", "prefill", t)
    q = predict("nvidia-l4", "qwen2.5-0.5b", "fp16", "prefill", t + dt)
    assert q["latency_s"] >= p["latency_s"]


def test_fewer_weight_bits_decode_faster():
    speeds = [predict("jetson-orin-nx-16gb", "llama-2-7b", d, "decode", 128)["tokens_per_s"]
              for d in ("fp16", "int8", "int4")]
    assert speeds[0] < speeds[1] < speeds[2]


@pytest.mark.parametrize("kwargs,match", [
    ({"hardware": "nope"}, "known"), ({"model": "nope"}, "preset"), ({"weight_dtype": "int3"}, "weight_dtype"),
    ({"phase": "train"}, "phase"), ({"tokens": 0}, "tokens"), ({"tokens": 1.5}, "tokens")])
def test_predict_bad_input(kwargs, match):
    args = {"hardware": "nvidia-l4", "model": "gpt2", "weight_dtype": "fp16", "phase": "decode", "tokens": 10}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        predict(**args)


# ----- calibration -------------------------------------------------------------------------
def test_calibration_points_within_target():
    """A model property, not a timing: the fitted points reproduce within ±15 %."""
    rows = calibration_table()
    assert {r["point"] for r in rows} == {p.name for p in load_points()}
    for r in rows:
        assert math.isfinite(r["error_pct"])
        if r["role"] == "fit":
            assert abs(r["error_pct"]) <= TARGET_ERROR_PCT, r


@pytest.mark.parametrize("hw_class", ["phone", "edge"])
def test_stored_fractions_are_the_fit(hw_class):
    fit = fit_class_fractions(hw_class, rounds=2)
    stored = load_classes()[hw_class]["values"]
    assert fit["decode_bw_fraction"] == pytest.approx(stored["decode_bw_fraction"], rel=0.01)
    assert fit["prefill_flops_fraction"] == pytest.approx(stored["prefill_flops_fraction"], rel=0.01)


# ----- command line --------------------------------------------------------------------------
def _run(*args):
    return subprocess.run([sys.executable, str(ROOT / "evaluate.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_cli_predict_json():
    r = _run("predict", "--hardware", "jetson-agx-orin-64gb", "--model", "llama-2-7b", "--weight-dtype", "int4",
             "--phase", "decode", "--tokens", "80", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["tokens_per_s"] == pytest.approx(predict("jetson-agx-orin-64gb", "llama-2-7b", "int4", "decode",
                                                        80)["tokens_per_s"])
    assert out["latency_s"] > 0


@pytest.mark.parametrize("args,match", [
    (["--hardware", "jetson-tx1"], "snapdragon-8-elite"), (["--weight-dtype", "fp8"], "weight-dtype"),
    (["--phase", "train"], "phase"), (["--tokens", "0"], "tokens"), (["--tokens", "x"], "tokens"),
    (["--model", "nope"], "preset"), (["--hardware", "/nonexistent.yaml"], "not found")])
def test_cli_predict_errors_exit_2(args, match):
    base = {"--hardware": "nvidia-l4", "--model": "gpt2", "--weight-dtype": "fp16", "--phase": "decode",
            "--tokens": "10"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    r = _run("predict", *[x for kv in base.items() for x in kv], "--json")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and match in r.stderr
    assert r.stdout == ""


def test_cli_calibration_writes_json(tmp_path):
    r = _run("calibration", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "calibration.json").read_text())
    assert len(data["points"]) == len(load_points())
    assert "| point |" in r.stdout and "error %" in r.stdout
    r = _run("calibration")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
