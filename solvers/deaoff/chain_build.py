"""The numpy tables of the chain model (:class:`~.chain.ChainTables`), built per instance,
with what does not change from one token to the next reused.

Within one generation request an environment solves a chain instance per token.  From one
token to the next only a few inputs move: the context (attention FLOPs, bytes read, KV
cache size and migration bytes), the channel (every link's airtime coefficients) and the
servers' load (their compute times).  The model's structure, its activation sizes and the
option maps of the tables do not, and the memory rule's answer (which node may go where,
which capacities can bind) changes only when the memory needs, capacities or server
availability do.  :class:`TableCache` keeps the previous instance's tables and rebuilds
only the parts whose inputs differ, compared by value, so a reused table is the table a
fresh build gives, entry for entry (``tests/test_solver_scale.py`` checks it over a real
episode).

Every figure comes from the instance: transfers from ``Instance.transfer_table`` (the
vectorised twin of ``Instance.transfer``: same coefficients, same formula), compute from
the instance's roofline times, the placement rule of :func:`core.cost.allowed_locations`
in its vectorised form (node i may use location k iff k is up and the node's weights + KV
fit k's memory alone, :func:`core.cost.fits_memory`); when some node fits nowhere the
engine's own helper raises the error naming it.
"""
from __future__ import annotations

from itertools import chain
from typing import NamedTuple

import numpy as np

from core.cost import DEVICE, MEM_TOL, allowed_locations
from core.instance import Instance

__all__ = ["Static", "Memory", "build_static", "build_memory", "build_costs", "TableCache"]

_INF = float("inf")


class Static(NamedTuple):
    """What a run of tokens of one model shares: sizes, level sets, option maps, the
    activation bytes (the first n entries of every token's byte vector)."""

    key: tuple
    qs: np.ndarray
    vs: np.ndarray
    opts: int
    dv: np.ndarray | None
    """Node option o at the device → DVFS level (the last repeated up to ``opts``); None
    when that is every level in order (a view, not a gather)."""
    pad_q: np.ndarray | None
    """Node option o at a server → index into ``qs`` (the last repeated); None when the
    identity."""
    full_q: bool
    """Whether ``qs`` is every power level (then a slice, not a gather)."""


class Memory(NamedTuple):
    """The memory rule's answer for one instance: inputs (to compare) and outputs."""

    key: tuple
    need: np.ndarray
    cap: np.ndarray
    allowed: np.ndarray
    binding: list[int]


def _static_key(inst: Instance, levels: bool) -> tuple:
    dev = inst.system.device
    return (inst.num_nodes, inst.num_locations, len(dev.freqs_hz), len(dev.tx_powers_w), bool(levels))


def build_static(inst: Instance, levels: bool) -> Static:
    n, K, nf, nq, _ = key = _static_key(inst, levels)
    qs = np.arange(nq) if levels else np.array([nq - 1])
    vs = np.arange(nf) if levels else np.array([nf - 1])
    O = max(len(vs), len(qs))
    dv = vs[np.minimum(np.arange(O), len(vs) - 1)]
    pad_q = np.minimum(np.arange(O), len(qs) - 1)
    return Static(key, qs, vs, O, None if np.array_equal(dv, np.arange(nf)) else dv,
                  None if np.array_equal(pad_q, np.arange(len(qs))) else pad_q, levels)


def _memory_key(inst: Instance) -> tuple:
    s = inst.system
    return (inst.mem_need, s.mem_capacity_bytes, s.server_up)


def _caps(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    """The capacities with the fit tolerance (``fits_memory(u, c)`` is ``u <= c·MEM_TOL``)
    and which locations are up (the device always)."""
    s = inst.system
    cap = np.asarray(s.mem_capacity_bytes, dtype=float) * MEM_TOL
    up = np.ones(len(cap), dtype=bool)
    up[1:] = s.server_up
    return cap, up


def build_memory(inst: Instance, caps: tuple[np.ndarray, np.ndarray] | None = None) -> Memory:
    """Which node may use which location ((n, K) booleans, ``allowed_locations``'s rule),
    the capacities (tolerance included) and the locations whose capacity some placement
    could exceed (``caps``: :func:`_caps` of ``inst``, when the caller has it).  Raises
    ValueError naming a node that fits nowhere."""
    cap, up = _caps(inst) if caps is None else caps
    need = np.asarray(inst.mem_need, dtype=float)
    allowed = (need[:, None] <= cap) & up
    if not allowed.any(axis=1).all():
        allowed_locations(inst)  # the engine's helper names the node
        raise AssertionError("allowed_locations accepted a node the vectorised rule rejects")
    load = (need[:, None] * allowed).sum(axis=0)
    binding = np.flatnonzero(load > cap).tolist()
    key = _memory_key(inst)
    return Memory((list(key[0]), list(key[1]), list(key[2])), need, cap, allowed, binding)


def _rows(lists: list[list[float]], n: int, m: int) -> np.ndarray:
    """An (n, m) float array from a list of n lists of m floats (flattened: faster than
    ``np.asarray`` on nested lists, the same values)."""
    return np.fromiter(chain.from_iterable(lists), dtype=float, count=n * m).reshape(n, m)


class Costs(NamedTuple):
    """The time and device-energy tables of one instance: node (n, K, O), hop
    (n−1, K, K, Q), return (K,)."""

    node_t: np.ndarray
    node_e: np.ndarray
    hop_t: np.ndarray
    hop_e: np.ndarray
    ret_t: np.ndarray
    ret_e: np.ndarray


def build_costs(inst: Instance, st: Static, allowed: np.ndarray) -> Costs:
    """The (time, device energy) options of every node, hop and the return; idle power is
    folded into every step that is not device computation.

    * hop i → i+1 from k to l at power level q: node i's output moved (zero on the diagonal);
    * return: the last node's output back to the device;
    * node i at the device: DVFS level v, plus the download of its KV cache if it lives
      on a server (level-free); at server k: the server's compute plus the migration of
      the KV cache to k at power level q (an upload when the cache is on the device), and
      for node 0 the token ids' upload at the highest level.
    A location the node may not use is +inf in both tables.  All transfers of one
    instance are one ``transfer_table`` call over the byte vector [outputs, KV
    migrations, token ids] (element-wise the same figures as separate calls)."""
    n = inst.num_nodes
    qs, O = st.qs, st.opts
    pi = inst.system.device.idle_power_w
    nbytes = np.array(inst.out_bytes + inst.kv_move_bytes + [inst.in_bytes], dtype=float)
    dur, dev_j = inst.transfer_table(nbytes)  # (2n+1, K, K, Q)
    if st.full_q:
        hop_t = dur[:n - 1]
        hop_e = dev_j[:n - 1] + pi * hop_t
    else:
        hop_t = dur[:n - 1][..., qs]
        hop_e = dev_j[:n - 1][..., qs] + pi * hop_t
    ret_t = dur[n - 1, :, DEVICE, -1]
    ret_e = dev_j[n - 1, :, DEVICE, -1] + pi * ret_t
    # KV migrations from where each cache lives to k at power level q: (n, K, Q)
    kv_loc = np.asarray(inst.kv_loc)
    moves = ((kv_loc >= 0) & (nbytes[n:2 * n] > 0.0))[:, None, None]
    rows, src = np.arange(n, 2 * n), np.where(kv_loc >= 0, kv_loc, 0)
    mig_dur, mig_j = dur[rows, src], dev_j[rows, src]  # (n, K, Q)
    if not st.full_q:
        mig_dur, mig_j = mig_dur[:, :, qs], mig_j[:, :, qs]
    mig_t = np.where(moves, mig_dur, 0.0)
    mig_e = np.where(moves, mig_j, 0.0) + pi * mig_t
    in_t = dur[2 * n, DEVICE, 1:, -1]
    in_e = dev_j[2 * n, DEVICE, 1:, -1] + pi * in_t
    node_t, node_e = np.empty((n, allowed.shape[1], O)), np.empty((n, allowed.shape[1], O))
    nf = len(inst.system.device.freqs_hz)
    dev_t, dev_e = _rows(inst.dev_time, n, nf), _rows(inst.dev_energy, n, nf)
    if st.dv is not None:
        dev_t, dev_e = dev_t[:, st.dv], dev_e[:, st.dv]
    node_t[:, DEVICE] = dev_t + mig_t[:, DEVICE, -1:]
    node_e[:, DEVICE] = dev_e + mig_e[:, DEVICE, -1:]
    if allowed.shape[1] > 1:
        stime = _rows(inst.srv_time, n, allowed.shape[1] - 1)[:, :, None]  # (n, K-1, 1)
        srv_mt, srv_me = mig_t[:, 1:], mig_e[:, 1:]
        if st.pad_q is not None:
            srv_mt, srv_me = srv_mt[:, :, st.pad_q], srv_me[:, :, st.pad_q]
        node_t[:, 1:] = srv_mt + stime
        node_e[:, 1:] = srv_me + pi * stime
        node_t[0, 1:] += in_t[:, None]
        node_e[0, 1:] += in_e[:, None]
    if not allowed.all():
        node_t[~allowed] = _INF
        node_e[~allowed] = _INF
    return Costs(node_t, node_e, hop_t, hop_e, ret_t, ret_e)


class TableCache:
    """Chain tables across a run of instances (an environment's tokens): the previous
    instance's static part and memory rule are reused when their inputs are equal (by
    value); the cost tables are rebuilt (the context, channel and load change every token).

    ``tables(inst, levels)`` returns the :class:`~.chain.ChainTables` of ``inst``, equal
    entry for entry to ``ChainTables(inst, levels)``."""

    def __init__(self) -> None:
        self._static: Static | None = None
        self._memory: Memory | None = None
        self._caps: tuple[np.ndarray, np.ndarray] | None = None
        self.hits = {"static": 0, "memory": 0, "capacities": 0}
        """How often each part was reused (for the benchmark and the tests)."""

    def static(self, inst: Instance, levels: bool) -> Static:
        if self._static is not None and self._static.key == _static_key(inst, levels):
            self.hits["static"] += 1
            return self._static
        self._static = build_static(inst, levels)
        return self._static

    def memory(self, inst: Instance) -> Memory:
        m = self._memory
        if m is not None:
            need, caps, up = _memory_key(inst)
            if caps == m.key[1] and up == m.key[2]:
                if need == m.key[0]:
                    self.hits["memory"] += 1
                    return m
                self.hits["capacities"] += 1  # only the needs moved (the KV caches grew)
                self._memory = build_memory(inst, self._caps)
                return self._memory
        self._caps = _caps(inst)
        self._memory = build_memory(inst, self._caps)
        return self._memory

    def tables(self, inst: Instance, levels: bool = True):
        from .chain import ChainTables

        return ChainTables(inst, levels, cache=self)
