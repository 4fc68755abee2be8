"""The handset's radio: power drawn to send and receive, while waiting, and after the last transfer.

A server's link has a *link type* (``ServerConfig.link_type``): ``"generic"`` keeps the
original model (the device draws its transmit level p_q while uploading and ``rx_power_w``
while downloading, nothing extra while waiting, 1 ms per transfer); ``"lte"``,
``"5g-nr"`` and ``"wifi"`` use a measured, throughput-based power model:

    P_radio(t_u, t_d) = α_u·t_u + α_d·t_d + β            (t in Mb/s; Huang et al. 2012)

where β is the radio's power in connected mode while it moves data, and
``connected_wait_w`` the radio's power in connected mode with no data (LTE: the tail
/ DRX base power).  The transmit level q (a radiated power within 3GPP power class 3,
≤ 23 dBm ≈ 0.2 W) sets the uplink rate through the Shannon formula of
:mod:`core.system`; the power the handset *draws* at that rate comes from the model.

What the cost engine counts, each term once
-------------------------------------------
* Waiting.  Whenever the device is not computing, it draws
  ``P_wait = idle_power_w + Σ connected_wait_w`` (the SoC baseline plus the connected-mode
  power of every distinct radio the scenario uses).  :func:`core.system.make_snapshot`
  folds the radio part into the snapshot's ``device.idle_power_w``, so the engine's
  idle term P_idle·(makespan − device busy time) and the solvers, which read the same
  field, account for it identically.
* Transfers.  During the airtime of an upload at rate r the radio draws α_u·r + β; the
  waiting term above already charges ``connected_wait_w`` for that time, so the
  engine's per-link power is the *extra* draw
  ``α_u·r + β − connected_wait_w`` (downloads: α_d·r + β − connected_wait_w).  These are
  the snapshot's ``uplink_power_w`` / ``downlink_power_w``, read by
  ``Instance.transfer`` and its vectorised twin ``Instance.transfer_table``.
* Tail.  After the last transfer the radio stays connected for ``tail_s`` (LTE: the RRC
  inactivity tail) at ``connected_wait_w``.  Decoding is a stream of tokens, each far
  shorter than the tail, so between tokens the radio never returns to idle: inside a
  token the tail after a transfer is the waiting power above; the tail after the LAST
  token of a session is one constant per session, :func:`session_tail_energy_j`, not
  part of any token's cost (it does not depend on the placement).
* Not counted: the radio's connected-mode draw while the device itself computes (the
  engine charges compute energy only for that time), the RRC promotion at the start
  of a session (a per-session constant like the tail).  Both are stated here so that a
  reader knows the per-token energy is a lower bound by at most
  Σ connected_wait_w × device busy time.

The model is linear in the rate and was fitted at measured cellular rates (a few to a
few tens of Mb/s).  At the 50-300 Mb/s that the generic default world's Shannon links
reach, the instantaneous power it gives exceeds what a handset can draw, while the
energy per bit stays bounded; build radio scenarios at measured rates
(:func:`distance_for_rate_km`, :data:`MEASURED_UPLINK_BPS`).

Under a throughput model the energy per bit, α_u + (β − connected_wait_w)/r, falls as
the rate grows, so a lower transmit level (lower rate) never saves radio energy: the
levels matter for the generic model and for the rate, not as an energy knob.

Sources (every coefficient cites the file or page it was read from):
* LTE: Huang, Qian, Gerber, Mao, Sen, Spatscheck, "A Close Examination of Performance and
  Power Characteristics of 4G LTE Networks", MobiSys 2012 (power model
  P = α_u·t_u + α_d·t_d + β; median LTE uplink 6 Mb/s, downlink 13 Mb/s, abstract).
  Coefficients as shipped in AT&T's ARO / Video Optimizer, which implements that model:
  github.com/attdevsupport/VideoOptimizer, ``ARO.Core/src/main/resources/lte.conf``
  (LTE_ALPHA_UP=438.39 mW/Mbps, LTE_ALPHA_DOWN=51.97 mW/Mbps, LTE_BETA=1.2 W,
  P_TAIL=1.06 W, T_LONG_DRX=10 s after INACTIVITY_TIMER=0.1 s, P_PROMOTION=1.21 W,
  T_PROMOTION=0.26 s).
* Wi-Fi: same repository, ``ARO.Core/src/main/resources/WiFi.conf`` and
  ``lte.conf`` (POWER_WIFI_ACTIVE=0.403 W, POWER_WIFI_STANDBY=0.02 W,
  WIFI_TAIL_TIME=0.25 s): a constant active power, no throughput term.
* 5G NR (non-standalone, low band): α_u is fitted on the measurements of Narayanan et
  al., "A Variegated Look at 5G in the Wild: Performance, Power, and QoE Implications",
  SIGCOMM 2021 — their artifact github.com/SIGCOMM21-5G/artifact,
  ``Data-Transfer-Power/MN-Transfer/data-processed/MN-Transfer_combined.csv``, rows
  ``uplink,NSALow,Verizon`` (Samsung S20 Ultra, Monsoon power monitor, iPerf at target
  rates 1/10/20/30/40 Mb/s, 51 one-second samples each).  A least-squares line through
  the five per-run means (:data:`NR_UPLINK_FIT_POINTS`, the paper's Figure 11 method with
  whole runs instead of ±0.5 Mb/s bins) gives a slope of 32.2 mW/Mbps; its intercept
  (3.20 W) is the whole phone with its screen on, not a radio power, so β, the
  connected-mode power, the downlink slope and the tail are the LTE values (NSA keeps
  the LTE anchor connected) and the profile says so (``measured=False``).  Note the
  device generations: Huang's LTE phone (2012) pays 438 mW/Mbps, the S20's NR radio
  32 mW/Mbps, so an LTE scenario's uplink energy per bit is about 14x the 5G one.
* Measured uplink medians: LTE 6 Mb/s (Huang et al. 2012, abstract); 5G 21.08 Mb/s in
  Q3 2021 (29.52 Mb/s in Q3 2020) — Ookla, "Growing and Slowing: The State of 5G
  Worldwide in 2021" (Speedtest Intelligence, 20 Dec 2021).
* Per-transfer latency: "only the top 5% users regularly experience less than 20 ms of
  minimum latency" on mobile networks ("Third-Party Assessment of Mobile Performance in
  the 5G Era", arXiv 2507.18834).  The per-type defaults below are scenario
  assumptions consistent with that (one-way, per transfer), not measured medians.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

UE_MAX_TX_POWER_W = 0.2
"""3GPP UE power class 3: 23 dBm ≈ 0.2 W radiated (3GPP TS 38.101-1 / 36.101)."""

GENERIC = "generic"


def dbm_to_w(dbm: float) -> float:
    """Power in watts of a level given in dBm."""
    return 10.0 ** ((dbm - 30.0) / 10.0)


@dataclass(frozen=True)
class RadioProfile:
    """Throughput-based power model of one radio technology (handset side)."""

    name: str
    alpha_up_w_per_mbps: float
    """α_u: extra power per Mb/s of uplink throughput."""
    alpha_down_w_per_mbps: float
    """α_d: extra power per Mb/s of downlink throughput."""
    beta_w: float
    """β: connected-mode power while data moves, independent of the rate."""
    connected_wait_w: float
    """Connected-mode power with no data (LTE: the tail / DRX base power)."""
    tail_s: float
    """Time the radio stays connected after the last transfer."""
    latency_s: float
    """Default fixed latency of one transfer over this link (scenario assumption)."""
    measured: bool
    """False when the coefficients are a labelled stand-in (see the module docstring)."""

    def __post_init__(self) -> None:
        for key in ("alpha_up_w_per_mbps", "alpha_down_w_per_mbps", "beta_w", "connected_wait_w",
                    "tail_s", "latency_s"):
            v = getattr(self, key)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"radio profile {self.name!r}: {key} must be finite and >= 0, got {v!r}")
        if self.beta_w < self.connected_wait_w:
            raise ValueError(f"radio profile {self.name!r}: beta_w ({self.beta_w}) must be >= "
                             f"connected_wait_w ({self.connected_wait_w}): moving data cannot draw less "
                             "than waiting")


# ARO lte.conf: LTE_ALPHA_UP=438.39 mW/Mbps, LTE_ALPHA_DOWN=51.97 mW/Mbps, LTE_BETA=1.2 W,
# P_TAIL=1.06 W, tail = INACTIVITY_TIMER 0.1 s + T_LONG_DRX 10 s (Huang et al., MobiSys 2012 model).
_LTE = dict(alpha_up_w_per_mbps=0.43839, alpha_down_w_per_mbps=0.05197, beta_w=1.2,
            connected_wait_w=1.06, tail_s=0.1 + 10.0)

RADIO_PROFILES: dict[str, RadioProfile] = {
    # latency 30 ms: scenario assumption (LTE above 5G's ~20 ms, arXiv 2507.18834)
    "lte": RadioProfile("lte", **_LTE, latency_s=30e-3, measured=True),
    # α_u fitted on Narayanan et al. SIGCOMM 2021 (NR_UPLINK_FIT_POINTS); the rest LTE stand-ins
    # (NSA keeps the LTE anchor; see module docstring); 15 ms per transfer (scenario assumption)
    "5g-nr": RadioProfile("5g-nr", **{**_LTE, "alpha_up_w_per_mbps": 0.0322}, latency_s=15e-3,
                          measured=False),
    # ARO WiFi.conf: POWER_WIFI_ACTIVE=0.403 W (constant while associated and active),
    # WIFI_TAIL_TIME=0.25 s; 3 ms per transfer (scenario assumption: a campus AP one hop away)
    "wifi": RadioProfile("wifi", alpha_up_w_per_mbps=0.0, alpha_down_w_per_mbps=0.0, beta_w=0.403,
                         connected_wait_w=0.403, tail_s=0.25, latency_s=3e-3, measured=True),
}

NR_UPLINK_FIT_POINTS: tuple[tuple[float, float], ...] = (
    # (mean uplink throughput Mb/s, mean whole-phone power W) of each iPerf run, 5G NSA low band,
    # Verizon, S20 Ultra: SIGCOMM21-5G/artifact MN-Transfer_combined.csv (51 samples per run)
    (1.021, 3.1539), (10.203, 3.8366), (20.420, 3.5428), (30.623, 4.1767), (40.919, 4.6031),
)
"""The points the ``5g-nr`` uplink slope is fitted on (least squares: 32.2 mW/Mbps)."""

LINK_TYPES = (GENERIC,) + tuple(RADIO_PROFILES)

GENERIC_LATENCY_S = 1e-3
"""The generic link's fixed per-transfer latency (the original model)."""

MEASURED_UPLINK_BPS: Mapping[str, float] = {
    "lte": 6e6,       # Huang et al., MobiSys 2012, abstract: median LTE uplink 6 Mb/s
    "5g-nr": 21.08e6,  # Ookla, State of 5G Worldwide 2021: global median 5G upload, Q3 2021
}
"""Measured median uplink rates, for building scenarios (:func:`distance_for_rate_km`)."""


def radio_profile(link_type: str) -> RadioProfile | None:
    """The profile of ``link_type`` (None for ``"generic"``); ValueError naming the known ones."""
    if link_type == GENERIC:
        return None
    if link_type not in RADIO_PROFILES:
        raise ValueError(f"unknown link_type {link_type!r}; known: {list(LINK_TYPES)}")
    return RADIO_PROFILES[link_type]


def transfer_power_w(profile: RadioProfile, rate_bps: float, uplink: bool) -> float:
    """Total radio power while moving data at ``rate_bps``: α·rate[Mb/s] + β."""
    if not (math.isfinite(rate_bps) and rate_bps >= 0):
        raise ValueError(f"rate_bps must be finite and >= 0, got {rate_bps!r}")
    alpha = profile.alpha_up_w_per_mbps if uplink else profile.alpha_down_w_per_mbps
    return alpha * rate_bps / 1e6 + profile.beta_w


def extra_transfer_power_w(profile: RadioProfile, rate_bps: float, uplink: bool) -> float:
    """What the engine adds during a transfer's airtime on top of the waiting power:
    α·rate + β − connected_wait_w (≥ 0 by the profile's check)."""
    return transfer_power_w(profile, rate_bps, uplink) - profile.connected_wait_w


def transfer_energy_j(profile: RadioProfile, nbytes: float, rate_bps: float, uplink: bool) -> float:
    """Total radio energy of moving ``nbytes`` at ``rate_bps`` (airtime × (α·rate + β))."""
    if not (math.isfinite(nbytes) and nbytes >= 0) or not rate_bps > 0:
        raise ValueError(f"need nbytes >= 0 and rate_bps > 0, got {nbytes!r}, {rate_bps!r}")
    return nbytes * 8.0 / rate_bps * transfer_power_w(profile, rate_bps, uplink)


def session_tail_energy_j(profile: RadioProfile) -> float:
    """Energy of the tail after the last transfer of a session: connected_wait_w · tail_s."""
    return profile.connected_wait_w * profile.tail_s


def check_tx_levels(tx_powers_w: tuple[float, ...], link_type: str) -> None:
    """A cellular link's transmit levels must stay within power class 3 (≤ 0.2 W radiated)."""
    if link_type in ("lte", "5g-nr"):
        too_high = [p for p in tx_powers_w if p > UE_MAX_TX_POWER_W * (1 + 1e-9)]
        if too_high:
            raise ValueError(f"device.tx_powers_w {list(tx_powers_w)} exceed the 3GPP power class 3 limit "
                             f"of {UE_MAX_TX_POWER_W} W (23 dBm) on a {link_type!r} link: {too_high}")


def distance_for_rate_km(rate_bps: float, bandwidth_hz: float, tx_power_w: float,
                         noise_dbm_per_hz: float = -174.0) -> float:
    """The distance at which the mean channel (|h|² = 1, 0 dB shadowing) gives ``rate_bps``:
    the inverse of r = B·log2(1 + p·g/(N0·B)) with g from the 128.1 + 37.6·log10(d) path
    loss.  Use it to place a server so that a scenario's uplink matches a measured median
    (e.g. ``MEASURED_UPLINK_BPS["lte"]``)."""
    if not (rate_bps > 0 and bandwidth_hz > 0 and tx_power_w > 0):
        raise ValueError("rate_bps, bandwidth_hz and tx_power_w must be > 0")
    snr = 2.0 ** (rate_bps / bandwidth_hz) - 1.0
    n0_w_per_hz = 10.0 ** ((noise_dbm_per_hz - 30.0) / 10.0)
    gain = snr * n0_w_per_hz * bandwidth_hz / tx_power_w
    loss_db = -10.0 * math.log10(gain)
    return 10.0 ** ((loss_db - 128.1) / 37.6)  # inverse of core.system.path_loss_db
