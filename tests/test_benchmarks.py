"""The benchmark scripts run end to end (tiny settings) and print their figures.

Timings are never asserted (they belong to the benchmarks' output, not to the tests);
these only check that the scripts still work as documented in the README.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_bench_cost_prints_the_target_line() -> None:
    out = _run("benchmarks/bench_cost.py", "--seconds", "0.05")
    assert "evals/s" in out and "target >= 10,000 evals/s at block" in out


def test_bench_solver_prints_a_row_per_setting() -> None:
    out = _run("benchmarks/bench_solver.py", "--seeds", "1", "--servers", "1", "--granularity", "block")
    rows = [line for line in out.splitlines() if line.startswith("block")]
    assert len(rows) == 1 and "exact-dp" in rows[0] and "1/1" in rows[0]


def test_bench_env_prints_the_ratio_and_the_trivial_reference() -> None:
    out = _run("benchmarks/bench_env.py", "--steps", "300")
    assert "CartPole-v1" in out and "DecoderOffload-v1" in out and "DecoderSplit-v1" in out
    assert "trivial reference" in out and "target: DecoderOffload-v1 >= 0.25 x CartPole-v1" in out


def test_bench_room_prints_the_room() -> None:
    out = _run("benchmarks/bench_room.py", "--episodes", "1", "--env-config",
               '{"new_tokens": 3, "prompt_len": 16}', "--label", "tiny")
    assert out.startswith("tiny: 1 episodes; pooled vs myopic: myopic 1.0000") and "room below the best baseline" in out
