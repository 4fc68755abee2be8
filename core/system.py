"""The mobile-edge system model: device, edge servers, wireless links.

Units are in the field names (``_hz``, ``_w``, ``_bytes``, ``_bps``, ``_s``, ``_km``).
Default numbers and their sources are in ``../shared/reference.md`` §2 and are cited
once where they are used here.

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

# Thermal noise spectral density, -174 dBm/Hz (reference.md §2).
NOISE_DBM_PER_HZ = -174.0


# --------------------------------------------------------------------------- physics
def path_loss_db(distance_km: float) -> float:
    """3GPP-style macro-cell path loss 128.1 + 37.6·log10(d/km) dB (reference.md §2)."""
    if not distance_km > 0:
        raise ValueError(f"distance must be > 0 km, got {distance_km!r}")
    return 128.1 + 37.6 * math.log10(distance_km)


def channel_gain(distance_km: float, shadowing_db: float = 0.0, fading_power: float = 1.0) -> float:
    """Linear power gain: path loss, log-normal shadowing (dB) and small-scale fading |h|²."""
    return 10.0 ** (-(path_loss_db(distance_km) - shadowing_db) / 10.0) * fading_power


def shannon_rate_bps(bandwidth_hz: float, tx_power_w: float, gain: float,
                     noise_dbm_per_hz: float = NOISE_DBM_PER_HZ) -> float:
    """Shannon rate r = B·log2(1 + p·g / (N0·B)) in bit/s (reference.md §2)."""
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
    """The mobile device (a Jetson-Orin-Nano-class SoC, reference.md §2), or a hardware
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
    range of reference.md (LODCO, LyDROO), ≈2.2 W at 1.3 GHz, a phone-NPU envelope."""
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
    """One edge server (an A100-40G, reference.md §2) and its wireless link to the device."""

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
    """Uplink bandwidth B (reference.md: 10 MHz default, 1-20)."""
    downlink_bandwidth_hz: float = 20e6
    """Downlink bandwidth."""
    downlink_power_w: float = 1.0
    """Access-point transmit power towards the device."""
    shadowing_std_db: float = 8.0
    """Log-normal shadowing standard deviation (reference.md §2)."""
    fading_correlation: float = 0.9
    """Gauss-Markov coefficient ρ of the Rayleigh fading from one token to the next."""
    latency_s: float = 1e-3
    """Fixed per-transfer latency of the radio link (scheduling, framing, propagation)."""
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
        _fill_hardware(self, "server", self._DEFAULTS, "server_fields")
        _check_fraction("server", flops_fraction=self.flops_fraction, mem_bw_fraction=self.mem_bw_fraction)
        _check_positive("server", peak_flops=self.peak_flops, mem_bw_bytes_per_s=self.mem_bw_bytes_per_s,
                        distance_km=self.distance_km, uplink_bandwidth_hz=self.uplink_bandwidth_hz,
                        downlink_bandwidth_hz=self.downlink_bandwidth_hz,
                        downlink_power_w=self.downlink_power_w)
        _check_nonneg("server", mem_capacity_bytes=self.mem_capacity_bytes, power_w=self.power_w,
                      shadowing_std_db=self.shadowing_std_db, latency_s=self.latency_s)
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
    """Edge-edge wired backhaul rate, 1 Gb/s (reference.md §2)."""
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


def _from_dict(cls, data: Mapping[str, Any], where: str):
    """Build a config dataclass from a mapping, rejecting unknown keys by name."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(names)}")
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


def load_scenario(name_or_path: str | Path | Scenario) -> Scenario:
    """A scenario preset from ``configs/scenarios/NAME.yaml`` or a YAML file path."""
    if isinstance(name_or_path, Scenario):
        return name_or_path
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ValueError(f"unknown scenario {str(name_or_path)!r}; presets: {list_scenarios()}")
    if not path.exists():
        raise FileNotFoundError(f"scenario file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"scenario file {path} is not valid YAML: {exc}") from None
    data.setdefault("name", path.stem)
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

    @property
    def num_locations(self) -> int:
        return 1 + len(self.server_flops_per_s)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SystemSnapshot":
        data = dict(data)
        data["device"] = _from_dict(DeviceConfig, data["device"], "device")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"snapshot: unknown key(s) {unknown}")
        return cls(**data)


def make_snapshot(scenario: Scenario, *, fading_power: Sequence[float] | None = None,
                  shadowing_db: Sequence[float] | None = None,
                  loads: Sequence[float] | None = None,
                  distances_km: Sequence[float] | None = None,
                  server_up: Sequence[bool] | None = None) -> SystemSnapshot:
    """Rates and throughputs for given channel draws.

    Without draws the snapshot uses the mean channel (|h|² = 1, 0 dB shadowing): that is
    what the static presets and the paper-style table use.  Uplink and downlink of one
    server share the same gain (reciprocity within a token).
    """
    m = scenario.num_servers
    fading_power = [1.0] * m if fading_power is None else list(fading_power)
    shadowing_db = [0.0] * m if shadowing_db is None else list(shadowing_db)
    loads = [s.load for s in scenario.servers] if loads is None else list(loads)
    distances_km = [s.distance_km for s in scenario.servers] if distances_km is None else list(distances_km)
    server_up = [True] * m if server_up is None else [bool(u) for u in server_up]
    for name, seq in (("fading_power", fading_power), ("shadowing_db", shadowing_db),
                      ("loads", loads), ("distances_km", distances_km), ("server_up", server_up)):
        if len(seq) != m:
            raise ValueError(f"{name} has {len(seq)} entries for {m} servers")
    dev = scenario.device
    up, down = [], []
    for k, s in enumerate(scenario.servers):
        if not (0.0 <= loads[k] < 1.0):
            raise ValueError(f"load of server {k + 1} must lie in [0, 1), got {loads[k]!r}")
        g = channel_gain(distances_km[k], shadowing_db[k], fading_power[k])
        up.append([shannon_rate_bps(s.uplink_bandwidth_hz, p, g) for p in dev.tx_powers_w])
        down.append(shannon_rate_bps(s.downlink_bandwidth_hz, s.downlink_power_w, g))
    return SystemSnapshot(
        device=dev,
        server_flops_per_s=[(1.0 - loads[k]) * s.achieved_flops_per_s for k, s in enumerate(scenario.servers)],
        server_mem_bw_bytes_per_s=[(1.0 - loads[k]) * s.achieved_mem_bw_bytes_per_s
                                   for k, s in enumerate(scenario.servers)],
        server_load=[float(x) for x in loads],
        server_power_w=[s.power_w for s in scenario.servers],
        mem_capacity_bytes=[dev.mem_capacity_bytes] + [s.mem_capacity_bytes for s in scenario.servers],
        uplink_bps=up,
        downlink_bps=down,
        link_latency_s=[s.latency_s for s in scenario.servers],
        backhaul_bps=scenario.backhaul_bps,
        backhaul_latency_s=scenario.backhaul_latency_s,
        server_up=server_up,
    )
