"""Layer DAGs: structure, exact cost attributes, validation, and a FLOP cross-check
against Hugging Face transformers models counted by torch's FlopCounterMode."""
from __future__ import annotations

import inspect
import math

import networkx as nx
import pytest
from hypothesis import given, settings, strategies as st

from core.dag import (PRECISION_BYTES, build_dag, cost_table, dag_param_count, dag_totals,
                      validate_dag)
from core.models import ModelSpec, list_presets, load_model_spec

GRANS = ("block", "sublayer", "head")
PHASES = ("prefill", "decode")


# ----- structure ----------------------------------------------------------------------
def test_node_counts_llama2():
    assert build_dag("llama-2-7b", "block").number_of_nodes() == 34
    assert build_dag("llama-2-7b", "sublayer").number_of_nodes() == 130
    # head: per layer G=4 groups + o_proj + add1 + mlp + add2
    assert build_dag("llama-2-7b", "head").number_of_nodes() == 2 + 32 * 8


def test_block_is_chain():
    G = build_dag("llama-2-7b", "block")
    order = ["embed"] + [f"L{i}" for i in range(32)] + ["head"]
    assert list(nx.topological_sort(G)) == order
    assert G.number_of_edges() == 33


def test_sublayer_not_chain():
    G = build_dag("llama-2-7b", "sublayer")
    assert nx.is_directed_acyclic_graph(G)
    assert set(G.predecessors("L0.add1")) == {"embed", "L0.attn"}
    assert set(G.predecessors("L1.add2")) == {"L1.add1", "L1.mlp"}
    assert set(G.predecessors("L1.attn")) == {"L0.add2"}
    assert list(G.predecessors("head")) == ["L31.add2"]
    assert [r["name"] for r in cost_table(G)][:5] == ["embed", "L0.attn", "L0.add1", "L0.mlp", "L0.add2"]


def test_head_groups_parallel():
    G = build_dag("mistral-7b", "head")
    groups = [f"L3.heads{g}" for g in range(4)]
    assert G.graph["head_groups"] == 4
    for a in groups:
        assert set(G.predecessors(a)) == {"L2.add2"}
        assert list(G.successors(a)) == ["L3.o_proj"]
        for b in groups:  # no path between two groups: they can run in parallel
            assert a == b or not nx.has_path(G, a, b)
    assert set(G.predecessors("L3.add1")) == {"L3.o_proj", "L2.add2"}
    assert build_dag("qwen2.5-0.5b", "head").graph["head_groups"] == 2
    assert build_dag("gpt2", "head", head_groups=3).graph["head_groups"] == 3
    with pytest.raises(ValueError, match="head_groups 3 must divide num_kv_heads 8"):
        build_dag("mistral-7b", "head", head_groups=3)


@pytest.mark.parametrize("name", sorted(list_presets()))
@pytest.mark.parametrize("gran", GRANS)
def test_param_count_and_invariants(name, gran):
    spec = load_model_spec(name)
    for phase in PHASES:
        G = build_dag(spec, gran, phase, prompt_len=32)
        assert nx.is_directed_acyclic_graph(G)
        assert dag_param_count(G) == spec.param_count
        tot = dag_totals(G)
        ref = dag_totals(build_dag(spec, "block", phase, prompt_len=32))
        assert tot["flops"] == pytest.approx(ref["flops"], rel=1e-12)
        assert tot["kv_bytes"] == pytest.approx(ref["kv_bytes"], rel=1e-12)
        assert G.nodes["head"]["out_bytes"] == 4
        assert G.graph["in_bytes"] == 4 * G.graph["tokens"]
        for _, a in G.nodes(data=True):
            assert a["mem_bytes"] >= a["out_bytes"]


# ----- exact cost numbers (docs/system-model.md §1) ----------------------------------------
def test_llama2_decode_kv_and_activations():
    t = 300
    for gran, kind in (("block", "block"), ("sublayer", "attn")):
        G = build_dag("llama-2-7b", gran, "decode", context_len=t)
        attn = [n for n, a in G.nodes(data=True) if a["kind"] == kind]
        assert len(attn) == 32
        for n in attn:
            assert G.nodes[n]["kv_bytes"] == 2 * 32 * 128 * 2 * t  # 16,384 B per token per layer
        assert dag_totals(G)["kv_bytes"] == 32 * 16384 * t
        for n, a in G.nodes(data=True):
            if a["kind"] != "head":
                assert a["out_bytes"] == 8192  # 4096 · 2 B per token
            if a["kind"] not in (kind,):
                assert a["kv_bytes"] == 0
    G = build_dag("llama-2-7b", "head", "decode", context_len=t)
    assert G.nodes["L0.heads1"]["kv_bytes"] == 2 * 8 * 128 * 2 * t
    assert G.nodes["L0.heads1"]["out_bytes"] == 8 * 128 * 2
    G = build_dag("llama-2-7b", "block", "decode", context_len=t, kv_dtype="int8", act_dtype="fp16")
    assert G.nodes["L5"]["kv_bytes"] == 2 * 32 * 128 * 1 * t


def test_llama2_flops_and_weights():
    d, f, V, t = 4096, 11008, 32000, 100
    G = build_dag("llama-2-7b", "sublayer", "decode", context_len=t)
    assert G.nodes["L0.attn"]["flops"] == 2 * 4 * d * d + 4 * t * d
    assert G.nodes["L0.mlp"]["flops"] == 2 * 3 * d * f
    assert G.nodes["head"]["flops"] == 2 * d * V
    assert G.nodes["embed"]["flops"] == 0
    assert G.nodes["L0.attn"]["weight_bytes"] == 2 * (4 * d * d + d)
    assert G.nodes["embed"]["weight_bytes"] == 2 * V * d
    # roofline bytes: weights + KV (t tokens) + activation in + out
    assert G.nodes["L0.attn"]["mem_bytes"] == 2 * (4 * d * d + d) + 16384 * t + 8192 + 8192
    assert G.nodes["embed"]["mem_bytes"] == d * 2 + 4 + 8192  # only the looked-up row
    n = 64
    P = build_dag("llama-2-7b", "sublayer", "prefill", prompt_len=n, weight_dtype="int4")
    assert P.graph["tokens"] == n and P.graph["context"] == n and P.graph["in_bytes"] == 4 * n
    assert P.nodes["L0.attn"]["flops"] == n * 2 * 4 * d * d + 4 * n * n * d
    assert P.nodes["L0.attn"]["out_bytes"] == n * d * 2
    assert P.nodes["L0.attn"]["kv_bytes"] == 16384 * n
    assert P.nodes["L0.mlp"]["weight_bytes"] == 18 / 32 * (3 * d * f + d)  # Q4_0: 18 B per 32 weights
    assert P.nodes["head"]["flops"] == 2 * d * V  # last position only
    assert P.nodes["head"]["out_bytes"] == 4


def test_tied_head_counted_on_both():
    spec = load_model_spec("llama-3.2-1b")
    G = build_dag(spec, "block")
    Vd = spec.vocab_size * spec.hidden_size
    assert G.nodes["embed"]["weight_bytes"] == 2 * Vd
    assert G.nodes["head"]["weight_bytes"] == 2 * (Vd + spec.hidden_size)
    assert G.nodes["head"]["shared_params"] == Vd
    assert dag_param_count(G) == spec.param_count


def test_gpt2_positions():
    G = build_dag("gpt2", "block", "decode", context_len=1024)
    assert G.nodes["embed"]["weight_bytes"] == 2 * (50257 + 1024) * 768
    with pytest.raises(ValueError, match="max_positions"):
        build_dag("gpt2", "block", "decode", context_len=1025)
    with pytest.raises(ValueError, match="max_positions"):
        build_dag("gpt2", "block", "prefill", prompt_len=2000)


@pytest.mark.parametrize("kwargs,match", [
    ({"granularity": "tensor"}, "granularity"),
    ({"phase": "train"}, "phase"),
    ({"weight_dtype": "fp8"}, "weight_dtype"),
    ({"act_dtype": "bf16"}, "act_dtype"),
    ({"kv_dtype": "int2"}, "kv_dtype"),
    ({"prompt_len": 0}, "prompt_len"),
    ({"context_len": -5}, "context_len"),
    ({"phase": "prefill", "context_len": 7}, "context_len"),
])
def test_build_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_dag("llama-2-7b", **kwargs)


def test_precision_bytes():
    assert PRECISION_BYTES == {"fp16": 2.0, "int8": 1.0, "int4": 0.5}


# ----- validate_dag ---------------------------------------------------------------------
def _ok_node(**over):
    a = dict(flops=1.0, weight_bytes=1.0, out_bytes=1.0, kv_bytes=0.0, kind="block")
    a.update(over)
    return a


def test_validate_cycle_named():
    G = nx.DiGraph()
    for n in "abc":
        G.add_node(n, **_ok_node())
    G.add_edges_from([("a", "b"), ("b", "c"), ("c", "b")])
    with pytest.raises(ValueError, match=r"cycle.*'[bc]'"):
        validate_dag(G)


def test_validate_empty_and_missing():
    with pytest.raises(ValueError, match="empty"):
        validate_dag(nx.DiGraph())
    G = nx.DiGraph()
    G.add_node("x", flops=1.0, weight_bytes=1.0, out_bytes=1.0, kind="block")
    with pytest.raises(ValueError, match="'x'.*kv_bytes"):
        validate_dag(G)


@pytest.mark.parametrize("attr,value,match", [
    ("flops", -1.0, "negative"), ("out_bytes", math.nan, "NaN"),
    ("weight_bytes", math.inf, "infinite"), ("mem_bytes", -3, "negative"),
    ("kv_bytes", "lots", "not a number"),
])
def test_validate_bad_values(attr, value, match):
    G = build_dag("gpt2", "sublayer")
    G.nodes["L3.mlp"][attr] = value
    with pytest.raises(ValueError, match=rf"'L3.mlp'.*{attr}.*{match}"):
        validate_dag(G)


# ----- property: any small valid spec --------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(arch=st.sampled_from(["llama", "gpt2"]), hd=st.integers(1, 8), kv=st.sampled_from([1, 2, 4]),
       rep=st.integers(1, 3), L=st.integers(1, 4), ff=st.integers(1, 64), V=st.integers(2, 100),
       tied=st.booleans(), bias=st.booleans(), t=st.integers(1, 40), gran=st.sampled_from(GRANS),
       phase=st.sampled_from(PHASES))
def test_property_random_specs(arch, hd, kv, rep, L, ff, V, tied, bias, t, gran, phase):
    h = kv * rep if arch == "llama" else kv
    spec = ModelSpec("rand", arch, h * hd, L, h, kv if arch == "llama" else h, ff, V, tied,
                     qkv_bias=bias or arch == "gpt2", max_positions=64 if arch == "gpt2" else 0)
    G = build_dag(spec, gran, phase, prompt_len=t, context_len=t + 1 if phase == "decode" else None)
    assert dag_param_count(G) == spec.param_count
    block = build_dag(spec, "block", phase, prompt_len=t, context_len=t + 1 if phase == "decode" else None)
    assert dag_totals(G)["flops"] == pytest.approx(dag_totals(block)["flops"])
    assert dag_totals(G)["kv_bytes"] == pytest.approx(2 * L * kv * hd * 2 * G.graph["context"])


# ----- cross-check against transformers + FlopCounterMode -------------------------------
def _hf_flops(model, n):
    """FLOPs of a prefill of n tokens (logits for the last position only) and of one decode
    token at context n+1 with the KV cache, as counted by torch's FlopCounterMode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    params = inspect.signature(model.forward).parameters
    assert "logits_to_keep" in params  # transformers 5.x
    cache_kw = "cache" if "cache" in params else "past_key_values"
    ids = torch.randint(0, model.config.vocab_size, (1, n))
    with torch.no_grad():
        with FlopCounterMode(display=False) as fc:
            out = model(ids, use_cache=True, logits_to_keep=1)
        prefill = fc.get_total_flops()
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        nxt = torch.randint(0, model.config.vocab_size, (1, 1))
        with FlopCounterMode(display=False) as fc:
            model(nxt, use_cache=True, logits_to_keep=1, **{cache_kw: cache})
        decode = fc.get_total_flops()
    return prefill, decode


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_flops_match_transformers(family, tmp_path):
    """Attention implementation "eager": its QKᵀ and A·V are plain matmuls that
    FlopCounterMode counts (the CPU SDPA kernel is not counted by it)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    if family == "llama":
        cfg = transformers.LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                       num_key_value_heads=2, intermediate_size=128, vocab_size=100)
        model_cls = transformers.LlamaForCausalLM
    else:
        cfg = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=100, n_positions=64)
        model_cls = transformers.GPT2LMHeadModel
    cfg.to_json_file(str(tmp_path / "config.json"))
    model = model_cls(cfg).eval()
    model.set_attn_implementation("eager")
    spec = load_model_spec(tmp_path / "config.json")
    assert spec.param_count == sum(p.numel() for p in model.parameters())

    n = 16
    hf_prefill, hf_decode = _hf_flops(model, n)
    for gran in GRANS:
        ours_p = dag_totals(build_dag(spec, gran, "prefill", prompt_len=n))["flops"]
        ours_d = dag_totals(build_dag(spec, gran, "decode", prompt_len=n, context_len=n + 1))["flops"]
        assert ours_p == pytest.approx(hf_prefill, rel=0.02)
        assert ours_d == pytest.approx(hf_decode, rel=0.02)
