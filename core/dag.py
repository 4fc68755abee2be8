"""The layer DAG of one decoder inference step, with per-node costs.

``build_dag(spec, granularity, phase, ...)`` returns a ``networkx.DiGraph`` whose nodes are
pieces of the model and whose edges carry activations.  Formulas: ``docs/system-model.md``
§1 (linear layer 2·in·out FLOPs per token; attention scores 4·t·d per layer per decode token;
KV cache 2·h_kv·d_h·b bytes per token per layer; activation across a cut tokens·d·b).

Phases
------
* ``"prefill"``: the n = ``prompt_len`` prompt tokens are processed at once; afterwards the KV
  cache holds n tokens.  Attention-score FLOPs are the FULL n×n score matrices, 4·n²·d_attn per
  layer (QKᵀ and A·V, d_attn = num_heads·head_dim), not the causal half: that is what dense
  kernels execute and what ``torch.utils.flop_counter.FlopCounterMode`` counts for the eager
  attention of HF transformers (checked in ``tests/test_dag.py``).
* ``"decode"``: one new token at context length t = ``context_len`` (t includes the new token;
  default ``prompt_len + 1``).  Scores cost 4·t·d_attn per layer; the cache holds t tokens after
  the step.

Granularities
-------------
* ``"block"``: ``embed → L0 → … → L{L-1} → head`` (a chain of L+2 nodes).
* ``"sublayer"``: per layer ``L{i}.attn`` (input norm + q/k/v/o + scores), ``L{i}.add1``
  (residual), ``L{i}.mlp`` (post-attention norm + MLP), ``L{i}.add2``; the residual stream
  gives the extra edges prev→add1 and add1→add2.
* ``"head"``: as sublayer, with the attention split into G head groups ``L{i}.heads{g}``
  (norm + q/k/v for its h/G query and h_kv/G kv heads + their scores), joined by
  ``L{i}.o_proj``.  G must divide num_kv_heads (default min(4, num_kv_heads)).  Every group
  applies (and holds a copy of) the input norm; the copies in groups g ≥ 1 are marked
  ``shared_params`` so that parameters are counted once.

The ``head`` node is the final norm + LM head.  It computes logits only for the LAST position
(also in prefill: only the next token is needed; HF ``logits_to_keep=1``) and sampling is fused
into it, so its output is one int32 token id: ``out_bytes = 4``.  With tied embeddings the head
still has to hold the V×d matrix wherever it runs: it is counted in ``weight_bytes`` of both
``embed`` and ``head``; in ``params`` of both too, with ``shared_params = V·d`` on ``head`` so
that :func:`dag_param_count` counts it once.

Node attributes
---------------
``kind``          "embed" | "block" | "attn" | "heads" | "o_proj" | "add" | "mlp" | "head"
``layer``         layer index, -1 for embed/head
``params``        parameters the node holds (int)
``shared_params`` of those, parameters also held by another node (tied head, norm copies)
``flops``         matmul FLOPs of one execution (multiply-add = 2; biases, norms, softmax,
                  activations and residual adds are not counted: O(tokens·d), negligible;
                  embedding lookup = 0)
``weight_bytes``  params × effective weight width (memory footprint of the weights):
                  ``WEIGHT_BYTES_PER_PARAM`` = fp16 2, int8 (Q8_0) 34/32, int4 (Q4_0)
                  18/32 bytes, i.e. 16, 8.5 and 4.5 bits per weight: quantised
                  weights carry one fp16 scale per block of 32.  Activations and the KV
                  cache use the nominal ``PRECISION_BYTES`` width of ``act_dtype`` /
                  ``kv_dtype`` (fp16 by default: weight-only quantisation; with an int8 /
                  int4 cache its block scales are not counted)
``out_bytes``     bytes each successor receives: tokens·width·act (width d; a head group
                  sends its h/G·d_h attention outputs; the head sends a 4-byte token id)
``kv_bytes``      KV cache held after this step (attention nodes): 2·h_kv_share·d_h·kv·ctx
``mem_bytes``     bytes moved through memory in one execution (roofline): weights read (the
                  embedding reads only its looked-up rows, tokens·d·w, plus GPT-2 position
                  rows) + KV cache (decode: read t−1 cached tokens and write the new one = the
                  t-token cache; prefill: written) + activations in (predecessors' out_bytes;
                  embed: the token ids) + out_bytes.  The prefill n×n score matrix is assumed
                  fused (flash-style) and not counted.

Graph attributes (``G.graph``): model, arch, granularity, phase, tokens (processed this step),
context (tokens in the KV cache after the step), prompt_len, weight_dtype, act_dtype, kv_dtype,
head_groups, tied, param_count and ``in_bytes`` = tokens·4 (int32 token ids that start on the
device).
"""
from __future__ import annotations

import math
from typing import Any

import networkx as nx

from .models import ModelSpec, load_model_spec

# Nominal bytes per element (fp16 b = 2, int8 1, int4 0.5): the width of activations and
# of the KV cache, which are stored element by element without block scales.
PRECISION_BYTES = {"fp16": 2.0, "int8": 1.0, "int4": 0.5}

# Effective bytes per WEIGHT: quantised weights carry their block scales.  Layout of the
# llama.cpp / ggml blocks (ggml/src/ggml-common.h, github.com/ggml-org/llama.cpp):
#   block_q8_0 = one fp16 scale + 32 int8 quants      = 2 + 32 = 34 bytes per 32 weights
#                -> 8.5 bits per weight
#   block_q4_0 = one fp16 scale + 32 4-bit quants     = 2 + 16 = 18 bytes per 32 weights
#                -> 4.5 bits per weight
# "int8" here means the Q8_0 layout and "int4" the Q4_0 layout; other 4-bit formats (such
# as MLC-LLM's q4f16 of the Jetson calibration point) are modelled with the same 4.5 bits.
# fp16 weights carry no scales.
WEIGHT_BYTES_PER_PARAM = {"fp16": 2.0, "int8": 34.0 / 32.0, "int4": 18.0 / 32.0}
TOKEN_ID_BYTES = 4  # int32 token ids (input and the head's sampled output)

GRANULARITIES = ("block", "sublayer", "head")
PHASES = ("prefill", "decode")
KINDS = ("embed", "block", "attn", "heads", "o_proj", "add", "mlp", "head")
REQUIRED_ATTRS = ("flops", "weight_bytes", "out_bytes", "kv_bytes", "kind")
NUMERIC_ATTRS = ("flops", "weight_bytes", "out_bytes", "kv_bytes", "mem_bytes", "params",
                 "shared_params")


def _dtype(name: str, role: str, table: dict[str, float] = PRECISION_BYTES) -> float:
    if name not in table:
        raise ValueError(f"unknown {role} {name!r}; expected one of {sorted(table)}")
    return table[name]


def _pos_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def build_dag(spec: ModelSpec | str, granularity: str = "block", phase: str = "decode", *,
              prompt_len: int = 128, context_len: int | None = None,
              weight_dtype: str = "fp16", act_dtype: str = "fp16", kv_dtype: str | None = None,
              head_groups: int | None = None) -> nx.DiGraph:
    """The cost-annotated DAG of one inference step (see the module docstring)."""
    if not isinstance(spec, ModelSpec):
        spec = load_model_spec(spec)
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; expected one of {GRANULARITIES}")
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; expected one of {PHASES}")
    w = _dtype(weight_dtype, "weight_dtype", WEIGHT_BYTES_PER_PARAM)  # effective, scales included
    a = _dtype(act_dtype, "act_dtype")
    kv_dtype = act_dtype if kv_dtype is None else kv_dtype
    kvb = _dtype(kv_dtype, "kv_dtype")
    prompt_len = _pos_int(prompt_len, "prompt_len")
    if phase == "prefill":
        if context_len is not None and context_len != prompt_len:
            raise ValueError(f"context_len {context_len!r} given for phase 'prefill': the context "
                             f"after prefill is prompt_len ({prompt_len}); omit context_len")
        tokens, ctx = prompt_len, prompt_len
    else:
        ctx = _pos_int(prompt_len + 1 if context_len is None else context_len, "context_len")
        tokens = 1
    if spec.max_positions and ctx > spec.max_positions:
        raise ValueError(f"context length {ctx} exceeds {spec.name}'s max_positions "
                         f"{spec.max_positions} (learned position embeddings)")
    G_heads = None
    if granularity == "head":
        G_heads = min(4, spec.num_kv_heads) if head_groups is None else head_groups
        G_heads = _pos_int(G_heads, "head_groups")
        if spec.num_kv_heads % G_heads:
            raise ValueError(f"head_groups {G_heads} must divide num_kv_heads {spec.num_kv_heads}")

    d, dh, V, L = spec.hidden_size, spec.head_dim, spec.vocab_size, spec.num_layers
    act = tokens * d * a  # one hidden-state tensor

    g = nx.DiGraph()
    g.graph.update(model=spec.name, arch=spec.arch, granularity=granularity, phase=phase,
                   tokens=tokens, context=ctx, prompt_len=prompt_len,
                   weight_dtype=weight_dtype, act_dtype=act_dtype, kv_dtype=kv_dtype,
                   head_groups=G_heads, tied=spec.tie_word_embeddings,
                   param_count=spec.param_count, in_bytes=float(tokens * TOKEN_ID_BYTES))

    def add(name: str, kind: str, layer: int, params: int, flops: float, out_bytes: float,
            kv_bytes: float = 0.0, shared: int = 0, weight_read: float | None = None) -> None:
        g.add_node(name, kind=kind, layer=layer, params=int(params), shared_params=int(shared),
                   flops=float(flops), weight_bytes=float(params * w), out_bytes=float(out_bytes),
                   kv_bytes=float(kv_bytes),
                   _weight_read=float(params * w if weight_read is None else weight_read))

    def kv(kv_heads: int) -> float:  # cache held after the step (docs/system-model.md §1)
        return 2.0 * kv_heads * dh * kvb * ctx

    def scores(q_heads: int) -> float:  # QKᵀ + A·V: 2 matmuls × 2·tokens·ctx·d_h per head
        return 4.0 * tokens * ctx * q_heads * dh

    # matrix elements (linear-layer FLOPs = 2 · tokens · elements)
    q_el, kv_el, o_el = d * spec.num_heads * dh, 2 * d * spec.kv_dim, d * d
    mlp_el = (2 if spec.arch == "gpt2" else 3) * d * spec.intermediate_size
    norm = spec.norm_params

    # embedding: lookup, no FLOPs; reads only the rows it looks up (+ GPT-2 position rows)
    emb_rows = tokens * d * w * (2 if spec.max_positions else 1)
    add("embed", "embed", -1, spec.embed_params, 0.0, act, weight_read=emb_rows)
    prev = "embed"
    for i in range(L):
        if granularity == "block":
            name = f"L{i}"
            add(name, "block", i, spec.layer_params,
                2.0 * tokens * (q_el + kv_el + o_el + mlp_el) + scores(spec.num_heads),
                act, kv(spec.num_kv_heads))
            g.add_edge(prev, name)
            prev = name
            continue
        attn_out = f"L{i}.attn"
        if granularity == "sublayer":
            add(attn_out, "attn", i, norm + spec.attn_params,
                2.0 * tokens * (q_el + kv_el + o_el) + scores(spec.num_heads),
                act, kv(spec.num_kv_heads))
            g.add_edge(prev, attn_out)
        else:
            hq, hk = spec.num_heads // G_heads, spec.num_kv_heads // G_heads
            attn_out = f"L{i}.o_proj"
            groups = [f"L{i}.heads{grp}" for grp in range(G_heads)]
            for grp, hn in enumerate(groups):
                add(hn, "heads", i, norm + spec.q_params(hq) + spec.kv_proj_params(hk),
                    2.0 * tokens * (d * hq * dh + 2 * d * hk * dh) + scores(hq),
                    tokens * hq * dh * a, kv(hk), shared=norm if grp else 0)
            add(attn_out, "o_proj", i, spec.o_params, 2.0 * tokens * o_el, act)
            g.add_edges_from((prev, hn) for hn in groups)
            g.add_edges_from((hn, attn_out) for hn in groups)
        add1, mlp, add2 = f"L{i}.add1", f"L{i}.mlp", f"L{i}.add2"
        add(add1, "add", i, 0, 0.0, act)
        add(mlp, "mlp", i, norm + spec.mlp_params, 2.0 * tokens * mlp_el, act)
        add(add2, "add", i, 0, 0.0, act)
        g.add_edges_from([(attn_out, add1), (prev, add1), (add1, mlp), (add1, add2), (mlp, add2)])
        prev = add2
    # final norm + LM head on the last position only; sampling fused -> one int32 token id
    add("head", "head", -1, norm + spec.lm_head_params, 2.0 * d * V, float(TOKEN_ID_BYTES),
        shared=spec.lm_head_params if spec.tie_word_embeddings else 0)
    g.add_edge(prev, "head")

    for name, attrs in g.nodes(data=True):
        act_in = sum(g.nodes[p]["out_bytes"] for p in g.predecessors(name))
        if attrs["kind"] == "embed":
            act_in += g.graph["in_bytes"]
        attrs["mem_bytes"] = attrs.pop("_weight_read") + attrs["kv_bytes"] + act_in + attrs["out_bytes"]
    validate_dag(g)
    return g


def validate_dag(G: nx.DiGraph) -> None:
    """Raise ``ValueError`` naming the problem: not a DiGraph, empty, a cycle, a missing or
    negative / NaN / infinite cost attribute, a bad ``kind`` or ``in_bytes``."""
    if not isinstance(G, nx.DiGraph):
        raise ValueError(f"expected a networkx.DiGraph, got {type(G).__name__}")
    if G.number_of_nodes() == 0:
        raise ValueError("empty graph: the DAG has no nodes")
    try:
        cycle = nx.find_cycle(G)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        path = " -> ".join(str(u) for u, _ in cycle) + f" -> {cycle[0][0]}"
        raise ValueError(f"graph has a cycle through node {cycle[0][0]!r}: {path}")
    for name, attrs in G.nodes(data=True):
        for key in REQUIRED_ATTRS:
            if key not in attrs:
                raise ValueError(f"node {name!r}: missing attribute {key!r}")
        if not isinstance(attrs["kind"], str) or not attrs["kind"]:
            raise ValueError(f"node {name!r}: attribute 'kind' must be a non-empty string, "
                             f"got {attrs['kind']!r}")
        for key in NUMERIC_ATTRS:
            if key in attrs:
                _check_number(attrs[key], f"node {name!r}: attribute {key!r}")
    if "in_bytes" in G.graph:
        _check_number(G.graph["in_bytes"], "graph attribute 'in_bytes'")


def _check_number(value: Any, what: str) -> None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not a number: {value!r}") from None
    if isinstance(value, bool):
        raise ValueError(f"{what} is not a number: {value!r}")
    if math.isnan(x):
        raise ValueError(f"{what} is NaN")
    if math.isinf(x):
        raise ValueError(f"{what} is infinite")
    if x < 0:
        raise ValueError(f"{what} is negative: {value!r}")


def topological_nodes(G: nx.DiGraph) -> list:
    """A topological order that follows node insertion order where it can (deterministic)."""
    index = {n: i for i, n in enumerate(G.nodes)}
    return list(nx.lexicographical_topological_sort(G, key=index.__getitem__))


def dag_param_count(G: nx.DiGraph) -> int:
    """Parameters in the DAG, shared copies (tied LM head, replicated norms) counted once."""
    return sum(int(a.get("params", 0)) - int(a.get("shared_params", 0)) for _, a in G.nodes(data=True))


def dag_totals(G: nx.DiGraph) -> dict[str, float]:
    """Sums of the numeric node attributes (weight_bytes counts a tied head twice)."""
    keys = ("flops", "weight_bytes", "out_bytes", "kv_bytes", "mem_bytes")
    return {k: float(sum(a.get(k, 0.0) for _, a in G.nodes(data=True))) for k in keys}


def cost_table(G: nx.DiGraph) -> list[dict[str, Any]]:
    """One row per node in topological order: name, kind, flops, weight_bytes, out_bytes, kv_bytes."""
    rows = []
    for name in topological_nodes(G):
        a = G.nodes[name]
        rows.append({"name": name, "kind": a.get("kind"), "flops": a.get("flops"),
                     "weight_bytes": a.get("weight_bytes"), "out_bytes": a.get("out_bytes"),
                     "kv_bytes": a.get("kv_bytes")})
    return rows
