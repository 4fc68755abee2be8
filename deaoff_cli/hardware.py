"""``evaluate.py calibration`` and ``evaluate.py predict``: the hardware catalogue at the command line.

    python evaluate.py calibration --out DIR [--fit]
        Every calibration point (configs/hardware/calibration.yaml): the engine's predicted
        tokens/s beside the published measurement and the error; writes DIR/calibration.json.
        --fit also re-fits each class's achieved fractions and prints them beside the stored ones.
    python evaluate.py predict --hardware NAME --model M --weight-dtype D --phase decode|prefill
                               --tokens N [--json]
        The model entirely on that hardware (phone: all-device; edge: all on the server),
        costed by the engine.  NAME is a catalogue entry or a profile YAML path; M a preset
        model or a Hugging Face config.json path.

Bad input prints one line and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from core.calibration import TARGET_ERROR_PCT, calibration_table, fit_class_fractions
from core.dag import WEIGHT_BYTES_PER_PARAM
from core.hardware import CLASSES, PHASES, load_classes, load_profile


def _one_line_error(parser: argparse.ArgumentParser):
    def error(message: str) -> None:  # argparse's own errors: one line, status 2
        print(f"error: {parser.prog}: {message}", file=sys.stderr)
        sys.exit(2)
    return error


def add_commands(sub: Any) -> None:
    """Register ``calibration`` and ``predict`` on ``sub`` (an argparse subparsers object)."""
    cal = sub.add_parser("calibration", help="predicted vs published tokens/s of the hardware catalogue")
    cal.add_argument("--out", required=True, type=Path)
    cal.add_argument("--fit", action="store_true", help="also re-fit the class fractions (slower)")
    cal.set_defaults(hardware_command=run_calibration)
    pr = sub.add_parser("predict", help="tokens/s of a model entirely on one catalogue hardware")
    pr.add_argument("--hardware", required=True, help="catalogue name or profile YAML path")
    pr.add_argument("--model", required=True, help="preset model or config.json path")
    pr.add_argument("--weight-dtype", default="fp16", help=f"one of {sorted(WEIGHT_BYTES_PER_PARAM)}")
    pr.add_argument("--phase", required=True, help=f"one of {list(PHASES)}")
    pr.add_argument("--tokens", required=True, type=int,
                    help="context length (decode) or prompt length (prefill)")
    pr.add_argument("--json", action="store_true", help="print one JSON object")
    pr.set_defaults(hardware_command=run_predict)
    for p in (cal, pr):
        p.error = _one_line_error(p)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the command ``args`` selected; bad input -> one line on stderr, status 2."""
    try:
        return args.hardware_command(args, argv)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run_predict(args: argparse.Namespace, argv: list[str]) -> int:
    from core.hardware import predict

    if args.weight_dtype not in WEIGHT_BYTES_PER_PARAM:
        raise ValueError(f"unknown --weight-dtype {args.weight_dtype!r}; expected one of "
                         f"{sorted(WEIGHT_BYTES_PER_PARAM)}")
    if args.phase not in PHASES:
        raise ValueError(f"unknown --phase {args.phase!r}; expected one of {list(PHASES)}")
    if args.tokens <= 0:
        raise ValueError(f"--tokens must be a positive integer, got {args.tokens}")
    out = predict(args.hardware, args.model, args.weight_dtype, args.phase, args.tokens)
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key}: {value}")
    return 0


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["| point | role | predicted tok/s | measured tok/s | error % |", "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['point']} | {r['role']} | {r['predicted_tokens_per_s']:.1f} | "
                     f"{r['measured_tokens_per_s']:.1f} | {r['error_pct']:+.1f} |")
    return "\n".join(lines)


def run_calibration(args: argparse.Namespace, argv: list[str]) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    rows = calibration_table()
    print(_table(rows))
    within = [r for r in rows if abs(r["error_pct"]) <= TARGET_ERROR_PCT]
    print(f"\n{len(within)}/{len(rows)} points within ±{TARGET_ERROR_PCT:.0f}% "
          f"(fit points: {sum(r['role'] == 'fit' for r in within)}/{sum(r['role'] == 'fit' for r in rows)})")
    classes = load_classes()
    stored = {c: {k: classes[c]["values"][k] for k in ("decode_bw_fraction", "prefill_flops_fraction")}
              for c in CLASSES}
    fits = {}
    if args.fit:
        for c in CLASSES:
            fits[c] = fit_class_fractions(c)
            print(f"{c}: fitted decode_bw_fraction {fits[c]['decode_bw_fraction']:.4g} "
                  f"(stored {stored[c]['decode_bw_fraction']}), prefill_flops_fraction "
                  f"{fits[c]['prefill_flops_fraction']:.4g} (stored {stored[c]['prefill_flops_fraction']})")
    profiles = {r["hardware"]: load_profile(r["hardware"]).to_dict() for r in rows}
    summary = {"command": "python evaluate.py " + " ".join(shlex.quote(a) for a in argv),
               "target_error_pct": TARGET_ERROR_PCT, "points": rows, "stored_class_fractions": stored,
               "fitted_class_fractions": fits, "profiles": profiles}
    path = args.out / "calibration.json"
    path.write_text(json.dumps(summary, indent=1))
    print(f"wrote {path}")
    return 0
