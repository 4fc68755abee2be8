"""A warm start for the split agent and the shared multi-user policy: behaviour cloning of a teacher.

Exploration is what fails on ``DecoderSplit-v1``: a policy that starts uniform over the
(N+1)·M split actions re-splits the model at random every token, moves KV caches every
time, and the heavy-tailed token costs that follows (a cache moved over a deep fade) bury
the signal of every ordinary token.  The warm start gives the policy the re-planning
baseline's behaviour first, so that the RL updates start from a policy whose episodes
cost about as much as the myopic optimum's and look for improvements from there.

``MultiUserShared-v0`` (the parameter-sharing view of ``MultiUserOffload-v0``) collapses the
same way: from a uniform policy MaskablePPO learns to keep every user on its phone.

* :data:`TEACHERS`: the teacher of each env id, a function of the env's current state to the
  action it would take.

  - ``DecoderSplit-v1`` (:func:`teacher_action`): the myopic optimum (DeAOff on every token
    as it stands, the env's scored objective); each token's plan is mapped to the split
    action whose placement agrees with it on the most nodes (all-device: split N; ties to
    the lowest action), so the demonstrations are of the split teacher the agent can
    represent.
  - ``MultiUserShared-v0`` (:func:`greedy_joint_teacher_action`): the greedy joint assignment
    (:func:`solvers.joint.greedy_joint`: users in arrival order, each choosing its cheapest
    option beside the users already placed).  The shared view asks the users of a token step
    one after another in that same order, with the earlier users' actions of the step
    pending, so the teacher's action for user i is its best response to the pending actions
    (the later users absent): replayed from the start of a token step, the step's actions
    are exactly the greedy joint plan.

* ``pretrain_teacher: clairvoyant`` (:class:`ClairvoyantTeacher`, ``DecoderSplit-v1``): the
  hindsight plan of each demonstration episode, a privileged expert whose decisions the
  student, which sees only the present, learns to predict.
* ``pretrain_teacher: best-of-baselines`` (:class:`BestOfBaselinesTeacher`): per episode, the
  cheapest of the myopic optimum, the one-step lookahead and all-device on that episode.
* :func:`collect_demonstrations` plays episodes of the env with its teacher, steps the env
  with the teacher's action and records (observation, action mask, action, is-prefill);
  :func:`prefill_balanced_weights` lets the one prefill decision of each episode weigh as
  much as its decode decisions.  Seeds:
  :func:`demonstration_seeds`, in the training range (never the model-selection or held-out
  episodes).
* :func:`behaviour_cloning` minimises the masked policy's negative log-likelihood of the
  teacher's actions (Adam, minibatches, seeded).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .seeds import EPISODE_BLOCK, MAX_EPISODES, TRAINING, _check_int, check_run_seed

DEMONSTRATION_OFFSET = 500_000_000
"""Demonstration episodes of run seed s: TRAINING.start + 5·10^8 + 1000·s + e."""


def demonstration_seeds(run_seed: int, episodes: int) -> range:
    """Seeds of the teacher's episodes (inside the training range, far from the envs' own)."""
    run_seed = check_run_seed(run_seed)
    episodes = _check_int(episodes, "pretrain_episodes", range(1, MAX_EPISODES + 1))
    first = TRAINING.start + DEMONSTRATION_OFFSET + EPISODE_BLOCK * run_seed
    return range(first, first + episodes)


def teacher_action(env: Any) -> int:
    """The split action closest to the myopic optimum's plan of the current token."""
    return closest_split_action(env, env.unwrapped.myopic_placement.loc)


def closest_split_action(env: Any, placement: Any) -> int:
    """The allowed split action whose placement agrees with ``placement`` on the most nodes
    (ties to the lowest action)."""
    u = env.unwrapped
    loc = np.asarray(placement)
    mask = u.action_masks()
    best, best_score = -1, -1
    for a in np.flatnonzero(mask):
        score = int(np.sum(np.asarray(u.decode_action(int(a))) == loc))
        if score > best_score:
            best, best_score = int(a), score
    if best < 0:
        raise ValueError("teacher_action: no split action is feasible now")
    return best


def greedy_joint_teacher_action(env: Any) -> int:
    """The greedy joint assignment's action for the user a ``MultiUserShared-v0`` env asks now:
    its best response (:func:`solvers.joint.best_response`) to the actions already chosen in
    this token step, the users after it absent."""
    from solvers.joint import best_response

    u = env.unwrapped
    par, pending = u.par, u.pending
    agents = list(par.agents)
    i = len(pending)
    if list(pending) != agents[:i]:
        raise ValueError("greedy_joint_teacher_action: the pending actions are not the first users' of the step")
    placed = [par.decode(a, pending[a]) for a in agents[:i]] + [None] * (len(agents) - i)
    action = par.encode(best_response(par.live_system(), i, placed))
    if not u.action_masks()[action]:
        raise ValueError(f"greedy_joint_teacher_action: the greedy joint action {action} of {agents[i]} is masked")
    return action


class ClairvoyantTeacher:
    """The hindsight teacher of ``DecoderSplit-v1`` (learning from a privileged expert): for
    each demonstration episode, the best split-plan sequence given the episode's whole future
    (:func:`solvers.clairvoyant.clairvoyant_plan` on the snapshots recorded while the myopic
    optimum plays the same seed), then each token's plan mapped to the closest split action.
    The student sees only the present; cloning the expert teaches it the decision the future
    usually rewards from states like the present one (e.g. staying on the phone when the
    uplink is too poor for an edge cache to pay back).  ``objective`` must be ``weighted``
    (the yardstick's DP scores w_T·T + w_E·E)."""

    def __init__(self) -> None:
        self.plan: list[list[int]] = []

    def begin(self, env: Any, seed: int) -> None:
        from solvers.clairvoyant import clairvoyant_plan, episode_contexts

        u = env.unwrapped
        c = u.config
        if c.objective != "weighted":
            raise ValueError("the clairvoyant teacher needs objective 'weighted'")
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, done, _, _ = env.step(teacher_action(env))
        contexts = episode_contexts(c.prompt_len, c.new_tokens, c.include_prefill)
        self.plan = clairvoyant_plan(u.tokens, list(u.snapshots), contexts, w_time_per_s=c.latency_weight,
                                     w_energy_per_j=c.energy_weight).placements

    def __call__(self, env: Any) -> int:
        return closest_split_action(env, self.plan[env.unwrapped.token])


def _all_device_action(env: Any) -> int:
    return closest_split_action(env, [0] * env.unwrapped.num_nodes)


def _lookahead_action(env: Any) -> int:
    from envs.baselines import one_step_lookahead

    return closest_split_action(env, one_step_lookahead(env.unwrapped).loc)


class BestOfBaselinesTeacher:
    """Per demonstration episode, the cheapest of several non-learned policies that see only
    the present (:data:`CANDIDATES`: the myopic optimum, the one-step lookahead, all-device;
    each token's plan as the closest split action), chosen after playing each of them on the
    episode's seed (same world, same future).  Every candidate is causal, so the student can
    represent each of them; what it learns from the choice is which of them the world it
    sees calls for (e.g. the lookahead on a slow uplink, the myopic optimum on a fast one)."""

    CANDIDATES = (("myopic", teacher_action), ("lookahead", _lookahead_action), ("all-device", _all_device_action))

    def __init__(self) -> None:
        self.actions: list[int] = []
        self.policy: Any = None
        """The chosen candidate of the current episode (it labels any state, for DAgger)."""
        self.chosen: list[str] = []
        """The candidate chosen for each episode so far."""

    def begin(self, env: Any, seed: int) -> None:
        best: tuple[float, str, list[int], Any] | None = None
        for name, policy in self.CANDIDATES:
            env.reset(seed=seed)
            actions, done = [], False
            while not done:
                a = policy(env)
                actions.append(a)
                _, _, done, _, _ = env.step(a)
            cost = env.unwrapped.episode_cost
            if best is None or cost < best[0]:
                best = (cost, name, actions, policy)
        assert best is not None
        self.chosen.append(best[1])
        self.actions, self.policy = best[2], best[3]

    def __call__(self, env: Any) -> int:
        return self.actions[env.unwrapped.token]

    def label(self, env: Any) -> int:
        """The chosen candidate's action in the env's present state (any state)."""
        return self.policy(env)


TEACHERS = {"DecoderSplit-v1": ("myopic optimum", teacher_action),
            "MultiUserShared-v0": ("greedy joint assignment", greedy_joint_teacher_action)}
"""Env id -> (its default teacher's name, its action in the env's current state)."""
OTHER_TEACHERS = {("DecoderSplit-v1", "clairvoyant"): ("clairvoyant plan", ClairvoyantTeacher),
                  ("DecoderSplit-v1", "best-of-baselines"): ("best non-learned policy", BestOfBaselinesTeacher)}
"""(env id, ``pretrain_teacher``) -> (name, a class whose instance has ``begin(env, seed)``
(called before each episode) and is the action function)."""
TEACHER_NAMES = ("default", "clairvoyant", "best-of-baselines")
"""Values of ``pretrain_teacher``: ``default`` (the env's own teacher in :data:`TEACHERS`)."""


def teacher_for(env_id: str, which: str = "default") -> tuple[str, Any]:
    """The (name, action function) of ``env_id``'s teacher; ValueError if it has none."""
    if which != "default":
        if (env_id, which) not in OTHER_TEACHERS:
            raise ValueError(f"pretrain_teacher {which!r} is not available for {env_id} "
                             f"(available: {', '.join(f'{w} on {e}' for e, w in OTHER_TEACHERS)})")
        name, cls = OTHER_TEACHERS[(env_id, which)]
        return name, cls()
    if env_id not in TEACHERS:
        raise ValueError(f"pretraining has a teacher for {', '.join(TEACHERS)} only, not {env_id}")
    return TEACHERS[env_id]


def collect_demonstrations(env_id: str, env_config: Mapping[str, Any], seeds: range,
                           teacher_name: str = "default", student: Any = None) -> dict[str, Any]:
    """Play every seed with ``env_id``'s teacher; returns {"obs": {key: array}, "masks",
    "actions", "prefill", "chosen"}.

    ``student`` (a MaskablePPO model): DAgger — the student's greedy actions drive the
    episodes and the teacher labels every state the student visits with the action it would
    take there (``teacher.label(env)``, or the teacher function itself); the teacher must be
    a function of the present state (not the clairvoyant plan)."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids)

    _, teacher = teacher_for(env_id, teacher_name)
    label = getattr(teacher, "label", teacher)
    if student is not None and isinstance(teacher, ClairvoyantTeacher):
        raise ValueError("DAgger needs a teacher that can label any state; the clairvoyant plan labels only its own")
    env = gym.make(env_id, config=dict(env_config))
    obs_rows: dict[str, list[np.ndarray]] = {}
    masks, actions, prefill = [], [], []
    try:
        for s in seeds:
            if hasattr(teacher, "begin"):
                teacher.begin(env, int(s))
            obs, _ = env.reset(seed=int(s))
            done = False
            while not done:
                mask = env.unwrapped.action_masks().copy()
                a = teacher(env) if student is None else label(env)
                for k, v in obs.items():
                    obs_rows.setdefault(k, []).append(np.asarray(v, dtype=np.float32))
                masks.append(mask)
                actions.append(a)
                prefill.append(getattr(env.unwrapped, "context", 0) is None)
                if student is not None:
                    act, _ = student.predict({k: v[None] for k, v in obs.items()}, deterministic=True,
                                             action_masks=mask[None])
                    a = int(np.asarray(act).reshape(-1)[0])
                obs, _, terminated, truncated, _ = env.step(a)
                done = terminated or truncated
    finally:
        env.close()
    return {"obs": {k: np.stack(v) for k, v in obs_rows.items()}, "masks": np.stack(masks),
            "actions": np.asarray(actions, dtype=np.int64), "prefill": np.asarray(prefill, dtype=bool),
            "chosen": list(getattr(teacher, "chosen", []))}


def prefill_balanced_weights(prefill: np.ndarray) -> np.ndarray:
    """Sample weights that give the prefill decisions as much total weight as the decode
    decisions (mean weight 1): an episode has one prefill and hundreds of decode tokens, but
    where the prefill runs decides where the caches start, and with them the episode.
    Without prefill (or without decode) samples, all weights are 1."""
    prefill = np.asarray(prefill, dtype=bool)
    n, p = prefill.size, int(prefill.sum())
    w = np.ones(n, dtype=np.float64)
    if 0 < p < n:
        w[prefill] = n / (2.0 * p)
        w[~prefill] = n / (2.0 * (n - p))
    return w


def behaviour_cloning(model: Any, demos: Mapping[str, Any], *, epochs: int = 10, batch_size: int = 256,
                      learning_rate: float = 1e-3, seed: int = 0, weights: np.ndarray | None = None) -> list[float]:
    """Fit ``model.policy`` (a MaskablePPO policy) to the demonstrations; returns the mean
    (``weights``-weighted) negative log-likelihood of each epoch."""
    import torch

    policy = model.policy
    n = len(demos["actions"])
    if n == 0:
        raise ValueError("behaviour_cloning: no demonstrations")
    w = None
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float32)
        if weights.shape != (n,) or not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(f"behaviour_cloning: weights must be {n} finite numbers >= 0 with a positive sum")
        w = torch.as_tensor(weights, device=policy.device)
    opt = torch.optim.Adam(policy.parameters(), lr=learning_rate)
    rng = np.random.default_rng(seed)
    history = []
    policy.set_training_mode(True)
    for _ in range(epochs):
        order = rng.permutation(n)
        losses = []
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            obs = {k: torch.as_tensor(v[idx], device=policy.device) for k, v in demos["obs"].items()}
            acts = torch.as_tensor(demos["actions"][idx], device=policy.device)
            dist = policy.get_distribution(obs, action_masks=demos["masks"][idx])
            if w is None:
                loss = -dist.log_prob(acts).mean()
            else:
                wb = w[idx]
                loss = -(dist.log_prob(acts) * wb).sum() / wb.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
    policy.set_training_mode(False)
    return history
