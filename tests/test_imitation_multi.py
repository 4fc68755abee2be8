"""The shared multi-user policy's warm start (agents/imitation.py on MultiUserShared-v0): the
teacher is the greedy joint assignment, asked one user at a time, and cloning fits it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

import envs  # noqa: F401  (registers the ids)
from agents.imitation import TEACHERS, behaviour_cloning, collect_demonstrations, greedy_joint_teacher_action
from solvers.joint import greedy_joint

REPO = Path(__file__).resolve().parent.parent
ENV_ID = "MultiUserShared-v0"
TINY = {"max_steps": 4, "max_devices": 3, "initial_users": 3, "arrival_rate_per_step": 1.0,
        "mean_new_tokens": 3.0, "prompt_len_range": [16, 64]}


def test_teacher_replays_the_greedy_joint_plan():
    """At the start of every token step the greedy joint plan of the live users is worked out
    on the parallel env; the teacher's actions, user by user, are that plan's, each one
    unmasked, and the token step costs what the plan costs."""
    env = gym.make(ENV_ID, config=TINY)
    u = env.unwrapped
    steps = 0
    for seed in (3, 11):
        env.reset(seed=seed)
        done = False
        while not done:
            plan = greedy_joint(u.par.live_system())
            expected = [u.par.encode(d) for d in plan.decisions]
            for i in range(len(expected)):
                assert len(u.pending) == i
                a = greedy_joint_teacher_action(env)
                assert u.action_masks()[a] and a == expected[i]
                _, _, term, trunc, info = env.step(a)
            assert list(info["costs"].values()) == pytest.approx(plan.result.costs, rel=1e-12)
            done = term or trunc
            steps += 1
    assert steps >= 4


def test_demonstrations_are_masked_actions_and_cloning_raises_their_likelihood():
    import torch
    from sb3_contrib import MaskablePPO

    demos = collect_demonstrations(ENV_ID, TINY, range(0, 3))
    n = len(demos["actions"])
    assert n >= 9 and demos["masks"][np.arange(n), demos["actions"]].all()
    assert set(demos["obs"]) == {"observation"} and len(demos["obs"]["observation"]) == n
    env = gym.make(ENV_ID, config=TINY)
    model = MaskablePPO("MultiInputPolicy", env, seed=0, device="cpu", n_steps=16, batch_size=16)

    def mean_log_likelihood() -> float:
        obs = {k: torch.as_tensor(v) for k, v in demos["obs"].items()}
        with torch.no_grad():
            dist = model.policy.get_distribution(obs, action_masks=demos["masks"])
            return float(dist.log_prob(torch.as_tensor(demos["actions"])).mean())

    before = mean_log_likelihood()
    history = behaviour_cloning(model, demos, epochs=80, batch_size=16, learning_rate=3e-3, seed=0)
    after = mean_log_likelihood()
    assert after > before + 1.0 and history[-1] < history[0]
    assert after > np.log(0.5)  # the teacher's action is now the likelier one on average


def test_teacher_per_env_id():
    assert set(TEACHERS) == {"DecoderSplit-v1", ENV_ID}
    with pytest.raises(ValueError, match="DecoderOffload-v1"):
        collect_demonstrations("DecoderOffload-v1", {}, range(0, 1))


def test_train_pretrains_on_the_multi_user_env(tmp_path):
    """train.py with pretrain_episodes on MultiUserShared-v0, tiny budgets: the cloned model
    is saved and the run goes on to train and write model.zip."""
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"hyperparams": {"pretrain_episodes": 2, "n_steps": 32, "batch_size": 32,
                                                      "n_epochs": 1}}))
    proc = subprocess.run([sys.executable, "train.py", "--algo", "maskable_ppo", "--env", ENV_ID,
                           "--timesteps", "32", "--seed", "0", "--log-dir", str(tmp_path / "runs"),
                           "--config", str(config), "--env-config", json.dumps(TINY), "--eval-freq", "0",
                           "--no-progress"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "pretrained on 2 greedy joint assignment episodes" in proc.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "pretrained.zip").is_file() and (run_dir / "model.zip").is_file()
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["hyperparams"]["pretrain_episodes"] == 2
