"""sweep.py: config validation, trial expansion, the local and Ray backends giving the same
numbers, a crashing trial reported while the sweep goes on, and resuming without re-running."""
from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from deaoff_cli.sweep_config import SweepConfigError, parse_config

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "sweeps" / "tiny.yaml"
BASE = {"algo": "ppo", "env": "DecoderOffload-v1", "timesteps": 128}


def run_sweep(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "sweep.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def trial_rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "trials.csv") as fh:
        return {r["trial_id"]: r for r in csv.DictReader(fh)}


# --------------------------------------------------------------------------- the config
@pytest.mark.parametrize("change, message", [
    ({"algoo": "ppo"}, "unknown key(s) ['algoo']"),
    ({"algo": "a2c"}, "unknown algorithm 'a2c'"),
    ({"env": "CartPole-v1"}, "unknown env id 'CartPole-v1'"),
    ({"timesteps": 0}, "timesteps must be an integer >= 1"),
    ({"seeds": [0, 0]}, "repeated seed"),
    ({"seeds": []}, "seeds must be"),
    ({"search": "bayes"}, "search must be grid or random"),
    ({"search": "random"}, "needs samples"),
    ({"samples": 3}, "samples is for search: random only"),
    ({"space": {"learning_rate": [1e-3]}}, "cannot sweep 'learning_rate'"),
    ({"space": {"hyperparams.learning_rate": []}}, "empty list"),
    ({"space": {"env_config.scenario": ["wifi-campus", "wifi-campus"]}}, "repeated value"),
    ({"space": {"hyperparams.learning_rate": {"low": 1e-4, "high": 1e-3}}}, "needs search: random"),
    ({"search": "random", "samples": 2, "space": {"hyperparams.gamma": {"low": 0.99, "high": 0.9}}}, "low < high"),
    ({"search": "random", "samples": 2, "space": {"hyperparams.ent_coef": {"low": 0, "high": 0.1, "log": True}}},
     "log-uniform needs low > 0"),
    ({"space": {"hyperparams.learning_rat": [1e-3]}}, "unknown hyperparameter 'learning_rat'"),
    ({"evaluation": {"metric": "reward"}}, "evaluation.metric must be one of"),
    ({"evaluation": {"episodes": 0}}, "episodes must be an integer >= 1"),
])
def test_bad_config_names_the_problem(change, message):
    with pytest.raises(SweepConfigError) as err:
        parse_config({**BASE, **change})
    assert message in str(err.value)


def test_grid_expands_configurations_times_seeds():
    """2 learning rates x 2 scenarios x 3 seeds = 12 trials; configurations outer, seeds inner;
    the swept values land at their dotted paths over the fixed settings."""
    cfg = parse_config({**BASE, "seeds": 3, "hyperparams": {"n_steps": 64}, "env_config": {"new_tokens": 2},
                        "space": {"hyperparams.learning_rate": [1e-3, 3e-4],
                                  "env_config.scenario": ["two-edge", "wifi-campus"]}})
    trials = cfg.trials()
    assert len(trials) == 12 and len({t.trial_id for t in trials}) == 12
    assert [t.seed for t in trials[:3]] == [0, 1, 2]
    assert trials[3].params == {"hyperparams.learning_rate": 1e-3, "env_config.scenario": "wifi-campus"}
    assert trials[3].run["hyperparams"] == {"n_steps": 64, "learning_rate": 1e-3}
    assert trials[3].run["env_config"] == {"new_tokens": 2, "scenario": "wifi-campus"}
    assert [t.trial_id for t in trials] == [t.trial_id for t in cfg.trials()]  # stable names (resume)


@settings(max_examples=25, deadline=None)
@given(sampler_seed=st.integers(0, 2**31), samples=st.integers(1, 6))
def test_random_search_is_seeded_and_within_bounds(sampler_seed, samples):
    data = {**BASE, "search": "random", "samples": samples, "sampler_seed": sampler_seed, "seeds": [0, 1],
            "space": {"hyperparams.ent_coef": {"low": 1e-4, "high": 1e-2, "log": True},
                      "hyperparams.n_epochs": {"low": 1, "high": 5, "integer": True},
                      "env_config.scenario": ["two-edge", "wifi-campus", "lte-cell-edge"]}}
    trials = parse_config(data).trials()
    configs = {json.dumps(t.params, sort_keys=True) for t in trials}
    assert len(trials) == 2 * len(configs) and 1 <= len(configs) <= samples  # a repeated draw runs once
    assert [t.params for t in trials] == [t.params for t in parse_config(data).trials()]
    for t in trials:
        assert 1e-4 <= t.params["hyperparams.ent_coef"] <= 1e-2
        assert t.params["hyperparams.n_epochs"] in range(1, 6)
        assert t.params["env_config.scenario"] in ("two-edge", "wifi-campus", "lte-cell-edge")


def test_cli_bad_config_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**BASE, "space": {"hyperparams.learning_rat": [1e-3]}}))
    for args in (["--config", str(bad)], ["--config", str(tmp_path / "missing.yaml")],
                 ["--config", str(TINY), "--backend", "dask"], ["--config", str(TINY), "--workers", "0"]):
        res = run_sweep(*args, "--out", str(tmp_path / "out"))
        assert res.returncode == 2, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error: "), res.stderr


# --------------------------------------------------------------------------- running sweeps
@pytest.fixture(scope="module")
def local_tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "local"
    res = run_sweep("--config", str(TINY), "--out", str(out), "--workers", "1")
    assert res.returncode == 0, res.stderr
    return out


def test_local_sweep_writes_tables_and_plot(local_tiny):
    for name in ("results.md", "results.json", "trials.csv", "configs.csv", "quality.png", "sweep.yaml"):
        assert (local_tiny / name).stat().st_size > 0, name
    rows = trial_rows(local_tiny)
    assert len(rows) == 2 and {r["status"] for r in rows.values()} == {"ok"}
    assert sorted(r["seed"] for r in rows.values()) == ["0", "1"]
    summary = json.loads((local_tiny / "results.json").read_text())
    (config,) = summary["configs"]
    assert config["seeds_ok"] == 2 and config["cost_vs_myopic_pooled"] > 0.0
    for tid in rows:
        assert (local_tiny / "trials" / tid / "result.json").exists()


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (pip install 'deaoff-gym[ray]', or bash scripts/setup.sh)")
def test_ray_backend_gives_the_same_numbers_as_local(local_tiny, tmp_path):
    """The same 2 trials on a local Ray instance with 2 workers: bitwise the same trained weights
    and the same held-out figures as the sequential local run."""
    out = tmp_path / "ray"
    res = run_sweep("--config", str(TINY), "--out", str(out), "--backend", "ray", "--workers", "2")
    assert res.returncode == 0, res.stderr
    assert "ray: local instance" in res.stderr
    local, ray = trial_rows(local_tiny), trial_rows(out)
    assert local.keys() == ray.keys()
    for tid in local:
        for key in ("status", "cost_vs_myopic_pooled", "cost_vs_static", "latency_s", "energy_j", "deadline_miss"):
            assert local[tid][key] == ray[tid][key], (tid, key)
        a = json.loads((local_tiny / "trials" / tid / "result.json").read_text())
        b = json.loads((out / "trials" / tid / "result.json").read_text())
        assert a["policy_sha256"] == b["policy_sha256"]
    assert json.loads((out / "results.json").read_text())["ray_startup_s"] > 0


def test_crashing_trials_are_reported_and_finished_trials_are_not_rerun(local_tiny, tmp_path):
    """The tiny sweep extended by a scenario axis: its two finished trials (same settings, same
    ids) are reused untouched from a copy of its output; the two new trials crash (unknown
    scenario, train.py exits 2), each reported with train.py's error; exit code 1."""
    cfg = yaml.safe_load(TINY.read_text())
    del cfg["env_config"]["scenario"]
    cfg["space"] = {"env_config.scenario": ["no-such-scenario", "two-edge"]}
    path = tmp_path / "crash.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    shutil.copytree(local_tiny, out)
    markers = {tid: (out / "trials" / tid / "result.json").stat().st_mtime_ns for tid in trial_rows(local_tiny)}
    res = run_sweep("--config", str(path), "--out", str(out))
    assert res.returncode == 1, res.stderr
    assert "4 trials (2 finished earlier, 2 to run)" in res.stderr
    rows = trial_rows(out)
    assert len(rows) == 4
    for tid, row in rows.items():
        if tid in markers:
            assert row["status"] == "ok" and (out / "trials" / tid / "result.json").stat().st_mtime_ns == markers[tid]
            assert row["cost_vs_myopic_pooled"] == trial_rows(local_tiny)[tid]["cost_vs_myopic_pooled"]
        else:
            assert row["status"] == "failed" and "unknown scenario 'no-such-scenario'" in row["error"], row
            assert (out / "trials" / tid / "error.json").exists()
            assert not (out / "trials" / tid / "result.json").exists()
    assert (out / "results.md").read_text().count("unknown scenario 'no-such-scenario'") == 2
    summary = json.loads((out / "results.json").read_text())
    assert sorted((c["env_config.scenario"], c["seeds_ok"], c["seeds_failed"]) for c in summary["configs"]) == \
        [("no-such-scenario", 0, 2), ("two-edge", 2, 0)]
