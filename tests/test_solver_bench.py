"""``benchmarks/bench_solver.py --scaling`` in a subprocess: one Markdown row per case with
its status and peak memory; bad input exits 2 with one line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "benchmarks/bench_solver.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def test_scaling_prints_a_markdown_row_per_case() -> None:
    out = _run("--scaling", "--scaling-models", "7b", "--scaling-dtypes", "int4", "--granularity", "block",
               "--scaling-servers", "1", "2", "--seeds", "1", "--time-limit", "30")
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| 7b | int4 | block |")]
    assert len(rows) == 2
    for m, row in zip((1, 2), rows):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[3] == str(m) and cells[4] == "34"  # servers, nodes of the 7B block chain
        assert cells[6] == "1/1" and cells[11] == "1/1"  # proven; relaxed meets its bound
        assert cells[12].endswith(" MB") and float(cells[12].split()[0]) > 0


def test_scaling_rejects_a_bad_server_count() -> None:
    out = _run("--scaling", "--scaling-servers", "0")
    assert out.returncode == 2 and "server counts must be >= 1" in out.stderr


def test_reference_prints_ms_per_token_fresh_and_reused() -> None:
    """``--reference``: a short recorded episode, timed on fresh and on reused tables (the
    two answers checked equal token by token inside the script)."""
    out = _run("--reference", "12", "--repeats", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "12 recorded solves" in lines[0] and "(26 nodes, 2 locations)" in lines[0]
    for label in ("fresh tables", "reused tables"):
        row = next(line for line in lines if label in line)
        assert float(row.split(":")[1].split()[0]) > 0 and row.rstrip().endswith(
            "ms/token" if label == "fresh tables" else "(answers identical token by token)")


def test_reference_rejects_zero_tokens() -> None:
    out = _run("--reference", "0")
    assert out.returncode == 2 and "--reference and --repeats must be >= 1" in out.stderr
