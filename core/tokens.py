"""Per-token instances for a generation request, built in O(N) per token.

The DAGs are built once (networkx) when the environment is made; every token after that
is plain arrays: during decode only the attention FLOPs, the KV cache and the bytes
read grow, and they grow linearly with the context t, so two decode DAGs (t₁ and t₁+1)
give every token's numbers exactly.
"""
from __future__ import annotations

from typing import Sequence

from .dag import PRECISION_BYTES, build_dag
from .instance import Instance, make_instance, priority_order
from .models import ModelSpec
from .system import SystemSnapshot


class TokenModel:
    """Builds the instance of each token of one request (prefill, then decode steps)."""

    def __init__(self, spec: ModelSpec, granularity: str, prompt_len: int, nominal: SystemSnapshot,
                 weight_dtype: str = "fp16", act_dtype: str = "fp16") -> None:
        kw = dict(weight_dtype=weight_dtype, act_dtype=act_dtype)
        self.spec = spec
        self.prompt_len = prompt_len
        g_pre = build_dag(spec, granularity, "prefill", prompt_len=prompt_len, **kw)
        g_d1 = build_dag(spec, granularity, "decode", prompt_len=prompt_len, context_len=prompt_len + 1, **kw)
        g_d2 = build_dag(spec, granularity, "decode", prompt_len=prompt_len, context_len=prompt_len + 2, **kw)
        # one priority order for the whole request, so node indices never move
        self.order = priority_order(g_d1, nominal)
        self.prefill = make_instance(g_pre, nominal, order=self.order)
        d1 = make_instance(g_d1, nominal, order=self.order)
        d2 = make_instance(g_d2, nominal, order=self.order)
        self.decode1 = d1
        t1 = prompt_len + 1
        self._slope = {key: [b - a for a, b in zip(getattr(d1, key), getattr(d2, key))]
                       for key in ("flops", "mem_bytes", "kv_bytes")}
        self._base = {key: [a - s * t1 for a, s in zip(getattr(d1, key), self._slope[key])]
                      for key in self._slope}
        self.kv_per_token = self._slope["kv_bytes"]
        """KV bytes each node's cache grows by per token (0: no cache)."""
        kv_width = PRECISION_BYTES[act_dtype]
        d = spec.hidden_size
        # rebuilding a lost cache re-runs the K and V projections over the prefix:
        # 2 matrices × 2·d·(kv dim) FLOPs per token, kv dim = cache bytes per token / (2·width)
        self.rebuild_flops_per_token = [4.0 * d * (kv / (2.0 * kv_width)) for kv in self.kv_per_token]
        self.names = list(self.order)
        self.kinds = list(d1.kinds)
        self.num_nodes = len(self.names)
        self.preds = d1.preds

    def instance(self, context: int | None, system: SystemSnapshot, kv_loc: Sequence[int],
                 lost: Sequence[bool] | None = None) -> Instance:
        """The token at ``context`` (None = the prefill), with the existing caches at ``kv_loc``.

        ``lost[i]``: node i's cache was lost (its server went down); it is rebuilt where the
        node runs next, which costs ``rebuild_flops_per_token · (context - 1)`` extra FLOPs.
        """
        if context is None:
            return self.prefill.with_token_state(system)
        if context < self.prompt_len + 1:
            raise ValueError(f"decode context {context} is shorter than the prompt + 1 ({self.prompt_len + 1})")
        prev = context - 1  # tokens already in the cache
        flops = [b + s * context for b, s in zip(self._base["flops"], self._slope["flops"])]
        if lost is not None:
            flops = [f + (self.rebuild_flops_per_token[i] * prev if lost[i] else 0.0) for i, f in enumerate(flops)]
        d1 = self.decode1
        kv_loc = [int(k) for k in kv_loc]
        if len(kv_loc) != self.num_nodes or not all(-1 <= k < system.num_locations for k in kv_loc):
            raise ValueError(f"kv_loc must hold {self.num_nodes} locations in -1..{system.num_locations - 1}")
        return d1.with_token_state(
            system, flops=flops,
            mem_bytes=[b + s * context for b, s in zip(self._base["mem_bytes"], self._slope["mem_bytes"])],
            kv_bytes=[b + s * context for b, s in zip(self._base["kv_bytes"], self._slope["kv_bytes"])],
            kv_loc=kv_loc, kv_move_bytes=[kv * prev for kv in self.kv_per_token],
            meta={**d1.meta, "context": context})
