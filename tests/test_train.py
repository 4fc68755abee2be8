"""train.py as a user runs it: tiny subprocess runs, asserting on the files they write."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
TINY_ENV = json.dumps({"new_tokens": 2, "prompt_len": 16})
TINY_HYPERPARAMS = {
    "ppo": {"n_steps": 64, "batch_size": 64, "n_epochs": 2},
    "maskable_ppo": {"n_steps": 64, "batch_size": 64, "n_epochs": 2},
    "dqn": {"learning_starts": 64, "buffer_size": 1000, "target_update_interval": 64},
}
RUNS = {  # name: (algo, env id, n_envs)
    "ppo": ("ppo", "DecoderOffload-v1", 1),
    "maskable_ppo": ("maskable_ppo", "DecoderOffload-v1", 2),
    "dqn": ("dqn", "DecoderSplit-v1", 1),
}
TIMESTEPS = {"ppo": 200, "maskable_ppo": 256, "dqn": 256}
"""PPO's 200 is not a multiple of its 64-step rollouts: it trains 256 and says so."""
ENV_TAGS = ("env/latency_ms", "env/energy_j", "env/cost_vs_deaoff", "env/invalid_actions")
TIMEOUT_S = 300


def train_cmd(*args: str) -> list[str]:
    return [sys.executable, "train.py", *args]


def run_train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(train_cmd(*args), cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S)


def tiny_args(name: str, log_dir: Path, config: Path, seed: int = 0, timesteps: int = 256) -> list[str]:
    algo, env_id, n_envs = RUNS[name]
    return ["--algo", algo, "--env", env_id, "--timesteps", str(timesteps), "--seed", str(seed),
            "--log-dir", str(log_dir), "--config", str(config), "--env-config", TINY_ENV,
            "--n-envs", str(n_envs), "--eval-freq", "128", "--eval-episodes", "2", "--no-progress"]


def run_dir_of(log_dir: Path) -> Path:
    (run_dir,) = [p for p in log_dir.iterdir() if p.is_dir()]
    return run_dir


def num_timesteps(model_zip: Path) -> int:
    """SB3 keeps the step count in the zip's JSON ``data`` entry."""
    with zipfile.ZipFile(model_zip) as zf:
        return int(json.loads(zf.read("data"))["num_timesteps"])


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (tb,) = list((run_dir / "tb").iterdir())  # one TensorBoard run, also after a resume
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One tiny run per algorithm, started together (plus a second maskable_ppo run with
    the same seed for the reproducibility test)."""
    root = tmp_path_factory.mktemp("train")
    jobs = {}
    for name in [*RUNS, "maskable_ppo_again"]:
        base = name.removesuffix("_again")
        config = root / f"{name}.yaml"
        config.write_text(yaml.safe_dump({"hyperparams": TINY_HYPERPARAMS[base]}))
        args = tiny_args(base, root / name, config, timesteps=TIMESTEPS[base])
        jobs[name] = (root / name, subprocess.Popen(train_cmd(*args), cwd=REPO,
                                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    out = {}
    for name, (log_dir, proc) in jobs.items():
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
        assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{stdout}\n{stderr}"
        assert "Traceback" not in stderr, stderr
        out[name] = run_dir_of(log_dir)
        (log_dir / "stdout.txt").write_text(stdout)
    return out


@pytest.mark.parametrize("name", list(RUNS))
def test_run_writes_model_config_and_tensorboard(runs, name):
    run_dir = runs[name]
    algo, env_id, n_envs = RUNS[name]
    assert run_dir.name.startswith(f"{algo}_{env_id}_0_")
    for rel in ("model.zip", "best/best_model.zip", "evaluations.npz", "config.yaml", "command.txt", "seed.txt"):
        assert (run_dir / rel).is_file(), rel
    assert list((run_dir / "checkpoints").glob("*.zip"))
    trained = num_timesteps(run_dir / "model.zip")
    assert trained == 256

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (cfg["algo"], cfg["env_id"], cfg["seed"], cfg["n_envs"], cfg["timesteps"]) == \
        (algo, env_id, 0, n_envs, TIMESTEPS[name])
    assert cfg["trained_timesteps"] == trained
    # the seeds used, from agents/seeds.py: training envs 0..n_envs-1, model selection 10^9 + e
    assert cfg["seeds"]["training_envs"] == [[0, n_envs - 1]]
    assert cfg["seeds"]["model_selection"] == [1_000_000_000, 1_000_000_001]
    assert cfg["seeds"]["ranges"]["held_out"] == [2_000_000_000, 2_999_999_999]
    assert cfg["env_config"]["new_tokens"] == 2 and cfg["env_config"]["scenario"] == "urban-5g"
    # the resolved EnvConfig; dynamics keeps the keys set (the defaults and the scenario's
    # own section fill the rest when the config is read back)
    assert cfg["env_config"]["dynamics"] == {} and cfg["env_config"]["prompt_len"] == 16
    for key, value in TINY_HYPERPARAMS[algo].items():  # --config over configs/agents/{algo}.yaml
        assert cfg["hyperparams"][key] == value
    assert (run_dir / "seed.txt").read_text().strip() == "0"
    assert (run_dir / "command.txt").read_text().startswith("python train.py --algo " + algo)

    tags = scalars(run_dir)
    for tag in (*ENV_TAGS, "rollout/ep_rew_mean", "eval/mean_reward"):
        assert tag in tags and tags[tag], tag
    ratios = [v for _, v in tags["env/cost_vs_deaoff"]]
    assert all(np.isfinite(ratios)) and min(ratios) > 0
    if algo == "maskable_ppo":
        assert all(v == 0.0 for _, v in tags["env/invalid_actions"])


def test_overshoot_is_announced(runs):
    """PPO with 64-step rollouts and a 200-step target trains ceil(200 / 64) x 64 = 256
    steps: train.py says so before training, and config.yaml records both numbers."""
    stdout = (runs["ppo"].parent / "stdout.txt").read_text()
    assert "note: PPO collects whole rollouts of 1 env(s) x 64 steps: this session trains 256 steps, not 200" \
        in stdout
    assert "at step 256 (target 200)" in stdout
    assert "note:" not in (runs["maskable_ppo"].parent / "stdout.txt").read_text()  # 256 = 2 x 2 x 64


def test_resume_continues_the_step_count(runs):
    run_dir = runs["ppo"]
    before = num_timesteps(run_dir / "model.zip")
    with np.load(run_dir / "evaluations.npz") as ev:
        evals_before = len(ev["timesteps"])
    res = run_train("--resume", str(run_dir), "--timesteps", "128", "--no-progress")
    assert res.returncode == 0, res.stderr
    after = num_timesteps(run_dir / "model.zip")
    assert after >= before + 128
    with np.load(run_dir / "evaluations.npz") as ev:
        assert len(ev["timesteps"]) > evals_before  # earlier evaluations kept, new ones appended
        assert list(ev["timesteps"]) == sorted(ev["timesteps"])
    steps = [s for s, _ in scalars(run_dir)["env/cost_vs_deaoff"]]
    assert max(steps) > before  # same TensorBoard run, step axis continued
    assert len((run_dir / "command.txt").read_text().splitlines()) == 2
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["timesteps"] == before + 128 and cfg["trained_timesteps"] == after
    # the resumed session drew fresh training seeds, still in the training range
    first, second = cfg["seeds"]["training_envs"]
    assert first == [0, 0] and second != first and 0 <= second[0] <= second[1] < 1_000_000_000


def test_same_seed_same_first_evaluation(runs):
    with np.load(runs["maskable_ppo"] / "evaluations.npz") as a, \
            np.load(runs["maskable_ppo_again"] / "evaluations.npz") as b:
        assert a["timesteps"][0] == b["timesteps"][0]
        np.testing.assert_array_equal(a["results"][0], b["results"][0])


BAD_INPUTS = {
    "unknown-algo": (["--algo", "a2c", "--env", "DecoderOffload-v1"], "a2c"),
    "unknown-env": (["--algo", "ppo", "--env", "CartPole-v1"], "CartPole-v1"),
    "unknown-hyperparameter": (["--algo", "ppo", "--env", "DecoderOffload-v1", "--config", "{config}"], "n_step"),
    "unknown-env-config-key": (["--algo", "ppo", "--env", "DecoderOffload-v1", "--env-config", '{"new_tokenz": 2}'],
                               "new_tokenz"),
    "missing-config": (["--algo", "ppo", "--env", "DecoderOffload-v1", "--config", "/nonexistent/run.yaml"],
                       "/nonexistent/run.yaml"),
    "missing-resume": (["--resume", "/nonexistent/run"], "/nonexistent/run"),
    "resume-other-observation-space": (["--resume", "{dqn_run}", "--env-config", '{"max_servers": 2}'],
                                       "observation space"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_error_line(case, runs, tmp_path):
    args, needle = BAD_INPUTS[case]
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text(yaml.safe_dump({"hyperparams": {"n_step": 64}}))
    args = [a.replace("{config}", str(bad_config)).replace("{dqn_run}", str(runs["dqn"])) for a in args]
    res = run_train(*args, "--log-dir", str(tmp_path / "runs"), "--no-progress")
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert needle in lines[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no half-made run dir


def test_normalize_reward_wraps_only_the_training_envs():
    """``normalize_reward: true`` (a training key, not an algorithm argument) wraps the
    training envs in VecNormalize (rewards only); the evaluation env keeps the env's rewards;
    a non-boolean value is one ConfigError naming the key."""
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.hyperparams import ConfigError, to_model_kwargs, validate
    from deaoff_cli.train import RunConfig, make_envs, make_eval_env

    assert "normalize_reward" not in to_model_kwargs("maskable_ppo", {"normalize_reward": True, "gamma": 0.9})
    with pytest.raises(ConfigError, match="normalize_reward must be true or false"):
        validate("maskable_ppo", {"normalize_reward": "yes"})
    cfg = RunConfig(algo="maskable_ppo", env_id="DecoderSplit-v1", env_config={"new_tokens": 2, "prompt_len": 16},
                    hyperparams={"normalize_reward": True, "gamma": 0.9}, n_envs=1)
    train_env, eval_env = make_envs(cfg, range(0, 1)), make_eval_env(cfg)
    try:
        assert isinstance(train_env, VecNormalize) and not train_env.norm_obs and train_env.gamma == 0.9
        assert not (isinstance(eval_env, VecNormalize) and (eval_env.norm_reward or eval_env.norm_obs))
    finally:
        train_env.close()
        eval_env.close()


def test_warm_start_with_dagger_rounds(tmp_path):
    """A tiny many-worlds run: best-of-baselines cloning, two DAgger rounds, then PPO; the
    run writes pretrained.zip and says what it did."""
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"hyperparams": {
        "n_steps": 16, "batch_size": 16, "n_epochs": 1, "pretrain_episodes": 1,
        "pretrain_teacher": "best-of-baselines", "pretrain_balance_prefill": True,
        "pretrain_dagger_episodes": 1, "pretrain_dagger_rounds": 2}}))
    env = json.dumps({"new_tokens": 2, "prompt_len": 16, "split_grid": 3, "model_pool": ["gpt2", "qwen2.5-0.5b"],
                      "world_distribution": "default", "random_world_share": 0.5})
    out = run_train("--algo", "maskable_ppo", "--env", "DecoderSplit-v1", "--timesteps", "16", "--seed", "0",
                    "--log-dir", str(tmp_path / "runs"), "--config", str(config), "--env-config", env,
                    "--n-envs", "1", "--eval-freq", "1000", "--eval-episodes", "1", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "DAgger round 1: 1 episodes" in out.stdout and "DAgger round 2: 1 episodes" in out.stdout
    assert "teacher's choice per episode:" in out.stdout
    run_dir = run_dir_of(tmp_path / "runs")
    assert (run_dir / "pretrained.zip").is_file()
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["hyperparams"]["pretrain_dagger_rounds"] == 2 and saved["env_config"]["split_grid"] == 3
