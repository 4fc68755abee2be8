"""evaluate.py --workers: the parallel map keeps the order, and the tables do not depend
on the number of workers (static suite and agents, compared with --workers 1)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deaoff_cli.parallel import parallel_map

ROOT = Path(__file__).resolve().parent.parent
TINY_ENV = json.dumps({"new_tokens": 2, "prompt_len": 16})


def square_after_a_draw(seed: int) -> tuple[int, float]:
    import numpy as np

    return seed * seed, float(np.random.default_rng(seed).random())


def run(*args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return res


def test_parallel_map_keeps_the_order_and_the_values():
    items = list(range(7))
    seen = []
    out = parallel_map(square_after_a_draw, items, workers=2, on_result=lambda i, r: seen.append(i))
    assert out == [square_after_a_draw(i) for i in items]
    assert sorted(seen) == items


@pytest.mark.parametrize("kw, message", [({"workers": 0}, "--workers must be an integer >= 1"),
                                         ({"backend": "dask"}, "--backend must be one of local, ray"),
                                         ({"address": "auto"}, "--address is for --backend ray")])
def test_parallel_map_rejects_bad_options(kw, message):
    with pytest.raises(ValueError, match=message):
        parallel_map(abs, [1], **kw)


def test_static_and_agents_tables_do_not_depend_on_workers(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"models": ["qwen2.5-0.5b"], "granularities": ["block"], "phases": ["decode"],
                                     "scenarios": ["wifi-campus", "lte-cell-edge", "two-edge"]}))
    figures = []
    for w in ("1", "2"):
        run("evaluate.py", "static", "--suite", str(suite), "--out", str(tmp_path / f"static{w}"), "--workers", w)
        summary = json.loads((tmp_path / f"static{w}" / "summary.json").read_text())
        figures.append([(s["id"], {m: (v["latency_s"], v["energy_j"]) for m, v in s["methods"].items()})
                        for s in summary["scenarios"]])
    assert figures[0] == figures[1] and len(figures[0]) == 3

    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump({"hyperparams": {"n_steps": 64, "batch_size": 32, "n_epochs": 1}}))
    run("train.py", "--algo", "ppo", "--env", "DecoderOffload-v1", "--timesteps", "64", "--seed", "0",
        "--log-dir", str(tmp_path / "runs"), "--n-envs", "1", "--eval-freq", "0", "--no-progress",
        "--config", str(small), "--env-config", TINY_ENV)
    (run_dir,) = (tmp_path / "runs").iterdir()
    for w in ("1", "2"):
        run("evaluate.py", "agents", "--model", str(run_dir), "--episodes", "2", "--seed", "0", "--no-progress",
            "--out", str(tmp_path / f"agents{w}"), "--workers", w)
    assert (tmp_path / "agents1" / "tokens.csv").read_text() == (tmp_path / "agents2" / "tokens.csv").read_text()
