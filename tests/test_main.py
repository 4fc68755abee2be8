"""main.py as a user runs it: every option reaches the DAG print, training and evaluation."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def test_options_reach_training_and_evaluation(tmp_path):
    """--model gpt2 --scenario wifi-campus --prompt-len 16 (none of them the default) show in the
    DAG header, the run's resolved env config and the evaluation's env config; the held-out
    seeds come from --seed."""
    out = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "main.py", "--model", "gpt2", "--scenario", "wifi-campus", "--prompt-len", "16",
                           "--timesteps", "64", "--n-envs", "1", "--episodes", "1", "--seed", "5", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# gpt2: ") and "(block, decode, prompt 16)" in proc.stdout
    assert "# scenario wifi-campus: 1 edge server(s)" in proc.stdout
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (cfg["algo"], cfg["env_id"], cfg["seed"], cfg["n_envs"], cfg["timesteps"]) == \
        ("maskable_ppo", "DecoderSplit-v1", 5, 1, 64)
    env = cfg["env_config"]
    assert (env["model"], env["scenario"], env["prompt_len"]) == ("gpt2", "wifi-campus", 16)
    assert cfg["seeds"]["training_envs"] == [[5, 5]]
    assert (run_dir / "command.txt").read_text().startswith("python main.py --model gpt2")
    summary = json.loads((run_dir / "evaluation" / "summary.json").read_text())
    assert summary["env_config"] == env
    assert summary["seeds"] == [2_000_005_000]
    assert summary["agents"]["agent-maskable_ppo"]["checkpoint"] == "final"
