"""Mobility along a road lined with edge servers, with coverage and handover.

The servers stand along a straight path at positions x_k = k·``server_spacing_km``
(k = 0..M−1, server k+1 of the scenario); the user moves along it.  The device–server
distance is max(|x − x_k|, ``min_distance_km``) (the scenario's ``distance_km`` is not
used in this mode), and server k is *in range* while that distance is at most
``coverage_radius_km``; out of range its link is gone (the snapshot marks it down, the
session state it held is dropped: no service migration between edges).  Where the
coverage of two servers overlaps both are usable, so which server serves the request is
the agent's handover decision; leaving a server's coverage forces it.

Speed: one-dimensional Gauss-Markov mobility (Liang & Haas, INFOCOM 1999; the model of
ns-3's ``GaussMarkovMobilityModel``).  With a = α^(Δt/Δt_ref),

    v(t+Δt) = a·v(t) + (1 − a)·s·v̄ + √(1 − a²)·σ·w,   w ~ N(0, 1),   x(t+Δt) = x(t) + v·Δt,

s = ±1 the direction drawn at the start of each episode; the user reflects at the ends of
the path [−R, (M−1)·spacing + R] (R the coverage radius), where it starts uniformly.

Defaults and sources:

* spacing 0.2 km: the inter-site distance of the ITU-R IMT-Advanced urban-microcell test
  environment (ITU-R M.2135, as tabulated in "Efficient Control Channel Resource Allocation
  for VoIP in OFDMA-Based Packet Radio Networks", EURASIP JWCN 2011:712658, table 4,
  https://jwcn-eurasipjournals.springeropen.com/articles/10.1155/2011/712658/tables/4:
  ISD 200 m microcell, 500 m base-coverage urban).  Coverage radius
  0.2/√3 ≈ 0.115 km: the cell radius of a hexagonal layout with that ISD, so neighbouring
  coverages overlap by ~30 m along the path.
* v̄ = 30 km/h: the UE speed of interest of the base-coverage-urban environment (same
  table; the microcell's is 3 km/h), so that handovers occur within long requests.
  σ = 0.2·v̄ is an assumption.
* α = 0.85 per Δt_ref = 0.5 s: the parameters of ns-3's Gauss-Markov example
  (nsnam.org, ``ns3::GaussMarkovMobilityModel`` class reference: TimeStep 0.5 s, Alpha 0.85).
* Δt per token = ``token_interval_s`` (fixed, so that the trajectory does not depend on the
  agent's plans and a recorded future is the same for every policy): 0.02 s ≈ 1/51.5 tok/s,
  Llama-3.2-1B decode on a Snapdragon 8 Elite (llama.cpp ``docs/backend/hexagon/README.md``).
"""
from __future__ import annotations

import math

import numpy as np

GM_REFERENCE_STEP_S = 0.5
"""Δt_ref of the Gauss-Markov α (ns-3's example TimeStep)."""


class PathMobility:
    """Position and velocity of the user on the road."""

    def __init__(self, num_servers: int, *, spacing_km: float, coverage_radius_km: float,
                 mean_speed_m_per_s: float, speed_std_m_per_s: float, alpha: float,
                 min_distance_km: float) -> None:
        self.positions_km = np.arange(num_servers, dtype=float) * spacing_km
        self.coverage_radius_km = coverage_radius_km
        self.mean_speed_m_per_s = mean_speed_m_per_s
        self.speed_std_m_per_s = speed_std_m_per_s
        self.alpha = alpha
        self.min_distance_km = min_distance_km
        self.lo_km = -coverage_radius_km
        self.hi_km = float(self.positions_km[-1]) + coverage_radius_km
        self.x_km = 0.0
        self.v_m_per_s = 0.0
        self.direction = 1.0

    def reset(self, rng: np.random.Generator) -> None:
        self.x_km = float(rng.uniform(self.lo_km, self.hi_km))
        self.direction = 1.0 if rng.random() < 0.5 else -1.0
        self.v_m_per_s = self.direction * self.mean_speed_m_per_s

    def step(self, rng: np.random.Generator, dt_s: float) -> None:
        a = self.alpha ** (dt_s / GM_REFERENCE_STEP_S)
        w = rng.standard_normal()
        self.v_m_per_s = (a * self.v_m_per_s + (1 - a) * self.direction * self.mean_speed_m_per_s
                          + math.sqrt(1 - a * a) * self.speed_std_m_per_s * w)
        x = self.x_km + self.v_m_per_s * dt_s / 1000.0
        if x > self.hi_km or x < self.lo_km:  # reflect at the ends of the road and turn round
            x = 2 * self.hi_km - x if x > self.hi_km else 2 * self.lo_km - x
            x = min(max(x, self.lo_km), self.hi_km)
            self.direction = -self.direction
            self.v_m_per_s = -self.v_m_per_s
        self.x_km = x

    @property
    def distances_km(self) -> np.ndarray:
        return np.maximum(np.abs(self.x_km - self.positions_km), self.min_distance_km)

    @property
    def in_range(self) -> np.ndarray:
        return np.abs(self.x_km - self.positions_km) <= self.coverage_radius_km
