"""``evaluate.py multi`` at the command line (subprocesses, as a user runs it): a tiny run
writes its table, CSV, JSON and plot; bad input exits 2 with one ``error:`` line naming the
problem, before anything is written."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "evaluate.py", "multi", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def test_tiny_run_writes_every_output(tmp_path):
    out = tmp_path / "m"
    proc = run("--out", str(out), "--users", "1,2", "--episodes", "1", "--steps", "2",
               "--methods", "joint,selfish,all-device", "--env-config", '{"models": ["gpt2"]}')
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader(open(out / "multi.csv")))
    assert [(r["N"], r["method"]) for r in rows] == [(n, m) for n in ("1", "2") for m in ("joint", "selfish",
                                                                                            "all-device")]
    for r in rows:  # the joint reference is the best of the methods on the same steps
        assert float(r["vs_joint"]) >= 1 - 1e-9
        assert 0 < float(r["jain"]) <= 1 and 0 <= float(r["slo_violations"]) <= 1
    data = json.loads((out / "multi.json").read_text())
    assert data["episodes"] == [2_000_000_000, 2_000_000_000] and data["env_config"] == {"models": ["gpt2"]}
    joint = [s for s in data["summary"] if s["method"] == "joint"]
    assert all(set(s["status"]) == {"optimal"} for s in joint)
    assert (out / "multi_cost_vs_n.png").stat().st_size > 0
    assert "| 2 | joint |" in (out / "multi.md").read_text() and "| 2 | joint |" in proc.stdout


BAD = {
    "users-not-integers": (["--users", "1,x"], "--users must be comma-separated integers"),
    "users-zero": (["--users", "0,2"], "--users must be distinct integers >= 1"),
    "episodes-zero": (["--episodes", "0"], "--episodes must be an integer in [1, 999]"),
    "steps-zero": (["--steps", "0"], "--steps must be an integer >= 1"),
    "seed-out-of-range": (["--seed", "-1"], "--seed must be an integer in [0, 999999]"),
    "time-limit": (["--time-limit", "nan"], "--time-limit must be a finite number > 0"),
    "unknown-method": (["--methods", "joint,oracle"], "--methods: unknown ['oracle']"),
    "env-config-unknown-key": (["--env-config", '{"num_users": 3}'], "num_users"),
    "env-config-set-by-users": (["--env-config", '{"max_devices": 3}'], "sets ['max_devices']"),
    "env-config-bad-objective": (["--env-config", '{"objective": "fast"}'], "objective must be one of"),
    "model-missing": (["--model", "/nonexistent/run"], "model path not found"),
    "episodes-not-int": (["--episodes", "two"], "invalid int value"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_one_line(case, tmp_path):
    args, message = BAD[case]
    out = tmp_path / "never"
    proc = run("--out", str(out), *args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_model_of_another_env_is_refused(tmp_path):
    """A run directory that holds no loadable shared policy: one line, status 2."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("algo: maskable_ppo\nenv_id: DecoderSplit-v1\nenv_config: {}\n")
    (run_dir / "model.zip").write_bytes(b"not a zip")
    proc = run("--out", str(tmp_path / "o"), "--model", str(run_dir))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and len(proc.stderr.strip().splitlines()) == 1
