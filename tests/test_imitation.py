"""The split agent's warm start (agents/imitation.py): the teacher's actions are the myopic
optimum's plans as split actions, and behaviour cloning fits them."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from agents.imitation import behaviour_cloning, collect_demonstrations, demonstration_seeds, teacher_action
from agents.seeds import HELD_OUT, MODEL_SELECTION, TRAINING

TINY = {"prompt_len": 16, "new_tokens": 3}


def test_demonstration_seeds_are_training_seeds():
    seeds = demonstration_seeds(7, 5)
    assert seeds.start in TRAINING and seeds[-1] in TRAINING
    assert not set(seeds) & set(range(MODEL_SELECTION.start, MODEL_SELECTION.start + 10**6))
    assert seeds[0] < HELD_OUT.start and len(seeds) == 5
    with pytest.raises(ValueError, match="pretrain_episodes"):
        demonstration_seeds(0, 0)


def test_teacher_action_is_the_myopic_plan_when_it_is_a_split():
    env = gym.make("DecoderSplit-v1", config=TINY)
    env.reset(seed=3)
    u = env.unwrapped
    a = teacher_action(env)
    assert u.action_masks()[a]
    loc = list(u.myopic_placement.loc)
    n = u.num_nodes
    is_split = any(loc == [0] * p + [k] * (n - p) for p in range(n + 1) for k in range(1, u.num_servers + 1))
    if is_split:
        assert u.decode_action(a) == loc


def test_cloning_fits_the_teacher():
    from sb3_contrib import MaskablePPO

    demos = collect_demonstrations("DecoderSplit-v1", TINY, range(0, 3))
    assert len(demos["actions"]) == 3 * 4 and demos["masks"][np.arange(12), demos["actions"]].all()
    env = gym.make("DecoderSplit-v1", config=TINY)
    model = MaskablePPO("MultiInputPolicy", env, seed=0, device="cpu", n_steps=16, batch_size=16)
    history = behaviour_cloning(model, demos, epochs=30, batch_size=12, seed=0)
    assert history[-1] < 0.5 * history[0]
    obs = {k: v[:1] for k, v in demos["obs"].items()}
    act, _ = model.predict(obs, deterministic=True, action_masks=demos["masks"][:1])
    assert int(act[0]) == int(demos["actions"][0])
    with pytest.raises(ValueError, match="DecoderSplit-v1"):
        collect_demonstrations("DecoderOffload-v1", TINY, range(0, 1))


def test_clairvoyant_teacher_replays_the_hindsight_plan():
    """split_grid 0 holds every split plan and the thermal state is off, so the future is
    exogenous: the teacher's episode costs exactly the clairvoyant DP's optimum, and never
    more than the myopic optimum's episode."""
    from agents.imitation import ClairvoyantTeacher
    from solvers.clairvoyant import clairvoyant_plan, episode_contexts

    cfg = {**TINY, "new_tokens": 6, "dynamics": {"thermal": False}}
    env = gym.make("DecoderSplit-v1", config=cfg)
    teacher = ClairvoyantTeacher()
    teacher.begin(env, 11)
    u = env.unwrapped
    myopic_cost = u.episode_cost
    c = u.config
    best = clairvoyant_plan(u.tokens, list(u.snapshots), episode_contexts(c.prompt_len, c.new_tokens),
                            w_time_per_s=c.latency_weight, w_energy_per_j=c.energy_weight)
    env.reset(seed=11)
    done = False
    while not done:
        a = teacher(env)
        assert u.decode_action(a) == teacher.plan[u.token]
        _, _, done, _, _ = env.step(a)
    assert u.episode_cost == pytest.approx(best.cost, rel=1e-9)
    assert u.episode_cost <= myopic_cost * (1 + 1e-9)


def test_clairvoyant_demonstrations_and_teacher_choice():
    from agents.imitation import teacher_for

    demos = collect_demonstrations("DecoderSplit-v1", {**TINY, "split_grid": 4}, range(0, 2), "clairvoyant")
    assert len(demos["actions"]) == 2 * 4 and demos["masks"][np.arange(8), demos["actions"]].all()
    assert demos["obs"]["model"].shape == (8, 5)
    with pytest.raises(ValueError, match="not available for MultiUserShared-v0"):
        teacher_for("MultiUserShared-v0", "clairvoyant")
    with pytest.raises(ValueError, match="objective 'weighted'"):
        collect_demonstrations("DecoderSplit-v1", {**TINY, "objective": "slo"}, range(0, 1), "clairvoyant")


def test_pretrain_teacher_is_checked():
    from agents.hyperparams import ConfigError, validate

    with pytest.raises(ConfigError, match="pretrain_teacher must be one of default, clairvoyant, best-of-baselines"):
        validate("maskable_ppo", {"pretrain_episodes": 5, "pretrain_teacher": "oracle"})
    with pytest.raises(ConfigError, match="needs pretrain_episodes >= 1"):
        validate("maskable_ppo", {"pretrain_teacher": "clairvoyant", "pretrain_episodes": 0})


def test_prefill_balanced_weights_by_hand():
    """4 samples, 1 prefill: the prefill weighs n / (2·1) = 2, each decode n / (2·3) = 2/3,
    so both phases total 2 (= n / 2) and the mean weight is 1."""
    from agents.imitation import prefill_balanced_weights

    w = prefill_balanced_weights(np.array([True, False, False, False]))
    assert w == pytest.approx([2.0, 2 / 3, 2 / 3, 2 / 3])
    assert prefill_balanced_weights(np.array([False, False])) == pytest.approx([1.0, 1.0])


def test_weighted_cloning_follows_the_heavy_samples():
    """Two contradicting demonstrations of the same state: the weighted loss's optimum is the
    heavier one's action."""
    from sb3_contrib import MaskablePPO

    demos = collect_demonstrations("DecoderSplit-v1", TINY, range(0, 1))
    assert demos["prefill"].tolist() == [True, False, False, False]
    one = {k: v[:1] for k, v in demos["obs"].items()}
    mask = demos["masks"][:1]
    allowed = np.flatnonzero(mask[0])
    a, b = int(allowed[0]), int(allowed[-1])
    twin = {"obs": {k: np.concatenate([v, v]) for k, v in one.items()}, "masks": np.concatenate([mask, mask]),
            "actions": np.array([a, b])}
    env = gym.make("DecoderSplit-v1", config=TINY)
    model = MaskablePPO("MultiInputPolicy", env, seed=0, device="cpu", n_steps=16, batch_size=16)
    behaviour_cloning(model, twin, epochs=200, batch_size=2, learning_rate=3e-3, seed=0, weights=np.array([1.0, 4.0]))
    act, _ = model.predict(one, deterministic=True, action_masks=mask)
    assert int(act[0]) == b
    with pytest.raises(ValueError, match="weights must be 2 finite numbers"):
        behaviour_cloning(model, twin, epochs=1, weights=np.array([1.0, -1.0]))


def test_best_of_baselines_teacher_replays_the_cheapest_candidate():
    from agents.imitation import BestOfBaselinesTeacher

    cfg = {**TINY, "new_tokens": 5, "scenario": "lte-cell-edge"}
    env = gym.make("DecoderSplit-v1", config=cfg)
    teacher = BestOfBaselinesTeacher()
    costs = {}
    for name, policy in teacher.CANDIDATES:
        env.reset(seed=21)
        done = False
        while not done:
            _, _, done, _, _ = env.step(policy(env))
        costs[name] = env.unwrapped.episode_cost
    teacher.begin(env, 21)
    assert teacher.chosen == [min(costs, key=costs.get)]
    env.reset(seed=21)
    done = False
    while not done:
        _, _, done, _, _ = env.step(teacher(env))
    assert env.unwrapped.episode_cost == pytest.approx(min(costs.values()), rel=1e-12)


def test_dagger_labels_the_students_states():
    """With a student, the episodes follow the student's greedy actions and each recorded
    action is the teacher's at the state the student reached."""
    from sb3_contrib import MaskablePPO

    env = gym.make("DecoderSplit-v1", config=TINY)
    student = MaskablePPO("MultiInputPolicy", env, seed=3, device="cpu", n_steps=16, batch_size=16)
    demos = collect_demonstrations("DecoderSplit-v1", TINY, range(5, 6), student=student)
    obs, _ = env.reset(seed=5)
    done, t = False, 0
    while not done:
        mask = env.unwrapped.action_masks()
        assert demos["actions"][t] == teacher_action(env)
        np.testing.assert_array_equal(demos["obs"]["system"][t], obs["system"])
        act, _ = student.predict({k: v[None] for k, v in obs.items()}, deterministic=True, action_masks=mask[None])
        obs, _, done, _, _ = env.step(int(np.asarray(act).reshape(-1)[0]))
        t += 1
    assert t == len(demos["actions"]) == 4
    with pytest.raises(ValueError, match="DAgger needs a teacher that can label any state"):
        collect_demonstrations("DecoderSplit-v1", TINY, range(0, 1), "clairvoyant", student=student)


def test_dagger_options_are_checked():
    from agents.hyperparams import ConfigError, validate

    with pytest.raises(ConfigError, match="pretrain_dagger_rounds must be an integer in"):
        validate("maskable_ppo", {"pretrain_episodes": 5, "pretrain_dagger_episodes": 5, "pretrain_dagger_rounds": 0})
    with pytest.raises(ConfigError, match="needs pretrain_dagger_episodes >= 1"):
        validate("maskable_ppo", {"pretrain_episodes": 5, "pretrain_dagger_rounds": 2})
    with pytest.raises(ConfigError, match="not 'clairvoyant'"):
        validate("maskable_ppo", {"pretrain_episodes": 5, "pretrain_dagger_episodes": 5,
                                  "pretrain_teacher": "clairvoyant"})
