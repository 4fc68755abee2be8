"""core.worlds: the seeded distribution of random MEC worlds (configs/worlds/default.yaml)."""
from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core.hardware import load_profile
from core.radio import MEASURED_UPLINK_BPS, distance_for_rate_km
from core.system import Scenario, make_snapshot
from core.worlds import (WORLDS_DIR, WorldDistribution, list_world_distributions, load_world_distribution,
                         log_uniform, sample_world, sample_worlds)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = load_world_distribution("default")


def _yaml(tmp_path: Path, **changes) -> Path:
    """default.yaml with top-level keys changed (None deletes the key)."""
    data = yaml.safe_load((WORLDS_DIR / "default.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / "dist.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_presets_listed_and_loaded_by_name_and_path():
    assert "default" in list_world_distributions()
    by_path = load_world_distribution(WORLDS_DIR / "default.yaml")
    assert by_path == DEFAULT and DEFAULT.name == "default"
    assert load_world_distribution(DEFAULT) is DEFAULT


def test_same_seed_same_worlds_other_seed_other_worlds():
    a = sample_worlds(DEFAULT, 7, 5)
    b = sample_worlds("default", 7, 5)
    c = sample_worlds(DEFAULT, 8, 5)
    assert [w.to_dict() for w in a] == [w.to_dict() for w in b]
    assert [w.to_dict() for w in a] != [w.to_dict() for w in c]
    assert [w.name for w in a] == [f"world-{i}" for i in range(5)]


def test_sample_world_uses_only_the_given_generator():
    """The global numpy state does not enter: reseeding it changes nothing."""
    np.random.seed(1)
    x = sample_world(DEFAULT, np.random.default_rng(3)).to_dict()
    np.random.seed(2)
    y = sample_world(DEFAULT, np.random.default_rng(3)).to_dict()
    assert x == y


def test_many_draws_cover_every_choice():
    worlds = sample_worlds(DEFAULT, 0, 400)
    counts = Counter(w.num_servers for w in worlds)
    assert set(counts) == {1, 2, 3, 4}
    assert {w.device.hardware for w in worlds} == set(DEFAULT.devices)
    assert {s.hardware for w in worlds for s in w.servers} == set(DEFAULT.servers)
    assert {w.servers[0].link_type for w in worlds} == set(DEFAULT.links)
    users = [s.background_users for w in worlds for s in w.servers]
    assert min(users) == 0 and max(users) == 16


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_every_world_is_valid_and_in_range(seed):
    world = sample_world(DEFAULT, np.random.default_rng(seed), name="w")
    assert isinstance(world, Scenario) and world.name == "w"
    assert DEFAULT.num_servers[0] <= world.num_servers <= DEFAULT.num_servers[1]
    assert world.device.hardware in DEFAULT.devices
    assert world.device.tx_powers_w == DEFAULT.tx_powers_w
    link_types = {s.link_type for s in world.servers}
    assert len(link_types) == 1  # one access network per world
    link = DEFAULT.links[link_types.pop()]
    snap = make_snapshot(world)  # every world builds a snapshot (radio, load and memory checks)
    lo, hi = link.uplink_rate_bps
    for k, server in enumerate(world.servers):
        assert server.hardware in DEFAULT.servers
        assert server.uplink_bandwidth_hz in link.uplink_bandwidth_hz
        assert server.downlink_bandwidth_hz in link.downlink_bandwidth_hz
        assert server.load_model == "batched"
        assert 0 <= server.background_users <= DEFAULT.background_users_max(server.hardware)
        used = server.background_users * server.background_kv_bytes_per_user
        assert used <= DEFAULT.max_background_memory_fraction * server.mem_capacity_bytes
        top_rate_bps = snap.uplink_bps[k][-1]  # mean channel, top transmit level
        assert lo * (1 - 1e-9) <= top_rate_bps <= hi * (1 + 1e-9)


def test_golden_distance_and_memory_cap():
    """Hand-checkable rules.

    * Distance: the rule is distance_for_rate_km(r, B_up, p_top).  At the 5G median,
      r = 21.08 Mb/s over 10 MHz at 0.2 W, that is the urban-5g preset's 0.6804 km.
    * Memory cap: B_max = min(16, floor(0.5 x 8e9 / 536,870,912)) = floor(7.45) = 7 for the
      8 GB Jetson Orin Nano Super; 0.5 x 16e9 / 536,870,912 = 14.9 -> 14 for a 16 GB card;
      0.5 x 24e9 / 536,870,912 = 22.4 -> capped at 16 for the L4.
    """
    assert distance_for_rate_km(MEASURED_UPLINK_BPS["5g-nr"], 10e6, 0.2) == pytest.approx(0.6804, abs=5e-5)
    assert DEFAULT.background_users_max("jetson-orin-nano-super") == 7
    assert DEFAULT.background_users_max("nvidia-t4") == 14
    assert DEFAULT.background_users_max("nvidia-l4") == 16


def test_golden_draw_replays_by_hand():
    """Re-do one world's draws by hand from the same seed, in the documented order."""
    rng = np.random.default_rng(123)
    world = sample_world(DEFAULT, np.random.default_rng(123))
    device = DEFAULT.devices[int(rng.integers(len(DEFAULT.devices)))]
    link_type = list(DEFAULT.links)[int(rng.integers(len(DEFAULT.links)))]
    link = DEFAULT.links[link_type]
    m = int(rng.integers(1, 5))
    assert world.device.hardware == device and world.num_servers == m
    for server in world.servers:
        hardware = DEFAULT.servers[int(rng.integers(len(DEFAULT.servers)))]
        rate_bps = math.exp(rng.uniform(math.log(link.uplink_rate_bps[0]), math.log(link.uplink_rate_bps[1])))
        up_hz = link.uplink_bandwidth_hz[int(rng.integers(len(link.uplink_bandwidth_hz)))]
        link.downlink_bandwidth_hz[int(rng.integers(len(link.downlink_bandwidth_hz)))]
        users = int(rng.integers(0, DEFAULT.background_users_max(hardware) + 1))
        assert server.hardware == hardware and server.link_type == link_type
        assert server.distance_km == distance_for_rate_km(rate_bps, up_hz, 0.2)
        assert server.background_users == users


def test_log_uniform_median_is_the_geometric_mean():
    """5G's range [21.08/3, 3 x 21.08] Mb/s has geometric mean 21.08 Mb/s, the Ookla median."""
    lo, hi = DEFAULT.links["5g-nr"].uplink_rate_bps
    assert math.sqrt(lo * hi) == pytest.approx(MEASURED_UPLINK_BPS["5g-nr"], rel=1e-3)
    lo, hi = DEFAULT.links["lte"].uplink_rate_bps
    assert math.sqrt(lo * hi) == pytest.approx(MEASURED_UPLINK_BPS["lte"], rel=1e-9)
    rng = np.random.default_rng(0)
    draws = [log_uniform(rng, 2e6, 18e6) for _ in range(4000)]
    assert min(draws) >= 2e6 and max(draws) <= 18e6
    assert np.median(draws) == pytest.approx(6e6, rel=0.05)


def test_every_phone_has_8_gib_for_models():
    """The env checks that the model fits the device: all four phones offer 8 GiB."""
    for name in DEFAULT.devices:
        assert load_profile(name).mem_capacity_bytes == 8589934592


@pytest.mark.parametrize("changes, needle", [
    ({"colour": "red"}, "colour"),
    ({"num_servers": [3, 2]}, "num_servers"),
    ({"num_servers": [1, 9]}, "num_servers"),
    ({"num_servers": [0, 2]}, "num_servers"),
    ({"background_users": [-1, 4]}, "background_users"),
    ({"background_users": [20, 30]}, "jetson-orin-nano-super"),
    ({"devices": ["snapdragon-9-gen-9"]}, "snapdragon-9-gen-9"),
    ({"devices": ["nvidia-l4"]}, "devices"),
    ({"servers": ["nvidia-l4", "no-such-gpu"]}, "no-such-gpu"),
    ({"servers": ["snapdragon-8-gen-3"]}, "servers"),
    ({"links": {"carrier-pigeon": {"uplink_rate_bps": [1, 2], "uplink_bandwidth_hz": [1e6],
                                   "downlink_bandwidth_hz": [1e6]}}}, "carrier-pigeon"),
    ({"links": {"generic": {"uplink_rate_bps": [1, 2], "uplink_bandwidth_hz": [1e6],
                            "downlink_bandwidth_hz": [1e6]}}}, "generic"),
    ({"links": {"lte": {"uplink_rate_bps": [9e6, 2e6], "uplink_bandwidth_hz": [1e7],
                        "downlink_bandwidth_hz": [2e7]}}}, "links.lte.uplink_rate_bps"),
    ({"links": {"lte": {"uplink_rate_bps": [0, 2e6], "uplink_bandwidth_hz": [1e7],
                        "downlink_bandwidth_hz": [2e7]}}}, "links.lte.uplink_rate_bps"),
    ({"links": {"lte": {"uplink_rate_bps": [1e6, 2e6], "uplink_bandwidth_hz": [1e7],
                        "downlink_bandwidth_hz": [2e7], "mtu": 1500}}}, "mtu"),
    ({"tx_powers_w": [0.1, 0.5]}, "tx_powers_w"),
    ({"max_background_memory_fraction": 1.5}, "max_background_memory_fraction"),
    ({"backhaul_bps": -1.0}, "backhaul_bps"),
    ({"devices": None}, "devices"),
])
def test_bad_yaml_one_value_error_naming_it(tmp_path, changes, needle):
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        load_world_distribution(_yaml(tmp_path, **changes))


def test_missing_file_and_unknown_preset(tmp_path):
    with pytest.raises(ValueError, match="nope.yaml"):
        load_world_distribution(tmp_path / "nope.yaml")
    with pytest.raises(ValueError, match="no-such-preset"):
        load_world_distribution("no-such-preset")


def test_bad_arguments():
    with pytest.raises(ValueError, match="rng"):
        sample_world(DEFAULT, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be"):
        sample_worlds(DEFAULT, 0, -1)


def test_to_dict_round_trips():
    assert WorldDistribution.from_dict(DEFAULT.to_dict()) == DEFAULT


def test_summary_script_runs():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "worlds_summary.py"), "--n", "20"],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "servers per world" in out and "uplink rate" in out
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "worlds_summary.py"), "--dist", "nope"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "nope" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_hardware_by_profile_path_and_errors_name_the_file(tmp_path):
    """A user's own profile may be given by its YAML path, as elsewhere in the catalogue."""
    profile = tmp_path / "my-gpu.yaml"
    profile.write_text((ROOT / "configs" / "hardware" / "nvidia-l4.yaml").read_text())
    dist = load_world_distribution(_yaml(tmp_path, servers=[str(profile)]))
    world = sample_world(dist, np.random.default_rng(0))
    assert all(s.hardware == str(profile) for s in world.servers)
    assert world.servers[0].mem_capacity_bytes == 24e9
    with pytest.raises(ValueError, match=r"dist\.yaml.*num_servers"):
        load_world_distribution(_yaml(tmp_path, num_servers=[2, 1]))
