"""Train a Stable-Baselines3 agent on DecoderOffload-v1, DecoderSplit-v1 or MultiUserShared-v0.

    python train.py --algo ppo|dqn|maskable_ppo --env ID --timesteps N --seed S --log-dir DIR
                    [--config YAML] [--env-config YAML_OR_JSON] [--n-envs K]
                    [--eval-freq N] [--eval-episodes N] [--no-progress]
    python train.py --resume RUN_DIR [--timesteps N] [...]

Settings, lowest precedence first: EnvConfig and configs/agents/{algo}.yaml defaults <
the --config file < command-line flags.  The --config file has the keys of a run's
config.yaml (algo, env_id, env_config, hyperparams, seed, n_envs, timesteps, eval_freq,
eval_episodes, checkpoint_freq), all optional, so ``--config RUN/config.yaml`` re-makes
a run.  --env-config is a YAML/JSON file or an inline mapping such as
'{"new_tokens": 2, "prompt_len": 16}'.

A run directory DIR/{algo}_{env}_{seed}_{YYYYmmdd-HHMMSS}[-n] holds model.zip (the
model the run ended with), best/best_model.zip (the best periodic evaluation, on a
separate env and the model-selection seeds), evaluations.npz, checkpoints/,
tb/ (TensorBoard), config.yaml (fully resolved), command.txt, seed.txt (and
replay_buffer.pkl for DQN).

--resume RUN_DIR continues RUN_DIR/model.zip with its config: --timesteps N trains N more
steps (without it: the rest of the saved target, e.g. after Ctrl-C); the step count, the
TensorBoard log and evaluations.npz continue.  Hyperparameters may be overridden through
--config (not policy_kwargs).

Seeds (agents/seeds.py, the one home of every env seed): training env i gets
seed + i; the periodic evaluation plays the model-selection episodes 10^9 + 1000*seed + e
(the same ones at every evaluation); evaluate.py's held-out episodes start at 2*10^9, so
neither training nor the choice of best/best_model.zip has seen them.  config.yaml
records the seeds used (key ``seeds``) and the steps actually trained
(``trained_timesteps``: PPO trains whole rollouts of n_envs x n_steps, so a target that
is not a multiple grows to the next one; train.py says so before it starts).

Ctrl-C saves model.zip and exits with code 130.  Bad input: one ``error:`` line, exit 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import platform
import shlex
import signal
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import gymnasium as gym
import numpy as np
import torch
import yaml
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback, ProgressBarCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize

import envs
from agents import seeds as seeding
from agents.algos import ALGOS, MASKABLE, OFF_POLICY, planned_timesteps
from agents.callbacks import EnvInfoCallback, FixedSeedEvalCallback, FixedSeedMaskableEvalCallback
from agents.hyperparams import ConfigError, load_hyperparams, merge, to_model_kwargs, validate
from deaoff_cli import vectorise
from deaoff_cli.config_io import CLIError, check_env_config_names, read_mapping
from envs.multi_user_register import config_class
from envs.offload_env import EnvConfig

INTERRUPTED_EXIT = 130


@dataclass
class RunConfig:
    """Everything that defines a run (written to RUN_DIR/config.yaml)."""

    algo: str
    """Key of agents.algos.ALGOS."""
    env_id: str
    """A registered env id (envs.ENV_IDS)."""
    env_config: dict[str, Any] = field(default_factory=dict)
    """EnvConfig.to_dict() of the training and evaluation envs."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """Algorithm arguments, as in configs/agents/{algo}.yaml."""
    seed: int = 0
    """Run seed (0 <= seed < 10^6): the model's seed; env seeds derive from it (agents/seeds.py)."""
    n_envs: int = 1
    """Training envs stepped together (deaoff_cli/vectorise.py picks the default)."""
    vec_env: str = "dummy"
    """dummy: all envs in this process (DummyVecEnv); subproc: one process per env (SubprocVecEnv)."""
    timesteps: int = 100_000
    """Target number of env steps (summed over envs)."""
    eval_freq: int = 10_000
    """Env steps between evaluations (0: no evaluation, no best model)."""
    eval_episodes: int = 5
    """Episodes per evaluation."""
    checkpoint_freq: int = 0
    """Env steps between checkpoints (0: a tenth of the target, fixed when the run starts)."""

    INT_FIELDS = ("seed", "n_envs", "timesteps", "eval_freq", "eval_episodes", "checkpoint_freq")
    IGNORED_KEYS = ("versions", "seeds", "trained_timesteps")
    """Keys of a written config.yaml that are information, not settings."""

    def __post_init__(self) -> None:
        if self.vec_env not in ("dummy", "subproc"):
            raise ConfigError(f"vec_env must be dummy or subproc, got {self.vec_env!r}")
        minimum = {"seed": 0, "n_envs": 1, "timesteps": 1, "eval_freq": 0, "eval_episodes": 1, "checkpoint_freq": 0}
        maximum = {"seed": seeding.RUN_SEEDS.stop - 1, "n_envs": seeding.MAX_ENVS,
                   "eval_episodes": seeding.MAX_EPISODES}
        for key in self.INT_FIELDS:
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum[key]:
                raise ConfigError(f"{key} must be an integer >= {minimum[key]}, got {value!r}")
            if key in maximum and value > maximum[key]:
                raise ConfigError(f"{key} must be an integer in [{minimum[key]}, {maximum[key]}], got {value!r} "
                                  "(the seed ranges of agents/seeds.py)")

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively (for yaml.safe_dump)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _read_mapping(value: str | Path, what: str) -> dict[str, Any]:
    """A YAML/JSON file, or (for strings starting with '{') an inline JSON/YAML mapping."""
    try:
        return read_mapping(value, what)
    except CLIError as exc:
        raise ConfigError(str(exc)) from None


def read_run_config_file(path: str | Path, what: str = "--config") -> dict[str, Any]:
    """The keys of a run-config file (a subset of RunConfig's fields), unknown keys rejected."""
    data = _read_mapping(path, what)
    known = [f.name for f in dataclasses.fields(RunConfig)]
    unknown = sorted(set(data) - set(known) - set(RunConfig.IGNORED_KEYS))
    if unknown:
        raise ConfigError(f"{what} {path}: unknown key(s) {unknown}; known: {known}")
    for key in ("env_config", "hyperparams"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise ConfigError(f"{what} {path}: {key} must be a mapping")
    return {k: v for k, v in data.items() if k in known and v is not None}


def resolve_env_config(*layers: Mapping[str, Any], env_id: str | None = None) -> dict[str, Any]:
    """The env's config defaults (EnvConfig; MultiUserConfig for MultiUserShared-v0) under
    ``layers`` (later wins), validated, as plain data."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge(merged, layer)
    try:
        check_env_config_names(merged)
        cls = EnvConfig if env_id is None else config_class(env_id)
        return _plain(cls.from_dict(merged).to_dict())
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc) if str(exc).startswith("env config") else f"env config: {exc}") from None


def make_env(env_id: str, config: Mapping[str, Any]) -> gym.Env:
    """One env.  In a SubprocVecEnv worker: ignore Ctrl-C (the main process saves the
    model and closes the workers) and keep torch to one thread.  (A worker that unpickles
    this function imports this module, whose ``import envs`` registers the ids.)"""
    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        torch.set_num_threads(1)
    return gym.make(env_id, config=dict(config))


def make_envs(cfg: RunConfig, env_seeds: range) -> VecEnv:
    """The training envs, env i seeded with ``env_seeds[i]`` (agents.seeds.training_seeds)."""
    vec_cls = SubprocVecEnv if cfg.vec_env == "subproc" and cfg.n_envs > 1 else DummyVecEnv
    vec = make_vec_env(make_env, n_envs=cfg.n_envs, seed=env_seeds.start, vec_env_cls=vec_cls,
                       env_kwargs={"env_id": cfg.env_id, "config": cfg.env_config})
    if cfg.hyperparams.get("normalize_reward", False):
        # heavy-tailed token costs (a cache moved over a deep fade) would swamp the value
        # targets; scaled and clipped rewards for training only (statistics restart on --resume)
        vec = VecNormalize(vec, norm_obs=False, norm_reward=True, clip_reward=10.0,
                           gamma=float(cfg.hyperparams.get("gamma", 0.99)))
    return vec


def _pretrain(model, cfg: RunConfig, run_dir: Path) -> None:
    """``pretrain_episodes``: behaviour cloning of the env's teacher before the RL updates
    (agents/imitation.py: the myopic optimum on DecoderSplit-v1, the greedy joint assignment
    on MultiUserShared-v0, or ``pretrain_teacher``'s), then ``pretrain_dagger_episodes`` of
    DAgger; the cloned model is kept as RUN_DIR/pretrained.zip."""
    episodes = int(cfg.hyperparams.get("pretrain_episodes", 0) or 0)
    if episodes <= 0:
        return
    from agents.imitation import (behaviour_cloning, collect_demonstrations, demonstration_seeds,
                                  prefill_balanced_weights, teacher_for)

    which = str(cfg.hyperparams.get("pretrain_teacher", "default"))
    try:
        name, _ = teacher_for(cfg.env_id, which)
    except ValueError as exc:
        raise ConfigError(f"pretrain_episodes: {exc}") from None
    t0 = time.perf_counter()
    try:
        demos = collect_demonstrations(cfg.env_id, cfg.env_config, demonstration_seeds(cfg.seed, episodes), which)
    except ValueError as exc:
        raise ConfigError(f"pretraining: {exc}") from None
    balance = bool(cfg.hyperparams.get("pretrain_balance_prefill", False))
    history = behaviour_cloning(model, demos, seed=cfg.seed,
                                weights=prefill_balanced_weights(demos["prefill"]) if balance else None)
    dagger = int(cfg.hyperparams.get("pretrain_dagger_episodes", 0) or 0)
    rounds = int(cfg.hyperparams.get("pretrain_dagger_rounds", 1)) if dagger else 0
    for r in range(rounds):  # DAgger rounds, each on the next seeds of the demonstration range
        first = episodes + r * dagger
        seeds = demonstration_seeds(cfg.seed, first + dagger)[first:]
        more = collect_demonstrations(cfg.env_id, cfg.env_config, seeds, which, student=model)
        demos = {"obs": {k: np.concatenate([v, more["obs"][k]]) for k, v in demos["obs"].items()},
                 "masks": np.concatenate([demos["masks"], more["masks"]]),
                 "actions": np.concatenate([demos["actions"], more["actions"]]),
                 "prefill": np.concatenate([demos["prefill"], more["prefill"]]),
                 "chosen": demos.get("chosen", []) + more.get("chosen", [])}
        history += behaviour_cloning(model, demos, seed=cfg.seed + 1 + r,
                                     weights=prefill_balanced_weights(demos["prefill"]) if balance else None)
        print(f"DAgger round {r + 1}: {dagger} episodes of the cloned student labelled by the teacher "
              f"({len(more['actions']):,} states)", flush=True)
    model.save(run_dir / "pretrained.zip")
    if demos.get("chosen"):
        counts = {c: demos["chosen"].count(c) for c in dict.fromkeys(demos["chosen"])}
        print("teacher's choice per episode: " + ", ".join(f"{c} {k}" for c, k in counts.items()), flush=True)
    print(f"pretrained on {episodes} {name} episodes ({len(demos['actions']):,} decisions): "
          f"NLL {history[0]:.3f} -> {history[-1]:.3f} in {time.perf_counter() - t0:.0f} s", flush=True)


def make_eval_env(cfg: RunConfig) -> VecEnv:
    """The periodic evaluation's env: episode e has seed ``model_selection_seeds(seed)[e]``."""
    vec = make_vec_env(make_env, n_envs=1, seed=seeding.model_selection_seeds(cfg.seed, cfg.eval_episodes).start,
                       vec_env_cls=DummyVecEnv, wrapper_class=seeding.EpisodeSeeds,
                       env_kwargs={"env_id": cfg.env_id, "config": cfg.env_config})
    if cfg.hyperparams.get("normalize_reward", False):
        # the same wrapper type as training (the eval callback syncs them), normalising nothing
        vec = VecNormalize(vec, training=False, norm_obs=False, norm_reward=False)
    return vec


def _space_summary(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Dict):
        return "{" + ", ".join(f"{k}: {tuple(s.shape)}" for k, s in space.spaces.items()) + "}"
    return str(space)


def _versions() -> dict[str, str]:
    import gymnasium
    import sb3_contrib
    import stable_baselines3
    return {"python": platform.python_version(), "stable_baselines3": stable_baselines3.__version__,
            "sb3_contrib": sb3_contrib.__version__, "gymnasium": gymnasium.__version__, "torch": str(torch.__version__)}


def _new_run_dir(log_dir: Path, cfg: RunConfig) -> Path:
    stem = f"{cfg.algo}_{cfg.env_id}_{cfg.seed}_{time.strftime('%Y%m%d-%H%M%S')}"
    log_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        run_dir = log_dir / (stem if n == 0 else f"{stem}-{n}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise ConfigError(f"could not create a run directory under {log_dir}")


def _seed_record(cfg: RunConfig, env_seeds: range, earlier: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``seeds`` entry of config.yaml: the ranges, and the seeds of every session."""
    sessions = list((earlier or {}).get("training_envs") or [])
    record: dict[str, Any] = {"ranges": {name: seeding.span(r) for name, r in seeding.RANGES.items()},
                              "training_envs": sessions + [seeding.span(env_seeds)]}
    if cfg.eval_freq > 0:
        record["model_selection"] = seeding.span(seeding.model_selection_seeds(cfg.seed, cfg.eval_episodes))
    return record


def _write_config(run_dir: Path, cfg: RunConfig, seeds: Mapping[str, Any],
                  trained_timesteps: int | None = None) -> None:
    """config.yaml: the resolved settings, plus (information only) the seeds used, the
    steps actually trained and the library versions."""
    data = {**cfg.to_dict(), "seeds": dict(seeds)}
    if trained_timesteps is not None:
        data["trained_timesteps"] = int(trained_timesteps)
    data["versions"] = _versions()
    (run_dir / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def _write_run_files(run_dir: Path, cfg: RunConfig, command: str, append_command: bool,
                     seeds: Mapping[str, Any]) -> None:
    _write_config(run_dir, cfg, seeds)
    with open(run_dir / "command.txt", "a" if append_command else "w") as fh:
        fh.write(command + "\n")
    (run_dir / "seed.txt").write_text(f"{cfg.seed}\n")


# --------------------------------------------------------------------------- options
OPTION_DEFAULTS: dict[str, Any] = {
    "algo": None, "env": None, "timesteps": None, "seed": None, "log_dir": "runs", "config": None,
    "env_config": None, "n_envs": None, "vec_env": None, "resume": None, "eval_freq": None, "eval_episodes": None,
    "progress": True, "command": None,
}


def _options(args: argparse.Namespace | Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    given = dict(vars(args) if isinstance(args, argparse.Namespace) else (args or {}))
    given.update(kwargs)
    if "no_progress" in given:
        given["progress"] = not given.pop("no_progress")
    unknown = sorted(set(given) - set(OPTION_DEFAULTS))
    if unknown:
        raise ConfigError(f"train(): unknown option(s) {unknown}; known: {sorted(OPTION_DEFAULTS)}")
    return {**OPTION_DEFAULTS, **given}


def _cli_env_config(opts: Mapping[str, Any]) -> dict[str, Any]:
    value = opts["env_config"]
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    return _read_mapping(value, "--env-config")


def _check_algo_env(algo: Any, env_id: Any) -> None:
    if algo is None:
        raise ConfigError("--algo is required (or an algo key in --config)")
    if algo not in ALGOS:
        raise ConfigError(f"unknown algorithm {algo!r}; choose from {', '.join(ALGOS)}")
    if env_id is None:
        raise ConfigError("--env is required (or an env_id key in --config)")
    if env_id not in envs.TRAINABLE_ENV_IDS:
        raise ConfigError(f"unknown env id {env_id!r}; choose from {', '.join(envs.TRAINABLE_ENV_IDS)}")


def _pick(opts: Mapping[str, Any], file_cfg: Mapping[str, Any], key: str, fallback: Any) -> Any:
    """CLI flag, else the --config file, else ``fallback``."""
    if opts.get(key) is not None:
        return opts[key]
    return file_cfg.get(key, fallback)


def resolve_new(opts: Mapping[str, Any]) -> RunConfig:
    """The resolved config of a fresh run."""
    file_cfg = read_run_config_file(opts["config"]) if opts["config"] is not None else {}
    algo = opts["algo"] if opts["algo"] is not None else file_cfg.get("algo")
    env_id = opts["env"] if opts["env"] is not None else file_cfg.get("env_id")
    _check_algo_env(algo, env_id)
    hyperparams = load_hyperparams(algo, env_id)
    hyperparams = validate(algo, merge(hyperparams, file_cfg.get("hyperparams", {})),
                           where=f"--config {opts['config']}: hyperparams")
    yaml_n_envs = hyperparams.pop("n_envs", 1)
    env_config = resolve_env_config(file_cfg.get("env_config", {}), _cli_env_config(opts), env_id=env_id)
    defaults = RunConfig(algo=algo, env_id=env_id)
    vec = vectorise.plan(algo, hyperparams, yaml_n_envs, _pick(opts, file_cfg, "n_envs", None),
                         _pick(opts, file_cfg, "vec_env", "auto"), set(file_cfg.get("hyperparams") or {}),
                         step_s=lambda: _probe_step_s(env_id, env_config))
    cfg = RunConfig(
        algo=algo, env_id=env_id, env_config=env_config, hyperparams=vec.hyperparams,
        seed=_pick(opts, file_cfg, "seed", defaults.seed),
        n_envs=vec.n_envs, vec_env=vec.vec_env,
        timesteps=_pick(opts, file_cfg, "timesteps", defaults.timesteps),
        eval_freq=_pick(opts, file_cfg, "eval_freq", defaults.eval_freq),
        eval_episodes=_pick(opts, file_cfg, "eval_episodes", defaults.eval_episodes),
        checkpoint_freq=file_cfg.get("checkpoint_freq", defaults.checkpoint_freq),
    )
    if cfg.checkpoint_freq == 0:
        cfg.checkpoint_freq = max(cfg.timesteps // 10, 1)
    return cfg


def _probe_step_s(env_id: str, env_config: Mapping[str, Any]) -> float:
    """env.step time for vectorise.plan; 0 if the env cannot be built (train() reports why)."""
    try:
        return vectorise.env_step_s(make_env, env_id, env_config)
    except (ValueError, FileNotFoundError, TypeError):
        return 0.0


def resolve_resume(opts: Mapping[str, Any], run_dir: Path) -> tuple[RunConfig, dict[str, Any]]:
    """The saved config of ``run_dir`` with this invocation's overrides, and the
    hyperparameter overrides to apply to the loaded model."""
    for name in ("config.yaml", "model.zip"):
        if not (run_dir / name).is_file():
            raise ConfigError(f"--resume: {run_dir / name} not found")
    saved = read_run_config_file(run_dir / "config.yaml", what="--resume")
    try:
        saved_cfg = RunConfig(**saved)
    except TypeError as exc:
        raise ConfigError(f"--resume: {run_dir / 'config.yaml'} is incomplete ({exc})") from None
    file_cfg = read_run_config_file(opts["config"]) if opts["config"] is not None else {}
    algo = opts["algo"] if opts["algo"] is not None else file_cfg.get("algo", saved_cfg.algo)
    if algo != saved_cfg.algo:
        raise ConfigError(f"--resume: {run_dir} was trained with {saved_cfg.algo}, not {algo}")
    env_id = opts["env"] if opts["env"] is not None else file_cfg.get("env_id", saved_cfg.env_id)
    _check_algo_env(algo, env_id)
    overrides = validate(algo, file_cfg.get("hyperparams", {}), where=f"--config {opts['config']}: hyperparams")
    if "policy_kwargs" in overrides:
        raise ConfigError("--resume: policy_kwargs cannot change when resuming (the network is loaded)")
    n_envs = overrides.pop("n_envs", None)
    env_config = resolve_env_config(saved_cfg.env_config, file_cfg.get("env_config", {}), _cli_env_config(opts),
                                    env_id=env_id)
    cfg = dataclasses.replace(
        saved_cfg, env_id=env_id, env_config=env_config, hyperparams=merge(saved_cfg.hyperparams, overrides),
        seed=_pick(opts, file_cfg, "seed", saved_cfg.seed),
        n_envs=_pick(opts, file_cfg, "n_envs", n_envs or saved_cfg.n_envs),
        vec_env=saved_cfg.vec_env if _pick(opts, file_cfg, "vec_env", "auto") == "auto"
        else _pick(opts, file_cfg, "vec_env", "auto"),
        eval_freq=_pick(opts, file_cfg, "eval_freq", saved_cfg.eval_freq),
        eval_episodes=_pick(opts, file_cfg, "eval_episodes", saved_cfg.eval_episodes),
        checkpoint_freq=file_cfg.get("checkpoint_freq", saved_cfg.checkpoint_freq),
    )
    return cfg, overrides


# --------------------------------------------------------------------------- training
def _callbacks(cfg: RunConfig, run_dir: Path, eval_env: VecEnv | None, resume: bool,
               progress: bool) -> tuple[list[BaseCallback], ProgressBarCallback | None]:
    per_call = cfg.n_envs  # callbacks count vec-env steps, the config counts env steps
    ckpt_freq = cfg.checkpoint_freq or max(cfg.timesteps // 10, 1)  # 0 only in hand-written configs
    callbacks: list[BaseCallback] = [
        EnvInfoCallback(),
        CheckpointCallback(save_freq=max(ckpt_freq // per_call, 1), save_path=str(run_dir / "checkpoints"),
                           name_prefix="model"),
    ]
    if eval_env is not None:
        eval_cls = FixedSeedMaskableEvalCallback if cfg.algo in MASKABLE else FixedSeedEvalCallback
        evaluator = eval_cls(eval_env, eval_seed=seeding.model_selection_seeds(cfg.seed, cfg.eval_episodes).start,
                             n_eval_episodes=cfg.eval_episodes, eval_freq=max(cfg.eval_freq // per_call, 1),
                             best_model_save_path=str(run_dir / "best"), log_path=str(run_dir),
                             deterministic=True, verbose=0)
        if resume:
            evaluator.restore(run_dir / "evaluations.npz")
        callbacks.append(evaluator)
    bar = ProgressBarCallback() if progress else None
    if bar is not None:
        callbacks.append(bar)
    return callbacks, bar


def train(args: argparse.Namespace | Mapping[str, Any] | None = None, /, **kwargs: Any) -> Path:
    """Train (or resume) one run; return its directory.

    Options are the command-line flags with underscores (``algo``, ``env``, ``timesteps``,
    ``seed``, ``log_dir``, ``config``, ``env_config`` (path, inline string or mapping),
    ``n_envs``, ``resume``, ``eval_freq``, ``eval_episodes``, ``progress``) as an
    ``argparse.Namespace``, a mapping or keyword arguments.  Raises
    :class:`agents.hyperparams.ConfigError` on bad input; on Ctrl-C saves model.zip and
    re-raises ``KeyboardInterrupt``.
    """
    opts = _options(args, kwargs)
    command = opts["command"] or f"train({', '.join(f'{k}={v!r}' for k, v in sorted(kwargs.items()))})"
    resume = opts["resume"] is not None
    run_dir = Path(opts["resume"]) if resume else None
    if resume:
        cfg, overrides = resolve_resume(opts, run_dir)
    else:
        cfg, overrides = resolve_new(opts), {}
    algo_cls = ALGOS[cfg.algo]
    torch.set_num_threads(1)  # small MLPs: one thread is as fast and leaves the cores to the envs

    # Build one env here first: a bad model or scenario name fails in this process with a
    # clear message instead of inside a worker.
    try:
        probe = make_env(cfg.env_id, cfg.env_config)
    except (ValueError, FileNotFoundError, TypeError) as exc:
        raise ConfigError(f"env {cfg.env_id}: {exc}") from None
    obs_space = probe.observation_space
    probe.close()

    model_path = None
    if resume:
        model_path = run_dir / "model.zip"
        try:
            data, _, _ = load_from_zip_file(model_path, load_data=True, device="cpu")
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"--resume: cannot read {model_path} ({exc})") from None
        if data is None or data.get("observation_space") != obs_space:
            trained = _space_summary(data["observation_space"]) if data else "unknown"
            raise ConfigError(f"--resume: {model_path} was trained on observation space {trained}, but "
                              f"{cfg.env_id} with this env config has {_space_summary(obs_space)}")
        num_timesteps = int(data.get("num_timesteps", 0))
        if opts["timesteps"] is not None:
            more = int(opts["timesteps"])
        else:
            more = cfg.timesteps - num_timesteps
            if more <= 0:
                raise ConfigError(f"--resume: {run_dir} already reached its {cfg.timesteps} timesteps; "
                                  "pass --timesteps N to train N more")
        if more < 1:
            raise ConfigError(f"--timesteps must be >= 1, got {more}")
        cfg = dataclasses.replace(cfg, timesteps=num_timesteps + more)
        earlier_seeds = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("seeds")
    else:
        more = cfg.timesteps
        num_timesteps = 0
        earlier_seeds = None
    # a resumed session gets fresh training seeds, reproducible from the run seed and the step count
    env_seeds = seeding.training_seeds(cfg.seed, cfg.n_envs, num_timesteps)
    seed_record = _seed_record(cfg, env_seeds, earlier_seeds if isinstance(earlier_seeds, Mapping) else None)

    train_env = make_envs(cfg, env_seeds)
    eval_env = make_eval_env(cfg) if cfg.eval_freq > 0 else None
    try:
        if resume:
            tb_dir = str((run_dir / "tb").resolve())
            try:
                model = algo_cls.load(model_path, env=train_env, device="cpu", tensorboard_log=tb_dir,
                                      **to_model_kwargs(cfg.algo, overrides))
            except (TypeError, ValueError, AssertionError) as exc:
                raise ConfigError(f"--resume: {exc}") from None
            model.set_random_seed(env_seeds.start)
            if cfg.algo in OFF_POLICY and (run_dir / "replay_buffer.pkl").is_file():
                model.load_replay_buffer(run_dir / "replay_buffer.pkl")
        else:
            try:
                model = algo_cls("MultiInputPolicy", train_env, seed=cfg.seed, device="cpu", verbose=0,
                                 tensorboard_log=None, **to_model_kwargs(cfg.algo, cfg.hyperparams))
            except (TypeError, ValueError, AssertionError) as exc:
                raise ConfigError(f"{cfg.algo} rejected the hyperparameters: {' '.join(str(exc).split())}") from None
            run_dir = _new_run_dir(Path(opts["log_dir"]), cfg)
            model.tensorboard_log = str((run_dir / "tb").resolve())
            _pretrain(model, cfg, run_dir)
        _write_run_files(run_dir, cfg, command, append_command=resume, seeds=seed_record)
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        callbacks, bar = _callbacks(cfg, run_dir, eval_env, resume, opts["progress"])
        print(f"run dir: {run_dir}  ({cfg.algo} on {cfg.env_id}, {more} steps from {model.num_timesteps}, "
              f"{cfg.n_envs} env(s) ({cfg.vec_env}), seed {cfg.seed})", flush=True)
        planned, why = planned_timesteps(model, more)
        if planned != more:
            print(f"note: {why}: this session trains {planned:,} steps, not {more:,} "
                  f"(config.yaml records trained_timesteps)", flush=True)
        try:
            with warnings.catch_warnings():
                # SubprocVecEnv for training, DummyVecEnv for evaluation is on purpose
                warnings.filterwarnings("ignore", message="Training and eval env are not of the same type")
                model.learn(total_timesteps=more, callback=CallbackList(callbacks), tb_log_name=cfg.algo,
                            reset_num_timesteps=not resume, progress_bar=False)
        except KeyboardInterrupt:
            if bar is not None and getattr(bar, "pbar", None) is not None:
                bar.pbar.close()
            _save(model, run_dir, cfg)
            _write_config(run_dir, cfg, seed_record, trained_timesteps=model.num_timesteps)
            print(f"\ninterrupted at step {model.num_timesteps}: saved {run_dir / 'model.zip'} "
                  f"(continue with --resume {run_dir})", file=sys.stderr, flush=True)
            raise
        _save(model, run_dir, cfg)
        _write_config(run_dir, cfg, seed_record, trained_timesteps=model.num_timesteps)
    finally:
        train_env.close()
        if eval_env is not None:
            eval_env.close()
    best = ""
    if (run_dir / "evaluations.npz").is_file():
        with np.load(run_dir / "evaluations.npz") as ev:
            means = ev["results"].mean(axis=1)
            best = f"; eval mean reward last {means[-1]:.3f}, best {means.max():.3f}"
    print(f"saved {run_dir / 'model.zip'} at step {model.num_timesteps:,} (target {cfg.timesteps:,}){best}",
          flush=True)
    return run_dir


def _save(model, run_dir: Path, cfg: RunConfig) -> None:
    model.save(run_dir / "model.zip")
    if cfg.algo in OFF_POLICY:
        model.save_replay_buffer(run_dir / "replay_buffer.pkl")


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # algo and env are checked by train() so that a wrong name is one "error:" line
    p.add_argument("--algo", help=f"one of {', '.join(ALGOS)}")
    p.add_argument("--env", help=f"one of {', '.join(envs.TRAINABLE_ENV_IDS)}")
    p.add_argument("--timesteps", type=int, help="env steps (with --resume: steps to add)")
    p.add_argument("--seed", type=int)
    p.add_argument("--log-dir", default="runs", help="parent of the run directory (default: runs)")
    p.add_argument("--config", help="run-config YAML (keys of a run's config.yaml)")
    p.add_argument("--env-config", help="EnvConfig overrides: a YAML/JSON file or an inline mapping")
    p.add_argument("--n-envs", type=int, help="training envs (default: chosen for speed, deaoff_cli/vectorise.py)")
    p.add_argument("--vec-env", choices=vectorise.VEC_ENVS,
                   help="auto (default): envs in this process unless env.step is slow; dummy: in this process; "
                        "subproc: one process per env")
    p.add_argument("--resume", help="a run directory to continue")
    p.add_argument("--eval-freq", type=int, help="env steps between evaluations (0: off; default 10000)")
    p.add_argument("--eval-episodes", type=int, help="episodes per evaluation (default 5)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    command = shlex.join(["python", sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else "train.py", *argv])
    try:
        train(args, command=command)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return INTERRUPTED_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
