"""The mobile-edge system model: device, edge servers, wireless links.

Units are in the field names (``_hz``, ``_w``, ``_bytes``, ``_bps``, ``_s``, ``_km``).
Formulas, default numbers and their sources: ``docs/system-model.md`` §3-§5; each is
cited once where it is used here.

A :class:`Scenario` is the static description of the system (hardware, distances,
bandwidths, mean loads).  A :class:`SystemSnapshot` is the system at one instant:
channel gains drawn (or their means), hence uplink rates per transmit-power level,
downlink rates, the load of every server, and which servers are up.  The cost engine
only ever sees snapshots (through :func:`core.instance.make_instance`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
SCENARIO_DIR = CONFIG_DIR / "scenarios"

# Thermal noise spectral density k·T at 290 K, -174 dBm/Hz (docs/system-model.md §3).
NOISE_DBM_PER_HZ = -174.0


# --------------------------------------------------------------------------- physics
def path_loss_db(distance_km: float) -> float:
    """3GPP-style macro-cell path loss 128.1 + 37.6·log10(d/km) dB (docs/system-model.md §3)."""
    if not distance_km > 0:
        raise ValueError(f"distance must be > 0 km, got {distance_km!r}")
    return 128.1 + 37.6 * math.log10(distance_km)


def channel_gain(distance_km: float, shadowing_db: float = 0.0, fading_power: float = 1.0) -> float:
    """Linear power gain: path loss, log-normal shadowing (dB) and small-scale fading |h|²."""
    return 10.0 ** (-(path_loss_db(distance_km) - shadowing_db) / 10.0) * fading_power


def shannon_rate_bps(bandwidth_hz: float, tx_power_w: float, gain: float,
                     noise_dbm_per_hz: float = NOISE_DBM_PER_HZ) -> float:
    """Shannon rate r = B·log2(1 + p·g / (N0·B)) in bit/s (docs/system-model.md §3)."""
    n0_w_per_hz = 10.0 ** ((noise_dbm_per_hz - 30.0) / 10.0)
    snr = tx_power_w * gain / (n0_w_per_hz * bandwidth_hz)
    return bandwidth_hz * math.log2(1.0 + snr)


# --------------------------------------------------------------------------- configs
def _check_positive(owner: str, **values: float) -> None:
    for key, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{owner}.{key} must be a finite number > 0, got {value!r}")


def _check_nonneg(owner: str, **values: float) -> None:
    for key, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{owner}.{key} must be a finite number >= 0, got {value!r}")


def _check_fraction(owner: str, **values: float) -> None:
    for key, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value <= 1):
            raise ValueError(f"{owner}.{key} must be a fraction in (0, 1], got {value!r}")


def _fill_hardware(cfg: Any, owner: str, defaults: Mapping[str, Any], fields_method: str) -> None:
    """Fill the *hardware* fields left at None: from the profile ``cfg.hardware`` if set,
    else from ``defaults``.  Explicit values are kept (they override the profile)."""
    from .hardware import load_profile  # local: hardware imports nothing from here

    source: Mapping[str, Any] = defaults
    if cfg.hardware is not None:
        if not isinstance(cfg.hardware, str) or not cfg.hardware.strip():
            raise ValueError(f"{owner}.hardware must be a profile name or YAML path, got {cfg.hardware!r}")
        try:
            source = getattr(load_profile(cfg.hardware), fields_method)()
        except (ValueError, FileNotFoundError) as exc:
            raise ValueError(f"{owner}.hardware: {exc}") from None
    for key, default in defaults.items():
        if getattr(cfg, key) is None:
            setattr(cfg, key, source.get(key, default))


@dataclass
class DeviceConfig:
    """The mobile device (a Jetson-Orin-Nano-class SoC, docs/system-model.md §5), or a hardware
    profile of the catalogue (``hardware``, see :mod:`core.hardware`).

    Fields marked *hardware* are filled from the profile when ``hardware`` is set; a value
    given explicitly (not None) overrides the profile's.  Without ``hardware`` they take
    the defaults below."""

    freqs_hz: tuple[float, ...] | None = None
    """*hardware* DVFS frequency levels, ascending; the last is the default (highest).
    Default (0.4, 0.7, 1.0, 1.3) GHz."""
    flops_per_cycle: float | None = None
    """*hardware* Peak FLOPs per clock: default 8192 × 1.3 GHz ≈ 10.6 TFLOP/s fp16
    (Orin-class vendor figure ~10)."""
    mem_bw_bytes_per_s: float | None = None
    """*hardware* Peak DRAM bandwidth, default 68 GB/s (Orin Nano vendor figure)."""
    mem_capacity_bytes: float | None = None
    """*hardware* Memory the app may use for weights + KV cache, default 6 GB (an 8 GB
    phone keeps ~2 GB for the OS)."""
    kappa: float | None = None
    """*hardware* Effective switched capacitance: E = κ·f²·cycles.  Default 1e-27, in the
    range of LODCO (arXiv 1605.05488) and LyDROO (arXiv 2010.01370), ≈2.2 W at 1.3 GHz, a phone-NPU envelope."""
    dram_j_per_byte: float = 40e-12
    """DRAM access energy, ≈5 pJ/bit for LPDDR5."""
    tx_powers_w: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0)
    """Transmit-power levels, ascending (LyDROO 0.1 W ... LODCO 1 W max); default the highest."""
    rx_power_w: float = 0.1
    """Radio power while receiving."""
    idle_power_w: float | None = None
    """*hardware* Baseline SoC power whenever the device is not computing (also while the
    radio works), default 0.3 W."""
    hardware: str | None = None
    """A hardware profile name (``configs/hardware/NAME.yaml``) or YAML path; None: the defaults."""
    flops_fraction: float | None = None
    """*hardware* Achieved fraction of the peak FLOP/s (prefill); default 1."""
    mem_bw_fraction: float | None = None
    """*hardware* Achieved fraction of the peak bandwidth (decode); default 1."""

    _DEFAULTS = {"freqs_hz": (0.4e9, 0.7e9, 1.0e9, 1.3e9), "flops_per_cycle": 8192.0,
                 "mem_bw_bytes_per_s": 68e9, "mem_capacity_bytes": 6e9, "kappa": 1e-27,
                 "idle_power_w": 0.3, "flops_fraction": 1.0, "mem_bw_fraction": 1.0}

    def __post_init__(self) -> None:
        _fill_hardware(self, "device", self._DEFAULTS, "device_fields")
        self.freqs_hz = tuple(float(f) for f in self.freqs_hz)
        self.tx_powers_w = tuple(float(p) for p in self.tx_powers_w)
        if not self.freqs_hz or not self.tx_powers_w:
            raise ValueError("device.freqs_hz and device.tx_powers_w need at least one level")
        for i, f in enumerate(self.freqs_hz):
            _check_positive("device", **{f"freqs_hz[{i}]": f})
        for i, p in enumerate(self.tx_powers_w):
            _check_positive("device", **{f"tx_powers_w[{i}]": p})
        if list(self.freqs_hz) != sorted(self.freqs_hz) or list(self.tx_powers_w) != sorted(self.tx_powers_w):
            raise ValueError("device.freqs_hz and device.tx_powers_w must be ascending")
        _check_positive("device", flops_per_cycle=self.flops_per_cycle,
                        mem_bw_bytes_per_s=self.mem_bw_bytes_per_s, kappa=self.kappa)
        _check_nonneg("device", mem_capacity_bytes=self.mem_capacity_bytes,
                      dram_j_per_byte=self.dram_j_per_byte, rx_power_w=self.rx_power_w,
                      idle_power_w=self.idle_power_w)
        _check_fraction("device", flops_fraction=self.flops_fraction, mem_bw_fraction=self.mem_bw_fraction)


@dataclass
class ServerConfig:
    """One edge server (an A100-40G; defaults and sources: docs/system-model.md §5) and its
    wireless link to the device."""

    peak_flops: float | None = None
    """*hardware* Peak fp16 FLOP/s, default 312e12 (A100 vendor figure)."""
    mem_bw_bytes_per_s: float | None = None
    """*hardware* Peak memory bandwidth, default 1.555e12 (A100-40G HBM vendor figure)."""
    mem_capacity_bytes: float | None = None
    """*hardware* Memory available to this user, default 40e9."""
    load: float = 0.0
    """Background load ρ ∈ [0, 1): this user gets (1-ρ) of the FLOP/s and of the bandwidth."""
    power_w: float | None = None
    """*hardware* Board power while computing, default 400 W (A100 TDP); edge energy is
    reported, not minimised."""
    distance_km: float = 0.2
    """Distance to the device (path loss)."""
    uplink_bandwidth_hz: float = 10e6
    """Uplink bandwidth B (10 MHz; MEC papers use 1-20 MHz, docs/system-model.md §5)."""
    downlink_bandwidth_hz: float = 20e6
    """Downlink bandwidth."""
    downlink_power_w: float = 1.0
    """Access-point transmit power towards the device."""
    shadowing_std_db: float = 8.0
    """Log-normal shadowing standard deviation (docs/system-model.md §3)."""
    fading_correlation: float = 0.9
    """Gauss-Markov coefficient ρ of the Rayleigh fading from one token to the next."""
    latency_s: float | None = None
    """Fixed per-transfer latency of the radio link (scheduling, framing, propagation);
    None takes the link type's default (``core.radio``: generic 1 ms)."""
    link_type: str = "generic"
    """Radio technology of the device's link to this server: ``generic`` (transmit level p_q
    and ``rx_power_w`` drawn during transfers, nothing while waiting) or ``lte`` / ``5g-nr`` /
    ``wifi`` (measured throughput-based power model, connected-mode power while waiting;
    see :mod:`core.radio`)."""
    load_model: str = "time-sliced"
    """``time-sliced``: this user gets (1-ρ) of the server; ``batched``: its layers join a
    continuous-batching step with ``background_users`` other users (see :mod:`core.load`)."""
    background_users: int = 0
    """B: other users of the same model batched on this server (``batched`` only)."""
    background_kv_bytes_per_user: float = 0.0
    """KV cache each background user holds (``batched`` only; ``core.load.kv_bytes_per_user``);
    B times this is taken from ``mem_capacity_bytes``."""

    hardware: str | None = None
    """A hardware profile name (``configs/hardware/NAME.yaml``) or YAML path: fills the
    *hardware* fields (explicit values override); None: the defaults."""
    flops_fraction: float | None = None
    """*hardware* Achieved fraction of the peak FLOP/s (prefill); default 1."""
    mem_bw_fraction: float | None = None
    """*hardware* Achieved fraction of the peak bandwidth (decode); default 1."""

    _DEFAULTS = {"peak_flops": 312e12, "mem_bw_bytes_per_s": 1.555e12, "mem_capacity_bytes": 40e9,
                 "power_w": 400.0, "flops_fraction": 1.0, "mem_bw_fraction": 1.0}

    @property
    def achieved_flops_per_s(self) -> float:
        """peak_flops × flops_fraction (before any background load)."""
        return self.peak_flops * self.flops_fraction

    @property
    def achieved_mem_bw_bytes_per_s(self) -> float:
        """mem_bw_bytes_per_s × mem_bw_fraction (before any background load)."""
        return self.mem_bw_bytes_per_s * self.mem_bw_fraction

    def __post_init__(self) -> None:
        from .load import LOAD_MODELS
        from .radio import GENERIC_LATENCY_S, radio_profile

        _fill_hardware(self, "server", self._DEFAULTS, "server_fields")
        _check_fraction("server", flops_fraction=self.flops_fraction, mem_bw_fraction=self.mem_bw_fraction)
        _check_positive("server", peak_flops=self.peak_flops, mem_bw_bytes_per_s=self.mem_bw_bytes_per_s,
                        distance_km=self.distance_km, uplink_bandwidth_hz=self.uplink_bandwidth_hz,
                        downlink_bandwidth_hz=self.downlink_bandwidth_hz,
                        downlink_power_w=self.downlink_power_w)
        profile = radio_profile(self.link_type)  # raises on an unknown link type
        if self.latency_s is None:
            self.latency_s = GENERIC_LATENCY_S if profile is None else profile.latency_s
        _check_nonneg("server", mem_capacity_bytes=self.mem_capacity_bytes, power_w=self.power_w,
                      shadowing_std_db=self.shadowing_std_db, latency_s=self.latency_s,
                      background_kv_bytes_per_user=self.background_kv_bytes_per_user)
        if self.load_model not in LOAD_MODELS:
            raise ValueError(f"server.load_model must be one of {list(LOAD_MODELS)}, got {self.load_model!r}")
        b = self.background_users
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not float(b).is_integer() or b < 0:
            raise ValueError(f"server.background_users must be an integer >= 0, got {b!r}")
        self.background_users = int(b)
        if self.load_model == "batched":
            if self.load != 0.0:
                raise ValueError("server.load (time-sliced ρ) must be 0 on a batched server; "
                                 "its background is background_users")
            if self.background_users * self.background_kv_bytes_per_user > self.mem_capacity_bytes:
                raise ValueError("server: background_users × background_kv_bytes_per_user exceeds "
                                 "mem_capacity_bytes")
        elif self.background_users:
            raise ValueError("server.background_users needs load_model 'batched' "
                             "(the time-sliced model's background is load ρ)")
        if not (0.0 <= self.load < 1.0):
            raise ValueError(f"server.load must lie in [0, 1), got {self.load!r}")
        if not (0.0 <= self.fading_correlation <= 1.0):
            raise ValueError(f"server.fading_correlation must lie in [0, 1], got {self.fading_correlation!r}")


@dataclass
class Scenario:
    """A whole MEC system: one device, edge servers 1..M, a wired backhaul between servers."""

    name: str = "custom"
    """Label used in tables."""
    device: DeviceConfig = field(default_factory=DeviceConfig)
    """The mobile device."""
    servers: list[ServerConfig] = field(default_factory=lambda: [ServerConfig()])
    """Edge servers 1..M (at least one)."""
    backhaul_bps: float = 1e9
    """Edge-edge wired backhaul rate, 1 Gb/s (assumed, docs/system-model.md §5)."""
    backhaul_latency_s: float = 2e-4
    """Fixed latency of one backhaul transfer."""

    def __post_init__(self) -> None:
        if isinstance(self.device, Mapping):
            self.device = _from_dict(DeviceConfig, self.device, "device")
        self.servers = [_from_dict(ServerConfig, s, f"servers[{i}]") if isinstance(s, Mapping) else s
                        for i, s in enumerate(self.servers)]
        if not self.servers:
            raise ValueError("a scenario needs at least one edge server")
        _check_positive("scenario", backhaul_bps=self.backhaul_bps)
        _check_nonneg("scenario", backhaul_latency_s=self.backhaul_latency_s)

    @property
    def num_servers(self) -> int:
        return len(self.servers)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Scenario":
        return _from_dict(cls, data, "scenario")


def reject_unknown_keys(cls: type, data: Mapping[str, Any], where: str) -> None:
    """The one rule of every config dataclass: a mapping whose keys are all fields of
    ``cls``; ValueError naming ``where``, the unknown keys and the known ones otherwise."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(names)}")


def _from_dict(cls, data: Mapping[str, Any], where: str):
    """Build a config dataclass from a mapping, rejecting unknown keys by name."""
    reject_unknown_keys(cls, data, where)
    kwargs = {key: _yaml_number(value) for key, value in data.items()}
    for key in ("freqs_hz", "tx_powers_w"):
        if key in kwargs and isinstance(kwargs[key], list):
            kwargs[key] = tuple(kwargs[key])
    return cls(**kwargs)


def _yaml_number(value: Any) -> Any:
    """PyYAML (YAML 1.1) reads ``20e6`` as a string: accept numeric strings as floats."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, list):
        return [_yaml_number(v) for v in value]
    return value


def list_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def preset_path(name_or_path: str | Path, directory: Path, what: str,
                missing: type[Exception] = FileNotFoundError) -> Path:
    """The file of a preset name (``directory/NAME.yaml``; ValueError naming the presets if
    there is none) or of a YAML path (``missing`` naming it if it does not exist)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = directory / f"{name_or_path}.yaml"
        if not path.exists():
            presets = sorted(p.stem for p in directory.glob("*.yaml"))
            raise ValueError(f"unknown {what} {str(name_or_path)!r}; presets: {presets}")
    if not path.exists():
        raise missing(f"{what} file not found: {path}")
    return path


def load_scenario(name_or_path: str | Path | Scenario) -> Scenario:
    """A scenario preset from ``configs/scenarios/NAME.yaml`` or a YAML file path."""
    if isinstance(name_or_path, Scenario):
        return name_or_path
    path = preset_path(name_or_path, SCENARIO_DIR, "scenario")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"scenario file {path} is not valid YAML: {exc}") from None
    data.setdefault("name", path.stem)
    data.pop("dynamics", None)  # the world's dynamics settings: core.dynamics.scenario_dynamics
    return Scenario.from_dict(data)


def sample_scenario(rng: np.random.Generator, num_servers: int | None = None,
                    name: str = "random") -> Scenario:
    """A random scenario from a seeded generator: 1-4 servers at 0.05-1.2 km,
    loads in [0, 0.8), uplink 5-20 MHz.  Device hardware stays the default."""
    m = int(rng.integers(1, 5)) if num_servers is None else int(num_servers)
    if m < 1:
        raise ValueError(f"num_servers must be >= 1, got {m}")
    servers = [ServerConfig(distance_km=float(rng.uniform(0.05, 1.2)),
                            load=float(rng.uniform(0.0, 0.8)),
                            uplink_bandwidth_hz=float(rng.choice([5e6, 10e6, 20e6])))
               for _ in range(m)]
    return Scenario(name=name, servers=servers)


# --------------------------------------------------------------------------- snapshot
@dataclass
class SystemSnapshot:
    """The system at one instant, everything the cost engine needs about hardware and links.

    Location 0 is the device; location k ≥ 1 is server k (``servers[k-1]`` of the scenario).
    """

    device: DeviceConfig
    server_flops_per_s: list[float]
    """Throughput left to this user: (1-ρ)·peak·achieved fraction."""
    server_mem_bw_bytes_per_s: list[float]
    """Memory bandwidth left to this user: (1-ρ)·peak·achieved fraction."""
    server_load: list[float]
    server_power_w: list[float]
    mem_capacity_bytes: list[float]
    """Per location 0..M."""
    uplink_bps: list[list[float]]
    """uplink_bps[k-1][q]: device → server k at transmit-power level q."""
    downlink_bps: list[float]
    """server k → device."""
    link_latency_s: list[float]
    """Per server radio link."""
    backhaul_bps: float
    backhaul_latency_s: float
    server_up: list[bool]
    """A server that is down can hold no node."""
    uplink_power_w: list[list[float]] | None = None
    """uplink_power_w[k-1][q]: device power during the airtime of an upload to server k at
    level q, above the waiting power (generic link: p_q; radio model: α_u·r + β − P_conn,
    see :mod:`core.radio`).  None: the generic values."""
    downlink_power_w: list[float] | None = None
    """Device power during a download's airtime from server k, above the waiting power
    (generic: ``rx_power_w``).  None: the generic values."""
    server_load_model: list[str] | None = None
    """Per server: ``time-sliced`` or ``batched`` (:mod:`core.load`).  None: all time-sliced."""
    server_background_users: list[int] | None = None
    """Per server: B, the users batched with this one (batched servers).  None: all 0."""
    radio_wait_power_w: float = 0.0
    """Connected-mode radio power included in ``device.idle_power_w`` (reported, not added again)."""

    def __post_init__(self) -> None:
        _validate_snapshot(self)

    @property
    def num_locations(self) -> int:
        return 1 + len(self.server_flops_per_s)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SystemSnapshot":
        if not isinstance(data, Mapping):
            raise ValueError(f"snapshot: expected a mapping, got {type(data).__name__}")
        data = dict(data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"snapshot: unknown key(s) {unknown}")
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"snapshot: missing key(s) {missing}")
        data["device"] = _from_dict(DeviceConfig, data["device"], "snapshot.device")
        return cls(**data)


def _validate_snapshot(snap: "SystemSnapshot") -> None:
    """Check every field of a snapshot where it enters (its constructor, hence JSON loading
    and :func:`make_snapshot`), and store numbers as floats: a NaN rate or a negative
    throughput would otherwise give finite wrong times or NaN energies downstream.
    ValueError names the field, e.g. ``snapshot.uplink_bps[0][2]``.  Instances built
    from a snapshot (``Instance.with_token_state`` included) do not check it again."""
    if isinstance(snap.device, Mapping):
        snap.device = _from_dict(DeviceConfig, snap.device, "snapshot.device")
    if not isinstance(snap.device, DeviceConfig):
        raise ValueError(f"snapshot.device must be a DeviceConfig or a mapping, got {type(snap.device).__name__}")
    m = _length("server_flops_per_s", snap.server_flops_per_s, None)
    if m < 1:
        raise ValueError("snapshot.server_flops_per_s needs at least one server")
    nq = len(snap.device.tx_powers_w)
    snap.server_flops_per_s = _numbers("server_flops_per_s", snap.server_flops_per_s, m, positive=True)
    snap.server_mem_bw_bytes_per_s = _numbers("server_mem_bw_bytes_per_s", snap.server_mem_bw_bytes_per_s, m,
                                              positive=True)
    snap.server_load = _numbers("server_load", snap.server_load, m, positive=False)
    for k, rho in enumerate(snap.server_load):
        if rho >= 1.0:
            raise ValueError(f"snapshot.server_load[{k}] must lie in [0, 1), got {rho!r}")
    snap.server_power_w = _numbers("server_power_w", snap.server_power_w, m, positive=False)
    snap.mem_capacity_bytes = _numbers("mem_capacity_bytes", snap.mem_capacity_bytes, m + 1, positive=False,
                                       per="location")
    _length("uplink_bps", snap.uplink_bps, m)
    snap.uplink_bps = [_numbers(f"uplink_bps[{k}]", rates, nq, positive=True, per="transmit-power level")
                       for k, rates in enumerate(snap.uplink_bps)]
    snap.downlink_bps = _numbers("downlink_bps", snap.downlink_bps, m, positive=True)
    snap.link_latency_s = _numbers("link_latency_s", snap.link_latency_s, m, positive=False)
    snap.backhaul_bps = _number("backhaul_bps", snap.backhaul_bps, positive=True)
    snap.backhaul_latency_s = _number("backhaul_latency_s", snap.backhaul_latency_s, positive=False)
    _length("server_up", snap.server_up, m)
    for k, up in enumerate(snap.server_up):
        if not isinstance(up, (bool, np.bool_)):
            raise ValueError(f"snapshot.server_up[{k}] must be true or false, got {up!r}")
    snap.server_up = [bool(up) for up in snap.server_up]
    # radio and load-model fields (None: the generic radio and the time-sliced load model)
    if snap.uplink_power_w is None:
        snap.uplink_power_w = [list(snap.device.tx_powers_w) for _ in range(m)]
    if snap.downlink_power_w is None:
        snap.downlink_power_w = [snap.device.rx_power_w] * m
    if snap.server_load_model is None:
        snap.server_load_model = ["time-sliced"] * m
    if snap.server_background_users is None:
        snap.server_background_users = [0] * m
    _length("uplink_power_w", snap.uplink_power_w, m)
    snap.uplink_power_w = [_numbers(f"uplink_power_w[{k}]", powers, nq, positive=False, per="transmit-power level")
                           for k, powers in enumerate(snap.uplink_power_w)]
    snap.downlink_power_w = _numbers("downlink_power_w", snap.downlink_power_w, m, positive=False)
    from .load import LOAD_MODELS
    _length("server_load_model", snap.server_load_model, m)
    for k, model in enumerate(snap.server_load_model):
        if model not in LOAD_MODELS:
            raise ValueError(f"snapshot.server_load_model[{k}] must be one of {list(LOAD_MODELS)}, got {model!r}")
    _length("server_background_users", snap.server_background_users, m)
    for k, users in enumerate(snap.server_background_users):
        if not (_is_number(users) and float(users).is_integer() and users >= 0):
            raise ValueError(f"snapshot.server_background_users[{k}] must be an integer >= 0, got {users!r}")
    snap.server_background_users = [int(u) for u in snap.server_background_users]
    snap.radio_wait_power_w = _number("radio_wait_power_w", snap.radio_wait_power_w, positive=False)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _number(name: str, value: Any, *, positive: bool) -> float:
    """``value`` as a float if it is a finite number > 0 (``positive``) or >= 0; else
    ValueError naming ``snapshot.<name>``."""
    if not (_is_number(value) and math.isfinite(value) and (value > 0 if positive else value >= 0)):
        raise ValueError(f"snapshot.{name} must be finite and {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _length(name: str, values: Any, expected: int | None, per: str = "server") -> int:
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"snapshot.{name} must be a list, got {type(values).__name__}")
    if expected is not None and len(values) != expected:
        raise ValueError(f"snapshot.{name} has {len(values)} entries, expected {expected} (one per {per})")
    return len(values)


def _numbers(name: str, values: Any, expected: int, *, positive: bool, per: str = "server") -> list[float]:
    _length(name, values, expected, per)
    return [_number(f"{name}[{i}]", v, positive=positive) for i, v in enumerate(values)]


def make_snapshot(scenario: Scenario, *, fading_power: Sequence[float] | None = None,
                  shadowing_db: Sequence[float] | None = None,
                  loads: Sequence[float] | None = None,
                  distances_km: Sequence[float] | None = None,
                  server_up: Sequence[bool] | None = None,
                  background_users: Sequence[int] | None = None) -> SystemSnapshot:
    """Rates and throughputs for given channel draws.

    Without draws the snapshot uses the mean channel (|h|² = 1, 0 dB shadowing): that is
    what the static presets and the paper-style table use.  Uplink and downlink of one
    server share the same gain (reciprocity within a token).

    Radio (:mod:`core.radio`): a server whose ``link_type`` has a power model gets the
    extra transfer powers α·r + β − P_conn per link and level, and the connected-mode
    power P_conn of every distinct radio in use is added to the snapshot device's
    ``idle_power_w`` (the waiting power).  Load (:mod:`core.load`): a batched server keeps
    its peak throughputs (no (1-ρ)) and its capacity for this user is
    ``mem_capacity_bytes − B·background_kv_bytes_per_user``; ``background_users``
    overrides B per server (the dynamics' birth-death process).
    """
    from .load import per_user_memory_bytes
    from .radio import check_tx_levels, extra_transfer_power_w, radio_profile

    m = scenario.num_servers
    fading_power = [1.0] * m if fading_power is None else list(fading_power)
    shadowing_db = [0.0] * m if shadowing_db is None else list(shadowing_db)
    loads = [s.load for s in scenario.servers] if loads is None else list(loads)
    distances_km = [s.distance_km for s in scenario.servers] if distances_km is None else list(distances_km)
    server_up = [True] * m if server_up is None else [bool(u) for u in server_up]
    users = [s.background_users for s in scenario.servers] if background_users is None else list(background_users)
    for name, seq in (("fading_power", fading_power), ("shadowing_db", shadowing_db),
                      ("loads", loads), ("distances_km", distances_km), ("server_up", server_up),
                      ("background_users", users)):
        if len(seq) != m:
            raise ValueError(f"{name} has {len(seq)} entries for {m} servers")
    for k in range(m):
        if not (_is_number(fading_power[k]) and math.isfinite(fading_power[k]) and fading_power[k] >= 0):
            raise ValueError(f"fading_power[{k}] must be finite and >= 0, got {fading_power[k]!r}")
        if not (_is_number(shadowing_db[k]) and math.isfinite(shadowing_db[k])):
            raise ValueError(f"shadowing_db[{k}] must be finite, got {shadowing_db[k]!r}")
    dev = scenario.device
    up, down, up_w, down_w, caps = [], [], [], [], []
    radios: dict[str, float] = {}
    for k, s in enumerate(scenario.servers):
        if not (0.0 <= loads[k] < 1.0):
            raise ValueError(f"load of server {k + 1} must lie in [0, 1), got {loads[k]!r}")
        g = channel_gain(distances_km[k], shadowing_db[k], fading_power[k])
        up.append([shannon_rate_bps(s.uplink_bandwidth_hz, p, g) for p in dev.tx_powers_w])
        down.append(shannon_rate_bps(s.downlink_bandwidth_hz, s.downlink_power_w, g))
        profile = radio_profile(s.link_type)
        if profile is None:
            up_w.append(list(dev.tx_powers_w))
            down_w.append(dev.rx_power_w)
        else:
            check_tx_levels(dev.tx_powers_w, s.link_type)
            up_w.append([extra_transfer_power_w(profile, r, uplink=True) for r in up[-1]])
            down_w.append(extra_transfer_power_w(profile, down[-1], uplink=False))
            radios[s.link_type] = profile.connected_wait_w
        b = users[k]
        if isinstance(b, bool) or not float(b).is_integer() or b < 0:
            raise ValueError(f"background_users of server {k + 1} must be an integer >= 0, got {b!r}")
        if s.load_model == "batched":
            if loads[k] != 0.0:
                raise ValueError(f"server {k + 1} is batched: its time-sliced load must be 0, got {loads[k]!r}")
            caps.append(per_user_memory_bytes(s.mem_capacity_bytes, 0.0, int(b), s.background_kv_bytes_per_user))
        else:
            if b:
                raise ValueError(f"server {k + 1} is time-sliced: background_users must be 0, got {b!r}")
            caps.append(s.mem_capacity_bytes)
    wait_w = float(sum(radios.values()))
    snap_dev = dev if wait_w == 0.0 else dataclasses.replace(dev, idle_power_w=dev.idle_power_w + wait_w)
    return SystemSnapshot(
        device=snap_dev,
        server_flops_per_s=[(1.0 - loads[k]) * s.achieved_flops_per_s for k, s in enumerate(scenario.servers)],
        server_mem_bw_bytes_per_s=[(1.0 - loads[k]) * s.achieved_mem_bw_bytes_per_s
                                   for k, s in enumerate(scenario.servers)],
        server_load=[float(x) for x in loads],
        server_power_w=[s.power_w for s in scenario.servers],
        mem_capacity_bytes=[dev.mem_capacity_bytes] + caps,
        uplink_bps=up,
        downlink_bps=down,
        link_latency_s=[s.latency_s for s in scenario.servers],
        backhaul_bps=scenario.backhaul_bps,
        backhaul_latency_s=scenario.backhaul_latency_s,
        server_up=server_up,
        uplink_power_w=up_w,
        downlink_power_w=down_w,
        server_load_model=[s.load_model for s in scenario.servers],
        server_background_users=[int(b) for b in users],
        radio_wait_power_w=wait_w,
    )
