"""The hardware catalogue: named profiles of phones and edge accelerators, and calibration.

A profile is data, not code: ``configs/hardware/NAME.yaml`` (or any YAML file a user
passes by path).  Every field is a mapping ``{value: ..., source: "..."}`` so that each
number carries where it comes from; ``value: null`` means "not found", and the field then
takes its class's value from ``configs/hardware/classes.yaml`` (the profile's source text
must say so: it has to contain "not found", "class default" or "no own measurement").

Fields (units in the names):

``class``                   ``phone`` or ``edge``
``peak_flops_per_s``        dense peak per precision ``fp16`` / ``int8`` / ``int4``
``mem_bw_bytes_per_s``      peak DRAM bandwidth
``mem_capacity_bytes``      memory usable for model weights + KV cache
``active_power_w``          power while computing (edge: board power; phone: SoC)
``idle_power_w``            power while not computing
``dvfs_freqs_hz``           clock levels, ascending, or null when not published
``decode_bw_fraction``      achieved fraction of peak bandwidth (memory-bound decode)
``prefill_flops_fraction``  achieved fraction of the fp16 peak (compute-bound prefill)

How the engine uses a profile (``core.system``: ``DeviceConfig(hardware=...)``,
``ServerConfig(hardware=...)``): the roofline of every node is
``max(FLOPs / (peak_fp16 · prefill_flops_fraction), bytes / (bandwidth · decode_bw_fraction))``.
Only the fp16 peak enters: the stacks of the calibration points (llama.cpp Q4_0, MLC
q4f16) quantise weights only and compute at the activation precision; the int8 / int4
peaks are catalogue data.  On the device the DVFS levels scale the FLOP rate (the top
level is the profile's peak); without published levels the device has one level at
``NOMINAL_FREQ_HZ``, a pure scale factor.  The device's κ is set so that computing at
the top level draws ``active_power_w - idle_power_w`` above the idle power.

Calibration (``fit_class_fractions``, ``calibration_table``): the two fractions of a
class are fitted on that class's published points in ``configs/hardware/calibration.yaml``
(``fit: true``), by bisection on the engine's own prediction (``predict``): first the
bandwidth fraction so that the geometric mean of predicted / measured tokens/s over the
decode points is 1, then the FLOP fraction likewise over the prefill points, repeated
until both settle (decode barely depends on the FLOP fraction).  With one point per
phase and class, as today, the fit reproduces those points exactly; the other points
(``fit: false``) are independent cross-checks and are reported as they come out.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

HARDWARE_DIR = Path(__file__).resolve().parent.parent / "configs" / "hardware"
CLASSES_FILE = HARDWARE_DIR / "classes.yaml"
CALIBRATION_FILE = HARDWARE_DIR / "calibration.yaml"
_NOT_PROFILES = {"classes", "calibration"}

CLASSES = ("phone", "edge")
PRECISIONS = ("fp16", "int8", "int4")
SCALAR_FIELDS = ("mem_bw_bytes_per_s", "mem_capacity_bytes", "active_power_w", "idle_power_w",
                 "decode_bw_fraction", "prefill_flops_fraction")
SOURCED_FIELDS = ("peak_flops_per_s",) + SCALAR_FIELDS + ("dvfs_freqs_hz",)
PROFILE_KEYS = ("name", "class", "description") + SOURCED_FIELDS
NOMINAL_FREQ_HZ = 1.0e9
"""Clock of the single DVFS level of a device whose levels are not published (a scale
only: κ and FLOPs-per-cycle are derived from it, the time and energy do not depend on it)."""
_DEFAULT_MARKERS = ("not found", "class default", "no own measurement")


@dataclass(frozen=True)
class HardwareProfile:
    """One resolved catalogue entry (class defaults filled in); see the module docstring.
    Loaded profiles are cached and shared: treat them as read-only."""

    name: str
    hw_class: str
    description: str
    peak_flops_per_s: dict[str, float | None]
    mem_bw_bytes_per_s: float
    mem_capacity_bytes: float
    active_power_w: float
    idle_power_w: float
    dvfs_freqs_hz: tuple[float, ...] | None
    decode_bw_fraction: float
    prefill_flops_fraction: float
    sources: dict[str, str] = field(default_factory=dict)
    """Field (``peak_flops_per_s.fp16`` for a precision) -> source text as written."""
    class_defaults: tuple[str, ...] = ()
    """Fields whose value came from the class defaults."""
    ref: str = ""
    """How to load it again: the catalogue name, or the YAML path for a user profile."""

    @property
    def compute_flops_per_s(self) -> float:
        """The peak the roofline uses: dense fp16 (see the module docstring)."""
        return float(self.peak_flops_per_s["fp16"])

    @property
    def achieved_flops_per_s(self) -> float:
        return self.compute_flops_per_s * self.prefill_flops_fraction

    @property
    def achieved_mem_bw_bytes_per_s(self) -> float:
        return self.mem_bw_bytes_per_s * self.decode_bw_fraction

    def device_fields(self) -> dict[str, Any]:
        """The :class:`core.system.DeviceConfig` fields this profile sets."""
        freqs = self.dvfs_freqs_hz or (NOMINAL_FREQ_HZ,)
        f_max = freqs[-1]
        dynamic_w = self.active_power_w - self.idle_power_w  # > 0: checked by parse_profile
        return {"freqs_hz": tuple(freqs), "flops_per_cycle": self.compute_flops_per_s / f_max,
                "flops_fraction": self.prefill_flops_fraction,
                "mem_bw_bytes_per_s": self.mem_bw_bytes_per_s, "mem_bw_fraction": self.decode_bw_fraction,
                "mem_capacity_bytes": self.mem_capacity_bytes,
                # power at the top level while computing: κ·f²·(cycles/s) = κ·f³·fraction
                "kappa": dynamic_w / (f_max ** 3 * self.prefill_flops_fraction),
                "idle_power_w": self.idle_power_w}

    def server_fields(self) -> dict[str, Any]:
        """The :class:`core.system.ServerConfig` fields this profile sets."""
        return {"peak_flops": self.compute_flops_per_s, "flops_fraction": self.prefill_flops_fraction,
                "mem_bw_bytes_per_s": self.mem_bw_bytes_per_s, "mem_bw_fraction": self.decode_bw_fraction,
                "mem_capacity_bytes": self.mem_capacity_bytes, "power_w": self.active_power_w}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["class"] = d.pop("hw_class")
        d["dvfs_freqs_hz"] = None if self.dvfs_freqs_hz is None else list(self.dvfs_freqs_hz)
        d["class_defaults"] = list(self.class_defaults)
        return d


# --------------------------------------------------------------------------- loading
def list_profiles() -> list[str]:
    """Names of the catalogue entries."""
    return sorted(p.stem for p in HARDWARE_DIR.glob("*.yaml") if p.stem not in _NOT_PROFILES)


def _read_yaml(path: Path, what: str) -> Any:
    if not path.exists():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{what} file {path} is not valid YAML: {exc}") from None


def _number(value: Any, where: str) -> float:
    """A finite number (PyYAML reads ``42.5e12`` as a string: numeric strings are accepted)."""
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{where}: expected a number, got {value!r}") from None
    if not isinstance(value, (int, float)):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{where}: must be finite, got {value!r}")
    return x


def _check_range(field_name: str, x: float, where: str) -> None:
    if field_name.endswith("_fraction"):
        if not 0.0 < x <= 1.0:
            raise ValueError(f"{where}: a fraction must lie in (0, 1], got {x!r}")
    elif field_name == "idle_power_w":
        if x < 0:
            raise ValueError(f"{where}: must be >= 0, got {x!r}")
    elif not x > 0:
        raise ValueError(f"{where}: must be > 0, got {x!r}")


def _sourced(entry: Any, where: str, allow_null: bool) -> tuple[Any, str]:
    """(raw value, source) of one ``{value, source}`` entry, checked for shape."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a mapping {{value: ..., source: ...}}, got {entry!r}")
    keys = set(entry)
    if keys != {"value", "source"}:
        missing = sorted({"value", "source"} - keys)
        extra = sorted(keys - {"value", "source"})
        raise ValueError(f"{where}: " + (f"missing {missing}" if missing else f"unknown key(s) {extra}")
                         + "; expected exactly {value, source}")
    source = entry["source"]
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"{where}.source: every value needs its source (a non-empty string)")
    if entry["value"] is None:
        if not allow_null:
            raise ValueError(f"{where}.value is null: this field needs a value")
        if not any(m in source.lower() for m in _DEFAULT_MARKERS):
            raise ValueError(f"{where}.value is null but its source does not say so "
                             f"(it must contain one of {list(_DEFAULT_MARKERS)})")
    return entry["value"], source


def _parse_fields(data: Mapping[str, Any], where: str, allow_null: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """Values (None where null) and sources of the sourced fields of a profile or class."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in SOURCED_FIELDS:
        if key not in data:
            raise ValueError(f"{where}: missing field {key!r}")
    peaks = data["peak_flops_per_s"]
    if not isinstance(peaks, Mapping) or set(peaks) != set(PRECISIONS):
        raise ValueError(f"{where}.peak_flops_per_s: expected exactly the precisions {list(PRECISIONS)}, "
                         f"got {sorted(peaks) if isinstance(peaks, Mapping) else peaks!r}")
    values["peak_flops_per_s"] = {}
    for p in PRECISIONS:
        w = f"{where}.peak_flops_per_s.{p}"
        # int8 / int4 peaks are catalogue data only: may stay "not found" even in a class
        raw, src = _sourced(peaks[p], w, allow_null or p != "fp16")
        x = None if raw is None else _number(raw, w)
        if x is not None:
            _check_range("peak_flops_per_s", x, w)
        values["peak_flops_per_s"][p] = x
        sources[f"peak_flops_per_s.{p}"] = src
    for key in SCALAR_FIELDS:
        w = f"{where}.{key}"
        raw, src = _sourced(data[key], w, allow_null)
        x = None if raw is None else _number(raw, w)
        if x is not None:
            _check_range(key, x, w)
        values[key], sources[key] = x, src
    w = f"{where}.dvfs_freqs_hz"
    raw, src = _sourced(data["dvfs_freqs_hz"], w, True)
    if raw is not None:
        if not isinstance(raw, list) or not raw:
            raise ValueError(f"{w}: expected a non-empty list of clock levels or null, got {raw!r}")
        freqs = tuple(_number(v, f"{w}[{i}]") for i, v in enumerate(raw))
        for i, f in enumerate(freqs):
            _check_range("dvfs_freqs_hz", f, f"{w}[{i}]")
        if list(freqs) != sorted(freqs):
            raise ValueError(f"{w}: levels must be ascending, got {list(freqs)}")
        raw = freqs
    values["dvfs_freqs_hz"], sources["dvfs_freqs_hz"] = raw, src
    return values, sources


def load_classes(path: Path = CLASSES_FILE) -> dict[str, dict[str, Any]]:
    """Class defaults: {class: {"values": ..., "sources": ...}} (see classes.yaml)."""
    return _load_classes_cached(str(path), _mtime(path))


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return -1


@functools.lru_cache(maxsize=64)
def _load_classes_cached(path_str: str, mtime_ns: int) -> dict[str, dict[str, Any]]:
    # cached per file version: scenarios and the environment build configs often (read-only result)
    path = Path(path_str)
    data = _read_yaml(path, "hardware classes")
    if not isinstance(data, Mapping) or set(data) != set(CLASSES):
        raise ValueError(f"{path}: expected exactly the classes {list(CLASSES)}")
    out = {}
    for cls, entry in data.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"{path}: class {cls!r} must be a mapping")
        unknown = sorted(set(entry) - set(SOURCED_FIELDS) - {"description"})
        if unknown:
            raise ValueError(f"{path}: class {cls!r}: unknown key(s) {unknown}")
        values, sources = _parse_fields(entry, f"classes.{cls}", allow_null=False)
        out[cls] = {"values": values, "sources": sources}
    return out


def _resolve_path(name_or_path: str | Path) -> tuple[Path, str]:
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or "/" in text or "\\" in text:
        if not path.exists():
            raise FileNotFoundError(f"hardware profile file not found: {path}")
        return path, str(path)
    if text in _NOT_PROFILES or not (HARDWARE_DIR / f"{text}.yaml").exists():
        raise ValueError(f"unknown hardware {text!r}; known: {', '.join(list_profiles())} "
                         "(or a YAML file path)")
    return HARDWARE_DIR / f"{text}.yaml", text


def parse_profile(data: Any, where: str = "hardware profile", ref: str = "",
                  classes: Mapping[str, Any] | None = None) -> HardwareProfile:
    """Validate a profile mapping (a loaded YAML) and fill in its class defaults."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(PROFILE_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys: {list(PROFILE_KEYS)}")
    for key in ("name", "class", "description"):
        if key not in data:
            raise ValueError(f"{where}: missing field {key!r}")
        if not isinstance(data[key], str) or not data[key].strip():
            raise ValueError(f"{where}.{key}: expected a non-empty string, got {data[key]!r}")
    if data["class"] not in CLASSES:
        raise ValueError(f"{where}.class: unknown class {data['class']!r}; expected one of {list(CLASSES)}")
    values, sources = _parse_fields(data, where, allow_null=True)
    cls = (classes or load_classes())[data["class"]]
    defaulted = []
    peaks = dict(values["peak_flops_per_s"])
    for p in PRECISIONS:
        if peaks[p] is None and cls["values"]["peak_flops_per_s"][p] is not None:
            peaks[p] = cls["values"]["peak_flops_per_s"][p]
            defaulted.append(f"peak_flops_per_s.{p}")
    values["peak_flops_per_s"] = peaks
    for key in SCALAR_FIELDS + ("dvfs_freqs_hz",):
        if values[key] is None and cls["values"][key] is not None:
            values[key] = cls["values"][key]
            defaulted.append(key)
    if not values["active_power_w"] > values["idle_power_w"]:
        raise ValueError(f"{where}: active_power_w ({values['active_power_w']}) must exceed idle_power_w "
                         f"({values['idle_power_w']})")
    return HardwareProfile(name=data["name"], hw_class=data["class"], description=data["description"],
                           sources=sources, class_defaults=tuple(defaulted), ref=ref or data["name"],
                           **values)


def load_profile(name_or_path: str | Path | HardwareProfile) -> HardwareProfile:
    """A catalogue profile by name (``configs/hardware/NAME.yaml``) or a user's YAML file."""
    if isinstance(name_or_path, HardwareProfile):
        return name_or_path
    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path).strip():
        raise ValueError(f"hardware must be a profile name or a YAML path, got {name_or_path!r}")
    path, ref = _resolve_path(name_or_path)
    return _load_profile_cached(str(path), ref, _mtime(path), _mtime(CLASSES_FILE))


@functools.lru_cache(maxsize=256)
def _load_profile_cached(path_str: str, ref: str, mtime_ns: int, classes_mtime_ns: int) -> HardwareProfile:
    path = Path(path_str)
    return parse_profile(_read_yaml(path, "hardware profile"), where=f"hardware profile {path.name}", ref=ref)


# --------------------------------------------------------------------------- predict
PHASES = ("decode", "prefill")
_IDEAL_LINK = {"latency_s": 0.0, "distance_km": 0.01, "uplink_bandwidth_hz": 100e6, "downlink_bandwidth_hz": 100e6}
"""The link of predict's edge server: no fixed latency and a Shannon rate of ~2 Gb/s, so
that the token ids and the returned token cost microseconds (reported as ``transfer_s``)."""


def predict(hardware: str | Path | HardwareProfile, model: Any, weight_dtype: str = "fp16",
            phase: str = "decode", tokens: int = 128, *, act_dtype: str = "fp16",
            granularity: str = "block") -> dict[str, Any]:
    """The model entirely on ``hardware``, costed by the engine.

    A phone profile becomes the device and the placement is all-device; an edge profile
    becomes server 1 (no background load) and the placement is
    all-on-server over an idealised link (``_IDEAL_LINK``), so the makespan also holds
    the upload of the token ids and the return of the sampled token (``transfer_s``,
    microseconds).  ``tokens`` is the context length
    for decode and the prompt length for prefill.  Memory is reported, not enforced
    (``fits_memory``): the time of a model that does not fit is still given.
    """
    from .cost import evaluate, memory_use
    from .dag import build_dag
    from .instance import Placement, make_instance
    from .models import ModelSpec, load_model_spec
    from .system import DeviceConfig, Scenario, ServerConfig, make_snapshot

    prof = load_profile(hardware)
    spec = model if isinstance(model, ModelSpec) else load_model_spec(model)
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; expected one of {list(PHASES)}")
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens <= 0:
        raise ValueError(f"tokens must be a positive integer, got {tokens!r}")
    kw = dict(weight_dtype=weight_dtype, act_dtype=act_dtype)
    if phase == "prefill":
        graph = build_dag(spec, granularity, "prefill", prompt_len=tokens, **kw)
    else:
        graph = build_dag(spec, granularity, "decode", prompt_len=max(tokens - 1, 1), context_len=tokens, **kw)
    on_device = prof.hw_class == "phone"
    # the profile's numbers explicitly (they equal the file's for a catalogue profile; the
    # calibration fit passes profiles with trial fractions)
    if on_device:
        scenario = Scenario(name=f"predict-{prof.name}", servers=[ServerConfig()],
                            device=DeviceConfig(hardware=prof.ref or None, **prof.device_fields()))
    else:
        scenario = Scenario(name=f"predict-{prof.name}", servers=[
            ServerConfig(hardware=prof.ref or None, **_IDEAL_LINK, **prof.server_fields())])
    inst = make_instance(graph, make_snapshot(scenario))
    where = 0 if on_device else 1
    placement = Placement([where] * inst.num_nodes)
    placement.validate(inst)
    res = evaluate(inst, placement, record=True, check=False)
    dv, _ = placement.levels(inst)
    compute_s = sum(inst.dev_time[i][dv[i]] if on_device else inst.srv_time[i][0] for i in range(inst.num_nodes))
    used = memory_use(inst, placement.loc)[where]
    cap = inst.system.mem_capacity_bytes[where]
    latency_s = res.makespan_s
    n_tok = tokens if phase == "prefill" else 1
    return {
        "hardware": prof.name, "class": prof.hw_class, "model": spec.name, "weight_dtype": weight_dtype,
        "act_dtype": act_dtype, "phase": phase, "tokens": tokens,
        "placement": "all-device" if on_device else "all-on-server",
        "latency_s": latency_s, "tokens_per_s": n_tok / latency_s,
        "compute_s": compute_s, "transfer_s": latency_s - compute_s,
        "device_energy_j": res.energy_j, "edge_energy_j": res.edge_energy_j,
        "memory_bytes": used, "memory_capacity_bytes": cap,
        "fits_memory": used <= cap,
        "achieved_flops_per_s": prof.achieved_flops_per_s,
        "achieved_mem_bw_bytes_per_s": prof.achieved_mem_bw_bytes_per_s,
        "class_defaults": list(prof.class_defaults),
    }
