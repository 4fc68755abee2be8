"""Training callbacks: the env's own metrics in TensorBoard, and evaluation on fixed seeds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback


class EnvInfoCallback(BaseCallback):
    """Log the env's per-token metrics under ``env/``.

    Every step reads ``infos`` from the algorithm's locals; each completed token adds its
    latency, device energy and cost relative to the DeAOff reference, each step adds
    whether its action was masked.  The values go to the logger with ``record_mean``, so
    whenever SB3 dumps its log (every rollout for PPO, every ``log_interval`` episodes
    for DQN) the written value is the mean over all tokens (steps) since the last dump,
    at SB3's own step count:

    * ``env/latency_ms``: mean token latency;
    * ``env/energy_j``: mean device energy per token;
    * ``env/cost_vs_deaoff``: mean of C_agent / C_ref per token (1 = as good as DeAOff);
    * ``env/invalid_actions``: share of steps whose action was masked (0 with masking);
    * ``env/episode_cost_vs_deaoff``: Σ C_agent / Σ C_ref of each finished episode.
    """

    def _on_step(self) -> bool:
        record = self.logger.record_mean
        for info in self.locals.get("infos", ()):
            if "invalid_action" in info:
                record("env/invalid_actions", float(info["invalid_action"]))
            if info.get("token_done") and "cost_ratio" in info:
                record("env/latency_ms", 1e3 * info["latency_s"])
                record("env/energy_j", info["energy_j"])
                record("env/cost_vs_deaoff", info["cost_ratio"])
            if "episode_cost_ratio" in info:
                record("env/episode_cost_vs_deaoff", info["episode_cost_ratio"])
        return True


class _FixedSeedMixin:
    """Re-seed the eval env before every evaluation, so all evaluations (and both runs
    of a seed) see the same episodes; keep earlier evaluations on resume.

    ``eval_seed`` is the first of the run's model-selection seeds
    (:func:`agents.seeds.model_selection_seeds`); wrap the eval env's envs in
    :class:`agents.seeds.EpisodeSeeds` so episode e plays ``eval_seed + e``.  These
    episodes choose ``best/best_model.zip``, so they are never the held-out ones."""

    def __init__(self, *args, eval_seed: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.eval_seed = int(eval_seed)

    def restore(self, npz_path: Path) -> None:
        """Continue ``evaluations.npz`` and the best mean reward of an earlier session."""
        if not Path(npz_path).is_file():
            return
        with np.load(npz_path) as data:
            self.evaluations_timesteps = [int(t) for t in data["timesteps"]]
            self.evaluations_results = [list(r) for r in data["results"]]
            self.evaluations_length = [list(n) for n in data["ep_lengths"]]
        if self.evaluations_results:
            self.best_mean_reward = float(max(np.mean(r) for r in self.evaluations_results))

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            self.eval_env.seed(self.eval_seed)
        return super()._on_step()


class FixedSeedEvalCallback(_FixedSeedMixin, EvalCallback):
    """``EvalCallback`` on the fixed model-selection seeds."""


class FixedSeedMaskableEvalCallback(_FixedSeedMixin, MaskableEvalCallback):
    """``MaskableEvalCallback`` (masked evaluation) on the fixed model-selection seeds."""
