"""Every number of a system snapshot is validated where it enters (constructor, JSON,
make_snapshot), with one ValueError naming the field.  Before, a NaN link rate gave a
finite wrong makespan and a NaN energy, and a negative server throughput negative times."""
from __future__ import annotations

import copy
import json
import math

import pytest

from core.dag import build_dag
from core.instance import Instance, make_instance
from core.system import DeviceConfig, SystemSnapshot, load_scenario, make_snapshot


def snapshot_dict() -> dict:
    """A valid snapshot as plain data: 2 servers, 4 transmit-power levels (the defaults)."""
    return make_snapshot(load_scenario("two-edge")).to_dict()


def build(d: dict) -> SystemSnapshot:
    return SystemSnapshot.from_dict(d)


BAD = [  # (path into the dict, bad value, the message it must give)
    (("uplink_bps", 0, 2), math.nan, r"snapshot\.uplink_bps\[0\]\[2\] must be finite and > 0, got nan"),
    (("uplink_bps", 1, 0), 0.0, r"snapshot\.uplink_bps\[1\]\[0\] must be finite and > 0, got 0\.0"),
    (("downlink_bps", 1), math.inf, r"snapshot\.downlink_bps\[1\] must be finite and > 0, got inf"),
    (("server_flops_per_s", 0), -1e12, r"snapshot\.server_flops_per_s\[0\] must be finite and > 0, got -1000000000000\.0"),
    (("server_mem_bw_bytes_per_s", 1), math.nan, r"snapshot\.server_mem_bw_bytes_per_s\[1\] must be finite"),
    (("server_load", 0), 1.0, r"snapshot\.server_load\[0\] must lie in \[0, 1\), got 1\.0"),
    (("server_load", 1), -0.1, r"snapshot\.server_load\[1\] must be finite and >= 0"),
    (("server_power_w", 0), math.nan, r"snapshot\.server_power_w\[0\] must be finite and >= 0"),
    (("mem_capacity_bytes", 2), -1.0, r"snapshot\.mem_capacity_bytes\[2\] must be finite and >= 0"),
    (("link_latency_s", 0), -1e-3, r"snapshot\.link_latency_s\[0\] must be finite and >= 0"),
    (("backhaul_bps",), math.nan, r"snapshot\.backhaul_bps must be finite and > 0, got nan"),
    (("backhaul_latency_s",), math.inf, r"snapshot\.backhaul_latency_s must be finite and >= 0, got inf"),
    (("uplink_bps", 0, 1), "fast", r"snapshot\.uplink_bps\[0\]\[1\] must be finite and > 0, got 'fast'"),
    (("downlink_bps", 0), True, r"snapshot\.downlink_bps\[0\] must be finite and > 0, got True"),
    (("server_up", 1), "yes", r"snapshot\.server_up\[1\] must be true or false, got 'yes'"),
    (("uplink_bps", 1), [1e6, 2e6], r"snapshot\.uplink_bps\[1\] has 2 entries, expected 3 "
                                    r"\(one per transmit-power level\)"),
    (("downlink_bps",), [1e6], r"snapshot\.downlink_bps has 1 entries, expected 2 \(one per server\)"),
    (("mem_capacity_bytes",), [1e9, 1e9], r"snapshot\.mem_capacity_bytes has 2 entries, expected 3 "
                                          r"\(one per location\)"),
    (("server_up",), True, r"snapshot\.server_up must be a list, got bool"),
    (("device", "kappa"), math.nan, r"device\.kappa must be a finite number > 0"),
]


@pytest.mark.parametrize("path, value, message", BAD, ids=[".".join(map(str, p)) for p, _, _ in BAD])
def test_bad_snapshot_number_is_named(path, value, message):
    d = snapshot_dict()
    target = d
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError, match=message):
        build(d)
    with pytest.raises(ValueError, match=message):  # the constructor, not only from_dict
        kwargs = copy.deepcopy(d)
        if path[0] != "device":
            kwargs["device"] = DeviceConfig(**{k: tuple(v) if isinstance(v, list) else v
                                               for k, v in kwargs["device"].items()})
        SystemSnapshot(**kwargs)


def test_snapshot_keys_checked():
    d = snapshot_dict()
    del d["downlink_bps"]
    with pytest.raises(ValueError, match=r"snapshot: missing key\(s\) \['downlink_bps'\]"):
        build(d)
    d = snapshot_dict() | {"extra": 1}
    with pytest.raises(ValueError, match=r"snapshot: unknown key\(s\) \['extra'\]"):
        build(d)
    with pytest.raises(ValueError, match="at least one server"):
        build(snapshot_dict() | {k: [] for k in ("server_flops_per_s", "server_mem_bw_bytes_per_s", "server_load",
                                               "server_power_w", "uplink_bps", "downlink_bps",
                                               "link_latency_s", "server_up")} | {"mem_capacity_bytes": [1e9]})


def test_valid_snapshot_round_trips_and_numbers_become_floats():
    d = snapshot_dict()
    d["server_flops_per_s"] = [int(x) for x in d["server_flops_per_s"]]
    snap = build(d)
    assert all(type(x) is float for x in snap.server_flops_per_s)
    assert build(snap.to_dict()) == snap


def test_instance_json_with_nan_link_rate_is_rejected(tmp_path):
    """The defect as a user met it: an instance file whose uplink rate is NaN (JSON allows
    the literal NaN) loaded and gave a finite makespan with a NaN energy."""
    inst = make_instance(build_dag("gpt2", "block", "decode", prompt_len=8), make_snapshot(load_scenario("two-edge")))
    d = inst.to_dict()
    d["system"]["uplink_bps"][0][2] = math.nan
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(d))
    assert "NaN" in path.read_text()
    with pytest.raises(ValueError, match=r"snapshot\.uplink_bps\[0\]\[2\] must be finite and > 0, got nan"):
        Instance.load(path)
    d["system"]["uplink_bps"][0][2] = 1e6
    d["system"]["server_flops_per_s"][1] = -5e12
    with pytest.raises(ValueError, match=r"snapshot\.server_flops_per_s\[1\] must be finite and > 0"):
        Instance.from_dict(d)


def test_instance_needs_a_snapshot():
    inst = make_instance(build_dag("gpt2", "block", "decode", prompt_len=8), make_snapshot(load_scenario("two-edge")))
    d = inst.to_dict()
    d.pop("format")
    with pytest.raises(ValueError, match="instance.system must be a SystemSnapshot, got dict"):
        Instance(**d)


@pytest.mark.parametrize("kw, message", [
    ({"fading_power": [math.nan, 1.0]}, r"fading_power\[0\] must be finite and >= 0, got nan"),
    ({"fading_power": [1.0, -1.0]}, r"fading_power\[1\] must be finite and >= 0"),
    ({"shadowing_db": [0.0, math.inf]}, r"shadowing_db\[1\] must be finite, got inf"),
    ({"loads": [math.nan, 0.0]}, r"load of server 1 must lie in \[0, 1\), got nan"),
    ({"distances_km": [0.2, math.nan]}, r"distance must be > 0 km, got nan"),
    ({"fading_power": [0.0, 1.0]}, r"snapshot\.uplink_bps\[0\]\[0\] must be finite and > 0, got 0\.0"),
])
def test_make_snapshot_names_the_bad_draw(kw, message):
    with pytest.raises(ValueError, match=message):
        make_snapshot(load_scenario("two-edge"), **kw)
