"""The observation layout (one owner for the envs and the features extractor) and the
env's observation estimate, which must be what the engine gives for that action."""
from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import envs  # noqa: F401  (registers the environments)
from agents.features import LocationExtractor
from core.cost import weighted_cost
from core.instance import Placement
from envs.observation import NODE_FEATURES, OFFLOAD_LOCATION_FEATURES, ObservationLayout

TINY = {"prompt_len": 16, "new_tokens": 3}


def all_edge_reference(inst):
    up = [k for k in range(1, inst.num_locations) if inst.system.server_up[k - 1]]
    return Placement([up[0] if up else 0] * inst.num_nodes)


def make(env_id, config):
    return gym.make(env_id, config=config, reference_fn=all_edge_reference)


@pytest.mark.parametrize("env_id", ["DecoderOffload-v1", "DecoderSplit-v1"])
@pytest.mark.parametrize("scenario, k", [("two-edge", 5), ("city-multi-edge", 5), ("urban-5g", 5),
                                         ("urban-5g", 2)])
def test_env_space_is_the_layouts(env_id, scenario, k):
    """Padded to max_servers (default 4: K = 5) whatever the scenario's server count, so
    one policy runs on 1 .. 4 servers; max_servers = 1 fits urban-5g exactly."""
    env = make(env_id, {**TINY, "scenario": scenario, "max_servers": k - 1})
    u = env.unwrapped
    layout = ObservationLayout.of_space(env.observation_space)
    assert layout == u.layout == ObservationLayout(k, per_node=env_id == "DecoderOffload-v1")
    assert env.observation_space == layout.space()
    obs, _ = env.reset(seed=0)
    assert {key: v.shape for key, v in obs.items()} == {key: layout.shape(key) for key in layout.keys}


def test_golden_layout_k3():
    """K = 3: inputs = share (0..2), KV here (3..5), no KV (6); system = KV share (0..2),
    no KV (3), load (4..6); flat order node (14), inputs (7), locations (3x8), system (7),
    progress (3) = 55 entries."""
    layout = ObservationLayout(3, per_node=True)
    per_loc, rest = layout.location_columns("inputs")
    assert per_loc.tolist() == [[0, 3], [1, 4], [2, 5]] and rest.tolist() == [6]
    per_loc, rest = layout.location_columns("system")
    assert per_loc.tolist() == [[0, 4], [1, 5], [2, 6]] and rest.tolist() == [3]
    assert layout.location_columns("node") is None and layout.location_columns("progress") is None
    assert layout.offset("inputs", "kv_here") == 3 and layout.offset("system", "load") == 4
    sl = layout.slices()
    assert [(sl[key].start, sl[key].stop) for key in layout.keys] == [(0, 14), (14, 21), (21, 45), (45, 52),
                                                                      (52, 55)]
    assert layout.size == 55 and len(NODE_FEATURES) == 14
    split = ObservationLayout(3, per_node=False)
    assert split.keys == ("locations", "system", "progress", "model") and split.shape("locations") == (3, 7)
    assert split.shape("model") == (5,) and split.size == 3 * 7 + 7 + 3 + 5
    with pytest.raises(ValueError, match="no key 'inputs'"):
        split.shape("inputs")


def test_layout_rejects_foreign_spaces():
    with pytest.raises(ValueError, match="'locations'"):
        ObservationLayout.of_space(spaces.Dict({"x": spaces.Box(0, 1, (3,))}))
    bad = ObservationLayout(3, True).space()
    bad.spaces["system"] = spaces.Box(0.0, 1.0, (6,), np.float32)
    with pytest.raises(ValueError, match="does not match"):
        ObservationLayout.of_space(bad)
    with pytest.raises(ValueError, match=">= 2 locations"):
        ObservationLayout(1, True)
    with pytest.raises(ValueError, match="flat observation"):
        ObservationLayout(3, True).unflatten(np.zeros(7, dtype=np.float32))
    with pytest.raises(ValueError, match="LocationExtractor|locations"):
        LocationExtractor(spaces.Dict({"x": spaces.Box(0, 1, (3,))}))


@pytest.mark.parametrize("env_id", ["DecoderOffload-v1", "DecoderSplit-v1"])
def test_extractor_gathers_each_locations_columns(env_id):
    """The extractor's row for location l holds exactly that location's entries: with the
    shared location MLP replaced by the identity, the output row l equals locations[l]
    followed by the per-location parts of the vector keys at l."""
    env = make(env_id, {**TINY, "scenario": "two-edge"})
    obs, _ = env.reset(seed=0)
    ext = LocationExtractor(env.observation_space, location_arch=[], global_arch=[])
    layout = env.unwrapped.layout
    batch = {key: torch.as_tensor(v)[None] for key, v in obs.items()}
    out = ext(batch)[0].numpy()
    k = layout.num_locations
    loc_keys = [key for key in env.observation_space.spaces  # the extractor's (the space's) key order
                if key != "locations" and layout.location_columns(key) is not None]
    width = layout.shape("locations")[1] + sum(layout.location_columns(key)[0].shape[1] for key in loc_keys)
    for l in range(k):
        expected = [obs["locations"][l]] + [obs[key][layout.location_columns(key)[0][l]] for key in loc_keys]
        assert out[l * width:(l + 1) * width] == pytest.approx(np.concatenate(expected))


def test_observation_estimate_is_the_engines():
    """For every step of a random masked rollout on a DAG with skips (gpt2 sublayers) and
    every location the node may take, the observation's estimated finish and energy are
    what the engine gives when the node is placed there: finish after the latest input,
    device energy added (compute + transfers, uplink contention included), on the fixed
    log scales log_time and log_energy (no solver output)."""
    env = make("DecoderOffload-v1", {**TINY, "granularity": "sublayer", "model": "gpt2", "scenario": "two-edge"})
    u = env.unwrapped
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    col_fin, col_en = OFFLOAD_LOCATION_FEATURES.index("est_finish"), OFFLOAD_LOCATION_FEATURES.index("est_energy")
    checked = 0
    for _ in range(3 * u.num_nodes):
        i, sim, inst = u.node, u.sim, u.inst
        now = max((sim.finish[p] for p in inst.preds[i]), default=0.0) + sim.t_mig
        mask = u.action_masks()
        for k in np.flatnonzero(mask):
            after = copy.deepcopy(sim)
            after.place(i, int(k), u._vmax, u._qmax)
            fin = after.t_mig + after.finish[i] - now
            energy = after.compute_j + after.tx_j + after.rx_j - sim.compute_j - sim.tx_j - sim.rx_j
            expect_fin = min(max(np.log10(1 + max(fin, 0.0) / 1e-4) / 5, 0.0), 1.0)
            expect_en = min(max(np.log10(1 + max(energy, 0.0) / 1e-5) / 6, 0.0), 1.0)
            assert obs["locations"][k, col_fin] == pytest.approx(expect_fin, rel=1e-5, abs=1e-7)
            assert obs["locations"][k, col_en] == pytest.approx(expect_en, rel=1e-5, abs=1e-7)
            checked += 1
        obs, _, terminated, _, _ = env.step(int(rng.choice(np.flatnonzero(mask))))
        if terminated:
            break
    assert checked > u.num_nodes


def test_token_cost_is_the_weighted_cost():
    """info["cost"] = w_T·latency + w_E·energy with the config's weights (golden: 2·T + 0.5·E)."""
    assert weighted_cost(2.0, 3.0, w_time_per_s=0.5, w_energy_per_j=2.0) == 7.0
    env = make("DecoderOffload-v1", {**TINY, "latency_weight": 2.0, "energy_weight": 0.5})
    env.reset(seed=0)
    for _ in range(env.unwrapped.num_nodes):
        _, _, _, _, info = env.step(1)
    assert info["cost"] == 2.0 * info["latency_s"] + 0.5 * info["energy_j"]
