"""deaoff_cli/vectorise.py: the number of envs and the backend train.py picks, and the
hyper-parameters rescaled so the rollout stays the YAML's."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from agents.hyperparams import ConfigError
from deaoff_cli.vectorise import MAX_AUTO_ENVS, MIN_N_STEPS, SUBPROC_MIN_STEP_S, plan

ROOT = Path(__file__).resolve().parent.parent
MPPO = {"n_steps": 1024, "batch_size": 256}


def fast_env() -> float:
    return SUBPROC_MIN_STEP_S / 10


def slow_env() -> float:
    return SUBPROC_MIN_STEP_S * 2


def test_auto_on_policy_many_envs_in_one_process():
    """n_steps 1024 x 2 envs = 2048: the largest divisor <= 16 leaving >= 64 steps is 16
    (2048 / 16 = 128 steps per env); batch_size untouched."""
    p = plan("maskable_ppo", MPPO, 2, None, "auto", set(), step_s=fast_env)
    assert (p.vec_env, p.n_envs, p.hyperparams) == ("dummy", 16, {"n_steps": 128, "batch_size": 256})


def test_auto_short_rollout_keeps_64_steps_per_env():
    """DecoderSplit-v1's n_steps 256 x 1 env: 4 envs x 64 steps (8 would leave 32)."""
    p = plan("ppo", {"n_steps": 256}, 1, None, "auto", set(), step_s=fast_env)
    assert (p.n_envs, p.hyperparams["n_steps"]) == (4, 64)


def test_slow_env_goes_to_subprocesses_with_the_yaml_envs(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    p = plan("maskable_ppo", MPPO, 2, None, "auto", set(), step_s=slow_env)
    assert (p.vec_env, p.n_envs, p.hyperparams["n_steps"]) == ("subproc", 2, 1024)


def test_explicit_n_envs_rescales_n_steps_and_rejects_non_divisors():
    p = plan("maskable_ppo", MPPO, 2, 8, "dummy", set())
    assert (p.vec_env, p.n_envs, p.hyperparams["n_steps"]) == ("dummy", 8, 256)
    with pytest.raises(ConfigError, match="rollout of 2048 steps .* not a multiple of 3"):
        plan("maskable_ppo", MPPO, 2, 3, "dummy", set())


def test_explicit_n_steps_is_kept():
    p = plan("maskable_ppo", {"n_steps": 64, "batch_size": 32}, 2, None, "auto", {"n_steps"}, step_s=fast_env)
    assert (p.n_envs, p.hyperparams["n_steps"]) == (2, 64)


def test_dqn_keeps_env_steps_per_update():
    """train_freq 4 with 2 envs = 8 env steps per update; 4 envs: train_freq 2, 1 env: 8."""
    assert plan("dqn", {"train_freq": 4}, 2, 4, "dummy", set()).hyperparams["train_freq"] == 2
    assert plan("dqn", {"train_freq": 4}, 2, 1, "dummy", set()).hyperparams["train_freq"] == 8
    with pytest.raises(ConfigError, match="not a multiple of 3"):
        plan("dqn", {"train_freq": 4}, 2, 3, "dummy", set())


@given(n_steps=st.sampled_from([64, 128, 256, 512, 1024, 2048]), yaml_envs=st.integers(1, 8))
def test_auto_keeps_the_rollout(n_steps, yaml_envs):
    p = plan("ppo", {"n_steps": n_steps}, yaml_envs, None, "dummy", set())
    assert p.hyperparams["n_steps"] * p.n_envs == n_steps * yaml_envs
    assert yaml_envs <= p.n_envs <= max(MAX_AUTO_ENVS, yaml_envs)
    assert p.hyperparams["n_steps"] >= MIN_N_STEPS or p.n_envs == yaml_envs


def test_train_cli_records_the_vectorisation(tmp_path):
    """--n-envs 4 --vec-env dummy on maskable_ppo (YAML: 1024 x 2) trains 4 envs x 512 steps."""
    res = subprocess.run([sys.executable, "train.py", "--algo", "maskable_ppo", "--env", "DecoderOffload-v1",
                          "--timesteps", "64", "--seed", "0", "--log-dir", str(tmp_path), "--n-envs", "4",
                          "--vec-env", "dummy", "--eval-freq", "0", "--no-progress",
                          "--env-config", json.dumps({"new_tokens": 1, "prompt_len": 8})],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    (run_dir,) = tmp_path.iterdir()
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (cfg["n_envs"], cfg["vec_env"], cfg["hyperparams"]["n_steps"]) == (4, "dummy", 512)
