"""How the MEC system changes from one token to the next.

One :class:`MECProcess` per environment, driven by the environment's seeded generator:

* Rayleigh fading per server link, correlated in time by Gauss-Markov
  h(t+1) = ρ·h(t) + √(1-ρ²)·w, w ~ CN(0, 1) (Jakes-style block fading, docs/system-model.md §3);
  the power gain |h|² is Exp(1) in steady state.
* Log-normal shadowing per server, drawn once per episode (σ from the scenario).
* Mobility (``mobility_model``): ``random-walk``, the distance to each server follows a
  reflected Gaussian random walk; or ``path``, the user moves along a road lined with the
  servers (Gauss-Markov speed) and a server beyond its coverage radius is out of range
  (down in the snapshot, its caches lost): handover (:mod:`core.mobility`).
* Thermal throttling (``thermal``, on by default): a first-order RC model of the phone's
  temperature, heated by the device energy of each token (``advance(rng,
  device_energy_j=..., elapsed_s=...)``); above a threshold the snapshot's device runs at
  capped DVFS levels and DRAM bandwidth (:mod:`core.thermal`).
* Edge background load: a birth-death Markov chain over discrete load levels
  (time-sliced servers).
* Background users (batched servers, ``background_users``, on by default): a discrete-time
  birth-death process per server.  Each token, B(t+1) = B(t) + A − D with arrivals
  A ~ Bernoulli(``user_arrival_prob``) (none when B = ``max_background_users`` or when
  one more user's KV cache would not fit the server: admission control) and
  departures D ~ Binomial(B(t), ``user_departure_prob``) (each user leaves
  independently).  Its stationary mean is about p_arrive / p_depart users when the cap
  does not bind.  It starts each episode at the scenario's ``background_users``.
* Outages (optional): a two-state (up/down) Markov chain per server.  An up server fails
  with probability ``outage_prob`` per token and then stays down for a geometric number of
  tokens with mean ``outage_mean_tokens`` (it comes back with probability
  1/``outage_mean_tokens`` per token); the KV caches it held are lost.  The long-run
  fraction of tokens a server is down is p·L / (1 + p·L) (p = outage_prob, L = mean length).

A scenario YAML may carry a ``dynamics:`` section (keys of :class:`DynamicsConfig`):
:func:`scenario_dynamics` reads it, and the environment layers it between these defaults
and the user's own settings (the multi-edge presets turn on ``path`` mobility there).

Every switch that is off takes no random draws, so the seeded trajectories of the other
processes do not change when a new switch is added; the thermal model takes none at all
after ``reset`` (its path depends on the plans, never on extra draws), so the random
future (fading, load, users, outages, mobility) is the same for every policy.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from .mobility import PathMobility
from .system import SCENARIO_DIR, Scenario, SystemSnapshot, make_snapshot, reject_unknown_keys
from .thermal import ThermalModel, capped_levels

MOBILITY_MODELS = ("random-walk", "path")


@dataclass
class DynamicsConfig:
    """Which dynamics are on and how strong they are."""

    fading: bool = True
    """Gauss-Markov Rayleigh fading (coefficient from each server's ``fading_correlation``)."""
    shadowing: bool = True
    """Draw log-normal shadowing per server at the start of each episode."""
    mobility: bool = True
    """Move the device (model: ``mobility_model``)."""
    mobility_model: str = "random-walk"
    """``random-walk``: each device-server distance follows a reflected Gaussian random walk;
    ``path``: the user moves along a road past the servers, with coverage and handover
    (:mod:`core.mobility`)."""
    speed_km_per_token: float = 0.005
    """Standard deviation of one token's distance step (``random-walk``)."""
    min_distance_km: float = 0.02
    """Reflecting bounds of the walk (``path``: the minimum distance only)."""
    max_distance_km: float = 1.5
    server_spacing_km: float = 0.2
    """``path``: distance between neighbouring servers along the road (ITU-R M.2135
    urban-microcell inter-site distance)."""
    coverage_radius_km: float = 0.2 / math.sqrt(3.0)
    """``path``: a server is out of range beyond this distance (hexagonal cell radius ISD/√3)."""
    mean_speed_m_per_s: float = 30.0 / 3.6
    """``path``: Gauss-Markov mean speed v̄ (30 km/h, ITU-R M.2135 base-coverage urban)."""
    speed_std_m_per_s: float = 0.2 * 30.0 / 3.6
    """``path``: Gauss-Markov speed deviation σ (an assumption: 0.2·v̄)."""
    gauss_markov_alpha: float = 0.85
    """``path``: memory α per 0.5 s (ns-3 GaussMarkovMobilityModel example)."""
    token_interval_s: float = 0.02
    """``path``: time the user moves per token, fixed so the trajectory does not depend on
    the plans (≈ 1/51.5 tok/s, llama.cpp Hexagon Llama-3.2-1B decode on Snapdragon 8 Elite);
    also the thermal model's Δt when ``advance`` is not told the token's length."""
    thermal: bool = True
    """Device thermal throttling (on by default: a phone cannot sustain its first-run speed;
    docs/system-model.md, dynamics)."""
    ambient_temp_c: float = 25.0
    """T_amb (room temperature, an assumption)."""
    thermal_resistance_k_per_w: float = 12.0
    """R_th = τ/C, τ = 540 s, C = 45 J/K (Galaxy S25+ measurements, S25_THERMAL project)."""
    thermal_time_constant_s: float = 540.0
    """τ (same source)."""
    throttle_temps_c: tuple[float, ...] = (42.0,)
    """Ascending thresholds; above ``throttle_temps_c[i]`` the device is capped to
    ``throttle_fractions[i]`` of its top speed (42 °C: the S25+'s throttle point)."""
    throttle_fractions: tuple[float, ...] = (0.5,)
    """Speed caps, in (0, 1], descending (≈ 50%: S25+; iPhone 16 Pro decode loses nearly half,
    arXiv:2603.23640)."""
    thermal_initial_temp_c: tuple[float, float] = (25.0, 45.0)
    """[lo, hi]: a request starts at a temperature drawn uniformly from it (an assumption:
    what earlier use left the phone at); lo = hi for a fixed start."""
    load: bool = True
    """Markov chain over ``load_levels`` for each server's background load."""
    load_levels: tuple[float, ...] = (0.0, 0.5, 0.8, 0.95)
    """Background-load levels ρ (fraction of the server taken by other users)."""
    load_stay_prob: float = 0.8
    """Probability that a server's load level stays the same for the next token."""
    background_users: bool = True
    """Birth-death process of the users batched on each ``batched`` server (on by default;
    no draws on a scenario without batched servers)."""
    user_arrival_prob: float = 0.1
    """Per-token probability that one more user joins a batched server."""
    user_departure_prob: float = 0.02
    """Per-token probability that each batched user leaves."""
    max_background_users: int = 16
    """Cap on B (a server's batch slots besides this user)."""
    outages: bool = True
    """Servers may go down (their KV caches are lost).  On by default so that every
    mechanism of the model is exercised; needs a model that fits the device."""
    outage_prob: float = 0.02
    """Per-token probability that an up server fails."""
    outage_mean_tokens: float = 8.0
    """Mean length of an outage in tokens (geometric)."""

    def __post_init__(self) -> None:
        self.load_levels = tuple(float(x) for x in self.load_levels)
        if not self.load_levels or any(not (0.0 <= x < 1.0) for x in self.load_levels):
            raise ValueError(f"dynamics.load_levels must be non-empty values in [0, 1), got {self.load_levels}")
        for key in ("speed_km_per_token", "outage_prob", "load_stay_prob", "user_arrival_prob",
                    "user_departure_prob"):
            v = getattr(self, key)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"dynamics.{key} must be finite and >= 0, got {v!r}")
        if not (0 < self.min_distance_km < self.max_distance_km):
            raise ValueError("dynamics needs 0 < min_distance_km < max_distance_km")
        if isinstance(self.max_background_users, bool) or not float(self.max_background_users).is_integer() \
                or self.max_background_users < 0:
            raise ValueError(f"dynamics.max_background_users must be an integer >= 0, got {self.max_background_users!r}")
        self.max_background_users = int(self.max_background_users)
        if self.load_stay_prob > 1 or self.outage_prob > 1 or self.user_arrival_prob > 1 \
                or self.user_departure_prob > 1:
            raise ValueError("dynamics probabilities must lie in [0, 1]")
        if not self.outage_mean_tokens >= 1:
            raise ValueError(f"dynamics.outage_mean_tokens must be >= 1, got {self.outage_mean_tokens!r}")
        self._check_new_keys()

    def _check_new_keys(self) -> None:
        """Mobility along a path and the thermal model."""
        if self.mobility_model not in MOBILITY_MODELS:
            raise ValueError(f"dynamics.mobility_model must be one of {list(MOBILITY_MODELS)}, "
                             f"got {self.mobility_model!r}")
        for key in ("server_spacing_km", "coverage_radius_km", "token_interval_s", "thermal_resistance_k_per_w",
                    "thermal_time_constant_s"):
            v = getattr(self, key)
            if not (_finite(v) and v > 0):
                raise ValueError(f"dynamics.{key} must be finite and > 0, got {v!r}")
        for key in ("mean_speed_m_per_s", "speed_std_m_per_s"):
            v = getattr(self, key)
            if not (_finite(v) and v >= 0):
                raise ValueError(f"dynamics.{key} must be finite and >= 0, got {v!r}")
        if not (_finite(self.gauss_markov_alpha) and 0 <= self.gauss_markov_alpha <= 1):
            raise ValueError(f"dynamics.gauss_markov_alpha must lie in [0, 1], got {self.gauss_markov_alpha!r}")
        if not _finite(self.ambient_temp_c):
            raise ValueError(f"dynamics.ambient_temp_c must be finite, got {self.ambient_temp_c!r}")
        temps, fracs = tuple(self.throttle_temps_c), tuple(self.throttle_fractions)
        if len(temps) != len(fracs):
            raise ValueError(f"dynamics.throttle_temps_c ({len(temps)}) and throttle_fractions ({len(fracs)}) "
                             "must have the same length")
        if not all(_finite(t) for t in temps) or list(temps) != sorted(set(temps)):
            raise ValueError(f"dynamics.throttle_temps_c must be finite and strictly ascending, got {temps!r}")
        if not all(_finite(f) and 0 < f <= 1 for f in fracs) or list(fracs) != sorted(fracs, reverse=True):
            raise ValueError(f"dynamics.throttle_fractions must lie in (0, 1] and descend, got {fracs!r}")
        self.throttle_temps_c = tuple(float(t) for t in temps)
        self.throttle_fractions = tuple(float(f) for f in fracs)
        init = tuple(self.thermal_initial_temp_c)
        if len(init) != 2 or not all(_finite(t) for t in init) or init[0] > init[1]:
            raise ValueError(f"dynamics.thermal_initial_temp_c must be [lo, hi] with lo <= hi, got {init!r}")
        self.thermal_initial_temp_c = (float(init[0]), float(init[1]))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DynamicsConfig":
        reject_unknown_keys(cls, data, "dynamics")
        return cls(**data)


def scenario_dynamics(name_or_path: str | Path) -> dict[str, Any]:
    """The ``dynamics:`` section of a scenario preset (``configs/scenarios/NAME.yaml``) or
    YAML path: dynamics settings that belong to that world (e.g. ``mobility_model: path``
    on a road lined with edge servers); {} when it has none.  Its keys are checked
    against :class:`DynamicsConfig`."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        return {}  # load_scenario reports a missing scenario with its own message
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return {}  # likewise: load_scenario names the YAML error
    section = data.get("dynamics") if isinstance(data, Mapping) else None
    if section is None:
        return {}
    reject_unknown_keys(DynamicsConfig, section, f"scenario {path.name}: dynamics")
    return dict(section)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


class MECProcess:
    """The state of the system's randomness for one episode."""

    def __init__(self, scenario: Scenario, config: DynamicsConfig) -> None:
        self.scenario = scenario
        self.config = config
        m = scenario.num_servers
        self.h = np.ones(m, dtype=complex)
        self.shadow_db = np.zeros(m)
        self.distance_km = np.array([s.distance_km for s in scenario.servers], dtype=float)
        levels = np.array(config.load_levels)
        self.load_state = np.array([int(np.argmin(np.abs(levels - s.load))) for s in scenario.servers])
        self.down_for = np.zeros(m, dtype=int)
        self.rho = np.array([s.fading_correlation for s in scenario.servers])
        self.batched = np.array([s.load_model == "batched" for s in scenario.servers], dtype=bool)
        self.users = np.array([s.background_users for s in scenario.servers], dtype=int)
        # admission control: a user joins only while its KV cache fits beside the others'
        self.user_cap = np.array([min(config.max_background_users,
                                      int(s.mem_capacity_bytes // s.background_kv_bytes_per_user)
                                      if s.background_kv_bytes_per_user > 0 else config.max_background_users)
                                  for s in scenario.servers], dtype=int)
        if config.background_users and np.any(self.users[self.batched] > config.max_background_users):
            raise ValueError(f"a server starts with more background users than dynamics.max_background_users "
                             f"({config.max_background_users})")
        self.path = PathMobility(m, spacing_km=config.server_spacing_km,
                                 coverage_radius_km=config.coverage_radius_km,
                                 mean_speed_m_per_s=config.mean_speed_m_per_s,
                                 speed_std_m_per_s=config.speed_std_m_per_s, alpha=config.gauss_markov_alpha,
                                 min_distance_km=config.min_distance_km) \
            if config.mobility_model == "path" else None
        self.thermal = ThermalModel(ambient_c=config.ambient_temp_c,
                                    resistance_k_per_w=config.thermal_resistance_k_per_w,
                                    time_constant_s=config.thermal_time_constant_s,
                                    throttle_temps_c=config.throttle_temps_c,
                                    throttle_fractions=config.throttle_fractions) if config.thermal else None

    def reset(self, rng: np.random.Generator) -> None:
        cfg, sc = self.config, self.scenario
        m = sc.num_servers
        self.distance_km = np.array([s.distance_km for s in sc.servers], dtype=float)
        levels = np.array(cfg.load_levels)
        self.load_state = np.array([int(np.argmin(np.abs(levels - s.load))) for s in sc.servers])
        self.down_for = np.zeros(m, dtype=int)
        self.users = np.array([s.background_users for s in sc.servers], dtype=int)
        self.h = (rng.standard_normal(m) + 1j * rng.standard_normal(m)) / math.sqrt(2.0) if cfg.fading \
            else np.ones(m, dtype=complex)
        self.shadow_db = rng.normal(0.0, [s.shadowing_std_db for s in sc.servers]) if cfg.shadowing \
            else np.zeros(m)
        # the new processes draw after the old ones, and only when switched on
        if self.path is not None:
            self.path.reset(rng)
            self.distance_km = self.path.distances_km
        if self.thermal is not None:
            lo, hi = cfg.thermal_initial_temp_c
            self.thermal.temp_c = float(rng.uniform(lo, hi))

    def advance(self, rng: np.random.Generator, *, device_energy_j: float | None = None,
                elapsed_s: float | None = None) -> list[int]:
        """One token later.  Returns the servers (1-based locations) that just became
        unavailable (an outage began or the device left their coverage): the KV caches they
        held are lost.

        ``device_energy_j`` / ``elapsed_s``: the device energy and the length of the token
        just played (the engine's ``Result.energy_j`` and ``makespan_s``), which heat the
        phone (``thermal``); ``elapsed_s`` defaults to ``token_interval_s``, the energy to 0
        (an idle phone cools towards ambient).  Ignored when ``thermal`` is off.
        """
        cfg = self.config
        m = self.scenario.num_servers
        for name, v in (("device_energy_j", device_energy_j), ("elapsed_s", elapsed_s)):
            if v is not None and not (_finite(v) and v >= 0):
                raise ValueError(f"advance: {name} must be finite and >= 0, got {v!r}")
        up_before = self.server_up
        if cfg.fading:
            w = (rng.standard_normal(m) + 1j * rng.standard_normal(m)) / math.sqrt(2.0)
            self.h = self.rho * self.h + np.sqrt(1.0 - self.rho ** 2) * w
        if cfg.mobility and self.path is not None:
            self.path.step(rng, cfg.token_interval_s)
            self.distance_km = self.path.distances_km
        elif cfg.mobility and cfg.speed_km_per_token > 0:
            d = self.distance_km + rng.normal(0.0, cfg.speed_km_per_token, m)
            lo, hi = cfg.min_distance_km, cfg.max_distance_km
            d = np.where(d < lo, 2 * lo - d, d)
            d = np.where(d > hi, 2 * hi - d, d)
            self.distance_km = np.clip(d, lo, hi)  # a step can only overshoot by far less than the range
        if cfg.load and len(cfg.load_levels) > 1:
            move = rng.random(m) >= cfg.load_stay_prob
            step = np.where(rng.random(m) < 0.5, -1, 1)
            top = len(cfg.load_levels) - 1
            new = self.load_state + np.where(move, step, 0)
            new = np.where(new < 0, 1, np.where(new > top, top - 1, new))  # reflect at the ends
            self.load_state = new
        if cfg.background_users and self.batched.any():
            self.users = self._step_users(rng)
        if cfg.outages:
            for k in range(m):
                if self.down_for[k] > 0:
                    self.down_for[k] -= 1
                elif rng.random() < cfg.outage_prob:
                    self.down_for[k] = int(rng.geometric(1.0 / cfg.outage_mean_tokens))
        if self.thermal is not None:
            dt = cfg.token_interval_s if elapsed_s is None else float(elapsed_s)
            energy = 0.0 if device_energy_j is None else float(device_energy_j)
            if dt > 0:
                self.thermal.step(energy / dt, dt)
        up_after = self.server_up
        return [k + 1 for k in range(m) if up_before[k] and not up_after[k]]

    def rollout(self, rng: np.random.Generator, num_tokens: int) -> list[SystemSnapshot]:
        """Reset, then the snapshots of ``num_tokens`` tokens (advancing between them with no
        device energy): the episode's random future, as a policy driven by the same seeded
        generator sees it (the thermal state here is an idle phone's; with ``thermal`` on
        record the snapshots the policy actually met instead)."""
        if isinstance(num_tokens, bool) or not isinstance(num_tokens, (int, np.integer)) or num_tokens < 1:
            raise ValueError(f"rollout needs num_tokens >= 1, got {num_tokens!r}")
        self.reset(rng)
        out = [self.snapshot()]
        for _ in range(num_tokens - 1):
            self.advance(rng)
            out.append(self.snapshot())
        return out

    def _step_users(self, rng: np.random.Generator) -> np.ndarray:
        """One token of the birth-death process on the batched servers (others keep 0)."""
        cfg = self.config
        m = self.scenario.num_servers
        arrive = (rng.random(m) < cfg.user_arrival_prob) & (self.users < self.user_cap)
        leave = rng.binomial(self.users, cfg.user_departure_prob)
        return np.where(self.batched, self.users + arrive.astype(int) - leave, self.users)

    @property
    def loads(self) -> list[float]:
        """Time-sliced ρ per server (0 on batched servers, whose background is B users)."""
        return [0.0 if b else self.config.load_levels[s] for s, b in zip(self.load_state, self.batched)]

    @property
    def background_users(self) -> list[int]:
        return [int(u) for u in self.users]

    @property
    def in_range(self) -> list[bool]:
        """Per server: within coverage (always true outside the ``path`` mobility model)."""
        if self.path is None:
            return [True] * self.scenario.num_servers
        return [bool(x) for x in self.path.in_range]

    @property
    def server_up(self) -> list[bool]:
        """Per server: usable now (no outage and in range)."""
        return [bool(d == 0) and r for d, r in zip(self.down_for, self.in_range)]

    @property
    def temperature_c(self) -> float | None:
        """The phone's temperature (None when ``thermal`` is off)."""
        return None if self.thermal is None else self.thermal.temp_c

    @property
    def speed_fraction(self) -> float:
        """The throttle cap on the device's speed now (1: unthrottled)."""
        return 1.0 if self.thermal is None else self.thermal.speed_fraction

    @property
    def dvfs_levels_available(self) -> int:
        """How many of the device's DVFS levels (lowest first) run at their own frequency now;
        in the snapshot the levels above them run at the highest of these."""
        freqs = self.scenario.device.freqs_hz
        frac = self.speed_fraction
        return len(freqs) if frac >= 1.0 else capped_levels(freqs, frac)

    def snapshot(self) -> SystemSnapshot:
        """The system now: the engine's input.  Out-of-range and failed servers are down; a
        throttled device has its frequencies capped at the highest available level and its
        DRAM bandwidth scaled by the throttle fraction."""
        snap = make_snapshot(self.scenario, fading_power=list(np.abs(self.h) ** 2),
                             shadowing_db=list(self.shadow_db), loads=self.loads,
                             distances_km=list(self.distance_km), server_up=self.server_up,
                             background_users=self.background_users)
        frac = self.speed_fraction
        if frac < 1.0:
            dev = copy.copy(snap.device)  # never mutate the scenario's device
            n = self.dvfs_levels_available
            cap = dev.freqs_hz[n - 1]
            dev.freqs_hz = tuple(min(f, cap) for f in dev.freqs_hz)
            dev.mem_bw_bytes_per_s = dev.mem_bw_bytes_per_s * frac
            snap.device = dev
        return snap
