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


# --------------------------------------------------------------------------- runs of identical blocks
def run_chain(seed: int, blocks: int = 5, servers: int = 2, levels2: bool | None = None, kv: bool = False) -> Instance:
    """embed → ``blocks`` identical blocks → head, on ``servers`` servers whose memories
    (and the device's) hold 25-70% of the model each (at least one block), so capacities
    bind and the blocks must be split; ``kv``: every block's cache sits at one location
    (equal migrations keep the blocks identical)."""
    import networkx as nx

    from core.instance import make_instance
    from core.system import DeviceConfig, Scenario, ServerConfig, make_snapshot

    rng = np.random.default_rng(seed)
    levels2 = bool(seed % 2) if levels2 is None else levels2
    G = nx.DiGraph()
    out = float(10 ** rng.uniform(3, 5))

    def node(name: str, mem: float, kvb: float = 0.0) -> None:
        G.add_node(name, kind="block", flops=float(mem * rng.uniform(0.5, 3.0)), mem_bytes=mem,
                   weight_bytes=mem * 0.8, out_bytes=out, kv_bytes=kvb)

    node("embed", float(10 ** rng.uniform(6, 7.5)))
    block_mem = float(10 ** rng.uniform(7, 8.5))
    flops = float(block_mem * rng.uniform(0.5, 3.0))
    names = [f"b{i}" for i in range(blocks)]
    for name in names:
        G.add_node(name, kind="block", flops=flops, mem_bytes=block_mem, weight_bytes=block_mem * 0.8,
                   out_bytes=out, kv_bytes=1e6)
    node("head", float(10 ** rng.uniform(6, 7.5)))
    chain = ["embed"] + names + ["head"]
    G.add_edges_from(zip(chain, chain[1:]))
    total = sum(G.nodes[v]["weight_bytes"] + G.nodes[v]["kv_bytes"] for v in G)
    biggest = max(G.nodes[v]["weight_bytes"] + G.nodes[v]["kv_bytes"] for v in G)
    share = lambda: max(float(total * rng.uniform(0.25, 0.7)), 1.01 * biggest)  # noqa: E731
    device = DeviceConfig(freqs_hz=(0.5e9, 1.3e9) if levels2 else (1.3e9,),
                          tx_powers_w=(0.1, 1.0) if levels2 else (1.0,), mem_capacity_bytes=share())
    srv = [ServerConfig(distance_km=float(rng.uniform(0.05, 1.2)), load=float(rng.uniform(0.0, 0.9)),
                        mem_capacity_bytes=share(), latency_s=float(rng.uniform(0.0, 2e-3)))
           for _ in range(servers)]
    snap = make_snapshot(Scenario(device=device, servers=srv), fading_power=list(rng.exponential(1.0, servers)))
    kv_loc, kv_move = {}, {}
    if kv:
        at = int(rng.integers(0, servers + 1))
        kv_loc = {name: at for name in names}
        kv_move = {name: 5e5 for name in names}
    return make_instance(G, snap, kv_loc=kv_loc, kv_move_bytes=kv_move)


@pytest.mark.parametrize("seed", range(30))
def test_run_model_matches_brute_force(seed: int) -> None:
    """Chains whose middle is a run of identical blocks, capacities binding: with the label
    search switched off (budget 0) the chain tables settle both phases on the MILP with
    the run aggregated into counts, and prove brute force's optima (phase 1 at the top
    levels; phase 2 with levels, bound 1.1·T*); the weighted objective too."""
    from solvers.brute_force import brute_force
    from solvers.deaoff.chain_runs import identical_runs
    from tests.test_deaoff import _close, _feasible

    inst = run_chain(seed, blocks=4 + seed % 2, servers=1 + (seed % 3 > 0), kv=seed % 4 == 3)
    T = ChainTables(inst)
    assert identical_runs(T, T.time_top, None) == [(1, inst.num_nodes - 2)]
    if not _feasible(inst):
        with pytest.raises(ValueError, match="memory budget"):
            T.fastest(label_budget=0)
        return
    levels = len(inst.system.device.freqs_hz) > 1
    fast = T.fastest(label_budget=0)
    _, best_t = brute_force(inst, "makespan", levels=False)
    assert fast.gap == 0.0 and _close(fast.objective, best_t.makespan_s, 1e-9), (fast, best_t.makespan_s)
    bound = 1.1 * best_t.makespan_s
    cheap = T.min_energy(bound * (1 + 1e-9), known=fast.placement, label_budget=0)
    _, best_e = brute_force(inst, "energy", latency_bound_s=bound, levels=levels)
    assert cheap.gap == 0.0 and _close(cheap.objective, best_e.energy_j, 1e-9), (cheap.objective, best_e.energy_j)
    from core.cost import evaluate

    r = evaluate(inst, cheap.placement)
    assert _close(r.energy_j, cheap.objective, 1e-9) and r.makespan_s <= bound * (1 + 1e-9)
    w = T.min_weighted(1.0, 3.0, label_budget=0)
    _, best_w = brute_force(inst, "weighted", w_time_per_s=1.0, w_energy_per_j=3.0, levels=levels)
    assert _close(w.objective, best_w.makespan_s + 3.0 * best_w.energy_j, 1e-9)


# --------------------------------------------------------------------------- series DAGs (sublayer)
def test_series_cuts_of_the_dags() -> None:
    """Llama-2-7B: the sublayer DAG's cut nodes are embed, every add and head (2 per layer
    + 2); the block DAG (a chain) is a series DAG without interior nodes; the head DAG
    (four parallel heads per layer) is not one."""
    from core.dag import build_dag
    from core.instance import make_instance
    from core.models import load_model_spec
    from core.system import load_scenario, make_snapshot
    from solvers.deaoff.series import series_cuts

    spec, snap = load_model_spec("llama-2-7b"), make_snapshot(load_scenario("two-edge"))
    sub = make_instance(build_dag(spec, "sublayer", "decode", context_len=64), snap)
    cuts = series_cuts(sub)
    assert cuts is not None and len(cuts) == 2 * 32 + 2
    assert [sub.kinds[i] for i in cuts[:3]] == ["embed", "add", "add"] and sub.kinds[cuts[-1]] == "head"
    block = make_instance(build_dag(spec, "block", "decode", context_len=64), snap)
    assert series_cuts(block) == list(range(block.num_nodes))
    head = make_instance(build_dag(spec, "head", "decode", context_len=64), snap)
    assert series_cuts(head) is None


@pytest.mark.parametrize("seed", range(30))
def test_series_model_matches_brute_force(seed: int) -> None:
    """Residual DAGs (c → a → c' with the skip c → c', the sublayer shape; memories that
    sometimes bind, KV caches for some): exact DeAOff settles them on the series cut-chain
    MILP and proves brute force's optima in both phases and in the weighted mode; every
    figure is the engine's."""
    from solvers.brute_force import brute_force
    from tests.test_deaoff import _assert_engine, _close, _feasible, random_instance

    inst = random_instance(seed, shape="residual", n=3 + 2 * (seed % 3))
    if not _feasible(inst):
        with pytest.raises(ValueError, match="memory budget|fits nowhere"):
            solve(inst)
        return
    levels = len(inst.system.device.freqs_hz) > 1
    sol = solve(inst, levels=levels)
    assert sol.status == "optimal" and all(s.startswith("series:") for s in sol.solver_status)
    _, best_t = brute_force(inst, "makespan", levels=False)
    assert _close(sol.phase1_makespan_s, best_t.makespan_s, 1e-9)
    _, best_e = brute_force(inst, "energy", latency_bound_s=sol.latency_bound_s, levels=levels)
    assert _close(sol.energy_j, best_e.energy_j, 1e-9), (sol.energy_j, best_e.energy_j)
    _assert_engine(inst, sol)
    w = solve(inst, objective="weighted", w_time_per_s=1.0, w_energy_per_j=4.0, levels=levels)
    _, best_w = brute_force(inst, "weighted", w_time_per_s=1.0, w_energy_per_j=4.0, levels=levels)
    assert w.status == "optimal" and _close(w.weighted_cost, best_w.makespan_s + 4.0 * best_w.energy_j, 1e-9)


def test_series_periodic_run_matches_the_general_milp() -> None:
    """A 6-layer Llama-shaped sublayer DAG (a periodic run of attention and MLP gadgets,
    aggregated into counts) on three servers whose memories bind: the series model's
    proven optima equal the general MILP's (use_dp=False), both phases."""
    from solvers.deaoff.series import SeriesTables
    inst = _small_sublayer(layers=6, servers=2)
    S = SeriesTables(inst)
    sol = solve(inst)
    ref = solve(inst, use_dp=False)
    assert sol.status == ref.status == "optimal"
    assert abs(sol.phase1_makespan_s - ref.phase1_makespan_s) <= 1e-6 * ref.phase1_makespan_s
    assert abs(sol.energy_j - ref.energy_j) <= 1e-6 * ref.energy_j
    assert len(S.binding) >= 2


def _small_sublayer(layers: int, servers: int) -> Instance:
    """embed → (attn, add, mlp, add) × layers → head with the residual skips, every layer
    alike; memories of 35-60% of the model each so capacities bind."""
    import networkx as nx

    from core.instance import make_instance
    from core.system import DeviceConfig, Scenario, ServerConfig, make_snapshot

    rng = np.random.default_rng(7)
    G = nx.DiGraph()
    kinds = {"attn": (3e7, 2e4), "mlp": (9e7, 2e4), "add": (0.0, 2e4), "embed": (2e7, 2e4), "head": (2e7, 8.0)}

    def node(name: str, kind: str) -> None:
        mem, out = kinds[kind]
        G.add_node(name, kind=kind, flops=2 * mem + 1e4, mem_bytes=mem + 1e4, weight_bytes=mem, out_bytes=out,
                   kv_bytes=1e5 if kind == "attn" else 0.0)

    node("embed", "embed")
    prev = "embed"
    for layer in range(layers):
        a, s1, m, s2 = (f"L{layer}.{x}" for x in ("attn", "add1", "mlp", "add2"))
        node(a, "attn"), node(s1, "add"), node(m, "mlp"), node(s2, "add")
        G.add_edges_from([(prev, a), (prev, s1), (a, s1), (s1, m), (s1, s2), (m, s2)])
        prev = s2
    node("head", "head")
    G.add_edge(prev, "head")
    total = sum(G.nodes[v]["weight_bytes"] + G.nodes[v]["kv_bytes"] for v in G)
    device = DeviceConfig(freqs_hz=(0.5e9, 1.3e9), tx_powers_w=(0.1, 1.0), mem_capacity_bytes=total * 0.35)
    srv = [ServerConfig(distance_km=float(rng.uniform(0.05, 1.2)), load=float(rng.uniform(0.0, 0.5)),
                        mem_capacity_bytes=total * float(rng.uniform(0.35, 0.6)), latency_s=1e-3)
           for _ in range(servers)]
    snap = make_snapshot(Scenario(device=device, servers=srv), fading_power=list(rng.exponential(1.0, servers)))
    return make_instance(G, snap)


def test_record_false_keeps_the_figures() -> None:
    """``record=False`` (the env's reference): the same placement and figures as the
    recorded answer, without the schedule lists; a non-bool record is refused."""
    inst = _chain_instance(503)
    kw = dict(objective="weighted", w_time_per_s=1.0, w_energy_per_j=2.0)
    full, lean = solve(inst, **kw), solve(inst, record=False, **kw)
    assert lean.placement == full.placement
    assert (lean.makespan_s, lean.energy_j) == (full.makespan_s, full.energy_j)
    assert full.result.start_s and not lean.result.start_s and not lean.result.transfers
    with pytest.raises(ValueError, match="record must be True or False"):
        solve(inst, record=1)


@pytest.mark.parametrize("seed", range(25))
def test_series_tables_price_paths_as_the_engine(seed: int) -> None:
    """The gadget tables are the engine's costs: random paths of the cut chain (random cut
    locations and levels, random gadget options) of residual DAGs and of head-shaped DAGs
    (composite interiors: three heads and their projection placed as a whole) expand to
    placements whose engine makespan and energy equal the tables' sums."""
    from core.cost import evaluate, placement_fits
    from solvers.deaoff.series import SeriesTables
    from tests.test_deaoff import random_instance
    from tests.test_solver_symmetry import head_instance

    inst = (head_instance(seed, heads=3, layers=2, servers=2, tight=False) if seed % 2
            else random_instance(seed, shape="residual", n=7, kv=True, roomy=True))
    S = SeriesTables(inst, composite=True)
    rng = np.random.default_rng(seed)
    node_t, node_e = S.node_t[S.cuts], S.node_e[S.cuts]
    checked = 0
    for _ in range(30):
        m = len(S.cuts)
        loc = [int(rng.integers(S.K)) for _ in range(m)]
        hop_opt = []
        for j in range(m - 1):
            h = S.hops[j]
            ok = np.flatnonzero((h.X == loc[j]) & (h.Z == loc[j + 1]))
            if not len(ok):
                break
            hop_opt.append(int(rng.choice(ok)))
        if len(hop_opt) < m - 1:
            continue
        opt = [int(rng.integers(node_t.shape[2])) for _ in range(m)]
        if not all(np.isfinite(node_t[p, loc[p], opt[p]]) for p in range(m)):
            continue
        placement, energy, makespan = S.placement_of(loc, opt, hop_opt, node_e, [h.e for h in S.hops], S.ret_e)
        if not placement_fits(inst, placement.loc):
            continue
        r = evaluate(inst, placement)
        assert r.makespan_s == pytest.approx(makespan, rel=1e-9, abs=1e-15)
        assert r.energy_j == pytest.approx(energy, rel=1e-9, abs=1e-15)
        checked += 1
    assert checked > 0
