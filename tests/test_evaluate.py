"""evaluate.py as a user runs it: subprocess runs with tiny suites and budgets."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TINY_ENV = json.dumps({"new_tokens": 2, "prompt_len": 16})
HEURISTICS = ("all-device", "all-edge", "random", "greedy-eft", "heft", "neurosurgeon")
BASELINES = ("all-edge-free-ends", "lookahead")


def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_static_mode_writes_the_table(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text("models: [gpt2, llama-2-7b]\ngranularities: [block]\nphases: [decode, prefill]\n"
                     "scenarios: [wifi-campus, two-edge]\nprompt_len: 64\ncontext_len: 128\n"
                     "weight_dtypes: [fp16, int4]\n")
    out = tmp_path / "static"
    proc = run("evaluate.py", "static", "--out", str(out), "--suite", str(suite))
    assert proc.returncode == 0, proc.stderr
    assert "| deaoff |" in proc.stdout and "| neurosurgeon |" in proc.stdout and "| latency-optimal |" in proc.stdout
    assert "HiGHS" not in proc.stdout and proc.stdout.startswith("## Static suite")  # no solver banner
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"deaoff", "deaoff-relaxed", *HEURISTICS, "latency-optimal"}
    for name, m in summary["methods"].items():
        assert m["latency_s"] > 0 and m["energy_j"] > 0, name
    assert len(summary["scenarios"]) == 16
    assert {s["weight_dtype"] for s in summary["scenarios"]} == {"fp16", "int4"}
    for s in summary["scenarios"]:
        ours = s["methods"]["deaoff"]
        assert ours["status"] in ("optimal", "dp_optimal")
        # phase 2 keeps the latency within 10% of phase 1's optimum
        assert ours["latency_s"] <= 1.10 * s["phase1_makespan_s"] * (1 + 1e-9)
        for name in HEURISTICS:  # never worse than a heuristic on energy within its latency bound
            base = s["methods"][name]
            if base["latency_s"] is not None and base["latency_s"] <= 1.10 * s["phase1_makespan_s"]:
                assert ours["energy_j"] <= base["energy_j"] * (1 + 1e-9), (s["id"], name)
        # latency-optimal is phase 1 alone: its makespan is T*; DeAOff never uses more energy
        assert s["methods"]["latency-optimal"]["latency_s"] == pytest.approx(s["phase1_makespan_s"], rel=1e-9)
        assert s["vs_best_energy_pct"] >= -1e-7
        best = s["methods"][s["best_traditional"]]
        assert best["latency_s"] <= s["latency_bound_s"] * (1 + 1e-9)
        assert all(m["energy_j"] >= best["energy_j"] for n, m in s["methods"].items() if not n.startswith("deaoff")
                   and m["latency_s"] is not None and m["latency_s"] <= s["latency_bound_s"] * (1 + 1e-9))
    # llama-2-7b fp16 (13.5 GB) does not fit the phone's 8 GiB: all-device is reported infeasible, not dropped
    llama = [s for s in summary["scenarios"] if s["model"] == "llama-2-7b"]
    assert all(s["methods"]["all-device"]["status"].startswith("infeasible") == (s["weight_dtype"] == "fp16")
               for s in llama)  # int4 (3.8 GB) fits
    for name in ("results.csv", "bars.png", "gantt_deaoff.png", "map.png", "map.csv", "map.md"):
        assert (out / name).stat().st_size > 0
    rows = list(csv.DictReader((out / "map.csv").open()))
    assert len(rows) == 4 * 3 * 4 * 2  # edges x background users x uplink rates x phases
    assert all(r["best_traditional"] and float(r["energy_reduction_pct"]) >= -1e-7 for r in rows)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    log_dir = tmp_path_factory.mktemp("runs")
    cfg = log_dir / "hp.yaml"
    cfg.write_text("hyperparams: {n_steps: 64, batch_size: 64, n_epochs: 1}\n")
    proc = run("train.py", "--algo", "maskable_ppo", "--env", "DecoderOffload-v1", "--timesteps", "128",
               "--seed", "0", "--log-dir", str(log_dir), "--config", str(cfg), "--env-config", TINY_ENV,
               "--eval-freq", "128", "--eval-episodes", "1", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return next(p for p in log_dir.iterdir() if p.is_dir())


def test_agents_mode_compares_every_method(tmp_path, tiny_model):
    out = tmp_path / "agents"
    proc = run("evaluate.py", "agents", "--model", str(tiny_model), "--episodes", "2", "--seed", "0",
               "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"agent-maskable_ppo", "myopic-optimum", "deaoff-static", *BASELINES,
                                       *HEURISTICS}
    myopic = summary["methods"]["myopic-optimum"]
    assert myopic["cost_vs_myopic_pooled"] == pytest.approx(1.0)
    assert myopic["cost_vs_myopic_mean"] == pytest.approx(1.0)
    best = summary["best_baseline"]
    assert best not in ("agent-maskable_ppo", "random")
    for name, m in summary["methods"].items():
        assert m["episodes"] == 2 and m["latency_s"] > 0, name
        assert m["cost_vs_myopic_pooled"] >= summary["methods"][best]["cost_vs_myopic_pooled"] or \
            name in ("agent-maskable_ppo", "random"), name
        if name != best:
            vs = m["vs_best_baseline"]
            assert vs["baseline"] == best and vs["wins"] + vs["ties"] + vs["losses"] == 2
    assert {k: summary["env_config"][k] for k in ("new_tokens", "prompt_len")} == json.loads(TINY_ENV)
    assert "| agent-maskable_ppo |" in proc.stdout
    for name in ("tokens.csv", "bars.png", "latency_trace.png"):
        assert (out / name).stat().st_size > 0
    # held-out seeds (agents/seeds.py), never those of training or of model selection
    assert summary["seeds"] == [2_000_000_000, 2_000_000_001]
    # the final model by default, and the file evaluated is printed
    agent = summary["agents"]["agent-maskable_ppo"]
    assert agent["checkpoint"] == "final" and agent["path"] == str(tiny_model / "model.zip")
    assert f"{tiny_model / 'model.zip'}, final model" in proc.stderr
    assert summary["trace_episode"] in (0, 1)


def test_agents_mode_checkpoint_best(tmp_path, tiny_model):
    out = tmp_path / "agents"
    proc = run("evaluate.py", "agents", "--model", str(tiny_model), "--checkpoint", "best", "--episodes", "1",
               "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    agent = json.loads((out / "summary.json").read_text())["agents"]["agent-maskable_ppo"]
    assert agent["checkpoint"] == "best" and agent["path"] == str(tiny_model / "best" / "best_model.zip")
    assert "best_model.zip, best periodic-evaluation model" in proc.stderr


def test_agents_mode_checkpoint_best_missing(tmp_path, tiny_model):
    """A run trained without periodic evaluation has no best model: one error line."""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_model, run_dir)
    shutil.rmtree(run_dir / "best")
    proc = run("evaluate.py", "agents", "--model", str(run_dir), "--checkpoint", "best", "--out",
               str(tmp_path / "x"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no best/best_model.zip" in lines[0] and "--checkpoint final" in lines[0]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, message", [
    (["--model", "no/such/run"], "not found"),
    (["--env-config", '{"max_servers": 2}'], "different observation space"),
    (["--episodes", "0"], "--episodes"),
], ids=["missing-model", "other-observation-space", "no-episodes"])
def test_agents_mode_bad_input_is_one_line(tmp_path, tiny_model, args, message):
    argv = ["evaluate.py", "agents", "--out", str(tmp_path / "x")]
    if "--model" not in args:
        argv += ["--model", str(tiny_model)]
    proc = run(*argv, *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_static_mode_bad_suite_is_one_line(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text("models: [gpt2]\ngranularities: [block]\nphases: [decode]\nscenarios: [wifi-campus]\nbogus: 1\n")
    proc = run("evaluate.py", "static", "--out", str(tmp_path / "o"), "--suite", str(suite))
    assert proc.returncode == 2 and "bogus" in proc.stderr and "Traceback" not in proc.stderr


def test_agents_mode_one_torch_thread_and_a_bar_per_method(tmp_path, capsys):
    """Agent inference runs on one torch thread (as training does), and every method
    shows a progress bar over its episodes."""
    import torch

    from deaoff_cli.evaluate_agents import AgentsEvalConfig, run_agents

    torch.set_num_threads(2)
    run_agents(AgentsEvalConfig(out=tmp_path / "o", episodes=1, env_config=TINY_ENV))
    assert torch.get_num_threads() == 1
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    for name in ("myopic-optimum", "deaoff-static", *BASELINES, *HEURISTICS):
        assert any(line.startswith(name) and "1/1" in line for line in lines), name


def test_a_named_world_replaces_the_runs_pools(capsys):
    from deaoff_cli.evaluate_agents import _one_world

    trained = {"scenario_pool": ["urban-5g", "two-edge"], "model_pool": ["gpt2", "qwen2.5-0.5b"],
               "world_distribution": "default", "split_grid": 8}
    out = _one_world(trained, {"scenario": "lte-cell-edge"})
    assert out == {"scenario": "lte-cell-edge", "scenario_pool": [], "world_distribution": ""}
    assert "scenario_pool" in capsys.readouterr().err
    out = _one_world(trained, {"model": "configs/hardware/models/llama-3.2-3b.json"})
    assert out["model_pool"] == [] and "scenario_pool" not in out
    # a pool the evaluation sets itself is kept; nothing named, nothing replaced
    assert _one_world(trained, {"scenario": "x", "scenario_pool": ["y"]})["scenario_pool"] == ["y"]
    assert _one_world(trained, {"new_tokens": 8}) == {"new_tokens": 8}
