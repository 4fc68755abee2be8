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
  transfers one at a time in a fixed order: node order, a node's uploads right after it
  finishes (its destinations in server order); the input (token ids) is uploaded when a
  source node at that server is scheduled, at the highest power level.  An upload
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
  per device node; transmit: P_up[k][q] · airtime of every upload; receive: P_down[k] ·
  airtime of every download; idle: P_idle · (makespan − device compute time), the power
  whenever the device is not computing.  Generic links: P_up = p_q, P_down = P_rx.
  Radio-model links (:mod:`core.radio`): P_idle includes the radio's connected-mode power
  (waiting for the edge), and P_up / P_down are the draw above it, α·rate + β − P_conn;
  the tail after a session's last token is a per-session constant outside this cost.
* Servers (:mod:`core.load`).  Time-sliced: the (1-ρ) roofline above.  Batched: a node
  joins a continuous-batching step with B other users,
  max(F·(B+1)/peak, (W + (M−W)·(B+1))/bandwidth).  Edge energy (reported separately):
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


MEM_TOL = 1 + 1e-12
"""Relative tolerance of every memory-fit test: bytes ``u`` fit capacity ``c`` iff
``u <= c * MEM_TOL`` (absorbs float rounding in sums of layer sizes)."""


def fits_memory(used_bytes: float, capacity_bytes: float) -> bool:
    """The one memory-fit rule: ``used_bytes`` fit in ``capacity_bytes``."""
    return used_bytes <= capacity_bytes * MEM_TOL


def placement_fits(inst: Instance, loc: Sequence[int]) -> bool:
    """Whether every location holds the weights + KV placed on it."""
    return all(fits_memory(u, c) for u, c in zip(memory_use(inst, loc), inst.system.mem_capacity_bytes))


def check_memory(inst: Instance, loc: Sequence[int]) -> None:
    """Raise ValueError naming the first location whose weights + KV exceed its memory."""
    used = memory_use(inst, loc)
    for k, (u, cap) in enumerate(zip(used, inst.system.mem_capacity_bytes)):
        if not fits_memory(u, cap):
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
    return [location_allowed(inst, k) and fits_memory(used_bytes[k] + need, cap[k])
            for k in range(inst.num_locations)]


def allowed_locations(inst: Instance) -> list[list[int]]:
    """Per node, the locations that are up and whose whole memory could hold it alone.

    Raises ValueError naming the first node that fits nowhere."""
    empty = [0.0] * inst.num_locations
    out = []
    for i in range(inst.num_nodes):
        ok = [k for k, fits in enumerate(feasible_locations(inst, i, empty)) if fits]
        if not ok:
            up = [inst.location_names[k] for k in range(inst.num_locations) if location_allowed(inst, k)]
            raise ValueError(f"node {inst.names[i]!r} fits nowhere: it needs {inst.mem_need[i] / 1e9:.3f} GB "
                             f"(weights + KV) and no up location ({', '.join(up)}) has that much memory")
        out.append(ok)
    return out


def fallback_location(inst: Instance, node: int, used_bytes: Sequence[float]) -> int:
    """The one fallback rule, for a node whose asked-for location cannot take it: the
    device if it can, else the first feasible location (servers ascending), given
    ``used_bytes`` already placed.  Raises ValueError naming the node if none can."""
    ok = feasible_locations(inst, node, used_bytes)
    if ok[DEVICE]:
        return DEVICE
    for k, fits in enumerate(ok):
        if fits:
            return k
    raise ValueError(f"node {inst.names[node]!r} has no feasible location: it needs "
                     f"{inst.mem_need[node] / 1e9:.3f} GB (weights + KV)")


def split_fits(inst: Instance) -> list[list[bool]]:
    """Which single splits fit: ``fits[p][k - 1]`` says whether nodes 0..p-1 on the device
    and nodes p..n-1 on server k fit (server k up, both memories hold their part), for
    p = 0..n; p = n puts everything on the device, whatever k.  Index order is topological,
    so every prefix is a valid cut."""
    cap = inst.system.mem_capacity_bytes
    up = inst.system.server_up
    n, m = inst.num_nodes, inst.num_locations - 1
    prefix = [0.0]
    for need in inst.mem_need:
        prefix.append(prefix[-1] + need)
    total = prefix[-1]
    out = []
    for p in range(n + 1):
        dev_ok = fits_memory(prefix[p], cap[DEVICE])
        out.append([dev_ok and (p == n or (up[k - 1] and fits_memory(total - prefix[p], cap[k])))
                    for k in range(1, m + 1)])
    return out


def weighted_cost(makespan_s: float, energy_j: float, *, w_time_per_s: float, w_energy_per_j: float) -> float:
    """The one weighted cost C = w_T·T + w_E·E of a latency (s) and a device energy (J),
    w_T per second and w_E per joule (the environment's reward and the agent tables)."""
    return w_time_per_s * makespan_s + w_energy_per_j * energy_j


class Probe(NamedTuple):
    """What placing one node would give (:meth:`Simulator.probe`).  Times are absolute: they
    include the KV-migration phase as it would be after the placement."""

    start_s: float
    finish_s: float
    """When its computation ends."""
    done_s: float
    """``finish_s``; for a sink, when its output is back on the device."""
    energy_j: float
    """Device energy the placement adds: compute + transmit + receive (idle energy is
    charged on the makespan, see :meth:`Simulator.partial_cost`)."""
    t_mig_s: float
    """End of the KV-migration phase after the placement."""


class Simulator:
    """The engine in incremental form: nodes are placed one at a time, in index order.

    ``evaluate`` is this class run over a whole placement, so the environment (which
    places one node per step and :meth:`probe` s every location for its observation), the
    list-scheduling heuristics (which probe every location before placing a node) and
    every other caller share one implementation of the rules.

    Times inside are relative to the end of the migration phase T_mig (the whole
    computation is shifted by T_mig, which grows as migrating nodes are placed);
    :meth:`result` and :meth:`probe` return absolute times.

    ``shared_uplink=False`` is HEFT's classic communication model (every transfer starts
    when its data is ready; the device uplink is not a shared resource).  It exists for the
    HEFT heuristic's estimate only; :func:`evaluate` never uses it.
    """

    __slots__ = ("inst", "record", "shared_uplink", "n_placed", "loc", "t_mig", "free", "uplink_free", "arrival",
                 "input_at", "compute_j", "tx_j", "rx_j", "dev_busy", "edge_j", "rel_makespan",
                 "start", "finish", "transfers", "migrations", "max_finish", "tx")

    def __init__(self, inst: Instance, record: bool = False, *, shared_uplink: bool = True) -> None:
        n = inst.num_nodes
        self.inst = inst
        self.record = record
        self.shared_uplink = shared_uplink
        self.n_placed = 0
        self.loc = [-1] * n
        self.tx = [0] * n
        self.t_mig = 0.0
        self.free = [0.0] * inst.num_locations
        self.uplink_free = 0.0
        self.arrival: list[dict[int, float] | None] = [None] * n
        self.input_at = {DEVICE: 0.0}
        self.compute_j = self.tx_j = self.rx_j = self.dev_busy = self.edge_j = 0.0
        self.rel_makespan = 0.0
        self.max_finish = 0.0
        self.start = [0.0] * n
        self.finish = [0.0] * n
        self.transfers: list[Transfer] = []
        self.migrations: list[Transfer] = []

    # -------------------------------------------------------------- one node
    def place(self, i: int, k: int, v: int, q: int, dests: Sequence[int] | None = None) -> float:
        """Place node ``i`` (must be the next index) at location ``k`` with DVFS level ``v``
        (used on the device) and power level ``q`` (its uploads); return its relative finish.

        ``dests``: the other locations that need its output (ascending), sent right after it
        finishes: the engine's producer-order uplink.  ``None`` (the environment and the
        list-scheduling heuristics, which do not know the successors' locations yet) sends
        an output lazily, when a successor is placed, and a sink's output back to the
        device right away; for a chain the two agree, otherwise the final cost is the
        engine's."""
        inst = self.inst
        if i != self.n_placed:
            raise ValueError(f"nodes must be placed in index order: expected {self.n_placed}, got {i}")
        sysm = inst.system
        powers = sysm.device.tx_powers_w
        self.loc[i] = k
        self.tx[i] = q
        self.n_placed = i + 1

        # KV-cache migration: appended to the serial reconfiguration phase
        a = inst.kv_loc[i]
        size = inst.kv_move_bytes[i]
        if a >= 0 and a != k and size > 0.0:
            s = self.t_mig
            dur, tj, rj, link = inst.transfer(a, k, q, size)
            f = s + dur
            self.tx_j += tj
            self.rx_j += rj
            self.t_mig = f
            if self.record:
                self.migrations.append(Transfer("migration", i, a, k, s, f, size, link))

        # ready when every input is at k (the token's input, for a source)
        ps = inst.preds[i]
        ready = 0.0
        if ps:
            arrival = self.arrival
            for p in ps:
                t = arrival[p].get(k)  # type: ignore[union-attr]
                if t is None:
                    t = self._send(p, k)
                if t > ready:
                    ready = t
        else:
            t = self.input_at.get(k)
            if t is None:  # first source at server k: upload the input at the highest level
                dur, tj, _, _ = inst.transfer(DEVICE, k, len(powers) - 1, inst.in_bytes)
                if self.shared_uplink:
                    s = self.uplink_free
                    t = self.uplink_free = s + dur
                else:
                    s, t = 0.0, dur
                self.tx_j += tj
                self.input_at[k] = t
                if self.record:
                    self.transfers.append(Transfer("input", -1, DEVICE, k, s, t, inst.in_bytes, "uplink"))
            ready = t
        free_k = self.free[k]
        st = free_k if free_k > ready else ready
        if k == DEVICE:
            dur = inst.dev_time[i][v]
            self.compute_j += inst.dev_energy[i][v]
            self.dev_busy += dur
        else:
            dur = inst.srv_time[i][k - 1]
            self.edge_j += sysm.server_power_w[k - 1] * dur
        fin = st + dur
        self.free[k] = fin
        self.start[i] = st
        self.finish[i] = fin
        if fin > self.max_finish:
            self.max_finish = fin
        self.arrival[i] = {k: fin}
        if dests is not None:
            for l in dests:
                self._send(i, l)
        elif not inst.succs[i] and k != DEVICE:
            self._send(i, DEVICE)
        if not inst.succs[i] and k == DEVICE and fin > self.rel_makespan:
            self.rel_makespan = fin
        return fin

    def probe(self, i: int, k: int, v: int, q: int, dests: Sequence[int] | None = None) -> Probe:
        """What :meth:`place` with these arguments would give, without placing anything.

        It runs :meth:`place` and undoes it, so a probe follows the engine's rules by
        construction; the simulator is left exactly as it was."""
        inst = self.inst
        if i != self.n_placed:
            raise ValueError(f"nodes must be placed in index order: expected {self.n_placed}, got {i}")
        saved = (self.t_mig, self.uplink_free, self.compute_j, self.tx_j, self.rx_j, self.dev_busy,
                 self.edge_j, self.rel_makespan, self.max_finish, self.free[k])
        arrival = self.arrival
        preds = inst.preds[i]
        if preds:  # the inputs this placement will send to k
            missing = [p for p in preds if k not in arrival[p]]  # type: ignore[operator]
            new_input = False
        else:
            missing = []
            new_input = k not in self.input_at
        if self.record:
            n_rec = (len(self.transfers), len(self.migrations))
        energy0 = self.compute_j + self.tx_j + self.rx_j

        self.place(i, k, v, q, dests)
        t0 = self.t_mig
        fin = self.finish[i]
        done = arrival[i].get(DEVICE, fin) if not inst.succs[i] else fin  # type: ignore[union-attr]
        out = Probe(t0 + self.start[i], t0 + fin, t0 + done, self.compute_j + self.tx_j + self.rx_j - energy0, t0)

        (self.t_mig, self.uplink_free, self.compute_j, self.tx_j, self.rx_j, self.dev_busy,
         self.edge_j, self.rel_makespan, self.max_finish, self.free[k]) = saved
        for p in missing:
            del arrival[p][k]  # type: ignore[index]
        if new_input:
            del self.input_at[k]
        if self.record:
            del self.transfers[n_rec[0]:]
            del self.migrations[n_rec[1]:]
        self.n_placed = i
        self.loc[i] = -1
        self.tx[i] = 0
        self.start[i] = self.finish[i] = 0.0
        arrival[i] = None
        return out

    def _send(self, i: int, l: int) -> float:
        """Move node ``i``'s output to location ``l``; return its arrival time there."""
        inst = self.inst
        k = self.loc[i]
        arr = self.arrival[i]
        fin = arr[k]  # type: ignore[index]
        size = inst.out_bytes[i]
        is_sink = not inst.succs[i]
        dur, tj, rj, link = inst.transfer(k, l, self.tx[i], size)
        if k == DEVICE and self.shared_uplink:  # the one shared uplink, in order
            s = self.uplink_free if self.uplink_free > fin else fin
            self.uplink_free = s + dur
        else:
            s = fin
        f = s + dur
        self.tx_j += tj
        self.rx_j += rj
        arr[l] = f  # type: ignore[index]
        if f > self.max_finish:
            self.max_finish = f
        if is_sink and l == DEVICE and f > self.rel_makespan:
            self.rel_makespan = f
        if self.record:
            self.transfers.append(Transfer("output" if is_sink else "activation", i, k, l, s, f, size, link))
        return f

    # -------------------------------------------------------------- totals
    def partial_cost(self) -> tuple[float, float]:
        """(time, device energy) of what is placed so far: T_mig + the latest finish so far,
        energy with idle charged up to that time.  Equals the final cost once all is placed."""
        t = self.t_mig + (self.rel_makespan if self.n_placed == self.inst.num_nodes else self.max_finish)
        idle = self.inst.system.device.idle_power_w * (t - self.dev_busy)
        return t, self.compute_j + self.tx_j + self.rx_j + idle

    def result(self) -> Result:
        if self.n_placed != self.inst.num_nodes:
            raise ValueError(f"{self.inst.num_nodes - self.n_placed} node(s) left unplaced")
        t0 = self.t_mig
        makespan = t0 + self.rel_makespan
        idle_j = self.inst.system.device.idle_power_w * (makespan - self.dev_busy)
        res = Result(makespan, self.compute_j + self.tx_j + self.rx_j + idle_j, self.compute_j,
                     self.tx_j, self.rx_j, idle_j, self.edge_j)
        if self.record:
            res.start_s = [t + t0 for t in self.start]
            res.finish_s = [t + t0 for t in self.finish]
            res.transfers = self.migrations + [t._replace(start_s=t.start_s + t0, finish_s=t.finish_s + t0)
                                               for t in self.transfers]
            res.loc = list(self.loc)
        return res


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
    sim = Simulator(inst, record)
    succs = inst.succs
    for i in range(inst.num_nodes):
        k = loc[i]
        ss = succs[i]
        if ss:
            if len(ss) == 1:
                l = loc[ss[0]]
                dests = () if l == k else (l,)
            else:
                dests = sorted({loc[j] for j in ss} - {k})
        else:
            dests = () if k == DEVICE else (DEVICE,)
        sim.place(i, k, dv[i], tx[i], dests)
    return sim.result()

