"""Calibration of the hardware catalogue against published measurements.

``configs/hardware/calibration.yaml`` lists the points (hardware, model, precision,
phase, tokens, measured tokens/s, source).  :func:`calibration_table` puts the engine's
prediction (:func:`core.hardware.predict`) beside each measurement;
:func:`fit_class_fractions` fits a class's two achieved fractions on its ``fit: true``
points (the procedure is in the :mod:`core.hardware` docstring).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .hardware import CALIBRATION_FILE, CLASSES, PHASES, HardwareProfile, _number, _read_yaml, load_profile, predict

POINT_KEYS = ("name", "hardware", "model", "weight_dtype", "phase", "tokens", "measured_tokens_per_s",
              "fit", "source")
TARGET_ERROR_PCT = 15.0
"""Issue 10's target: every calibration point within ±15 %."""


@dataclass(frozen=True)
class CalibrationPoint:
    """One published measurement (see calibration.yaml)."""

    name: str
    hardware: str
    model: str
    weight_dtype: str
    phase: str
    tokens: int
    measured_tokens_per_s: float
    fit: bool
    source: str


def load_points(path: Path = CALIBRATION_FILE) -> list[CalibrationPoint]:
    data = _read_yaml(path, "calibration")
    if not isinstance(data, Mapping) or set(data) != {"points"} or not isinstance(data["points"], list):
        raise ValueError(f"{path}: expected a mapping with one key 'points' holding a list")
    points = []
    for i, entry in enumerate(data["points"]):
        where = f"{path.name} points[{i}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected a mapping")
        missing = sorted(set(POINT_KEYS) - set(entry))
        unknown = sorted(set(entry) - set(POINT_KEYS))
        if missing or unknown:
            raise ValueError(f"{where}: " + (f"missing {missing}" if missing else f"unknown key(s) {unknown}"))
        for key in ("name", "hardware", "model", "weight_dtype", "source"):
            if not isinstance(entry[key], str) or not entry[key].strip():
                raise ValueError(f"{where}.{key}: expected a non-empty string")
        if entry["phase"] not in PHASES:
            raise ValueError(f"{where}.phase: expected one of {list(PHASES)}, got {entry['phase']!r}")
        tokens = entry["tokens"]
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens <= 0:
            raise ValueError(f"{where}.tokens: expected a positive integer, got {tokens!r}")
        measured = _number(entry["measured_tokens_per_s"], f"{where}.measured_tokens_per_s")
        if measured <= 0:
            raise ValueError(f"{where}.measured_tokens_per_s: must be > 0, got {measured!r}")
        if not isinstance(entry["fit"], bool):
            raise ValueError(f"{where}.fit: expected true or false")
        model = entry["model"]
        if model.endswith(".json") and not Path(model).is_absolute():  # a config.json beside the catalogue
            model = str(path.parent / model)
        points.append(CalibrationPoint(entry["name"], entry["hardware"], model, entry["weight_dtype"],
                                       entry["phase"], tokens, measured, entry["fit"], entry["source"]))
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: point names must be unique")
    return points


def predict_point(point: CalibrationPoint, profile: HardwareProfile | None = None) -> float:
    """The engine's tokens/s at ``point`` (with ``profile`` in place of the catalogue's)."""
    prof = load_profile(point.hardware) if profile is None else profile
    return predict(prof, point.model, point.weight_dtype, point.phase, point.tokens)["tokens_per_s"]


def calibration_table(points: Sequence[CalibrationPoint] | None = None) -> list[dict[str, Any]]:
    """One row per point: predicted and measured tokens/s and the error in percent."""
    rows = []
    for p in load_points() if points is None else points:
        pred = predict_point(p)
        rows.append({"point": p.name, "hardware": p.hardware, "model": p.model, "weight_dtype": p.weight_dtype,
                     "phase": p.phase, "tokens": p.tokens, "predicted_tokens_per_s": pred,
                     "measured_tokens_per_s": p.measured_tokens_per_s,
                     "error_pct": 100.0 * (pred / p.measured_tokens_per_s - 1.0),
                     "role": "fit" if p.fit else "cross-check", "source": p.source})
    return rows


def _bisect_log(g, lo: float = 1e-5, hi: float = 1.0, iters: int = 60) -> float:
    """The root of an increasing ``g`` on [lo, hi] (bisection on log scale)."""
    g_lo, g_hi = g(lo), g(hi)
    if g_hi < 0:
        raise ValueError("no fraction <= 1 reaches the measurement: the profile's peak is too low")
    if g_lo > 0:
        raise ValueError(f"even a fraction of {lo} predicts faster than measured")
    a, b = math.log(lo), math.log(hi)
    for _ in range(iters):
        mid = 0.5 * (a + b)
        if g(math.exp(mid)) < 0:
            a = mid
        else:
            b = mid
    return math.exp(0.5 * (a + b))


def fit_class_fractions(hw_class: str, points: Sequence[CalibrationPoint] | None = None,
                        rounds: int = 4) -> dict[str, Any]:
    """Fit ``decode_bw_fraction`` and ``prefill_flops_fraction`` of ``hw_class`` on its
    ``fit: true`` points: each is the value at which the geometric mean of predicted /
    measured over that phase's points is 1 (bisection), alternated ``rounds`` times."""
    if hw_class not in CLASSES:
        raise ValueError(f"unknown class {hw_class!r}; expected one of {list(CLASSES)}")
    pts = [p for p in (load_points() if points is None else points)
           if p.fit and load_profile(p.hardware).hw_class == hw_class]
    by_phase = {ph: [p for p in pts if p.phase == ph] for ph in PHASES}
    for ph, group in by_phase.items():
        if not group:
            raise ValueError(f"class {hw_class!r} has no fit point for phase {ph!r}")
    base = {p.name: load_profile(p.hardware) for p in pts}
    fr = {"decode_bw_fraction": base[pts[0].name].decode_bw_fraction,
          "prefill_flops_fraction": base[pts[0].name].prefill_flops_fraction}

    def log_ratio(group: list[CalibrationPoint], key: str, value: float) -> float:
        trial = {**fr, key: value}
        return sum(math.log(predict_point(p, dataclasses.replace(base[p.name], **trial)) / p.measured_tokens_per_s)
                   for p in group) / len(group)

    for _ in range(rounds):
        fr["decode_bw_fraction"] = _bisect_log(lambda x: log_ratio(by_phase["decode"], "decode_bw_fraction", x))
        fr["prefill_flops_fraction"] = _bisect_log(
            lambda x: log_ratio(by_phase["prefill"], "prefill_flops_fraction", x))
    return {"class": hw_class, **fr, "points": [p.name for p in pts]}
