"""Bad input to the command lines: exit code 2, one ``error:`` line naming the problem, no
traceback, nothing printed or written before the check (subprocesses, as a user runs them)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

SUITES = {
    "malformed-yaml": ("models: [gpt2\ngranularities: [block]\n", "not valid YAML"),
    "missing-keys": ("models: [gpt2]\ngranularities: [block]\n", "missing key(s) ['phases', 'scenarios']"),
    "not-a-mapping": ("- gpt2\n- llama-2-7b\n", "expected a mapping"),
    "empty-list": ("models: []\ngranularities: [block]\nphases: [decode]\nscenarios: [wifi]\n", "models must be"),
    "bad-granularity": ("models: [gpt2]\ngranularities: [layer]\nphases: [decode]\nscenarios: [wifi]\n",
                        "granularities: unknown ['layer']"),
    "bad-prompt-len": ("models: [gpt2]\ngranularities: [block]\nphases: [decode]\nscenarios: [wifi]\n"
                       "prompt_len: -3\n", "prompt_len must be"),
    "unknown-model": ("models: [gpt5]\ngranularities: [block]\nphases: [decode]\nscenarios: [wifi]\n", "'gpt5'"),
}

AGENTS = {
    "invalid-json": (["--env-config", '{"model": }'], "not valid JSON"),
    "inline-scenario": (["--env-config", '{"scenario": {"servers": [{"distance_km": 0.1}]}}'],
                        "scenario must be a preset name"),
    "negative-deadline": (["--deadline-ms", "-5"], "--deadline-ms must be a finite number > 0"),
    "nan-deadline": (["--deadline-ms", "nan"], "--deadline-ms must be a finite number > 0"),
    "no-episodes": (["--episodes", "0"], "--episodes"),
    "seed-out-of-range": (["--seed", "-1"], "--seed must be an integer in [0, 999999]"),
    "unknown-env-config-key": (["--env-config", '{"new_tokenz": 2}'], "new_tokenz"),
    "missing-env-config-file": (["--env-config", "/nonexistent/env.yaml"], "file not found"),
    "empty-model-in-file": (["--env-config", "{tmp}/env.yaml"], "model has no value"),
}

TRAIN = {
    "seed-out-of-range": (["--seed", "1000000"], "seed must be an integer in [0, 999999]"),
    "negative-seed": (["--seed", "-1"], "seed must be an integer >= 0"),
    "invalid-json": (["--env-config", '{"model": }'], "not valid JSON"),
    "inline-scenario": (["--env-config", '{"scenario": {"servers": []}}'], "scenario must be a preset name"),
    "too-many-eval-episodes": (["--eval-episodes", "5000"], "eval_episodes must be an integer in [1, 999]"),
}

MAIN = {
    "negative-timesteps": (["--timesteps", "-5"], "--timesteps must be an integer >= 1"),
    "unknown-model": (["--model", "gpt5"], "'gpt5'"),
    "bad-granularity": (["--granularity", "layer"], "granularity"),
    "phase-without-inspect": (["--phase", "prefill"], "--phase only applies with --inspect"),
    "seed-out-of-range": (["--seed", "2000000"], "--seed must be an integer in [0, 999999]"),
    "too-many-episodes": (["--episodes", "1000"], "--episodes must be an integer in [1, 999]"),
    "prompt-too-long": (["--model", "gpt2", "--prompt-len", "4000"], "exceeds gpt2's 1024 positions"),
}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def assert_one_error_line(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert needle in lines[0], lines[0]


@pytest.mark.parametrize("case", list(SUITES))
def test_static_bad_suite(case, tmp_path):
    text, needle = SUITES[case]
    suite = tmp_path / "suite.yaml"
    suite.write_text(text)
    out = tmp_path / "out"
    assert_one_error_line(run("evaluate.py", "static", "--out", str(out), "--suite", str(suite)), needle)
    assert not out.exists()


@pytest.mark.parametrize("case", list(AGENTS))
def test_agents_bad_option(case, tmp_path):
    args, needle = AGENTS[case]
    (tmp_path / "env.yaml").write_text("model:\nnew_tokens: 2\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = tmp_path / "out"
    proc = run("evaluate.py", "agents", "--out", str(out), "--episodes", "1", "--no-progress", *args)
    assert_one_error_line(proc, needle)
    assert not out.exists()  # a failed evaluation leaves no --out directory


@pytest.mark.parametrize("case", list(TRAIN))
def test_train_bad_option(case, tmp_path):
    args, needle = TRAIN[case]
    proc = run("train.py", "--algo", "ppo", "--env", "DecoderOffload-v0", "--log-dir", str(tmp_path / "runs"),
               "--no-progress", *args)
    assert_one_error_line(proc, needle)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("case", list(MAIN))
def test_main_checks_options_before_printing(case, tmp_path):
    args, needle = MAIN[case]
    proc = run("main.py", "--out", str(tmp_path / "runs"), *args)
    assert_one_error_line(proc, needle)
    assert proc.stdout == ""  # no DAG table before the error
    assert not (tmp_path / "runs").exists()
