"""Device thermal throttling: a first-order thermal RC model of the phone.

The phone is one lumped thermal mass: C·dT/dt = P − (T − T_amb)/R_th, i.e.

    dT/dt = (P·R_th − (T − T_amb)) / τ,   τ = R_th·C,

with P the device's power (every joule the phone spends — compute, radio, idle — ends up
as heat in the handset).  Over one token of length Δt at mean power P = E/Δt the exact
solution is

    T(t+Δt) = T_ss + (T(t) − T_ss)·exp(−Δt/τ),   T_ss = T_amb + P·R_th.

Throttling: above each threshold ``throttle_temps_c[i]`` the governor caps the device at
``throttle_fractions[i]`` of its top speed: the highest DVFS level whose frequency is at most
that fraction of the top frequency (the lowest level if none is), and the DRAM bandwidth
scaled by the same fraction (phone governors clock the memory bus down with the cores; in
the roofline model decode is memory-bound, so a core-only cap would not slow it).  Below
every threshold the full device is available again (recovery when idle: with only the idle
power the steady state T_amb + P_idle·R_th lies below the threshold).

Default parameters and sources:

* τ = 540 s and C = 45 J/K (so R_th = τ/C = 12 K/W): lumped battery/chassis constants
  measured on a Samsung Galaxy S25+ (Snapdragon 8 Elite) by the S25_THERMAL project,
  https://github.com/DaSettingsPNGN/S25_THERMAL (write-up: "Predictive Thermal Management
  On Mobile", r/programming, 2025), which also reports the throttle point, 42 °C, at
  which "Samsung aggressively throttles performance by about 50%".
* One stage at 42 °C to 0.5 of full speed: the S25 figure above, and the sustained-load
  benchmark of Tummalapalli et al., "LLM Inference at the Edge: Mobile, NPU, and GPU
  Performance Efficiency Trade-offs Under Sustained Load", arXiv:2603.23640 (2026): the
  iPhone 16 Pro "loses nearly half its throughput within two iterations" of Qwen 2.5 1.5B
  decode.
* T_amb = 25 °C (room temperature, an assumption).  The starting temperature of a request
  is drawn uniformly from ``thermal_initial_temp_c`` (what earlier use left the phone at;
  an assumption, not a measurement).
"""
from __future__ import annotations

import math
from typing import Sequence


class ThermalModel:
    """The phone's temperature and the throttle cap it implies."""

    def __init__(self, *, ambient_c: float, resistance_k_per_w: float, time_constant_s: float,
                 throttle_temps_c: Sequence[float], throttle_fractions: Sequence[float]) -> None:
        self.ambient_c = float(ambient_c)
        self.resistance_k_per_w = float(resistance_k_per_w)
        self.time_constant_s = float(time_constant_s)
        self.throttle_temps_c = tuple(float(t) for t in throttle_temps_c)
        self.throttle_fractions = tuple(float(f) for f in throttle_fractions)
        self.temp_c = self.ambient_c

    def steady_state_c(self, power_w: float) -> float:
        """T_ss = T_amb + P·R_th."""
        return self.ambient_c + power_w * self.resistance_k_per_w

    def step(self, power_w: float, elapsed_s: float) -> float:
        """Advance by ``elapsed_s`` at constant ``power_w``; returns the new temperature (°C)."""
        if not (math.isfinite(power_w) and power_w >= 0):
            raise ValueError(f"device power must be finite and >= 0 W, got {power_w!r}")
        if not (math.isfinite(elapsed_s) and elapsed_s >= 0):
            raise ValueError(f"elapsed time must be finite and >= 0 s, got {elapsed_s!r}")
        t_ss = self.steady_state_c(power_w)
        self.temp_c = t_ss + (self.temp_c - t_ss) * math.exp(-elapsed_s / self.time_constant_s)
        return self.temp_c

    @property
    def speed_fraction(self) -> float:
        """Cap on the device's speed now: 1 below every threshold, else the fraction of the
        highest threshold crossed."""
        frac = 1.0
        for t, f in zip(self.throttle_temps_c, self.throttle_fractions):
            if self.temp_c > t:
                frac = min(frac, f)
        return frac


def capped_levels(freqs_hz: Sequence[float], fraction: float) -> int:
    """How many DVFS levels (ascending ``freqs_hz``) run at most ``fraction`` of the top
    frequency; at least 1 (the lowest level is never taken away)."""
    top = freqs_hz[-1]
    n = sum(1 for f in freqs_hz if f <= fraction * top * (1 + 1e-12))
    return max(1, n)
