"""The cost engine: the single source of truth for schedules, latency and energy.

``evaluate(instance, placement)`` turns "node i runs at location k (at DVFS level v,
uploading at power level q)" into a schedule, a makespan and the device's energy.
The solver, the heuristics, the environment and evaluate.py all call it; none of them
computes a transfer time or an energy term on its own.

Semantics (also in the README).  Locations: 0 = device, k = 1..M edge servers.
Node indices are the instance's priority order (decreasing upward rank), which is a
topological order.

* Processors.  Each location runs one node at a time, its nodes in index order
  (non-preemptive).  A node starts at max(all its inputs have arrived at its location,
  its processor is free).  Time on the device at DVFS level v is the roofline
  max(FLOPs / (f_v·FLOPs-per-cycle), mem_bytes / DRAM bandwidth); on server k,
  max(FLOPs / ((1-ρ_k)·peak), mem_bytes / ((1-ρ_k)·bandwidth)).
* Data.  The input (``in_bytes`` of token ids) starts on the device; a source node
  placed on server k needs it uploaded there.  A node's output is sent once to each
  other location that hosts one of its successors; a sink's output must also return to
  the device, and the makespan is when the last sink's output is on the device.
* Transfers.  device→server k: the device uplink at the node's transmit-power level q,
  ``bytes·8 / r_up[k][q] + latency_k``; the uplink is ONE shared resource serving
  transfers one at a time in a fixed order: the input upload(s) (server order), then
  activation uploads in node order (a node's destinations in server order).  An upload
  starts at max(data ready, uplink free).  server k→device: ``bytes·8 / r_down[k] +
  latency_k``, starting when the data is ready (downlinks are not contended).
  server→server: the wired backhaul, ``bytes·8 / backhaul + backhaul latency``, not
  contended.
* KV cache.  A node whose existing cache (``kv_move_bytes`` at ``kv_loc``) lives at
  another location has it migrated first.  Migrations form a reconfiguration phase at
  the start of the token: they run one after another, in node order, from t = 0, each
  over the link between its two locations (an upload at the node's power level); the
  token's computation and its other transfers start when the last migration has
  landed (time T_mig).  This keeps the cost of a migration additive, which is what
  makes the exact chain dynamic programme possible.
* Device energy.  compute: κ·f_v²·(FLOPs / FLOPs-per-cycle) + DRAM J/byte · mem_bytes
  per device node; transmit: p_q · airtime of every upload; receive: P_rx · airtime of
  every download; idle: P_idle · (makespan − device compute time), the baseline power
  whenever the device is not computing.  Edge energy (reported separately):
  power_k · compute time of every node on server k.
* Memory.  Σ (weight_bytes + kv_bytes) of the nodes at a location must fit its
  capacity; a server that is down holds nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

from .instance import Instance, Placement

DEVICE = 0


class Transfer(NamedTuple):
    kind: str  # "input" | "migration" | "activation" | "output"
    node: int  # node whose data moves (-1 for the input)
    src: int
    dst: int
    start_s: float
    finish_s: float
    bytes: float
    link: str  # "uplink" | "downlink" | "backhaul"


@dataclass
class Result:
    makespan_s: float
    energy_j: float
    """Device energy: compute + transmit + receive + idle."""
    compute_j: float
    transmit_j: float
    receive_j: float
    idle_j: float
    edge_energy_j: float
    start_s: list[float] = field(default_factory=list)
    finish_s: list[float] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    loc: list[int] = field(default_factory=list)

    @property
    def breakdown(self) -> dict[str, float]:
        return {"compute_j": self.compute_j, "transmit_j": self.transmit_j,
                "receive_j": self.receive_j, "idle_j": self.idle_j}

    def to_dict(self, inst: Instance | None = None) -> dict[str, Any]:
        names = inst.names if inst is not None else [str(i) for i in range(len(self.start_s))]
        return {
            "makespan_s": self.makespan_s, "energy_j": self.energy_j, **self.breakdown,
            "edge_energy_j": self.edge_energy_j,
            "nodes": [{"node": names[i], "loc": self.loc[i], "start_s": self.start_s[i],
                       "finish_s": self.finish_s[i]} for i in range(len(self.start_s))],
            "transfers": [t._asdict() | {"node": names[t.node] if t.node >= 0 else "<input>"}
                          for t in self.transfers],
        }


def memory_use(inst: Instance, loc: Sequence[int]) -> list[float]:
    """Bytes (weights + KV) placed at each location."""
    used = [0.0] * inst.num_locations
    need = inst.mem_need
    for i, k in enumerate(loc):
        used[k] += need[i]
    return used


def check_memory(inst: Instance, loc: Sequence[int]) -> None:
    """Raise ValueError naming the first location whose weights + KV exceed its memory."""
    used = memory_use(inst, loc)
    for k, (u, cap) in enumerate(zip(used, inst.system.mem_capacity_bytes)):
        if u > cap * (1 + 1e-12):
            raise ValueError(f"memory exceeded at {inst.location_names[k]}: weights + KV need "
                             f"{u / 1e9:.3f} GB, capacity {cap / 1e9:.3f} GB")


def location_allowed(inst: Instance, k: int) -> bool:
    return k == DEVICE or inst.system.server_up[k - 1]


def feasible_locations(inst: Instance, node: int, used_bytes: Sequence[float]) -> list[bool]:
    """The one feasibility helper shared by the solver, the heuristics and the env's masks:
    location k can take ``node`` if it is up and its memory still fits the node's
    weights + KV given ``used_bytes`` already placed there."""
    need = inst.mem_need[node]
    cap = inst.system.mem_capacity_bytes
    return [location_allowed(inst, k) and used_bytes[k] + need <= cap[k] * (1 + 1e-12)
            for k in range(inst.num_locations)]


def evaluate(inst: Instance, placement: Placement | Sequence[int], *, record: bool = True,
             check: bool = True) -> Result:
    """Schedule ``placement`` on ``inst`` and return its makespan, energy and schedule.

    ``record=False`` skips building the schedule lists (the hot path of brute force and
    the environment); ``check=False`` skips validation (callers that built a valid
    placement themselves).
    """
    if not isinstance(placement, Placement):
        placement = Placement(list(placement))
    if check:
        placement.validate(inst)
        check_memory(inst, placement.loc)
    loc = placement.loc
    dv, tx = placement.levels(inst)
    sysm = inst.system
    dev = sysm.device
    powers = dev.tx_powers_w
    up_bps, down_bps, lat = inst.up_bps, inst.down_bps, sysm.link_latency_s
    bh_bps, bh_lat = sysm.backhaul_bps, sysm.backhaul_latency_s
    n, nloc = inst.num_nodes, inst.num_locations
    preds, succs = inst.preds, inst.succs
    out_bytes = inst.out_bytes
    dev_time, dev_energy, srv_time = inst.dev_time, inst.dev_energy, inst.srv_time

    tx_j = rx_j = 0.0
    transfers: list[Transfer] = []
    # arrival[i] maps location -> time node i's output is available there
    arrival: list[dict[int, float]] = [None] * n  # type: ignore[list-item]

    # (a) KV-cache migrations: a serial reconfiguration phase from t = 0, in node order
    clock = 0.0
    kv_loc, kv_bytes = inst.kv_loc, inst.kv_move_bytes
    for i in range(n):
        a, b = kv_loc[i], loc[i]
        if a < 0 or a == b or kv_bytes[i] <= 0.0:
            continue
        size = kv_bytes[i]
        s = clock
        if a == DEVICE:
            air = size * 8.0 / up_bps[b - 1][tx[i]]
            clock = s + air + lat[b - 1]
            tx_j += powers[tx[i]] * air
            link = "uplink"
        elif b == DEVICE:
            air = size * 8.0 / down_bps[a - 1]
            clock = s + air + lat[a - 1]
            rx_j += dev.rx_power_w * air
            link = "downlink"
        else:
            clock = s + size * 8.0 / bh_bps + bh_lat
            link = "backhaul"
        if record:
            transfers.append(Transfer("migration", i, a, b, s, clock, size, link))
    t_mig = clock

    # (b) input upload(s), at the highest power level, in server order
    uplink_free = t_mig
    input_at = {DEVICE: t_mig}
    src_locs = sorted({loc[i] for i in inst.sources if loc[i] != DEVICE})
    qmax = len(powers) - 1
    for k in src_locs:
        air = inst.in_bytes * 8.0 / up_bps[k - 1][qmax]
        s = uplink_free
        uplink_free = s + air + lat[k - 1]
        tx_j += powers[qmax] * air
        input_at[k] = uplink_free
        if record:
            transfers.append(Transfer("input", -1, DEVICE, k, s, uplink_free, inst.in_bytes, "uplink"))

    # (c) nodes in priority order, each followed by its outgoing transfers
    start = [0.0] * n
    finish = [0.0] * n
    compute_j = dev_busy = edge_j = 0.0
    free = [t_mig] * nloc
    srv_power = sysm.server_power_w
    makespan = t_mig
    for i in range(n):
        k = loc[i]
        ready = t_mig
        ps = preds[i]
        if ps:
            for p in ps:
                t = arrival[p][k]
                if t > ready:
                    ready = t
        else:
            t = input_at[k]
            if t > ready:
                ready = t
        st = free[k] if free[k] > ready else ready
        if k == DEVICE:
            v = dv[i]
            dur = dev_time[i][v]
            compute_j += dev_energy[i][v]
            dev_busy += dur
        else:
            dur = srv_time[i][k - 1]
            edge_j += srv_power[k - 1] * dur
        fin = st + dur
        free[k] = fin
        start[i] = st
        finish[i] = fin
        arr = {k: fin}
        arrival[i] = arr
        ss = succs[i]
        if ss:
            dests = {loc[j] for j in ss}
            dests.discard(k)
            if len(dests) > 1:
                dests = sorted(dests)
        else:
            dests = () if k == DEVICE else (DEVICE,)
        size = out_bytes[i]
        for l in dests:
            if k == DEVICE:
                q = tx[i]
                air = size * 8.0 / up_bps[l - 1][q]
                s = uplink_free if uplink_free > fin else fin
                f = s + air + lat[l - 1]
                uplink_free = f
                tx_j += powers[q] * air
                link = "uplink"
            elif l == DEVICE:
                air = size * 8.0 / down_bps[k - 1]
                s, f = fin, fin + air + lat[k - 1]
                rx_j += dev.rx_power_w * air
                link = "downlink"
            else:
                s, f = fin, fin + size * 8.0 / bh_bps + bh_lat
                link = "backhaul"
            arr[l] = f
            if record:
                transfers.append(Transfer("activation" if ss else "output", i, k, l, s, f, size, link))
        if not ss:
            t = arr[DEVICE]
            if t > makespan:
                makespan = t
    idle_j = dev.idle_power_w * (makespan - dev_busy)
    res = Result(makespan, compute_j + tx_j + rx_j + idle_j, compute_j, tx_j, rx_j, idle_j, edge_j)
    if record:
        res.start_s, res.finish_s, res.transfers, res.loc = start, finish, transfers, list(loc)
    return res


def cost_of(inst: Instance, placement: Placement | Sequence[int]) -> tuple[float, float]:
    """(makespan_s, device energy_j) without recording the schedule."""
    r = evaluate(inst, placement, record=False)
    return r.makespan_s, r.energy_j
