"""A seeded distribution of random MEC worlds, for training agents on randomised worlds.

A :class:`WorldDistribution` (``configs/worlds/NAME.yaml``) says which phones, which edge
servers, how many servers, which radio links at which uplink rates, and how many
background users a world may have; :func:`sample_world` draws one
:class:`core.system.Scenario` from it with a seeded ``numpy.random.Generator``.  Every
range and its source: ``configs/worlds/default.yaml`` and ``docs/system-model.md`` §5b.

The draw of one world, in this order (all from ``rng``, so a seed fixes the world):

1. the device hardware, uniform over ``devices``;
2. the link type, uniform over the keys of ``links`` (one access network per world: the
   phone reaches every edge server over the same radio);
3. the number of servers M, uniform on the integers ``num_servers[0]..num_servers[1]``;
4. for each server: its hardware, uniform over ``servers`` (with replacement); its
   uplink rate r at the mean channel and the top transmit level, log-uniform on the link
   type's ``uplink_rate_bps`` range; its uplink and downlink bandwidths, uniform over the
   link type's lists; its distance, ``core.radio.distance_for_rate_km(r, B_up, p_top)``
   (so the mean-channel uplink of the built scenario is exactly r); its number of
   background users B, uniform on the integers ``background_users[0]..B_max`` where

       B_max = min(background_users[1],
                   floor(max_background_memory_fraction · mem_capacity_bytes / background_kv_bytes_per_user))

   — the background users' caches may take at most that fraction of the server's
   memory (the rest is left for the shared weights and this user).  The cap is part of
   the distribution, stated here and in the YAML, not a silent clamp: a distribution
   whose cap falls below ``background_users[0]`` for one of its servers is rejected at
   load time, naming the server.

Every server is ``batched`` (``core.load``) with ``background_kv_bytes_per_user`` per
background user, as in the scenario presets.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from .hardware import list_profiles, load_profile
from .radio import RADIO_PROFILES, check_tx_levels, distance_for_rate_km
from .system import (CONFIG_DIR, DeviceConfig, Scenario, ServerConfig, _yaml_number, preset_path,
                     reject_unknown_keys)

WORLDS_DIR = CONFIG_DIR / "worlds"
MAX_SERVERS = 8
"""Upper bound on ``num_servers`` a distribution may ask for."""


@dataclass
class LinkRange:
    """The rates and bandwidths of one link type's worlds."""

    uplink_rate_bps: tuple[float, float]
    """[min, max] of the uplink rate at the mean channel and the top transmit level, drawn
    log-uniform; the server's distance is placed to give it."""
    uplink_bandwidth_hz: tuple[float, ...]
    """Uplink bandwidths to choose from (uniform)."""
    downlink_bandwidth_hz: tuple[float, ...]
    """Downlink bandwidths to choose from (uniform)."""


@dataclass
class WorldDistribution:
    """Where random worlds are drawn from (see the module docstring for the draw)."""

    devices: tuple[str, ...]
    """Phone hardware profiles (``configs/hardware``, class ``phone``) to choose from."""
    servers: tuple[str, ...]
    """Edge hardware profiles (class ``edge``) to choose from, per server, with replacement."""
    links: dict[str, LinkRange]
    """Link type (``lte``, ``5g-nr``, ``wifi``: ``core.radio.RADIO_PROFILES``) -> its ranges."""
    num_servers: tuple[int, int] = (1, 4)
    """[min, max] number of edge servers, uniform on the integers, within 1..8."""
    tx_powers_w: tuple[float, ...] = (0.05, 0.1, 0.2)
    """The device's transmit levels, ascending (cellular: ≤ 0.2 W, 3GPP power class 3)."""
    background_users: tuple[int, int] = (0, 16)
    """[min, max] background users B per server (batched load model), before the memory cap."""
    background_kv_bytes_per_user: float = 536870912.0
    """KV cache each background user holds (``core.load.kv_bytes_per_user``)."""
    max_background_memory_fraction: float = 0.5
    """The background caches B·KV may take at most this fraction of a server's memory."""
    backhaul_bps: float = 1e9
    """Edge-edge wired backhaul rate."""
    backhaul_latency_s: float = 2e-4
    """Fixed latency of one backhaul transfer."""
    name: str = "custom"
    """Label (the YAML file's stem when loaded from a file)."""

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "world distribution") -> "WorldDistribution":
        reject_unknown_keys(cls, data, where)
        kwargs = dict(data)
        if "links" in kwargs:
            links = kwargs["links"]
            if not isinstance(links, Mapping) or not links:
                raise ValueError(f"{where}.links must be a non-empty mapping link type -> ranges, got {links!r}")
            built = {}
            for link_type, spec in links.items():
                reject_unknown_keys(LinkRange, spec, f"{where}.links.{link_type}")
                missing = sorted({f.name for f in dataclasses.fields(LinkRange)} - set(spec))
                if missing:
                    raise ValueError(f"{where}.links.{link_type}: missing key(s) {missing}")
                built[link_type] = LinkRange(**{k: _as_tuple(v, f"{where}.links.{link_type}.{k}")
                                                for k, v in spec.items()})
            kwargs["links"] = built
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = sorted(required - set(kwargs))
        if missing:
            raise ValueError(f"{where}: missing key(s) {missing}")
        for key in ("devices", "servers", "num_servers", "tx_powers_w", "background_users"):
            if key in kwargs:
                kwargs[key] = _as_tuple(kwargs[key], f"{where}.{key}")
        for key in ("background_kv_bytes_per_user", "max_background_memory_fraction", "backhaul_bps",
                    "backhaul_latency_s"):
            if key in kwargs:
                kwargs[key] = _yaml_number(kwargs[key])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (for a run directory's resolved config)."""
        d = dataclasses.asdict(self)
        return {k: _listify(v) for k, v in d.items()}

    def background_users_max(self, server_hardware: str) -> int:
        """B_max of a server of this hardware: the range's max, capped by the memory rule."""
        kv = self.background_kv_bytes_per_user
        if kv == 0:
            return int(self.background_users[1])
        cap = math.floor(self.max_background_memory_fraction * load_profile(server_hardware).mem_capacity_bytes / kv)
        return int(min(self.background_users[1], cap))


# --------------------------------------------------------------------------- validation
def _as_tuple(value: Any, where: str) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where} must be a list, got {value!r}")
    return tuple(_yaml_number(v) for v in value)


def _listify(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_listify(v) for v in value]
    if isinstance(value, dict):
        return {k: _listify(v) for k, v in value.items()}
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_range(where: str, value: Any, *, integer: bool = False, positive: bool = False,
                 low: float | None = None, high: float | None = None) -> None:
    """``value`` is [min, max] with min <= max, both numbers (integers) >= 0 (> 0), within [low, high]."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{where} must be [min, max], got {value!r}")
    for v in value:
        if not _is_number(v) or (integer and not float(v).is_integer()):
            raise ValueError(f"{where} must hold two {'integers' if integer else 'finite numbers'}, got {value!r}")
        if (v <= 0 if positive else v < 0):
            raise ValueError(f"{where} must be {'> 0' if positive else '>= 0'}, got {value!r}")
        if (low is not None and v < low) or (high is not None and v > high):
            raise ValueError(f"{where} must lie within {low}..{high}, got {value!r}")
    if value[0] > value[1]:
        raise ValueError(f"{where}: min {value[0]!r} > max {value[1]!r}")


def _check_choices(where: str, values: Any, *, positive_numbers: bool = False) -> None:
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{where} must be a non-empty list, got {values!r}")
    if positive_numbers:
        for v in values:
            if not (_is_number(v) and v > 0):
                raise ValueError(f"{where} must hold finite numbers > 0, got {values!r}")


def _check_hardware(where: str, names: Sequence[str], hw_class: str) -> None:
    _check_choices(where, names)
    known = list_profiles()
    for name in names:
        is_path = isinstance(name, str) and Path(name).suffix in (".yaml", ".yml") and Path(name).exists()
        if name not in known and not is_path:
            raise ValueError(f"{where}: unknown hardware {name!r}; known: {known} (or a profile's YAML path)")
        try:
            actual = load_profile(name).hw_class
        except (ValueError, FileNotFoundError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        if actual != hw_class:
            raise ValueError(f"{where}: {name!r} is {actual!r} hardware, expected {hw_class!r}")


def _check_scalar(where: str, value: Any, *, positive: bool) -> None:
    if not _is_number(value) or (value <= 0 if positive else value < 0):
        raise ValueError(f"{where} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")


def _validate(d: WorldDistribution) -> None:
    w = "world distribution"
    _check_hardware(f"{w}.devices", d.devices, "phone")
    _check_hardware(f"{w}.servers", d.servers, "edge")
    _check_range(f"{w}.num_servers", d.num_servers, integer=True, low=1, high=MAX_SERVERS)
    d.num_servers = (int(d.num_servers[0]), int(d.num_servers[1]))
    _check_choices(f"{w}.tx_powers_w", d.tx_powers_w, positive_numbers=True)
    d.tx_powers_w = tuple(float(p) for p in d.tx_powers_w)
    if list(d.tx_powers_w) != sorted(d.tx_powers_w):
        raise ValueError(f"{w}.tx_powers_w must be ascending, got {list(d.tx_powers_w)}")
    if not isinstance(d.links, Mapping) or not d.links:
        raise ValueError(f"{w}.links must be a non-empty mapping link type -> ranges")
    for link_type, link in d.links.items():
        lw = f"{w}.links.{link_type}"
        if link_type not in RADIO_PROFILES:
            raise ValueError(f"{lw}: unknown link type {link_type!r}; known: {sorted(RADIO_PROFILES)} "
                             "(the generic link has no measured rate or power model)")
        if not isinstance(link, LinkRange):
            raise ValueError(f"{lw} must be a LinkRange, got {type(link).__name__}")
        try:
            check_tx_levels(d.tx_powers_w, link_type)
        except ValueError as exc:
            raise ValueError(f"{w}.tx_powers_w: {exc}") from None
        _check_range(f"{lw}.uplink_rate_bps", link.uplink_rate_bps, positive=True)
        _check_choices(f"{lw}.uplink_bandwidth_hz", link.uplink_bandwidth_hz, positive_numbers=True)
        _check_choices(f"{lw}.downlink_bandwidth_hz", link.downlink_bandwidth_hz, positive_numbers=True)
    _check_range(f"{w}.background_users", d.background_users, integer=True)
    d.background_users = (int(d.background_users[0]), int(d.background_users[1]))
    _check_scalar(f"{w}.background_kv_bytes_per_user", d.background_kv_bytes_per_user, positive=False)
    f = d.max_background_memory_fraction
    if not (_is_number(f) and 0 < f <= 1):
        raise ValueError(f"{w}.max_background_memory_fraction must be a fraction in (0, 1], got {f!r}")
    _check_scalar(f"{w}.backhaul_bps", d.backhaul_bps, positive=True)
    _check_scalar(f"{w}.backhaul_latency_s", d.backhaul_latency_s, positive=False)
    for name in d.servers:
        b_max = d.background_users_max(name)
        if b_max < d.background_users[0]:
            raise ValueError(f"{w}.background_users: server {name!r} holds at most {b_max} background users "
                             f"(max_background_memory_fraction {f} x {load_profile(name).mem_capacity_bytes:.4g} B "
                             f"/ {d.background_kv_bytes_per_user:.4g} B), below the minimum "
                             f"{d.background_users[0]}")


# --------------------------------------------------------------------------- loading
def list_world_distributions() -> list[str]:
    """Names of the presets in ``configs/worlds``."""
    return sorted(p.stem for p in WORLDS_DIR.glob("*.yaml"))


def load_world_distribution(name_or_path: str | Path | WorldDistribution) -> WorldDistribution:
    """A distribution preset ``configs/worlds/NAME.yaml`` or a YAML file path; ValueError
    naming the file, the unknown key or the bad field."""
    if isinstance(name_or_path, WorldDistribution):
        return name_or_path
    path = preset_path(name_or_path, WORLDS_DIR, "world distribution", missing=ValueError)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"world distribution file {path} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValueError(f"world distribution file {path}: expected a mapping, got {type(data).__name__}")
    data = dict(data)
    data.setdefault("name", path.stem)
    try:
        return WorldDistribution.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------- sampling
def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """exp(U(log low, log high)): every decade of the range equally likely."""
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def sample_world(dist: WorldDistribution, rng: np.random.Generator, name: str = "world") -> Scenario:
    """One random world (a :class:`core.system.Scenario`); the draw order is the module
    docstring's, every number from ``rng``."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    device = DeviceConfig(hardware=_pick(rng, dist.devices), tx_powers_w=dist.tx_powers_w)
    link_type = _pick(rng, list(dist.links))
    link = dist.links[link_type]
    m = int(rng.integers(dist.num_servers[0], dist.num_servers[1] + 1))
    top_w = dist.tx_powers_w[-1]
    servers = []
    for _ in range(m):
        hardware = _pick(rng, dist.servers)
        rate_bps = log_uniform(rng, *link.uplink_rate_bps)
        up_hz = float(_pick(rng, link.uplink_bandwidth_hz))
        down_hz = float(_pick(rng, link.downlink_bandwidth_hz))
        users = int(rng.integers(dist.background_users[0], dist.background_users_max(hardware) + 1))
        servers.append(ServerConfig(
            hardware=hardware, link_type=link_type,
            distance_km=distance_for_rate_km(rate_bps, up_hz, top_w),
            uplink_bandwidth_hz=up_hz, downlink_bandwidth_hz=down_hz,
            load_model="batched", background_users=users,
            background_kv_bytes_per_user=float(dist.background_kv_bytes_per_user)))
    return Scenario(name=name, device=device, servers=servers, backhaul_bps=float(dist.backhaul_bps),
                    backhaul_latency_s=float(dist.backhaul_latency_s))


def sample_worlds(dist: WorldDistribution | str | Path, seed: int, n: int) -> list[Scenario]:
    """``n`` worlds from one generator seeded with ``seed`` (names ``world-0`` ...)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    dist = load_world_distribution(dist)
    rng = np.random.default_rng(seed)
    return [sample_world(dist, rng, name=f"world-{i}") for i in range(int(n))]
