"""Fast exact shortest paths for chains (the ``block`` DAG), used by DeAOff's chain path.

On a chain the engine's cost of a placement is additive along the path (no uplink
contention, KV migrations serial and additive), so:

* phase 1 (minimum makespan, highest levels) is a shortest path over (node, location);
* phase 2 (minimum device energy with makespan ≤ B) is a resource-constrained shortest
  path.  Its unconstrained minimum (one shortest path on energy, each node and each hop
  taking its cheapest level) is the optimum whenever its makespan meets B; otherwise
  :mod:`solvers.deaoff` runs the full Pareto-label DP.

The tables are built with numpy in a handful of array operations from
``Instance.transfer_table`` (``Instance.transfer`` for every link and many byte counts at
once: same coefficients, same formula) and the instance's compute times, so
a solve on a 26-node chain with 3 locations and 4 × 4 levels costs well under a
millisecond.  Every answer is re-evaluated by the cost engine by the caller.
"""
from __future__ import annotations

import numpy as np

from core.cost import DEVICE
from core.instance import Instance, Placement

from core.cost import allowed_locations

__all__ = ["ChainTables"]

_INF = float("inf")


class ChainTables:
    """Per-node and per-hop (time, device energy) options of a chain instance.

    A node that fits nowhere raises ValueError naming it (``allowed_locations``).
    ``binding`` is True when some location's memory could overflow: the shortest paths
    ignore capacities, so their answers must then be checked."""

    def __init__(self, inst: Instance, levels: bool = True) -> None:
        n, K = inst.num_nodes, inst.num_locations
        dev = inst.system.device
        nf, nq = len(dev.freqs_hz), len(dev.tx_powers_w)
        self.n, self.K, self.nf, self.nq = n, K, nf, nq
        self.inst = inst
        pi = dev.idle_power_w
        # where each node may run: the solver's rule (raises naming a node that fits nowhere)
        allowed = np.zeros((n, K), dtype=bool)
        for i, ks in enumerate(allowed_locations(inst)):
            allowed[i, ks] = True
        cap = np.asarray(inst.system.mem_capacity_bytes, dtype=float) * (1 + 1e-12)
        need = np.asarray(inst.mem_need, dtype=float)
        self.binding = bool(((need[:, None] * allowed).sum(axis=0) > cap).any())
        qs = np.arange(nq) if levels else np.array([nq - 1])
        vs = np.arange(nf) if levels else np.array([nf - 1])
        # every transfer from Instance.transfer_table: [..., src, dst, power level]
        # hops i -> i+1 from k to l at power level q: (n-1, K, K, Q); zero on the diagonal
        out = np.asarray(inst.out_bytes, dtype=float)
        dur, dev_j = inst.transfer_table(out[:-1])
        hop_t = dur[..., qs]
        hop_e = dev_j[..., qs] + pi * hop_t
        # the output of the last node returns to the device
        dur, dev_j = inst.transfer_table(out[-1])
        ret_t = dur[:, DEVICE, -1]
        ret_e = dev_j[:, DEVICE, -1] + pi * ret_t
        # KV migrations from where each cache lives to k, at power level q: (n, K, Q)
        kv_loc = np.asarray(inst.kv_loc)
        moves = ((kv_loc >= 0) & (np.asarray(inst.kv_move_bytes) > 0.0))[:, None, None]
        dur, dev_j = inst.transfer_table(inst.kv_move_bytes)
        rows, src = np.arange(n), np.where(kv_loc >= 0, kv_loc, 0)
        mig_t = np.where(moves, dur[rows, src][:, :, qs], 0.0)
        mig_e = np.where(moves, dev_j[rows, src][:, :, qs], 0.0) + pi * mig_t
        # the token ids go up to the server that runs node 0 (highest power level)
        dur, dev_j = inst.transfer_table(inst.in_bytes)
        in_t = dur[DEVICE, 1:, -1]
        in_e = dev_j[DEVICE, 1:, -1] + pi * in_t
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
            node_t[0, 1:] += in_t[:, None]
            node_e[0, 1:] += in_e[:, None]
        node_t[~allowed] = _INF
        node_e[~allowed] = _INF
        self.node_t, self.node_e = node_t, node_e
        self.hop_t, self.hop_e = hop_t, hop_e
        self.ret_t, self.ret_e = ret_t, ret_e
        self.vs, self.qs = vs, qs
        self._fastest: tuple[float, Placement] | None = None
        self._cheapest: tuple[float, float, Placement] | None = None

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
        """Phase 1: the minimum makespan at the highest levels, and a placement reaching it
        (computed once; :meth:`constrained` reuses it)."""
        if self._fastest is None:
            t, loc = self._path(self.node_t[:, :, -1].tolist(), self.hop_t[..., -1].tolist(),
                                self.ret_t.tolist())
            self._fastest = (t, Placement(loc))
        return self._fastest

    def cheapest(self) -> tuple[float, float, Placement]:
        """The unconstrained minimum device energy (cheapest level of every node and hop):
        (energy, its makespan, the placement with its levels) (computed once)."""
        if self._cheapest is None:
            self._cheapest = self._lam_path(0.0)[:3]
        return self._cheapest

    def _lam_costs(self, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per node and hop, the cheapest option under e + λ·t: (node value (n, K), its
        option, hop value (n-1, K, K), its level)."""
        nc = self.node_e + lam * self.node_t if lam else self.node_e
        hc = self.hop_e + lam * self.hop_t if lam else self.hop_e
        no, ho = nc.argmin(axis=2), hc.argmin(axis=3)
        return (np.take_along_axis(nc, no[..., None], 2)[..., 0], no,
                np.take_along_axis(hc, ho[..., None], 3)[..., 0], ho)

    def _lam_path(self, lam: float) -> tuple[float, float, Placement, float]:
        """The path minimising e + λ·t: (its energy, its makespan, placement, e + λ·t)."""
        n, nf, nq = self.n, self.nf, self.nq
        nv, no, hv, ho = self._lam_costs(lam)
        rv = self.ret_e + lam * self.ret_t
        val, loc = self._path(nv.tolist(), hv.tolist(), rv.tolist())
        idx = np.arange(n)
        L = np.asarray(loc)
        opt = no[idx, L]
        hq = ho[idx[:-1], L[:-1], L[1:]]
        t = (float(self.node_t[idx, L, opt].sum()) + float(self.hop_t[idx[:-1], L[:-1], L[1:], hq].sum())
             + float(self.ret_t[L[-1]]))
        e = (float(self.node_e[idx, L, opt].sum()) + float(self.hop_e[idx[:-1], L[:-1], L[1:], hq].sum())
             + float(self.ret_e[L[-1]]))
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
        return e, t, Placement(loc, dv, tx), val

    def _completions(self, lam: float) -> list[list[float]]:
        """W[i][k]: the least e + λ·t of the rest of the chain after node i at k."""
        nv, _, hv, _ = self._lam_costs(lam)
        nv, hv = nv.tolist(), hv.tolist()
        K, rng = self.K, range(self.K)
        W = [[_INF] * K for _ in range(self.n)]
        W[-1] = (self.ret_e + lam * self.ret_t).tolist()
        for i in range(self.n - 2, -1, -1):
            h, nx, Wn = hv[i], nv[i + 1], W[i + 1]
            W[i] = [min(h[k][l] + nx[l] + Wn[l] for l in rng) for k in rng]
        return W

    def _dual(self, bound_s: float) -> tuple[float, float, tuple | None]:
        """Lagrangian dual of phase 2 by walking the lower convex hull of the (time,
        energy) paths between the fastest and the cheapest: returns (λ*, the dual bound,
        the least-energy path met that meets the bound as (e, t, placement) or None)."""
        e_c, t_c, _ = self.cheapest()
        t_f, p_f = self.fastest()
        # the fastest path's energy at the highest levels, by the tables
        idx = np.arange(self.n)
        L = np.asarray(p_f.loc)
        e_f = (float(self.node_e[idx, L, -1].sum()) + float(self.hop_e[idx[:-1], L[:-1], L[1:], -1].sum())
               + float(self.ret_e[L[-1]]))
        best = (e_f, t_f, p_f) if t_f <= bound_s else None
        lam, dual = 0.0, -_INF
        if t_c <= bound_s:
            return 0.0, e_c, best
        left, right = (t_f, e_f), (t_c, e_c)
        for _ in range(64):
            if right[0] <= left[0]:
                break
            lam = (left[1] - right[1]) / (right[0] - left[0])
            e, t, p, val = self._lam_path(lam)
            line = left[1] + lam * left[0]
            dual = max(dual, val - lam * bound_s)
            if val >= line * (1 - 1e-12) - 1e-300:
                break
            if t <= bound_s:
                left = (t, e)
                if best is None or e < best[0]:
                    best = (e, t, p)
            else:
                right = (t, e)
        return lam, dual, best

    def constrained(self, bound_s: float, label_budget: int = 20_000) -> tuple[float, float, Placement] | str:
        """Phase 2 when the energy minimum is too slow: the minimum device energy with
        makespan ≤ ``bound_s`` (already inflated by the caller's tolerance; at least the
        fastest path's makespan).  The Lagrangian dual (:meth:`_dual`) gives λ*, a lower
        bound and the best feasible path on the hull; when they meet, that path is optimal.
        Otherwise a Pareto (time, energy) label search over (node, location) drops every
        label whose fastest completion breaks the bound, or whose energy plus the
        cheapest completion, or plus the Lagrangian completion bound W_λ(i, k) − λ·(B − t),
        reaches the best energy known.  Returns (energy, makespan, placement), or "budget"
        past ``label_budget`` labels."""
        lam, dual, known = self._dual(bound_s)
        if known is None:
            raise ValueError("the latency bound is below the fastest path's makespan")
        if dual >= known[0] * (1 - 1e-12):
            return known
        W = self._completions(lam)
        upper_j = known[0]
        n, K = self.n, self.K
        nt, ne = self.node_t.tolist(), self.node_e.tolist()
        ht, he = self.hop_t.tolist(), self.hop_e.tolist()
        rt, re_ = self.ret_t.tolist(), self.ret_e.tolist()
        rng = range(K)

        def front(ts: list, es: list) -> list:
            """(t, e, option) Pareto options, t rising and e falling."""
            out, best = [], _INF
            for t, e, o in sorted(zip(ts, es, range(len(ts)))):
                if e < best:
                    out.append((t, e, o))
                    best = e
            return out

        # levels only matter on the device, for uploads, and for migrations up to a server
        kv_up = [self.inst.kv_loc[i] == DEVICE and self.inst.kv_move_bytes[i] > 0.0 for i in range(n)]
        last_o, last_q = self.node_t.shape[2] - 1, len(self.qs) - 1
        nopt = []
        for i in range(n):
            row = []
            for k in rng:
                if nt[i][k][0] == _INF:
                    row.append([])
                elif k == DEVICE or kv_up[i]:
                    row.append(front(nt[i][k], ne[i][k]))
                else:
                    row.append([(nt[i][k][last_o], ne[i][k][last_o], last_o)])
            nopt.append(row)
        hopt = []
        for i in range(n - 1):
            hi, hei = ht[i], he[i]
            hopt.append([[front(hi[k][l], hei[k][l]) if (k == DEVICE and l != DEVICE)
                          else [(hi[k][l][last_q], hei[k][l][last_q], last_q)] for l in rng] for k in rng])
        # fastest and cheapest completions after node i at k (hop, later nodes, return)
        tail_t = [[_INF] * K for _ in range(n)]
        tail_e = [[_INF] * K for _ in range(n)]
        tail_t[n - 1], tail_e[n - 1] = list(rt), list(re_)
        for i in range(n - 2, -1, -1):
            for k in rng:
                bt = be = _INF
                for l in rng:
                    no = nopt[i + 1][l]
                    if not no:
                        continue
                    ho = hopt[i][k][l]
                    vt = ho[0][0] + no[0][0] + tail_t[i + 1][l]
                    ve = ho[-1][1] + no[-1][1] + tail_e[i + 1][l]
                    if vt < bt:
                        bt = vt
                    if ve < be:
                        be = ve
                tail_t[i][k], tail_e[i][k] = bt, be
        B, U = bound_s, upper_j
        # labels[i][k]: list of (t, e, prev_k, prev_index, node option, hop option)
        labels: list[list[list]] = []
        first = []
        lB = lam * B
        for k in rng:
            tk, ek, wk = tail_t[0][k], tail_e[0][k], W[0][k] - lB
            first.append([(t, e, -1, -1, o, -1) for (t, e, o) in nopt[0][k]
                          if t + tk <= B and e + ek < U and e + wk + lam * t < U])
        labels.append(first)
        count = 0
        for i in range(1, n):
            cur = []
            prev = labels[i - 1]
            for l in rng:
                no = nopt[i][l]
                tl, el, wl = tail_t[i][l], tail_e[i][l], W[i][l] - lB
                cand = []
                if no:
                    for k in rng:
                        labs = prev[k]
                        if not labs:
                            continue
                        for (hq_t, hq_e, hq) in hopt[i - 1][k][l]:
                            for idx, lab in enumerate(labs):
                                t0 = lab[0] + hq_t
                                e0 = lab[1] + hq_e
                                for (ot, oe, o) in no:
                                    t = t0 + ot
                                    if t + tl > B:
                                        break  # options are sorted by time
                                    e = e0 + oe
                                    if e + el < U and e + wl + lam * t < U:
                                        cand.append((t, e, k, idx, o, hq))
                if len(cand) > 1:
                    cand.sort()
                    kept, best = [], _INF
                    for c in cand:
                        if c[1] < best:
                            kept.append(c)
                            best = c[1]
                    cand = kept
                count += len(cand)
                cur.append(cand)
            if count > label_budget:
                return "budget"
            labels.append(cur)
        best = None
        for k in rng:
            for idx, lab in enumerate(labels[n - 1][k]):
                t, e = lab[0] + rt[k], lab[1] + re_[k]
                if t <= B and e < U and (best is None or (e, t) < best[:2]):
                    best = (e, t, k, idx)
        if best is None:  # nothing beats the hull's path
            return known
        e, t, k, idx = best
        nf, nq = self.nf, self.nq
        loc, dv, tx = [0] * n, [nf - 1] * n, [nq - 1] * n
        vs, qs = self.vs, self.qs
        kv_loc, kv_move = self.inst.kv_loc, self.inst.kv_move_bytes
        for i in range(n - 1, -1, -1):
            lab = labels[i][k][idx]
            loc[i] = k
            o = lab[4]
            if k == DEVICE:
                dv[i] = int(vs[min(o, len(vs) - 1)])
            elif kv_loc[i] == DEVICE and kv_move[i] > 0.0:
                tx[i] = int(qs[min(o, len(qs) - 1)])
            if i:
                pk = lab[2]
                if pk == DEVICE and k != DEVICE:
                    tx[i - 1] = int(qs[lab[5]])
                k, idx = pk, lab[3]
        return e, t, Placement(loc, dv, tx)

    def fits(self, loc: list[int]) -> bool:
        used = [0.0] * self.K
        need = self.inst.mem_need
        for i, k in enumerate(loc):
            used[k] += need[i]
        cap = self.inst.system.mem_capacity_bytes
        return all(u <= c * (1 + 1e-12) for u, c in zip(used, cap))
