"""Fast exact shortest paths for chains (the ``block`` DAG), used by DeAOff's chain path.

On a chain the engine's cost of a placement is additive along the path (no uplink
contention, KV migrations serial and additive), so:

* phase 1 (minimum makespan, highest levels) is a shortest path over (node, location);
* phase 2 (minimum device energy with makespan ≤ B) is a resource-constrained shortest
  path.  Its unconstrained minimum (one shortest path on energy, each node and each hop
  taking its cheapest level) is the optimum whenever its makespan meets B; otherwise
  :mod:`baselines.deaoff` runs the full Pareto-label DP.

The tables are built with numpy in a handful of array operations from the instance's
transfer coefficients (``Instance.link_air_s_per_byte``, ``link_latency``,
``link_power_w``, the same numbers ``Instance.transfer`` uses) and its compute times, so
a solve on a 26-node chain with 3 locations and 4 × 4 levels costs well under a
millisecond.  Every answer is re-evaluated by the cost engine by the caller.
"""
from __future__ import annotations

import numpy as np

from envs.cost import DEVICE
from envs.instance import Instance, Placement

__all__ = ["ChainTables"]

_INF = float("inf")


class ChainTables:
    """Per-node and per-hop (time, device energy) options of a chain instance.

    ``ok`` is False when some node fits nowhere (the caller's general path raises the
    error naming it).  ``binding`` is True when some location's memory could overflow:
    the shortest paths ignore capacities, so their answers must then be checked."""

    def __init__(self, inst: Instance, levels: bool = True) -> None:
        n, K = inst.num_nodes, inst.num_locations
        dev = inst.system.device
        nf, nq = len(dev.freqs_hz), len(dev.tx_powers_w)
        self.n, self.K, self.nf, self.nq = n, K, nf, nq
        self.inst = inst
        pi = dev.idle_power_w
        up = np.array([True] + [bool(u) for u in inst.system.server_up])
        cap = np.asarray(inst.system.mem_capacity_bytes, dtype=float) * (1 + 1e-12)
        need = np.asarray(inst.mem_need, dtype=float)
        allowed = up[None, :] & (need[:, None] <= cap[None, :])
        self.ok = bool(allowed.any(axis=1).all())
        self.binding = bool(((need[:, None] * allowed).sum(axis=0) > cap).any())
        self.allowed = allowed
        AIR = np.asarray(inst.link_air_s_per_byte, dtype=float)  # (K, K, nq)
        LAT = np.asarray(inst.link_latency, dtype=float)          # (K, K)
        PW = np.asarray(inst.link_power_w, dtype=float)           # (K, K, nq)
        qs = np.arange(nq) if levels else np.array([nq - 1])
        vs = np.arange(nf) if levels else np.array([nf - 1])
        AIRq, PWq = AIR[:, :, qs], PW[:, :, qs]
        # hops i -> i+1 from k to l at power level q: (n-1, K, K, Q); zero on the diagonal
        out = np.asarray(inst.out_bytes, dtype=float)
        air = out[:-1, None, None, None] * AIRq[None]
        hop_t = air + LAT[None, :, :, None]
        hop_e = air * PWq[None] + pi * hop_t
        # the output of the last node returns to the device
        rair = out[-1] * AIR[:, DEVICE, -1]
        ret_t = rair + LAT[:, DEVICE]
        ret_e = rair * PW[:, DEVICE, -1] + pi * ret_t
        # KV migrations from where each cache lives to k, at power level q: (n, K, Q)
        kv_loc = np.asarray(inst.kv_loc)
        size = np.asarray(inst.kv_move_bytes, dtype=float)
        moves = (kv_loc >= 0) & (size > 0.0)
        src = np.where(kv_loc >= 0, kv_loc, 0)
        mair = np.where(moves[:, None, None], size[:, None, None] * AIRq[src], 0.0)
        mig_t = mair + np.where(moves[:, None], LAT[src], 0.0)[:, :, None]
        mig_e = mair * PWq[src] + pi * mig_t
        # node options (n, K, O): device -> DVFS level (migration to the device: a download,
        # level-free, taken at the top entry); server k -> power level of its migration
        O = max(len(vs), len(qs))
        pad = lambda a: np.concatenate([a, np.repeat(a[..., -1:], O - a.shape[-1], axis=-1)], axis=-1)  # noqa: E731
        dtime = np.asarray(inst.dev_time, dtype=float)[:, vs]
        denergy = np.asarray(inst.dev_energy, dtype=float)[:, vs]
        node_t = np.empty((n, K, O))
        node_e = np.empty((n, K, O))
        node_t[:, DEVICE] = pad(dtime + mig_t[:, DEVICE, -1:])
        node_e[:, DEVICE] = pad(denergy + mig_e[:, DEVICE, -1:])
        if K > 1:
            st = np.asarray(inst.srv_time, dtype=float)  # (n, K-1)
            node_t[:, 1:] = pad(mig_t[:, 1:] + st[:, :, None])
            node_e[:, 1:] = pad(mig_e[:, 1:] + pi * st[:, :, None])
            # the token ids go up to the server that runs node 0 (highest power level)
            in_air = inst.in_bytes * AIR[DEVICE, 1:, -1]
            in_t = in_air + LAT[DEVICE, 1:]
            node_t[0, 1:] += in_t[:, None]
            node_e[0, 1:] += (in_air * PW[DEVICE, 1:, -1] + pi * in_t)[:, None]
        node_t[~allowed] = _INF
        node_e[~allowed] = _INF
        self.node_t, self.node_e = node_t, node_e
        self.hop_t, self.hop_e = hop_t, hop_e
        self.ret_t, self.ret_e = ret_t, ret_e
        self.vs, self.qs = vs, qs

    # ------------------------------------------------------------------ paths
    def _path(self, node: list, hop: list, ret: list) -> tuple[float, list[int]]:
        """Shortest path through node costs node[i][k] and hop costs hop[i][k][l]."""
        n, K = self.n, self.K
        D = list(node[0])
        back = []
        rng = range(K)
        for i in range(1, n):
            h, nd = hop[i - 1], node[i]
            newD = [_INF] * K
            arg = [0] * K
            for l in rng:
                if nd[l] == _INF:
                    continue
                best, bk = _INF, 0
                for k in rng:
                    v = D[k] + h[k][l]
                    if v < best:
                        best, bk = v, k
                newD[l] = best + nd[l]
                arg[l] = bk
            back.append(arg)
            D = newD
        best, k = _INF, 0
        for l in rng:
            v = D[l] + ret[l]
            if v < best:
                best, k = v, l
        loc = [k] * n
        for i in range(n - 1, 0, -1):
            k = back[i - 1][k]
            loc[i - 1] = k
        return best, loc

    def fastest(self) -> tuple[float, Placement]:
        """Phase 1: the minimum makespan at the highest levels, and a placement reaching it."""
        t, loc = self._path(self.node_t[:, :, -1].tolist(), self.hop_t[..., -1].tolist(),
                            self.ret_t.tolist())
        return t, Placement(loc)

    def cheapest(self) -> tuple[float, float, Placement]:
        """The unconstrained minimum device energy (cheapest level of every node and hop):
        (energy, its makespan, the placement with its levels)."""
        n, nf, nq = self.n, self.nf, self.nq
        e, loc = self._path(self.node_e.min(axis=2).tolist(), self.hop_e.min(axis=3).tolist(),
                            self.ret_e.tolist())
        # the levels along the chosen path (first cheapest option, as the minimum above)
        idx = np.arange(n)
        L = np.asarray(loc)
        opt = self.node_e[idx, L].argmin(axis=1)
        t = float(self.node_t[idx, L, opt].sum())
        hq = self.hop_e[idx[:-1], L[:-1], L[1:]].argmin(axis=1)
        t += float(self.hop_t[idx[:-1], L[:-1], L[1:], hq].sum()) + float(self.ret_t[L[-1]])
        vs, qs = self.vs, self.qs
        opt, hq = opt.tolist(), hq.tolist()
        dv = [nf - 1] * n
        tx = [nq - 1] * n
        kv_loc, kv_move = self.inst.kv_loc, self.inst.kv_move_bytes
        for i in range(n):
            k = loc[i]
            if k == DEVICE:
                dv[i] = int(vs[min(opt[i], len(vs) - 1)])
                if i + 1 < n and loc[i + 1] != DEVICE:
                    tx[i] = int(qs[hq[i]])
            elif kv_loc[i] == DEVICE and kv_move[i] > 0.0:
                tx[i] = int(qs[min(opt[i], len(qs) - 1)])
        return e, t, Placement(loc, dv, tx)

    def fits(self, loc: list[int]) -> bool:
        used = [0.0] * self.K
        need = self.inst.mem_need
        for i, k in enumerate(loc):
            used[k] += need[i]
        cap = self.inst.system.mem_capacity_bytes
        return all(u <= c * (1 + 1e-12) for u, c in zip(used, cap))
