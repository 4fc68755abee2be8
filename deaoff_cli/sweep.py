"""Run a sweep: many train.py runs, each followed by its held-out evaluation, locally or on Ray.

    python sweep.py --config configs/sweeps/NAME.yaml [--backend local|ray] [--address ADDR]
                    [--workers N] [--out DIR]

A grid or a seeded random search over seeds, hyper-parameters, env configs and scenarios
(the file format: :mod:`deaoff_cli.sweep_config`).  Each trial runs ``train.py`` and then
``evaluate.py agents`` on the trained model (held-out episodes, the same for every trial),
each in its own subprocess, in ``OUT/trials/TRIAL_ID/``.

Backends: ``local`` (default) runs --workers trials at once on this machine, no Ray needed;
``ray`` runs one Ray task per trial: with --address (e.g. ``ray://head:10001`` or
``auto``) on an existing cluster, else on a local Ray instance of --workers CPUs.  On a
cluster, --out must be a path every node can write (a shared file system) for the trained
models to be kept; the results table is collected by this process either way.

Same seeds, same numbers: a trial runs the same commands with one thread per process
whatever the backend and the number of workers.

Outputs in OUT (default ``sweeps/NAME``): ``results.md`` (also printed), ``results.json``,
``trials.csv`` (one row per trial), ``configs.csv`` (mean and 95% CI over seeds per
configuration), ``quality.png`` (the metric against every swept value), ``sweep.yaml``
(the sweep file as run).

Faults: a trial that fails is reported with its error (``error.json`` in its directory and
the table) and the sweep goes on; the exit code is then 1.  Re-running the same command
resumes: a trial with ``result.json`` in its directory is not run again (failed and
half-done trials are).  A trial's id ends in a hash of its settings, seed and evaluation,
so a marker is only reused for the very same trial.  Ctrl-C stops the running trials and exits 130.  A bad sweep
file or option: one ``error:`` line, exit 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from deaoff_cli.sweep_config import SweepConfig, SweepConfigError, load_config

INTERRUPTED_EXIT = 130


def run_sweep(cfg: SweepConfig, out: Path, backend: str = "local", workers: int = 1,
              address: str | None = None, log=print) -> dict[str, Any]:
    """Run (or resume) the sweep into ``out`` and return its summary (see :mod:`deaoff_cli.sweep_report`)."""
    from deaoff_cli import sweep_backends as sb
    from deaoff_cli import sweep_report

    trials = cfg.trials()
    out.mkdir(parents=True, exist_ok=True)
    trials_dir = out / "trials"
    trials_dir.mkdir(exist_ok=True)
    jobs, records = sb.pending_jobs(trials, trials_dir)
    log(f"sweep {cfg.name}: {len(trials)} trials ({len(records)} finished earlier, {len(jobs)} to run), "
        f"backend {backend}, {workers} worker(s)")
    eval_kw = {"episodes": cfg.episodes, "eval_seed": cfg.eval_seed, "deadline_ms": cfg.deadline_ms}
    t_start = time.perf_counter()

    def on_done(record: dict[str, Any]) -> None:
        d = Path(record["trial_dir"])
        d.mkdir(parents=True, exist_ok=True)
        if record["status"] == "ok":
            (d / "error.json").unlink(missing_ok=True)
            (d / sb.FINISHED).write_text(json.dumps(record, indent=1, default=float))
            log(f"  {record['trial_id']}: {cfg.metric} = {record['metrics'][cfg.metric]:.4g} "
                f"({record['wall_s']:.1f} s)")
        else:
            (d / "error.json").write_text(json.dumps(record, indent=1, default=float))
            log(f"  {record['trial_id']}: FAILED: {record['error']}")
        records.append(record)

    meta: dict[str, Any] = {"backend": backend, "workers": workers, "address": address}
    if jobs:
        if backend == "ray":
            ray, startup_s = sb.start_ray(address, workers)
            meta["ray_startup_s"] = startup_s
            log(f"  ray: {'connected to ' + address if address else 'local instance'} "
                f"in {startup_s:.1f} s, {ray.cluster_resources().get('CPU', 0):g} CPUs")
            try:
                sb.run_ray(ray, jobs, workers, eval_kw, on_done)
            finally:
                ray.shutdown()
        else:
            sb.run_local(jobs, workers, eval_kw, on_done)
    meta["wall_s"] = time.perf_counter() - t_start
    summary = sweep_report.summarise(cfg, records, [t.trial_id for t in trials])
    summary.update(meta)
    sweep_report.write(out, summary)
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sweep.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="sweep YAML (e.g. configs/sweeps/tiny.yaml)")
    p.add_argument("--backend", default="local", help="local (default, no Ray) or ray")
    p.add_argument("--address", help="ray backend: address of a running Ray cluster (default: start a local one)")
    p.add_argument("--workers", type=int, default=1, help="trials run at once (default 1)")
    p.add_argument("--out", help="output directory (default sweeps/NAME)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.backend not in ("local", "ray"):
            raise SweepConfigError(f"--backend must be local or ray, got {args.backend!r}")
        if args.workers < 1:
            raise SweepConfigError(f"--workers must be >= 1, got {args.workers}")
        if args.address and args.backend != "ray":
            raise SweepConfigError("--address is for --backend ray")
        if args.backend == "ray":
            try:
                import ray  # noqa: F401
            except ImportError:
                raise SweepConfigError("--backend ray needs Ray: pip install 'deaoff-gym[ray]'") from None
        cfg = load_config(args.config)
        out = Path(args.out or Path("sweeps") / cfg.name)
    except SweepConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.yaml").write_text(Path(args.config).read_text())
    from deaoff_cli import sweep_report

    try:
        summary = run_sweep(cfg, out, args.backend, args.workers, args.address,
                            log=lambda s: print(s, file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        print("interrupted: finished trials are kept; re-run the same command to resume", file=sys.stderr)
        return INTERRUPTED_EXIT
    print(sweep_report.markdown(summary))
    print(f"\nwrote {out}/results.md, results.json, trials.csv, configs.csv, quality.png "
          f"({summary['wall_s']:.1f} s)", file=sys.stderr)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
