"""How the MEC system changes from one token to the next.

One :class:`MECProcess` per environment, driven by the environment's seeded generator:

* Rayleigh fading per server link, correlated in time by Gauss-Markov
  h(t+1) = ρ·h(t) + √(1-ρ²)·w, w ~ CN(0, 1) (Jakes-style block fading, docs/system-model.md §3);
  the power gain |h|² is Exp(1) in steady state.
* Log-normal shadowing per server, drawn once per episode (σ from the scenario).
* Mobility: the distance to each server follows a reflected Gaussian random walk.
* Edge background load: a birth-death Markov chain over discrete load levels
  (time-sliced servers).
* Background users (batched servers, opt-in ``background_users``): a discrete-time
  birth-death process per server.  Each token, B(t+1) = B(t) + A − D with arrivals
  A ~ Bernoulli(``user_arrival_prob``) (none when B = ``max_background_users`` or when
  one more user's KV cache would not fit the server: admission control) and
  departures D ~ Binomial(B(t), ``user_departure_prob``) (each user leaves
  independently).  Its stationary mean is about p_arrive / p_depart users when the cap
  does not bind.  It starts each episode at the scenario's ``background_users``.
* Outages (optional): an up server fails with a fixed probability per token and stays
  down for a geometric number of tokens; the KV caches it held are lost.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .system import Scenario, SystemSnapshot, make_snapshot


@dataclass
class DynamicsConfig:
    """Which dynamics are on and how strong they are."""

    fading: bool = True
    """Gauss-Markov Rayleigh fading (coefficient from each server's ``fading_correlation``)."""
    shadowing: bool = True
    """Draw log-normal shadowing per server at the start of each episode."""
    mobility: bool = True
    """Random walk of the device-server distances."""
    speed_km_per_token: float = 0.005
    """Standard deviation of one token's distance step."""
    min_distance_km: float = 0.02
    """Reflecting bounds of the walk."""
    max_distance_km: float = 1.5
    load: bool = True
    """Markov chain over ``load_levels`` for each server's background load."""
    load_levels: tuple[float, ...] = (0.0, 0.5, 0.8, 0.95)
    """Background-load levels ρ (fraction of the server taken by other users)."""
    load_stay_prob: float = 0.8
    """Probability that a server's load level stays the same for the next token."""
    background_users: bool = False
    """Birth-death process of the users batched on each ``batched`` server (off by default:
    seeded trajectories of existing configurations are unchanged)."""
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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DynamicsConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"dynamics: unknown key(s) {unknown}; known keys: {sorted(names)}")
        return cls(**data)


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

    def advance(self, rng: np.random.Generator) -> list[int]:
        """One token later.  Returns the servers (1-based locations) that just went down."""
        cfg = self.config
        m = self.scenario.num_servers
        if cfg.fading:
            w = (rng.standard_normal(m) + 1j * rng.standard_normal(m)) / math.sqrt(2.0)
            self.h = self.rho * self.h + np.sqrt(1.0 - self.rho ** 2) * w
        if cfg.mobility and cfg.speed_km_per_token > 0:
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
        failed: list[int] = []
        if cfg.outages:
            for k in range(m):
                if self.down_for[k] > 0:
                    self.down_for[k] -= 1
                elif rng.random() < cfg.outage_prob:
                    self.down_for[k] = int(rng.geometric(1.0 / cfg.outage_mean_tokens))
                    failed.append(k + 1)
        return failed

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
    def server_up(self) -> list[bool]:
        return [bool(d == 0) for d in self.down_for]

    def snapshot(self) -> SystemSnapshot:
        return make_snapshot(self.scenario, fading_power=list(np.abs(self.h) ** 2),
                             shadowing_db=list(self.shadow_db), loads=self.loads,
                             distances_km=list(self.distance_km), server_up=self.server_up,
                             background_users=self.background_users)
