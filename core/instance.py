"""Instances (a layer DAG + a system snapshot) and placements, with JSON round trips.

An :class:`Instance` is flat arrays, not a graph: nodes are re-indexed once, at
construction, in the scheduling priority order (decreasing upward rank, HEFT-style,
computed with each node's mean cost over the locations; ties keep topological order).
Index order is therefore both a topological order and the order in which every
processor and the device uplink serve their work (see :mod:`core.cost`).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import networkx as nx
import numpy as np

from .load import batched_step_time_s, roofline_time_s
from .system import SystemSnapshot

NODE_FIELDS = ("flops", "mem_bytes", "weight_bytes", "out_bytes", "kv_bytes")


@dataclass
class Instance:
    """A DAG plus a snapshot of the system, in priority order."""

    names: list[str]
    kinds: list[str]
    flops: list[float]
    mem_bytes: list[float]
    """Bytes moved through memory in one execution (roofline)."""
    weight_bytes: list[float]
    out_bytes: list[float]
    kv_bytes: list[float]
    """KV cache the node holds after this step (memory footprint)."""
    preds: list[list[int]]
    system: SystemSnapshot
    in_bytes: float = 4.0
    """Input (token ids) that starts on the device."""
    kv_loc: list[int] = field(default_factory=list)
    """Where each node's existing KV cache lives: a location, or -1 for none."""
    kv_move_bytes: list[float] = field(default_factory=list)
    """Bytes of that existing cache: moved if the node runs elsewhere."""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.names)
        if n == 0:
            raise ValueError("instance has no nodes")
        if not isinstance(self.system, SystemSnapshot):  # a snapshot validates its numbers when built
            raise ValueError(f"instance.system must be a SystemSnapshot, got {type(self.system).__name__}")
        if not self.kv_loc:
            self.kv_loc = [-1] * n
        if not self.kv_move_bytes:
            self.kv_move_bytes = [0.0] * n
        for key in ("kinds", "flops", "mem_bytes", "weight_bytes", "out_bytes", "kv_bytes",
                    "preds", "kv_loc", "kv_move_bytes"):
            if len(getattr(self, key)) != n:
                raise ValueError(f"instance.{key} has {len(getattr(self, key))} entries for {n} nodes")
        if len(set(self.names)) != n:
            raise ValueError("instance node names are not unique")
        for key in NODE_FIELDS + ("kv_move_bytes",):
            values = getattr(self, key)
            for i, v in enumerate(values):
                if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                    raise ValueError(f"node {self.names[i]!r}: {key} must be finite and >= 0, got {v!r}")
            setattr(self, key, [float(v) for v in values])
        if not (isinstance(self.in_bytes, (int, float)) and math.isfinite(self.in_bytes) and self.in_bytes >= 0):
            raise ValueError(f"in_bytes must be finite and >= 0, got {self.in_bytes!r}")
        for i, ps in enumerate(self.preds):
            for p in ps:
                if not (isinstance(p, int) and 0 <= p < i):
                    raise ValueError(f"node {self.names[i]!r}: predecessor index {p} is not earlier in "
                                     "priority order (cycle or unsorted instance)")
        k = self.system.num_locations
        for i, loc in enumerate(self.kv_loc):
            if not (isinstance(loc, int) and -1 <= loc < k):
                raise ValueError(f"node {self.names[i]!r}: kv_loc {loc} is not a location")
        self._compile()

    def with_token_state(self, system: SystemSnapshot, **changes: Any) -> "Instance":
        """A copy with another system snapshot and some per-node lists replaced, without
        re-validating: for callers (the per-token builder) whose new values are derived
        from this validated instance by non-negative linear growth.  Lengths are checked."""
        obj = object.__new__(type(self))
        obj.__dict__.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        n = self.num_nodes
        for key, values in changes.items():
            if key not in obj.__dict__ or key == "system":
                raise ValueError(f"instance has no per-node field {key!r}")
            if isinstance(values, list) and len(values) != n:
                raise ValueError(f"instance.{key} has {len(values)} entries for {n} nodes")
            obj.__dict__[key] = values
        obj.system = system
        obj._compile()
        return obj

    # ------------------------------------------------------------------ derived
    @property
    def num_nodes(self) -> int:
        return len(self.names)

    @property
    def num_locations(self) -> int:
        return self.system.num_locations

    @property
    def location_names(self) -> list[str]:
        return ["device"] + [f"edge{k}" for k in range(1, self.num_locations)]

    def _compile(self) -> None:
        """Precompute every per-node, per-location constant the engine uses."""
        s, d = self.system, self.system.device
        n, m = self.num_nodes, self.num_locations - 1
        succ: list[list[int]] = [[] for _ in range(n)]
        for i, ps in enumerate(self.preds):
            for p in ps:
                succ[p].append(i)
        self.succs = succ
        self.sinks = [i for i in range(n) if not succ[i]]
        self.sources = [i for i in range(n) if not self.preds[i]]
        # One roofline for the device and the servers (``roofline_time_s``), with the rates
        # they achieve: device f·FLOPs-per-cycle·flops_fraction and bandwidth·mem_bw_fraction;
        # server k the snapshot's (1-ρ)·peak·fraction.
        dev_bw = d.mem_bw_bytes_per_s * d.mem_bw_fraction
        self.dev_time = [[roofline_time_s(self.flops[i], self.mem_bytes[i], f * d.flops_per_cycle * d.flops_fraction,
                                          dev_bw) for f in d.freqs_hz] for i in range(n)]
        # E = κ·f²·cycles (LODCO) + DRAM energy per byte moved.
        self.dev_energy = [[d.kappa * f * f * self.flops[i] / d.flops_per_cycle + d.dram_j_per_byte * self.mem_bytes[i]
                            for f in d.freqs_hz] for i in range(n)]
        self.srv_time = [[roofline_time_s(self.flops[i], self.mem_bytes[i], s.server_flops_per_s[k],
                                          s.server_mem_bw_bytes_per_s[k]) for k in range(m)] for i in range(n)]
        for k in range(m):  # batched servers: the layer joins a batch step (core.load)
            if s.server_load_model[k] == "batched":
                b = s.server_background_users[k]
                for i in range(n):
                    self.srv_time[i][k] = batched_step_time_s(self.flops[i], self.weight_bytes[i], self.mem_bytes[i], b,
                                                              s.server_flops_per_s[k], s.server_mem_bw_bytes_per_s[k])
        # transfer durations for b bytes: airtime b·8/r (energy-bearing) + fixed latency
        self.up_bps = [list(r) for r in s.uplink_bps]
        self.down_bps = list(s.downlink_bps)
        self.mem_need = [self.weight_bytes[i] + self.kv_bytes[i] for i in range(n)]
        # per link (src, dst, power level q): airtime seconds per byte, and the fixed latency;
        # the coefficients of every transfer (``transfer`` and the solvers' vectorised tables)
        K, nq = m + 1, len(d.tx_powers_w)
        air = [[[0.0] * nq for _ in range(K)] for _ in range(K)]
        lat = [[0.0] * K for _ in range(K)]
        for src in range(K):
            for dst in range(K):
                if src == dst:
                    continue
                if src == 0:
                    air[src][dst] = [8.0 / r for r in self.up_bps[dst - 1]]
                    lat[src][dst] = s.link_latency_s[dst - 1]
                elif dst == 0:
                    air[src][dst] = [8.0 / self.down_bps[src - 1]] * nq
                    lat[src][dst] = s.link_latency_s[src - 1]
                else:
                    air[src][dst] = [8.0 / s.backhaul_bps] * nq
                    lat[src][dst] = s.backhaul_latency_s
        self.link_air_s_per_byte = air
        self.link_latency = lat
        # device power during the airtime, above the waiting power (core.radio): the snapshot's
        # uplink_power_w[k][q] (generic: p_q) on an upload, downlink_power_w[k] (generic: P_rx)
        # on a download, 0 on the backhaul
        self.link_power_w = [[list(s.uplink_power_w[dst - 1]) if src == 0 and dst else
                              ([s.downlink_power_w[src - 1]] * nq if dst == 0 and src else [0.0] * nq)
                              for dst in range(K)] for src in range(K)]
        self._link_arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # transfer_table's

    def transfer(self, src: int, dst: int, q: int, nbytes: float) -> tuple[float, float, float, str]:
        """Moving ``nbytes`` from location ``src`` to ``dst`` (≠ src): (duration_s, device
        transmit J, device receive J, link).  The one place a transfer's cost is derived,
        from the snapshot's coefficient tables (``link_air_s_per_byte``, ``link_latency``,
        ``link_power_w``, which the solvers' vectorised tables read too): airtime
        bytes·8/rate (Shannon rate) plus the link's fixed latency; an upload at power level
        ``q`` costs P_up[k][q]·airtime, a download P_down[k]·airtime, a backhaul hop no device
        energy (generic link: P_up = p_q, P_down = P_rx; radio model: the draw above the
        waiting power, α·rate + β − P_conn, see :mod:`core.radio`)."""
        air = nbytes * self.link_air_s_per_byte[src][dst][q]
        dur = air + self.link_latency[src][dst]
        if src == 0:
            return dur, self.link_power_w[src][dst][q] * air, 0.0, "uplink"
        if dst == 0:
            return dur, 0.0, self.link_power_w[src][dst][q] * air, "downlink"
        return dur, 0.0, 0.0, "backhaul"

    def transfer_table(self, nbytes: Any) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`transfer` for many byte counts and every link at once: for ``nbytes`` of
        shape S, (duration_s, device J = transmit + receive) of shape S + (K, K, Q), indexed
        [..., src, dst, power level]; zero where src == dst.  Same coefficients, same
        formula (for the solvers' vectorised tables)."""
        if self._link_arrays is None:
            self._link_arrays = (np.asarray(self.link_air_s_per_byte), np.asarray(self.link_latency)[:, :, None],
                                 np.asarray(self.link_power_w))
        air_per_byte, latency, power = self._link_arrays
        air = np.asarray(nbytes, dtype=float)[..., None, None, None] * air_per_byte
        return air + latency, air * power

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {"format": "deaoff-instance/1",
                **{f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "system"},
                "system": self.system.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Instance":
        data = dict(data)
        fmt = data.pop("format", None)
        if fmt != "deaoff-instance/1":
            raise ValueError(f"not an instance file (format {fmt!r})")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"instance: unknown key(s) {unknown}")
        data["system"] = SystemSnapshot.from_dict(data["system"])
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "Instance":
        return cls.from_dict(_read_json(path))


def _read_json(path: str | Path) -> Any:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"file not found: {p}")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p} is not valid JSON: {exc}") from None


@dataclass
class Placement:
    """A location per node (0 = device), a DVFS level per node (used when on the device)
    and a transmit-power level per node (used for the uploads of its output and of its
    KV-cache migration).  Levels default to the highest."""

    loc: list[int]
    dvfs: list[int] | None = None
    tx: list[int] | None = None

    def levels(self, inst: Instance) -> tuple[list[int], list[int]]:
        n = inst.num_nodes
        dv = [len(inst.system.device.freqs_hz) - 1] * n if self.dvfs is None else list(self.dvfs)
        tx = [len(inst.system.device.tx_powers_w) - 1] * n if self.tx is None else list(self.tx)
        return dv, tx

    def validate(self, inst: Instance) -> None:
        """Raise ValueError naming the first problem: wrong length, unknown location or level,
        a server that is down."""
        n, k = inst.num_nodes, inst.num_locations
        if len(self.loc) != n:
            raise ValueError(f"placement has {len(self.loc)} locations for {n} nodes")
        nf, nt = len(inst.system.device.freqs_hz), len(inst.system.device.tx_powers_w)
        dv, tx = self.levels(inst)
        if len(dv) != n or len(tx) != n:
            raise ValueError(f"placement levels must have one entry per node ({n})")
        for i in range(n):
            loc = self.loc[i]
            if not isinstance(loc, (int, np.integer)) or not (0 <= loc < k):
                raise ValueError(f"node {inst.names[i]!r}: unknown location {loc!r} (0..{k - 1})")
            if loc > 0 and not inst.system.server_up[loc - 1]:
                raise ValueError(f"node {inst.names[i]!r}: location {inst.location_names[loc]} is down")
            if not (0 <= dv[i] < nf):
                raise ValueError(f"node {inst.names[i]!r}: unknown DVFS level {dv[i]!r} (0..{nf - 1})")
            if not (0 <= tx[i] < nt):
                raise ValueError(f"node {inst.names[i]!r}: unknown transmit-power level {tx[i]!r} (0..{nt - 1})")

    @classmethod
    def from_names(cls, inst: Instance, mapping: Mapping[str, str | int],
                   dvfs: Mapping[str, int] | None = None, tx: Mapping[str, int] | None = None) -> "Placement":
        """Build from ``{node name: location name or index}``; every node must be placed."""
        index = {name: i for i, name in enumerate(inst.names)}
        locs = {name: i for i, name in enumerate(inst.location_names)}
        for name in list(mapping) + list(dvfs or {}) + list(tx or {}):
            if name not in index:
                raise ValueError(f"placement names unknown node {name!r}")
        missing = [name for name in inst.names if name not in mapping]
        if missing:
            raise ValueError(f"node {missing[0]!r} is left unplaced ({len(missing)} unplaced)")
        loc = []
        for name in inst.names:
            where = mapping[name]
            if isinstance(where, str):
                if where not in locs:
                    raise ValueError(f"node {name!r}: unknown location {where!r}; known: {inst.location_names}")
                where = locs[where]
            loc.append(int(where))
        dv, txl = cls(loc).levels(inst)
        for name, lvl in (dvfs or {}).items():
            dv[index[name]] = int(lvl)
        for name, lvl in (tx or {}).items():
            txl[index[name]] = int(lvl)
        out = cls(loc, dv, txl)
        out.validate(inst)
        return out

    def to_dict(self, inst: Instance | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"format": "deaoff-placement/1", "loc": list(map(int, self.loc)),
                             "dvfs": None if self.dvfs is None else list(map(int, self.dvfs)),
                             "tx": None if self.tx is None else list(map(int, self.tx))}
        if inst is not None:
            d["nodes"] = list(inst.names)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Placement":
        if data.get("format") != "deaoff-placement/1":
            raise ValueError(f"not a placement file (format {data.get('format')!r})")
        return cls(list(data["loc"]), data.get("dvfs"), data.get("tx"))

    def save(self, path: str | Path, inst: Instance | None = None) -> None:
        Path(path).write_text(json.dumps(self.to_dict(inst), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "Placement":
        return cls.from_dict(_read_json(path))


# --------------------------------------------------------------------------- building
def priority_order(graph: nx.DiGraph, system: SystemSnapshot) -> list[str]:
    """Decreasing upward rank with mean costs over locations (HEFT, Topcuoglu et al. 2002);
    ties keep a deterministic topological order (lexicographic by name)."""
    d = system.device
    m = system.num_locations - 1
    up_rates = [r[-1] for r in system.uplink_bps] + list(system.downlink_bps)
    mean_rate = float(np.mean(up_rates)) if up_rates else 1.0
    topo = list(nx.lexicographical_topological_sort(graph))
    rank: dict[str, float] = {}
    for name in reversed(topo):
        a = graph.nodes[name]
        mem = a.get("mem_bytes", a["weight_bytes"])
        times = [roofline_time_s(a["flops"], mem, d.freqs_hz[-1] * d.flops_per_cycle * d.flops_fraction,
                                 d.mem_bw_bytes_per_s * d.mem_bw_fraction)]
        times += [roofline_time_s(a["flops"], mem, system.server_flops_per_s[k], system.server_mem_bw_bytes_per_s[k])
                  for k in range(m)]
        comm = a["out_bytes"] * 8.0 / mean_rate
        rank[name] = float(np.mean(times)) + max((comm + rank[s] for s in graph.successors(name)), default=0.0)
    position = {name: i for i, name in enumerate(topo)}
    return sorted(topo, key=lambda name: (-rank[name], position[name]))


def make_instance(graph: nx.DiGraph, system: SystemSnapshot, *,
                  kv_loc: Mapping[str, int] | None = None,
                  kv_move_bytes: Mapping[str, float] | None = None,
                  extra_flops: Mapping[str, float] | None = None,
                  order: Sequence[str] | None = None) -> Instance:
    """Flatten a layer DAG (see :func:`core.dag.build_dag`) and a snapshot into an instance.

    ``kv_loc`` / ``kv_move_bytes``: where each attention node's existing cache lives and its
    size (a decode step's cache before the new token).  ``extra_flops``: work added to a node
    (e.g. rebuilding a lost cache).  ``order``: reuse a priority order (the environment keeps
    one per model so that node indices do not move between tokens).
    """
    from .dag import validate_dag  # local: dag imports nothing from here

    validate_dag(graph)
    names = list(order) if order is not None else priority_order(graph, system)
    if set(names) != set(graph.nodes) or len(names) != graph.number_of_nodes():
        raise ValueError("order must list every node of the graph exactly once")
    index = {name: i for i, name in enumerate(names)}
    for name in list(kv_loc or {}) + list(kv_move_bytes or {}) + list(extra_flops or {}):
        if name not in index:
            raise ValueError(f"unknown node {name!r}")
    attrs = [graph.nodes[name] for name in names]
    flops = [float(a["flops"]) + float((extra_flops or {}).get(nm, 0.0)) for nm, a in zip(names, attrs)]
    return Instance(
        names=names,
        kinds=[str(a["kind"]) for a in attrs],
        flops=flops,
        mem_bytes=[float(a.get("mem_bytes", a["weight_bytes"])) for a in attrs],
        weight_bytes=[float(a["weight_bytes"]) for a in attrs],
        out_bytes=[float(a["out_bytes"]) for a in attrs],
        kv_bytes=[float(a["kv_bytes"]) for a in attrs],
        preds=[sorted(index[p] for p in graph.predecessors(name)) for name in names],
        system=system,
        in_bytes=float(graph.graph.get("in_bytes", 4.0)),
        kv_loc=[int((kv_loc or {}).get(name, -1)) for name in names],
        kv_move_bytes=[float((kv_move_bytes or {}).get(name, 0.0)) for name in names],
        meta={k: v for k, v in graph.graph.items() if isinstance(v, (str, int, float, bool))},
    )
