"""The worked example of docs/system-model.md §2, recomputed by the engine.

Hand computation (the doc's numbers): a Llama-2-7B fp16 decode block at context 512 has
F = 413,138,944 FLOPs, M = 413,171,712 bytes, W = 404,766,720 weight bytes.
* Snapdragon 8 Gen 3: max(F / (45e12·0.00743), M / (76.8e9·0.423)) = 12.718 ms;
* NVIDIA L4, batched with B = 4 (urban-5g): max(5F / (121e12·0.196),
  (W + 5(M − W)) / (300e9·0.861)) = 1.7297 ms;
* the same L4 with no background user: M / (300e9·0.861) = 1.5996 ms.
"""
from __future__ import annotations

import dataclasses

import pytest

from core.dag import build_dag
from core.instance import make_instance
from core.system import load_scenario, make_snapshot


def _block_times(scenario):
    G = build_dag("llama-2-7b", "block", "decode", context_len=512)
    inst = make_instance(G, make_snapshot(scenario))
    i = inst.names.index("L0")
    return inst.dev_time[i][-1], inst.srv_time[i][0]


def test_worked_example_matches_the_engine():
    scenario = load_scenario("urban-5g")
    dev_s, l4_s = _block_times(scenario)
    assert dev_s == pytest.approx(12.718e-3, rel=1e-4)
    assert l4_s == pytest.approx(1.7297e-3, rel=1e-4)
    idle = dataclasses.replace(scenario, servers=[dataclasses.replace(scenario.servers[0], background_users=0)])
    assert _block_times(idle)[1] == pytest.approx(1.5996e-3, rel=1e-4)
