"""Problem preparation: the engine's durations and energies as solver coefficients.

Every transfer figure comes from :meth:`core.instance.Instance.transfer` (the one place its
cost is derived); the placement rule from :func:`core.cost.allowed_locations` and the
memory-fit rule from :func:`core.cost.fits_memory`.  Whatever a solver builds from these
numbers is re-evaluated by the cost engine (:func:`core.cost.evaluate`).
"""
from __future__ import annotations

from core.cost import DEVICE, Result, allowed_locations, evaluate, fits_memory, location_allowed
from core.instance import Instance, Placement

__all__ = ["Problem", "is_chain", "check_total_memory", "identical_groups"]


def is_chain(inst: Instance) -> bool:
    """Whether the DAG is a chain 0 → 1 → … → n−1 (the ``block`` granularity)."""
    preds = inst.preds
    return not preds[0] and all(preds[i] == [i - 1] for i in range(1, inst.num_nodes))


def check_total_memory(inst: Instance) -> None:
    """ValueError when the nodes' total weights + KV exceed what the up locations hold."""
    caps = inst.system.mem_capacity_bytes
    total = sum(inst.mem_need)
    budget = sum(caps[k] for k in range(inst.num_locations) if location_allowed(inst, k))
    if not fits_memory(total, budget):
        raise ValueError(f"no placement fits the memory budget: the nodes need {total / 1e9:.3f} GB "
                         f"(weights + KV) but the up locations hold {budget / 1e9:.3f} GB in total")


def identical_groups(inst: Instance, allowed: list[list[int]] | None = None) -> list[list[int]]:
    """Runs of consecutive nodes that are interchangeable (e.g. the attention heads of one
    layer at ``head`` granularity): the same predecessors and successors (at least one
    predecessor), compute times and energies, memory need, output size, KV cache location
    and migration size, and allowed locations.  Permuting the placements (and levels)
    within such a run leaves the engine's schedule, makespan and energy unchanged: the
    run's members are next to each other in every processor's and the uplink's order and
    indistinguishable in every cost.  Only runs of two or more nodes are returned."""
    if allowed is None:
        allowed = allowed_locations(inst)

    def key(i: int) -> tuple:
        return (tuple(inst.preds[i]), tuple(inst.succs[i]), tuple(inst.dev_time[i]), tuple(inst.dev_energy[i]),
                tuple(inst.srv_time[i]), inst.mem_need[i], inst.out_bytes[i], inst.kv_loc[i],
                inst.kv_move_bytes[i], tuple(allowed[i]))

    groups, run = [], [0]
    for i in range(1, inst.num_nodes):
        if inst.preds[i] and key(i) == key(run[-1]):
            run.append(i)
            continue
        if len(run) > 1:
            groups.append(run)
        run = [i]
    if len(run) > 1:
        groups.append(run)
    return groups


class Problem:
    """Per-instance constants shared by the MILP, the chain tables' callers and relaxed mode.

    Raises ValueError naming a node that fits nowhere, or when the nodes' total memory
    exceeds what the up locations hold together."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.n, self.K = inst.num_nodes, inst.num_locations
        self.allowed = allowed_locations(inst)  # raises naming a node that fits nowhere
        check_total_memory(inst)
        dev = inst.system.device
        self.nf, self.nq = len(dev.freqs_hz), len(dev.tx_powers_w)
        self.fmax, self.qmax = self.nf - 1, self.nq - 1
        self.pidle = dev.idle_power_w
        self.chain = is_chain(inst)
        self.succs, self.preds = inst.succs, inst.preds
        # fastest processing time of each node over its allowed locations (top levels)
        self.pmin = [min(self.ptime(i, k) for k in self.allowed[i]) for i in range(self.n)]
        self.head, self.tail = self._heads_and_tails()
        self.groups = identical_groups(inst, self.allowed)
        self.mig_min = sum(min(self.mig(i, k, q)[0] for k in self.allowed[i] for q in range(self.nq))
                           for i in range(self.n))

    def _heads_and_tails(self) -> tuple[list[float], list[float]]:
        """Longest path of fastest processing before each node (head) and after it (tail)."""
        n = self.n
        head = [0.0] * n
        for j in range(n):
            for i in self.preds[j]:
                head[j] = max(head[j], head[i] + self.pmin[i])
        tail = [0.0] * n
        for i in range(n - 1, -1, -1):
            for j in self.succs[i]:
                tail[i] = max(tail[i], self.pmin[j] + tail[j])
        return head, tail

    # --- the engine's numbers as (duration_s, device_energy_j) coefficients
    def ptime(self, i: int, k: int, v: int | None = None) -> float:
        """Processing time of node i at location k (DVFS level v on the device; top by default)."""
        if k == DEVICE:
            return self.inst.dev_time[i][self.fmax if v is None else v]
        return self.inst.srv_time[i][k - 1]

    def _move(self, src: int, dst: int, q: int, nbytes: float) -> tuple[float, float]:
        dur, tx_j, rx_j, _ = self.inst.transfer(src, dst, q, nbytes)
        return dur, tx_j + rx_j

    def up(self, i: int, l: int, q: int) -> tuple[float, float]:
        """Upload of node i's output to server l at power level q."""
        return self._move(DEVICE, l, q, self.inst.out_bytes[i])

    def down(self, i: int, k: int) -> tuple[float, float]:
        """Download of node i's output from server k."""
        return self._move(k, DEVICE, self.qmax, self.inst.out_bytes[i])

    def trans(self, i: int, k: int, l: int, q: int) -> tuple[float, float]:
        """Node i's output from k to l (power level q when k is the device)."""
        if k == l:
            return 0.0, 0.0
        return self._move(k, l, q, self.inst.out_bytes[i])

    def inp(self, k: int) -> tuple[float, float]:
        """The token ids up to server k (highest power level)."""
        return self._move(DEVICE, k, self.qmax, self.inst.in_bytes)

    def mig(self, i: int, k: int, q: int) -> tuple[float, float]:
        """Migration of node i's KV cache to k (power level q when it is an upload)."""
        inst = self.inst
        a, size = inst.kv_loc[i], inst.kv_move_bytes[i]
        if a < 0 or a == k or size <= 0.0:
            return 0.0, 0.0
        return self._move(a, k, q, size)

    def migrates_up(self, i: int) -> bool:
        return self.inst.kv_loc[i] == DEVICE and self.inst.kv_move_bytes[i] > 0.0

    def evaluate(self, placement: Placement) -> Result:
        """The engine's figures without a schedule record (candidates are costed this way)."""
        return evaluate(self.inst, placement, record=False, check=False)
