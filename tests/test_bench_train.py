"""benchmarks/bench_train.py runs end to end (tiny settings) and prints its two figures
(the speeds quoted in configs/agents/dqn.yaml); timings are never asserted."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_train_prints_env_and_training_rates() -> None:
    proc = subprocess.run([sys.executable, "benchmarks/bench_train.py", "--env-steps", "20", "--train-steps", "64",
                           "--compare-steps", "2048"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("DecoderSplit-v1 env.step, random unmasked actions:") and "per CPU-second" in lines[0]
    assert lines[1].startswith("dqn training on DecoderSplit-v1") and "per CPU-second" in lines[1]
    assert "CartPole-v1" in lines[-2] and "steps/s" in lines[-2]
    assert "env.step" in lines[-3] and "of the wall time" in lines[-3]
    assert lines[-1].startswith("  ratio DecoderOffload-v1 / CartPole-v1:") and "target >= 0.9 x" in lines[-1]
