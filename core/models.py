"""Decoder-model specifications: presets and Hugging Face ``config.json`` loading.

A :class:`ModelSpec` holds the handful of numbers that determine a decoder's parameter
count, FLOPs, weights, KV cache and activations (formulas: ``docs/system-model.md`` §1).
Two architecture families are modelled:

* ``"llama"``: pre-norm blocks with RMSNorm (d weights, no bias), rotary positions (no
  parameters), grouped-query attention (q, o: d×d; k, v: d×(h_kv·d_h)), a SwiGLU MLP
  (gate, up, down: 3·d·d_ff) and no other biases.  Llama, Mistral and Qwen2 map here;
  Qwen2 additionally has biases on q, k and v (``qkv_bias=True``; HF ``Qwen2Attention``
  builds q/k/v with ``bias=True`` and o_proj without).
* ``"gpt2"``: pre-norm blocks with LayerNorm (weight + bias: 2d), learned positions
  (``wpe``: max_positions×d), fused ``c_attn`` (d×3d + 3d bias), ``c_proj`` (d×d + d),
  a GELU MLP ``c_fc`` (d×d_ff + d_ff) / ``c_proj`` (d_ff×d + d), d_ff = 4d by default
  (HF ``GPT2MLP``: ``inner_dim = n_inner if not None else 4 * hidden_size``).

Not modelled: Mistral's sliding window (4,096; attention and cache are taken over the full
context, exact for contexts up to the window).
Llama configs with ``attention_bias`` / ``mlp_bias`` true, or a ``head_dim`` other than
hidden_size / num_attention_heads, are rejected with a ValueError.

Presets live in ``core/presets/<name>.json``: copies of the public Hugging Face
config.json files (their URL is in each file's ``_source`` key).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

PRESET_DIR = Path(__file__).resolve().parent / "presets"

# model_type / architectures entry -> our family
_MODEL_TYPES = {"llama": "llama", "mistral": "llama", "qwen2": "llama", "gpt2": "gpt2"}
_ARCHITECTURES = {
    "LlamaForCausalLM": "llama", "LlamaModel": "llama",
    "MistralForCausalLM": "mistral", "MistralModel": "mistral",
    "Qwen2ForCausalLM": "qwen2", "Qwen2Model": "qwen2",
    "GPT2LMHeadModel": "gpt2", "GPT2Model": "gpt2",
}


@dataclass(frozen=True)
class ModelSpec:
    """Shape of a decoder-only transformer (see module docstring for the two families)."""

    name: str
    arch: str  # "llama" | "gpt2"
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    qkv_bias: bool = False
    max_positions: int = 0  # GPT-2 learned positions (wpe rows); 0 for rotary models

    def __post_init__(self) -> None:
        if self.arch not in ("llama", "gpt2"):
            raise ValueError(f"model {self.name!r}: unknown architecture {self.arch!r} "
                             "(expected 'llama' or 'gpt2')")
        for key in ("hidden_size", "num_layers", "num_heads", "num_kv_heads",
                    "intermediate_size", "vocab_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"model {self.name!r}: {key} must be a positive integer, got {value!r}")
        if isinstance(self.max_positions, bool) or not isinstance(self.max_positions, int) \
                or self.max_positions < 0:
            raise ValueError(f"model {self.name!r}: max_positions must be an integer >= 0, "
                             f"got {self.max_positions!r}")
        if self.arch == "gpt2":
            if self.max_positions <= 0:
                raise ValueError(f"model {self.name!r}: gpt2 needs max_positions (n_positions) > 0")
            if self.num_kv_heads != self.num_heads:
                raise ValueError(f"model {self.name!r}: gpt2 has num_kv_heads == num_heads, "
                                 f"got {self.num_kv_heads} != {self.num_heads}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"model {self.name!r}: num_heads {self.num_heads} does not divide "
                             f"hidden_size {self.hidden_size}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"model {self.name!r}: num_kv_heads {self.num_kv_heads} does not "
                             f"divide num_heads {self.num_heads}")

    # ----- derived sizes -------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def kv_dim(self) -> int:
        """h_kv · d_h: width of the k and v projections."""
        return self.num_kv_heads * self.head_dim

    @property
    def norm_params(self) -> int:
        """One normalisation layer: RMSNorm d weights; LayerNorm weight + bias = 2d."""
        return 2 * self.hidden_size if self.arch == "gpt2" else self.hidden_size

    @property
    def has_bias(self) -> bool:
        """GPT-2 has biases on every linear layer."""
        return self.arch == "gpt2"

    def q_params(self, heads: int | None = None) -> int:
        """Query projection for ``heads`` query heads (default all), incl. bias."""
        out = (self.num_heads if heads is None else heads) * self.head_dim
        return self.hidden_size * out + (out if (self.qkv_bias or self.has_bias) else 0)

    def kv_proj_params(self, kv_heads: int | None = None) -> int:
        """k and v projections together for ``kv_heads`` kv heads (default all), incl. bias."""
        out = (self.num_kv_heads if kv_heads is None else kv_heads) * self.head_dim
        return 2 * (self.hidden_size * out + (out if (self.qkv_bias or self.has_bias) else 0))

    @property
    def o_params(self) -> int:
        d = self.hidden_size
        return d * d + (d if self.has_bias else 0)

    @property
    def attn_params(self) -> int:
        """q, k, v, o projections of one layer (no norm): 2·d² + 2·d·h_kv·d_h (+ biases)."""
        return self.q_params() + self.kv_proj_params() + self.o_params

    @property
    def mlp_params(self) -> int:
        """MLP of one layer (no norm): SwiGLU 3·d·d_ff; GPT-2 2·d·d_ff + d_ff + d biases."""
        d, f = self.hidden_size, self.intermediate_size
        if self.arch == "gpt2":
            return 2 * d * f + f + d
        return 3 * d * f

    @property
    def layer_params(self) -> int:
        """One decoder block: two norms, attention, MLP."""
        return 2 * self.norm_params + self.attn_params + self.mlp_params

    @property
    def embed_params(self) -> int:
        """Token embedding V·d, plus GPT-2's learned positions max_positions·d."""
        return self.vocab_size * self.hidden_size + self.max_positions * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        """The V×d output matrix (shared with the embedding when tied)."""
        return self.vocab_size * self.hidden_size

    @property
    def param_count(self) -> int:
        """Exact number of parameters (a tied LM head counted once)."""
        total = self.embed_params + self.num_layers * self.layer_params + self.norm_params
        if not self.tie_word_embeddings:
            total += self.lm_head_params
        return total


# ----- loading -----------------------------------------------------------------------
def list_presets() -> list[str]:
    """Names of the bundled presets (file stems in ``core/presets``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def _read_config(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"model config file not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"model config path is a directory, not a config.json file: {path}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON in model config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"model config {path} must be a JSON object, got {type(data).__name__}")
    return data


def _int_key(cfg: Mapping[str, Any], key: str, source: str, default: Any = ...) -> int:
    if key not in cfg or (cfg[key] is None and default is not ...):
        if default is ...:
            raise ValueError(f"model config {source}: missing key {key!r}")
        return default
    value = cfg[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"model config {source}: {key} must be an integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"model config {source}: {key} must be positive, got {value}")
    return value


def _bool_key(cfg: Mapping[str, Any], key: str, source: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValueError(f"model config {source}: {key} must be true or false, got {value!r}")
    return value


def _model_type(cfg: Mapping[str, Any], source: str) -> str:
    mt = cfg.get("model_type")
    if mt is not None:
        if not isinstance(mt, str) or mt.lower() not in _MODEL_TYPES:
            raise ValueError(f"model config {source}: unknown architecture model_type={mt!r} "
                             f"(supported: {', '.join(sorted(_MODEL_TYPES))})")
        return mt.lower()
    archs = cfg.get("architectures")
    if isinstance(archs, str):
        archs = [archs]
    if not archs:
        raise ValueError(f"model config {source}: missing key 'model_type' (and no 'architectures')")
    for a in archs:
        if a in _ARCHITECTURES:
            return _ARCHITECTURES[a]
    raise ValueError(f"model config {source}: unknown architecture {archs!r} "
                     f"(supported: {', '.join(sorted(_ARCHITECTURES))})")


def spec_from_config(cfg: Mapping[str, Any], name: str, source: str | None = None) -> ModelSpec:
    """Build a :class:`ModelSpec` from a parsed HF config dict (defaults as in HF)."""
    src = source or name
    mtype = _model_type(cfg, src)
    if mtype == "gpt2":
        d = _int_key(cfg, "n_embd", src)
        h = _int_key(cfg, "n_head", src)
        # HF GPT2MLP: inner_dim = n_inner if not None else 4 * hidden_size
        d_ff = _int_key(cfg, "n_inner", src, default=4 * d)
        spec_kwargs = dict(
            arch="gpt2", hidden_size=d, num_layers=_int_key(cfg, "n_layer", src),
            num_heads=h, num_kv_heads=h, intermediate_size=d_ff,
            vocab_size=_int_key(cfg, "vocab_size", src),
            # GPT2Config default: tie_word_embeddings=True (the public config omits it)
            tie_word_embeddings=_bool_key(cfg, "tie_word_embeddings", src, True),
            qkv_bias=True, max_positions=_int_key(cfg, "n_positions", src))
    else:
        d = _int_key(cfg, "hidden_size", src)
        h = _int_key(cfg, "num_attention_heads", src)
        # HF Llama/Mistral/Qwen2 configs: num_key_value_heads=None -> num_attention_heads
        h_kv = _int_key(cfg, "num_key_value_heads", src, default=h)
        if mtype == "llama":
            for key in ("attention_bias", "mlp_bias"):
                if _bool_key(cfg, key, src, False):
                    raise ValueError(f"model config {src}: {key}=true is not supported")
        if cfg.get("head_dim") is not None and d % h == 0 and cfg["head_dim"] != d // h:
            raise ValueError(f"model config {src}: head_dim {cfg['head_dim']!r} != hidden_size / "
                             f"num_attention_heads = {d // h} is not supported")
        spec_kwargs = dict(
            arch="llama", hidden_size=d, num_layers=_int_key(cfg, "num_hidden_layers", src),
            num_heads=h, num_kv_heads=h_kv,
            intermediate_size=_int_key(cfg, "intermediate_size", src),
            vocab_size=_int_key(cfg, "vocab_size", src),
            # Llama/Mistral/Qwen2 configs default tie_word_embeddings=False
            tie_word_embeddings=_bool_key(cfg, "tie_word_embeddings", src, False),
            qkv_bias=(mtype == "qwen2"), max_positions=0)
    try:
        return ModelSpec(name=name, **spec_kwargs)
    except ValueError as exc:
        raise ValueError(f"model config {src}: {exc}") from None


def load_model_spec(name_or_path: str | Path) -> ModelSpec:
    """A preset name (case-insensitive, see :func:`list_presets`) or a path to a HF config.json
    (or to a directory holding one)."""
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    key = str(name_or_path).strip()
    presets = list_presets()
    if key.lower() in presets:
        path = PRESET_DIR / f"{key.lower()}.json"
        return spec_from_config(_read_config(path), key.lower(), str(path))
    path = Path(key).expanduser()
    looks_like_path = path.suffix == ".json" or "/" in key or "\\" in key or path.exists()
    if not looks_like_path:
        raise ValueError(f"unknown model preset {key!r}; available presets: {', '.join(presets)} "
                         "(or pass a path to a config.json)")
    if path.is_dir() and (path / "config.json").is_file():
        path = path / "config.json"
    cfg = _read_config(path)
    return spec_from_config(cfg, config_model_name(cfg, path), str(path))


def config_model_name(cfg: Mapping[str, Any], path: str | Path) -> str:
    """The name of a model read from a config.json, for tables and run directories.

    In order: the config's ``_name_or_path`` (a Hub id such as ``meta-llama/Llama-2-7b-hf``
    as written; a local path reduced to its last component); for a file named
    ``config.json``, its folder's name (the Hugging Face layout ``MODEL/config.json``);
    otherwise the config's first ``architectures`` entry, else its ``model_type``.  The
    file's own stem (``x.config`` for ``x.config.json``) is never used: it names a file,
    not a model.
    """
    path = Path(path)
    raw = cfg.get("_name_or_path")
    if isinstance(raw, str) and raw.strip().rstrip("/\\") not in ("", "."):
        name = raw.strip().rstrip("/\\")
        local = name.startswith((".", "~", "/", "\\")) or (len(name) > 1 and name[1] == ":")
        return name.replace("\\", "/").rsplit("/", 1)[-1] if local else name
    if path.name == "config.json":
        folder = path.expanduser().resolve().parent.name
        if folder:
            return folder
    archs = cfg.get("architectures")
    if isinstance(archs, str):
        archs = [archs]
    if isinstance(archs, list) and archs and isinstance(archs[0], str) and archs[0]:
        return archs[0]
    model_type = cfg.get("model_type")
    if isinstance(model_type, str) and model_type:
        return model_type
    return path.stem  # unreachable for a loadable config: _model_type needs one of the two

