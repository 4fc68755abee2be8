"""Model specs: presets against published sizes, config.json loading, error messages."""
from __future__ import annotations

import json

import pytest

from core.models import ModelSpec, config_model_name, list_presets, load_model_spec

# Published sizes (docs/system-model.md §1; model cards on huggingface.co).
PUBLISHED = {
    "gpt2": 124e6,
    "qwen2.5-0.5b": 0.49e9,
    "llama-3.2-1b": 1.24e9,
    "llama-2-7b": 6.74e9,
    "mistral-7b": 7.24e9,
}


def test_presets_listed():
    assert set(list_presets()) == set(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_param_count_within_1pct(name):
    spec = load_model_spec(name)
    assert abs(spec.param_count - PUBLISHED[name]) / PUBLISHED[name] < 0.01


def test_exact_counts():
    # GPT-2 with tied embeddings: 124,439,808 (sum of the HF GPT2LMHeadModel parameters).
    assert load_model_spec("gpt2").param_count == 124_439_808
    # exact sums of the HF checkpoints' tensors
    assert load_model_spec("llama-2-7b").param_count == 6_738_415_616
    assert load_model_spec("mistral-7b").param_count == 7_241_732_096
    assert load_model_spec("llama-3.2-1b").param_count == 1_235_814_400
    assert load_model_spec("qwen2.5-0.5b").param_count == 494_032_768


def test_preset_fields():
    s = load_model_spec("LLaMA-2-7B")  # case-insensitive
    assert (s.arch, s.hidden_size, s.num_layers, s.num_heads, s.num_kv_heads) == ("llama", 4096, 32, 32, 32)
    assert (s.intermediate_size, s.vocab_size, s.tie_word_embeddings, s.head_dim) == (11008, 32000, False, 128)
    q = load_model_spec("qwen2.5-0.5b")
    assert q.arch == "llama" and q.qkv_bias and q.tie_word_embeddings and q.head_dim == 64
    g = load_model_spec("gpt2")
    assert g.arch == "gpt2" and g.intermediate_size == 3072 and g.max_positions == 1024
    m = load_model_spec("mistral-7b")
    assert m.arch == "llama" and m.num_kv_heads == 8 and not m.qkv_bias and m.max_positions == 0


def _write(tmp_path, cfg, name="config.json"):
    p = tmp_path / name
    p.write_text(json.dumps(cfg))
    return p


LLAMA_CFG = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
             "vocab_size": 100}


def test_load_config_path(tmp_path):
    s = load_model_spec(_write(tmp_path, LLAMA_CFG))
    assert (s.hidden_size, s.num_layers, s.num_heads, s.num_kv_heads, s.intermediate_size) == (64, 2, 4, 2, 128)
    assert s.tie_word_embeddings is False and s.qkv_bias is False
    # 100*64 embed + 2 * (2*64 norms + q,o 2*64*64 + k,v 2*64*32 + 3*64*128) + 64 final + 100*64 head
    assert s.param_count == 6400 + 2 * (128 + 8192 + 4096 + 24576) + 64 + 6400
    # a directory holding config.json works too
    assert load_model_spec(tmp_path) == s


def test_kv_heads_default_and_architectures(tmp_path):
    cfg = {k: v for k, v in LLAMA_CFG.items() if k not in ("num_key_value_heads", "model_type")}
    cfg["architectures"] = ["MistralForCausalLM"]
    s = load_model_spec(_write(tmp_path, cfg))
    assert s.num_kv_heads == 4 and s.arch == "llama"


def test_qwen2_and_gpt2_config(tmp_path):
    q = load_model_spec(_write(tmp_path, {**LLAMA_CFG, "model_type": "qwen2", "tie_word_embeddings": True}, "q.json"))
    assert q.qkv_bias and q.tie_word_embeddings
    # biases on q (64) and k, v (32 each) per layer
    assert q.param_count == 6400 + 2 * (128 + 8192 + 4096 + 24576 + 128) + 64
    g = load_model_spec(_write(tmp_path, {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4,
                                          "n_inner": None, "vocab_size": 100, "n_positions": 64}, "g.json"))
    assert g.intermediate_size == 256 and g.tie_word_embeddings and g.max_positions == 64
    layer = 2 * 128 + (64 * 192 + 192) + (64 * 64 + 64) + (64 * 256 + 256) + (256 * 64 + 64)
    assert g.param_count == 100 * 64 + 64 * 64 + 2 * layer + 128


@pytest.mark.parametrize("drop", ["hidden_size", "num_hidden_layers", "vocab_size", "intermediate_size"])
def test_missing_key_names_key_and_file(tmp_path, drop):
    p = _write(tmp_path, {k: v for k, v in LLAMA_CFG.items() if k != drop})
    with pytest.raises(ValueError, match=drop) as ei:
        load_model_spec(p)
    assert str(p) in str(ei.value)


def test_unknown_arch_named(tmp_path):
    with pytest.raises(ValueError, match="falcon"):
        load_model_spec(_write(tmp_path, {**LLAMA_CFG, "model_type": "falcon"}))
    cfg = {k: v for k, v in LLAMA_CFG.items() if k != "model_type"}
    with pytest.raises(ValueError, match="FalconForCausalLM"):
        load_model_spec(_write(tmp_path, {**cfg, "architectures": ["FalconForCausalLM"]}))


def test_unknown_preset_lists_available():
    with pytest.raises(ValueError, match="llama-2-7b") as ei:
        load_model_spec("gpt-5")
    assert "gpt-5" in str(ei.value)


def test_missing_file(tmp_path):
    p = tmp_path / "nope" / "config.json"
    with pytest.raises(FileNotFoundError, match="nope"):
        load_model_spec(p)


def test_invalid_json(tmp_path):
    p = tmp_path / "config.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match="invalid JSON"):
        load_model_spec(p)


@pytest.mark.parametrize("key,value", [("hidden_size", -64), ("num_hidden_layers", 0),
                                       ("vocab_size", 1.5), ("intermediate_size", "128")])
def test_invalid_numbers(tmp_path, key, value):
    with pytest.raises(ValueError, match=key):
        load_model_spec(_write(tmp_path, {**LLAMA_CFG, key: value}))


def test_heads_divisibility(tmp_path):
    with pytest.raises(ValueError, match="does not divide hidden_size"):
        load_model_spec(_write(tmp_path, {**LLAMA_CFG, "num_attention_heads": 5, "num_key_value_heads": 5}))
    with pytest.raises(ValueError, match="num_kv_heads 3 does not divide num_heads 4"):
        load_model_spec(_write(tmp_path, {**LLAMA_CFG, "num_key_value_heads": 3}))


def test_spec_validation_direct():
    with pytest.raises(ValueError, match="hidden_size"):
        ModelSpec("x", "llama", -8, 2, 2, 2, 16, 10, False)
    with pytest.raises(ValueError, match="unknown architecture 'rwkv'"):
        ModelSpec("x", "rwkv", 8, 2, 2, 2, 16, 10, False)


# ----- the name of a model read from a config.json --------------------------------------
def test_name_from_name_or_path(tmp_path):
    """A Hub id in ``_name_or_path`` is the name as written, whatever the file is called."""
    p = _write(tmp_path, {**LLAMA_CFG, "_name_or_path": "meta-llama/Llama-2-7b-hf"}, "x.config.json")
    assert load_model_spec(p).name == "meta-llama/Llama-2-7b-hf"


@pytest.mark.parametrize("local", ["/home/me/models/tiny-llama", "./models/tiny-llama/",
                                   "~/models/tiny-llama", "C:\\models\\tiny-llama"])
def test_name_from_local_name_or_path(tmp_path, local):
    """A local path in ``_name_or_path`` (what save_pretrained writes) gives its last component."""
    p = _write(tmp_path, {**LLAMA_CFG, "_name_or_path": local})
    assert load_model_spec(p).name == "tiny-llama"


def test_name_from_folder(tmp_path):
    """Hugging Face layout MODEL/config.json without ``_name_or_path``: the folder's name,
    whether the path names the file or the folder."""
    folder = tmp_path / "my-llama"
    folder.mkdir()
    p = _write(folder, {**LLAMA_CFG, "_name_or_path": ""})
    assert load_model_spec(p).name == "my-llama"
    assert load_model_spec(folder).name == "my-llama"


def test_name_never_the_file_stem(tmp_path):
    """``x.config.json`` is named by its architecture (else model_type), never ``x.config``."""
    p = _write(tmp_path, {**LLAMA_CFG, "architectures": ["LlamaForCausalLM"]}, "x.config.json")
    assert load_model_spec(p).name == "LlamaForCausalLM"
    q = _write(tmp_path, LLAMA_CFG, "y.config.json")
    assert load_model_spec(q).name == "llama"
    assert config_model_name({"_name_or_path": "."}, tmp_path / "z.json") == "z"  # nothing else to go on


def test_preset_names_unchanged():
    assert [load_model_spec(n).name for n in list_presets()] == list_presets()
