"""Hyperparameters from ``configs/agents/{algo}.yaml``.

Each file has a ``default`` section and optional sections named by env id; the env's
section is merged over ``default`` (nested mappings such as ``policy_kwargs`` key by key).
Values stay plain YAML data (names, not classes) so a run's resolved config can be
written back out; :func:`to_model_kwargs` turns them into the objects SB3 expects:

* ``learning_rate``, ``clip_range``, ``clip_range_vf``: a number, or ``lin_<start>`` for
  a linear decay from ``<start>`` to 0 over the run;
* ``policy_kwargs.activation_fn``: a name from :data:`agents.features.ACTIVATIONS`;
* ``policy_kwargs.features_extractor_class``: ``combined`` (SB3's flatten) or ``location``;
* ``policy_kwargs.optimizer_class``: a name from :data:`OPTIMIZERS`;
* ``train_freq`` as a list ``[4, step]`` becomes the tuple SB3 wants.

Keys are checked against the algorithm's and the policy's constructor signatures, so a
typo is an error naming the key, never a silently ignored setting.  ``n_envs`` may also
appear in a section: how many envs this algorithm wants unless the command line says.
"""
from __future__ import annotations

import copy
import inspect
import re
from pathlib import Path
from typing import Any, Mapping

import torch
import yaml
from stable_baselines3.common.utils import LinearSchedule

from envs import TRAINABLE_ENV_IDS as ENV_IDS

from .algos import ALGOS
from .features import ACTIVATIONS, EXTRACTORS

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "agents"

RESERVED = frozenset({"self", "policy", "env", "tensorboard_log", "verbose", "seed", "device", "_init_setup_model"})
"""Constructor arguments train.py sets itself."""
CLASS_ARGS = frozenset({"rollout_buffer_class", "replay_buffer_class"})
"""Constructor arguments that take a class and have no name table here."""
TRAINING_KEYS = frozenset({"n_envs", "normalize_reward", "pretrain_episodes", "pretrain_teacher",
                           "pretrain_balance_prefill", "pretrain_dagger_episodes", "pretrain_dagger_rounds"})
"""Keys a section may hold that are not algorithm arguments: ``n_envs``; ``normalize_reward``
(train.py scales the training rewards by a running estimate of the discounted return's
standard deviation and clips them to ±10, SB3's ``VecNormalize(norm_obs=False)``; the
evaluation env and evaluate.py see the env's own rewards); ``pretrain_episodes`` (MaskablePPO on
DecoderSplit-v1: behaviour cloning of the myopic optimum on that many demonstration
episodes before the RL updates, :mod:`agents.imitation`); ``pretrain_teacher`` (``default``,
the env's own teacher; on DecoderSplit-v1 ``clairvoyant``, the hindsight plan, or
``best-of-baselines``, per episode the cheapest of the myopic optimum, the lookahead and
all-device);
``pretrain_balance_prefill`` (true: the episodes' prefill decisions weigh as much in the
cloning loss as all their decode decisions, :func:`agents.imitation.prefill_balanced_weights`);
``pretrain_dagger_episodes`` (after cloning, one DAgger round: the cloned student plays that
many more episodes, the teacher labels the states it visits, and the policy is cloned again
on all the labels; ``pretrain_dagger_rounds`` such rounds, default 1)."""
SCHEDULES = frozenset({"learning_rate", "clip_range", "clip_range_vf"})
POLICY_RESERVED = frozenset({"self", "observation_space", "action_space", "lr_schedule"})
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD,
}
_LINEAR = re.compile(r"^lin_([0-9.eE+-]+)$")


class ConfigError(ValueError):
    """A user's configuration is wrong (reported in one line)."""


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``; mappings present in both are merged key by key."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def algorithm_keys(algo: str) -> set[str]:
    """Hyperparameters ``algo`` accepts from a YAML section."""
    params = inspect.signature(ALGOS[algo].__init__).parameters
    return (set(params) - RESERVED - CLASS_ARGS) | TRAINING_KEYS


def policy_keys(algo: str) -> set[str]:
    """``policy_kwargs`` keys of ``algo``'s MultiInputPolicy."""
    policy = ALGOS[algo].policy_aliases["MultiInputPolicy"]
    return set(inspect.signature(policy.__init__).parameters) - POLICY_RESERVED


def _parse_schedule(key: str, value: Any, where: str = "hyperparameters") -> float | LinearSchedule | None:
    if value is None and key == "clip_range_vf":
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{where}: {key}: expected a number or 'lin_<start>', got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    match = _LINEAR.match(value) if isinstance(value, str) else None
    if match:
        try:
            return LinearSchedule(float(match.group(1)), 0.0, 1.0)
        except ValueError:
            pass
    raise ConfigError(f"{where}: {key}: expected a number or 'lin_<start>', got {value!r}")


def _check_name(where: str, key: str, value: Any, table: Mapping[str, Any]) -> None:
    if not isinstance(value, str) or value not in table:
        raise ConfigError(f"{where}: policy_kwargs.{key}: unknown name {value!r}; known: {', '.join(sorted(table))}")


def validate(algo: str, hyperparams: Mapping[str, Any], where: str = "hyperparameters") -> dict[str, Any]:
    """Check every key and every named value of ``hyperparams`` for ``algo``; return a copy."""
    if algo not in ALGOS:
        raise ConfigError(f"unknown algorithm {algo!r}; choose from {', '.join(ALGOS)}")
    if not isinstance(hyperparams, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(hyperparams).__name__}")
    known = algorithm_keys(algo)
    for key in hyperparams:
        if key not in known:
            raise ConfigError(f"{where}: unknown hyperparameter {key!r} for {algo}; known: {', '.join(sorted(known))}")
    for key in SCHEDULES & set(hyperparams):
        _parse_schedule(key, hyperparams[key], where)
    n_envs = hyperparams.get("n_envs", 1)
    if not isinstance(n_envs, int) or isinstance(n_envs, bool) or n_envs < 1:
        raise ConfigError(f"{where}: n_envs must be an integer >= 1, got {n_envs!r}")
    if not isinstance(hyperparams.get("normalize_reward", False), bool):
        raise ConfigError(f"{where}: normalize_reward must be true or false, got {hyperparams['normalize_reward']!r}")
    pre = hyperparams.get("pretrain_episodes", 0)
    if isinstance(pre, bool) or not isinstance(pre, int) or not 0 <= pre <= 999:
        raise ConfigError(f"{where}: pretrain_episodes must be an integer in [0, 999], got {pre!r}")
    if pre and algo != "maskable_ppo":
        raise ConfigError(f"{where}: pretrain_episodes needs maskable_ppo (the cloned policy is masked), not {algo}")
    teacher = hyperparams.get("pretrain_teacher", "default")
    from agents.imitation import TEACHER_NAMES
    if teacher not in TEACHER_NAMES:
        raise ConfigError(f"{where}: pretrain_teacher must be one of {', '.join(TEACHER_NAMES)}, got {teacher!r}")
    if teacher != "default" and not pre:
        raise ConfigError(f"{where}: pretrain_teacher {teacher!r} needs pretrain_episodes >= 1")
    dagger = hyperparams.get("pretrain_dagger_episodes", 0)
    if isinstance(dagger, bool) or not isinstance(dagger, int) or not 0 <= dagger <= 999:
        raise ConfigError(f"{where}: pretrain_dagger_episodes must be an integer in [0, 999], got {dagger!r}")
    if dagger and not pre:
        raise ConfigError(f"{where}: pretrain_dagger_episodes needs pretrain_episodes >= 1")
    if dagger and teacher == "clairvoyant":
        raise ConfigError(f"{where}: pretrain_dagger_episodes needs a teacher that labels any state, not 'clairvoyant'")
    rounds = hyperparams.get("pretrain_dagger_rounds", 1)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= 10:
        raise ConfigError(f"{where}: pretrain_dagger_rounds must be an integer in [1, 10], got {rounds!r}")
    if "pretrain_dagger_rounds" in hyperparams and not dagger:
        raise ConfigError(f"{where}: pretrain_dagger_rounds needs pretrain_dagger_episodes >= 1")
    balance = hyperparams.get("pretrain_balance_prefill", False)
    if not isinstance(balance, bool):
        raise ConfigError(f"{where}: pretrain_balance_prefill must be true or false, got {balance!r}")
    if balance and not pre:
        raise ConfigError(f"{where}: pretrain_balance_prefill needs pretrain_episodes >= 1")
    pk = hyperparams.get("policy_kwargs") or {}
    if not isinstance(pk, Mapping):
        raise ConfigError(f"{where}: policy_kwargs must be a mapping, got {pk!r}")
    known_pk = policy_keys(algo)
    for key in pk:
        if key not in known_pk:
            raise ConfigError(f"{where}: unknown policy_kwargs key {key!r} for {algo}; "
                              f"known: {', '.join(sorted(known_pk))}")
    if "activation_fn" in pk:
        _check_name(where, "activation_fn", pk["activation_fn"], ACTIVATIONS)
    if "optimizer_class" in pk:
        _check_name(where, "optimizer_class", pk["optimizer_class"], OPTIMIZERS)
    if "features_extractor_class" in pk:
        _check_name(where, "features_extractor_class", pk["features_extractor_class"], EXTRACTORS)
    fx_kwargs = pk.get("features_extractor_kwargs") or {}
    if not isinstance(fx_kwargs, Mapping):
        raise ConfigError(f"{where}: policy_kwargs.features_extractor_kwargs must be a mapping")
    extractor = EXTRACTORS[pk.get("features_extractor_class", "combined")]
    fx_known = set(inspect.signature(extractor.__init__).parameters) - {"self", "observation_space"}
    for key in fx_kwargs:
        if key not in fx_known:
            raise ConfigError(f"{where}: unknown features_extractor_kwargs key {key!r} for {extractor.__name__}; "
                              f"known: {', '.join(sorted(fx_known))}")
    return copy.deepcopy(dict(hyperparams))


def load_file(path: Path) -> dict[str, Any]:
    """The sections of one agent YAML (``default`` and env ids)."""
    if not path.is_file():
        raise ConfigError(f"hyperparameter file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections")
    unknown = sorted(set(data) - {"default", *ENV_IDS})
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; sections are 'default' and env ids {list(ENV_IDS)}")
    for name, section in data.items():
        if section is not None and not isinstance(section, dict):
            raise ConfigError(f"{path}: section {name!r} must be a mapping")
    return data


def load_hyperparams(algo: str, env_id: str, config_dir: Path = CONFIG_DIR) -> dict[str, Any]:
    """``default`` merged with the ``env_id`` section of ``config_dir/{algo}.yaml``, validated."""
    if algo not in ALGOS:
        raise ConfigError(f"unknown algorithm {algo!r}; choose from {', '.join(ALGOS)}")
    path = Path(config_dir) / f"{algo}.yaml"
    data = load_file(path)
    hyperparams = merge(data.get("default") or {}, data.get(env_id) or {})
    return validate(algo, hyperparams, where=str(path))


def to_model_kwargs(algo: str, hyperparams: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``ALGOS[algo](...)``: names resolved, training keys dropped."""
    hp = validate(algo, hyperparams)
    for key in TRAINING_KEYS:
        hp.pop(key, None)
    for key in SCHEDULES & set(hp):
        hp[key] = _parse_schedule(key, hp[key])
    if isinstance(hp.get("train_freq"), list):
        hp["train_freq"] = tuple(hp["train_freq"])
    pk = dict(hp.get("policy_kwargs") or {})
    if "activation_fn" in pk:
        pk["activation_fn"] = ACTIVATIONS[pk["activation_fn"]]
    if "optimizer_class" in pk:
        pk["optimizer_class"] = OPTIMIZERS[pk["optimizer_class"]]
    if "features_extractor_class" in pk:
        pk["features_extractor_class"] = EXTRACTORS[pk["features_extractor_class"]]
    if pk:
        hp["policy_kwargs"] = pk
    return hp
