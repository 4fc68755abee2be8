"""The dynamics (core.dynamics, core.thermal, core.mobility): each switch changes what it
claims, the defaults keep their seeded trajectories, everything is deterministic under a seed."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.cost import evaluate
from core.dynamics import DynamicsConfig, MECProcess
from core.models import load_model_spec
from core.system import DeviceConfig, Scenario, ServerConfig, make_snapshot
from core.thermal import ThermalModel, capped_levels
from core.tokens import TokenModel

QUIET = dict(fading=False, shadowing=False, mobility=False, load=False, outages=False)


def _three_servers() -> Scenario:
    return Scenario(servers=[ServerConfig(distance_km=0.1, load=0.5),
                             ServerConfig(distance_km=0.4, shadowing_std_db=6.0, fading_correlation=0.7),
                             ServerConfig(distance_km=0.8, load=0.8)])


# --------------------------------------------------------------------------- defaults
def test_switches_off_keep_the_seeded_trajectory():
    """Golden values from the process before the new switches existed (main at c6cd2e4, same
    scenario, seed 123, 30 tokens): the new switches, off, take no random draws."""
    p = MECProcess(_three_servers(), DynamicsConfig(outage_prob=0.2, thermal=False, background_users=False))
    rng = np.random.default_rng(123)
    p.reset(rng)
    fails = [p.advance(rng) for _ in range(30)]
    assert np.allclose(p.distance_km, [0.112265823529, 0.426439852687, 0.808685926808], atol=1e-11)
    assert np.allclose(np.abs(p.h) ** 2, [0.644497482105, 0.331553526519, 3.626744974991], atol=1e-11)
    assert np.allclose(p.shadow_db, [-5.091709170968, 3.251713322462, -2.532763609327], atol=1e-11)
    assert p.load_state.tolist() == [1, 3, 3] and p.down_for.tolist() == [7, 0, 25]
    assert fails == [[1], [3], [], [2], [3], [], [], [3], [], [1], [], [], [], [], [], [2, 3], [], [], [], [], [],
                     [], [], [], [], [], [], [1], [], []]
    assert rng.random() == pytest.approx(0.976953176313059, abs=1e-14)
    assert p.temperature_c is None and p.speed_fraction == 1.0 and p.in_range == [True] * 3


# --------------------------------------------------------------------------- thermal
def test_thermal_step_is_the_exact_rc_solution():
    """T_ss = 25 + 5 W · 12 K/W = 85 °C; from 25 °C after 180 s:
    85 − 60·exp(−180/540) = 85 − 60·0.716531 = 42.0081 °C."""
    th = ThermalModel(ambient_c=25, resistance_k_per_w=12, time_constant_s=540, throttle_temps_c=(42,),
                      throttle_fractions=(0.5,))
    assert th.step(5.0, 180.0) == pytest.approx(85 - 60 * math.exp(-1 / 3), abs=1e-9)
    assert th.temp_c == pytest.approx(42.0081, abs=1e-4)
    assert th.speed_fraction == 0.5
    # two half steps equal one whole step (exact solution, not Euler)
    a = ThermalModel(ambient_c=25, resistance_k_per_w=12, time_constant_s=540, throttle_temps_c=(42,),
                     throttle_fractions=(0.5,))
    a.step(3.0, 50.0)
    a.step(3.0, 50.0)
    b = ThermalModel(ambient_c=25, resistance_k_per_w=12, time_constant_s=540, throttle_temps_c=(42,),
                     throttle_fractions=(0.5,))
    b.step(3.0, 100.0)
    assert a.temp_c == pytest.approx(b.temp_c, abs=1e-12)
    with pytest.raises(ValueError, match="power"):
        a.step(-1.0, 1.0)


def test_capped_levels():
    """Levels (0.4, 0.7, 1.0, 1.3) GHz: a cap at 0.5·1.3 = 0.65 GHz keeps only 0.4; at 0.8·1.3 =
    1.04 GHz three levels; a cap under the lowest level still keeps one."""
    f = (0.4e9, 0.7e9, 1.0e9, 1.3e9)
    assert capped_levels(f, 0.5) == 1 and capped_levels(f, 0.8) == 3 and capped_levels(f, 1.0) == 4
    assert capped_levels(f, 0.1) == 1


def _thermal_process(**kw) -> MECProcess:
    cfg = DynamicsConfig(**QUIET, thermal=True, thermal_initial_temp_c=(25.0, 25.0), **kw)
    proc = MECProcess(Scenario(servers=[ServerConfig()]), cfg)
    proc.reset(np.random.default_rng(0))
    return proc


def test_sustained_compute_throttles_and_idle_recovers():
    """5 W for 1 s per token from 25 °C: T crosses 42 °C after τ·ln(60/43) = 540·0.33314 = 179.9 s,
    so tokens 1..179 run at full speed and token 180 on is throttled to one level (0.4 GHz)
    and half the DRAM bandwidth.  Idle (0 W), T falls back under 42 °C within a few seconds:
    from ≤ 42.1 °C, τ·ln(17.1/17) ≈ 3.2 s."""
    proc = _thermal_process()
    rng = np.random.default_rng(1)
    full = proc.snapshot().device
    levels = []
    for _ in range(200):
        proc.advance(rng, device_energy_j=5.0, elapsed_s=1.0)
        levels.append(proc.dvfs_levels_available)
    assert levels[:179] == [4] * 179 and levels[180:] == [1] * 20
    hot = proc.snapshot().device
    assert hot.freqs_hz == (0.4e9,) * 4
    assert hot.mem_bw_bytes_per_s == pytest.approx(full.mem_bw_bytes_per_s / 2)
    assert proc.scenario.device.freqs_hz == full.freqs_hz  # the scenario is never mutated
    # 200 s: 85 − 60·exp(−200/540) = 43.58 °C; idle cools it: back under 42 °C after
    # τ·ln(18.58/17) = 48.0 s
    assert proc.temperature_c == pytest.approx(85 - 60 * math.exp(-200 / 540), abs=1e-9)
    cool = []
    for _ in range(60):
        proc.advance(rng, device_energy_j=0.0, elapsed_s=1.0)
        cool.append(proc.dvfs_levels_available)
    assert cool[:47] == [1] * 47 and cool[49:] == [4] * 11
    assert proc.snapshot().device.freqs_hz == full.freqs_hz


def test_throttled_device_decodes_about_half_as_fast():
    """The engine sees the throttle: an all-device decode token (memory-bound) takes about
    twice as long on the throttled snapshot."""
    spec = load_model_spec("gpt2")
    proc = _thermal_process(thermal_time_constant_s=1.0)
    sc = proc.scenario
    tokens = TokenModel(spec, "block", 8, make_snapshot(sc))
    loc = [0] * tokens.num_nodes
    cool = evaluate(tokens.instance(9, proc.snapshot(), [-1] * tokens.num_nodes), loc)
    proc.advance(np.random.default_rng(0), device_energy_j=100.0, elapsed_s=10.0)  # 10 W ≫ 17/12 W
    assert proc.speed_fraction == 0.5
    hot = evaluate(tokens.instance(9, proc.snapshot(), [-1] * tokens.num_nodes), loc)
    assert 1.6 < hot.makespan_s / cool.makespan_s <= 2.0 + 1e-9


def test_thermal_takes_no_random_draws_after_reset():
    """The heat depends on the plans, the random future does not: two processes with the same
    seed and different device energies draw the same fading."""
    cfg = DynamicsConfig(thermal=True, outages=False)
    sc = _three_servers()
    a, b = MECProcess(sc, cfg), MECProcess(sc, cfg)
    ra, rb = np.random.default_rng(5), np.random.default_rng(5)
    a.reset(ra)
    b.reset(rb)
    for _ in range(20):
        a.advance(ra, device_energy_j=0.2, elapsed_s=0.05)
        b.advance(rb, device_energy_j=9.0, elapsed_s=2.0)
    assert np.allclose(a.h, b.h) and a.temperature_c < b.temperature_c


# --------------------------------------------------------------------------- mobility
def _path_process(**kw) -> MECProcess:
    cfg = DynamicsConfig(**{**QUIET, "mobility": True}, mobility_model="path", speed_std_m_per_s=0.0,
                         mean_speed_m_per_s=10.0, token_interval_s=1.0, **kw)
    return MECProcess(Scenario(servers=[ServerConfig(), ServerConfig()]), cfg)


def test_path_mobility_hands_over_and_servers_come_back():
    """Two servers 0.2 km apart, coverage 0.2/√3 = 0.1155 km, the user at a constant 10 m/s
    (σ = 0) reflecting on [−0.1155, 0.3155] km: each server is up exactly while the user is
    within 0.1155 km of it, goes down (reported by advance: its caches are lost) when the user
    leaves and comes back; the coverages overlap (both up) and leave no gap (one always up)."""
    proc = _path_process()
    rng = np.random.default_rng(4)
    proc.reset(rng)
    r = proc.config.coverage_radius_km
    ups, went_down = [], []
    for _ in range(400):
        went_down.append(proc.advance(rng))
        x = proc.path.x_km
        expect = [abs(x - 0.0) <= r, abs(x - 0.2) <= r]
        assert proc.server_up == expect == proc.snapshot().server_up
        assert np.allclose(proc.distance_km, np.maximum(np.abs(x - np.array([0.0, 0.2])), 0.02))
        assert proc.snapshot().uplink_bps[0][-1] > 0
        ups.append(expect)
        for k in went_down[-1]:
            assert len(ups) > 1 and ups[-2][k - 1] and not ups[-1][k - 1]
    ups = np.array(ups)
    assert ups.any(axis=1).all() and ups.all(axis=1).any()
    for k in range(2):  # down and back up again, more than once
        changes = np.flatnonzero(np.diff(ups[:, k].astype(int)))
        assert len(changes) >= 4
        assert sum(k + 1 in d for d in went_down) == int(np.sum(np.diff(ups[:, k].astype(int)) == -1))
    # the rate follows the distance: nearer server, faster uplink
    snap = proc.snapshot()
    near = int(np.argmin(proc.distance_km))
    assert snap.uplink_bps[near][-1] >= snap.uplink_bps[1 - near][-1]


def test_path_speed_is_gauss_markov():
    """With σ > 0 the speed fluctuates around v̄ (mean over a long run within 10%) and α
    correlates it: one token's a = 0.85^(0.02/0.5) = 0.99352."""
    cfg = DynamicsConfig(**{**QUIET, "mobility": True}, mobility_model="path")
    proc = MECProcess(Scenario(servers=[ServerConfig()] * 3), cfg)
    rng = np.random.default_rng(9)
    proc.reset(rng)
    speeds = []
    for _ in range(20_000):
        proc.advance(rng)
        speeds.append(abs(proc.path.v_m_per_s))
    assert np.mean(speeds) == pytest.approx(30 / 3.6, rel=0.1)
    assert 0.85 ** (0.02 / 0.5) == pytest.approx(0.99352, abs=1e-5)


# --------------------------------------------------------------------------- outages
def test_outage_lengths_have_the_configured_mean():
    """Two-state chain, p = 0.05, mean length L = 5: over many seeded runs the mean outage
    lasts 5 tokens (within 5%) and the long-run down fraction is p·L/(1 + p·L) = 0.2."""
    cfg = DynamicsConfig(**{**QUIET, "outages": True}, outage_prob=0.05, outage_mean_tokens=5.0)
    proc = MECProcess(Scenario(servers=[ServerConfig(), ServerConfig()]), cfg)
    lengths, down_tokens, total = [], 0, 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        proc.reset(rng)
        run = [0, 0]
        for _ in range(2000):
            proc.advance(rng)
            for k, up in enumerate(proc.server_up):
                if not up:
                    run[k] += 1
                    down_tokens += 1
                elif run[k]:
                    lengths.append(run[k])
                    run[k] = 0
                total += 1
    assert len(lengths) > 1000
    assert np.mean(lengths) == pytest.approx(5.0, rel=0.05)
    assert down_tokens / total == pytest.approx(0.05 * 5 / (1 + 0.05 * 5), rel=0.08)


# --------------------------------------------------------------------------- composition
def _everything() -> tuple[Scenario, DynamicsConfig]:
    sc = Scenario(servers=[ServerConfig(load_model="batched", background_users=2, background_kv_bytes_per_user=1e9),
                           ServerConfig(load=0.5), ServerConfig()])
    cfg = DynamicsConfig(mobility_model="path", thermal=True, background_users=True, outage_prob=0.05,
                         token_interval_s=0.5)
    return sc, cfg


def _trace(seed: int, energies: list[float]) -> list[tuple]:
    sc, cfg = _everything()
    proc = MECProcess(sc, cfg)
    rng = np.random.default_rng(seed)
    proc.reset(rng)
    out = []
    for e in energies:
        lost = proc.advance(rng, device_energy_j=e, elapsed_s=0.5)
        snap = proc.snapshot()
        out.append((tuple(lost), tuple(snap.server_up), tuple(snap.server_background_users),
                    round(proc.path.x_km, 12), round(proc.temperature_c, 9), snap.device.freqs_hz,
                    tuple(np.round(snap.uplink_bps[2], 3))))
    return out


def test_all_dynamics_compose_and_are_seeded():
    """Path mobility, thermal, outages, background users, load and fading together: same seed,
    same trajectory; each process still does its part."""
    energies = [3.0] * 300
    a, b = _trace(11, energies), _trace(11, energies)
    assert a == b
    assert a != _trace(12, energies)
    users = [t[2][0] for t in a]
    assert len(set(users)) > 1 and all(t[2][1:] == (0, 0) for t in a)  # birth-death on the batched server
    assert any(not all(t[1]) for t in a)  # some server unavailable at some point
    temps = [t[4] for t in a]
    assert all(y > x for x, y in zip(temps, temps[1:])) or temps[-1] > temps[0]  # 6 W heats the phone


def test_rollout_matches_a_driven_process():
    sc, cfg = _everything()
    cfg = DynamicsConfig(**{**cfg.__dict__, "thermal": False})
    proc = MECProcess(sc, cfg)
    snaps = proc.rollout(np.random.default_rng(3), 25)
    other = MECProcess(sc, cfg)
    rng = np.random.default_rng(3)
    other.reset(rng)
    for t, snap in enumerate(snaps):
        if t:
            other.advance(rng)
        assert snap.to_dict() == other.snapshot().to_dict()
    with pytest.raises(ValueError, match="num_tokens"):
        proc.rollout(np.random.default_rng(0), 0)


# --------------------------------------------------------------------------- config
@pytest.mark.parametrize("kw, match", [
    ({"mobility_model": "teleport"}, "mobility_model"),
    ({"coverage_radius_km": 0.0}, "coverage_radius_km"),
    ({"gauss_markov_alpha": 1.5}, "gauss_markov_alpha"),
    ({"throttle_temps_c": (40.0, 45.0), "throttle_fractions": (0.5,)}, "same length"),
    ({"throttle_temps_c": (45.0, 40.0), "throttle_fractions": (0.8, 0.5)}, "ascending"),
    ({"throttle_temps_c": (40.0, 45.0), "throttle_fractions": (0.5, 0.8)}, "descend"),
    ({"thermal_initial_temp_c": (40.0, 30.0)}, "lo <= hi"),
    ({"thermal_time_constant_s": float("nan")}, "thermal_time_constant_s"),
    ({"mean_speed_m_per_s": -1.0}, "mean_speed_m_per_s"),
])
def test_config_rejects_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        DynamicsConfig(**kw)


def test_config_from_dict_and_advance_inputs():
    with pytest.raises(ValueError, match="unknown key"):
        DynamicsConfig.from_dict({"thermal": True, "heat": 1})
    cfg = DynamicsConfig.from_dict({"thermal": True, "throttle_temps_c": [40, 45], "throttle_fractions": [0.8, 0.5]})
    assert cfg.throttle_temps_c == (40.0, 45.0)
    proc = _thermal_process()
    with pytest.raises(ValueError, match="device_energy_j"):
        proc.advance(np.random.default_rng(0), device_energy_j=-1.0)
    with pytest.raises(ValueError, match="elapsed_s"):
        proc.advance(np.random.default_rng(0), elapsed_s=float("inf"))
    assert DeviceConfig().freqs_hz == (0.4e9, 0.7e9, 1.0e9, 1.3e9)  # the levels the golden values assume
