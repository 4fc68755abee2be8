"""DeAOff at scale: the chain tables reused across an environment's tokens equal fresh
ones, and the vectorised memory rule of the tables agrees with the engine's."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.cost import allowed_locations
from core.instance import Instance
from solvers.deaoff import ChainTables, TableCache, solve
from solvers.deaoff.chain_build import build_memory
from tests.test_deaoff import _chain_instance, _tight_chain

TABLE_FIELDS = ("node_t", "node_e", "hop_t", "hop_e", "ret_t", "ret_e", "allowed", "cap", "need", "qs", "vs")


def _episode_instances(tokens: int, config: dict | None = None) -> list[Instance]:
    """The instances a DecoderOffload-v1 run with ``report_myopic`` hands to its reference
    (recorded the way ``benchmarks/bench_solver.py --reference`` records them)."""
    from benchmarks.bench_solver import record_reference_calls

    return [inst for inst, _ in record_reference_calls(tokens, config)]


def _same_tables(a: ChainTables, b: ChainTables) -> None:
    for name in TABLE_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape and np.array_equal(x, y), name
    assert a.binding == b.binding


@pytest.mark.parametrize("config", [None, {"scenario": "two-edge", "new_tokens": 8},
                                    {"scenario": "wifi-campus", "new_tokens": 8}])
def test_reused_tables_equal_fresh_tables_over_an_episode(config) -> None:
    """Token after token of a real episode (context, channel, load and caches moving), the
    tables built through one TableCache equal fresh ChainTables entry for entry, and
    DeAOff's weighted answer through the cache is the fresh answer (placement, figures)."""
    insts = _episode_instances(40, config)
    caches = {True: TableCache(), False: TableCache()}
    for inst in insts:
        for levels, c in caches.items():
            _same_tables(c.tables(inst, levels), ChainTables(inst, levels))
        cache = caches[True]
        fresh = solve(inst, objective="weighted", w_time_per_s=1.0, w_energy_per_j=1.0)
        reused = solve(inst, objective="weighted", w_time_per_s=1.0, w_energy_per_j=1.0, table_cache=cache)
        assert reused.placement == fresh.placement
        assert (reused.makespan_s, reused.energy_j) == (fresh.makespan_s, fresh.energy_j)
    for c in caches.values():
        assert c.hits["static"] >= len(insts) - 1 and c.hits["memory"] + c.hits["capacities"] > 0


def test_reused_tables_follow_a_memory_change() -> None:
    """A cache that saw a roomy chain, then a chain whose capacities bind (other sizes,
    other memories), then the roomy one again, gives each its own fresh tables."""
    cache = TableCache()
    for inst in [_chain_instance(501), _tight_chain(703), _tight_chain(704), _chain_instance(501)]:
        _same_tables(cache.tables(inst), ChainTables(inst))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_vectorised_memory_rule_is_allowed_locations(seed: int) -> None:
    """build_memory's (n, K) mask is core.cost.allowed_locations, node by node; a node that
    fits nowhere raises the engine's error naming it."""
    inst = _tight_chain(seed) if seed % 2 else _chain_instance(seed)
    try:
        ref = allowed_locations(inst)
    except ValueError as exc:
        with pytest.raises(ValueError, match="fits nowhere") as got:
            build_memory(inst)
        assert str(got.value) == str(exc)
        return
    mask = build_memory(inst).allowed
    assert [np.flatnonzero(row).tolist() for row in mask] == ref


def test_table_cache_argument_is_checked() -> None:
    with pytest.raises(ValueError, match="table_cache must be a TableCache"):
        solve(_chain_instance(501), table_cache={})
