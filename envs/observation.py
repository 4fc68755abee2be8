"""The observation layout: one owner of every key, shape and column of both environments.

The environments build their observations from an :class:`ObservationLayout` (the
``Dict`` space, where each key sits in the flat vector they fill) and the agents' features
extractor (:mod:`agents.features`) reads the same object to find the per-location
columns, instead of restating the layout by shape.

Keys (K = 1 + ``max_servers``, room for absent servers: the scenario's locations come first,
the rest are zero rows with ``present`` = 0, always masked; every entry in [0, 1]):

* ``node`` (DecoderOffload-v1 only): :data:`NODE_FEATURES`.
* ``inputs`` (DecoderOffload-v1 only): share of the node's input bytes already at each
  location (K), its existing KV cache at each location (K one-hot), "no KV cache" (1).
* ``locations``: one row per location, columns :data:`OFFLOAD_LOCATION_FEATURES` or
  :data:`SPLIT_LOCATION_FEATURES`.
* ``system``: share of all existing KV bytes per location (K), "no KV" share (1), server
  load ρ per location (K, device 0).
* ``progress``: :data:`PROGRESS_FEATURES`.
* ``model`` (DecoderSplit-v1 only): :data:`MODEL_FEATURES`.

DecoderSplit-v1's ``est_token_time`` / ``est_token_energy`` columns are the cost engine's
latency and device energy of the whole token on that location alone (all-on-device for
the device row), from the caches where they are: an evaluation of a fixed plan, like
DecoderOffload-v1's per-node probes, not a solver's answer.

No entry is a solver output or is scaled by one: times and energies use the fixed
logarithmic scales :func:`log_time` and :func:`log_energy`, so a deployed policy needs
no solver.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Mapping

import numpy as np
from gymnasium import spaces

from core.dag import KINDS  # the node kinds, in the order of the ``node`` one-hot

NODE_FEATURES = tuple(f"kind_{k}" for k in KINDS) + (
    "log_flops", "log_out_bytes", "log_weight_bytes", "log_kv_bytes", "index", "layer")
OFFLOAD_LOCATION_FEATURES = ("present", "up", "log_uplink_bps", "log_flops_left", "free_memory",
                             "busy_for", "est_finish", "est_energy")
SPLIT_LOCATION_FEATURES = ("present", "up", "log_uplink_bps", "log_flops_left", "free_memory_model",
                           "est_token_time", "est_token_energy")
PROGRESS_FEATURES = ("token", "is_prefill", "context")
MODEL_FEATURES = ("log_token_flops", "log_weight_bytes", "log_kv_bytes", "log_activation_bytes", "depth")
"""DecoderSplit-v1's ``model`` key: what the current token of the current model weighs
(FLOPs, weight bytes, existing KV bytes, the largest activation between nodes, on fixed
log scales) and its depth (layers / 128), so one policy can serve models of any depth."""

TIME_UNIT_S = 1e-4
"""``log_time``: seconds in units of 0.1 ms, over 5 decades (0.1 ms .. 10 s)."""
TIME_DECADES = 5.0
ENERGY_UNIT_J = 1e-5
"""``log_energy``: joules in units of 10 µJ, over 6 decades (10 µJ .. 10 J)."""
ENERGY_DECADES = 6.0


def log_time(seconds: float) -> float:
    """A duration as a state-independent feature: log10(1 + s / 0.1 ms) / 5, clipped to [0, 1]."""
    if seconds <= 0.0:
        return 0.0
    v = math.log10(1.0 + seconds / TIME_UNIT_S) / TIME_DECADES
    return v if v < 1.0 else 1.0


def log_energy(joules: float) -> float:
    """An energy as a state-independent feature: log10(1 + J / 10 µJ) / 6, clipped to [0, 1]."""
    if joules <= 0.0:
        return 0.0
    v = math.log10(1.0 + joules / ENERGY_UNIT_J) / ENERGY_DECADES
    return v if v < 1.0 else 1.0

# the vector keys made of parts; a part marked True has one entry per location (K), else 1
VECTOR_PARTS: dict[str, tuple[tuple[str, bool], ...]] = {
    "inputs": (("input_share", True), ("kv_here", True), ("kv_none", False)),
    "system": (("kv_share", True), ("kv_none", False), ("load", True)),
}


@dataclass(frozen=True)
class ObservationLayout:
    """Keys, shapes and columns of one environment's observation, for K locations."""

    num_locations: int
    per_node: bool
    """True for DecoderOffload-v1 (keys ``node`` and ``inputs``), False for DecoderSplit-v1."""

    def __post_init__(self) -> None:
        if not (isinstance(self.num_locations, int) and self.num_locations >= 2):
            raise ValueError(f"an observation layout needs >= 2 locations, got {self.num_locations!r}")

    @property
    def keys(self) -> tuple[str, ...]:
        """The Dict keys, in the order of the flat vector the environment fills."""
        if self.per_node:
            return ("node", "inputs", "locations", "system", "progress")
        return ("locations", "system", "progress", "model")

    @property
    def location_features(self) -> tuple[str, ...]:
        return OFFLOAD_LOCATION_FEATURES if self.per_node else SPLIT_LOCATION_FEATURES

    def shape(self, key: str) -> tuple[int, ...]:
        k = self.num_locations
        if key == "node" and self.per_node:
            return (len(NODE_FEATURES),)
        if key == "locations":
            return (k, len(self.location_features))
        if key == "progress":
            return (len(PROGRESS_FEATURES),)
        if key == "model" and not self.per_node:
            return (len(MODEL_FEATURES),)
        if key in VECTOR_PARTS and (self.per_node or key != "inputs"):
            return (sum(k if per_loc else 1 for _, per_loc in VECTOR_PARTS[key]),)
        raise ValueError(f"observation has no key {key!r}; keys: {list(self.keys)}")

    def space(self) -> spaces.Dict:
        return spaces.Dict({key: spaces.Box(0.0, 1.0, self.shape(key), np.float32) for key in self.keys})

    @cached_property
    def _views(self) -> tuple[tuple[str, slice, tuple[int, ...]], ...]:
        out, at = [], 0
        for key in self.keys:
            shape = self.shape(key)
            size = int(np.prod(shape))
            out.append((key, slice(at, at + size), shape))
            at += size
        return tuple(out)

    def slices(self) -> dict[str, slice]:
        """Where each key sits in the flat vector (keys in :attr:`keys` order)."""
        return {key: sl for key, sl, _ in self._views}

    @property
    def size(self) -> int:
        """Entries of the flat vector."""
        return self._views[-1][1].stop

    def offset(self, key: str, part: str) -> int:
        """Index, within vector key ``key``, of the first entry of ``part``."""
        at = 0
        for name, per_loc in VECTOR_PARTS[key]:
            if name == part:
                return at
            at += self.num_locations if per_loc else 1
        raise ValueError(f"observation key {key!r} has no part {part!r}")

    def unflatten(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """The Dict observation as views of one flat float32 vector."""
        if flat.shape != (self.size,):
            raise ValueError(f"flat observation has shape {flat.shape}, expected ({self.size},)")
        return {key: flat[sl].reshape(shape) for key, sl, shape in self._views}

    def location_columns(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """For a vector key with per-location parts: the (K, m) indices of its m
        per-location parts (row l = location l) and the indices of the rest; None for a
        key without per-location parts (``node``, ``progress``) or for ``locations``."""
        if key not in VECTOR_PARTS:
            self.shape(key)  # unknown keys raise
            return None
        k = self.num_locations
        per_loc, rest, at = [], [], 0
        for _, is_per_loc in VECTOR_PARTS[key]:
            if is_per_loc:
                per_loc.append(at + np.arange(k))
                at += k
            else:
                rest.append(at)
                at += 1
        return np.stack(per_loc, axis=1), np.array(rest, dtype=np.int64)

    @classmethod
    def of_space(cls, space: spaces.Space) -> "ObservationLayout":
        """The layout whose space is ``space`` (ValueError if it is no environment's)."""
        if not isinstance(space, spaces.Dict) or "locations" not in space.spaces:
            raise ValueError("not a DecoderOffload/DecoderSplit observation space: it needs a 'locations' key")
        loc_shape = space["locations"].shape
        if loc_shape is None or len(loc_shape) != 2:
            raise ValueError(f"observation key 'locations' must have shape (K, F), got {loc_shape}")
        layout = cls(int(loc_shape[0]), "node" in space.spaces)
        if _shapes(space.spaces) != {key: layout.shape(key) for key in layout.keys}:
            raise ValueError(f"observation space {_shapes(space.spaces)} does not match the environments' "
                             f"layout for K = {layout.num_locations}: "
                             f"{ {key: layout.shape(key) for key in layout.keys} }")
        return layout


def _shapes(entries: Mapping[str, spaces.Space]) -> dict[str, tuple[int, ...] | None]:
    return {key: entry.shape for key, entry in entries.items()}
