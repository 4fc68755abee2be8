"""Running sweep trials: one trial (train.py then evaluate.py agents, each a subprocess), and the
two backends that run many — a local pool (no Ray) and Ray tasks (a local instance or a cluster).

A trial is a pure function of its settings and seed: both backends run the very same
commands with the same environment (one torch/BLAS thread per process), so the numbers do
not depend on the backend or on the number of workers.

The driver writes ``result.json`` into a trial's directory once the trial succeeded: it is
the trial's finished marker, and a resumed sweep skips every trial that has one.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
import zipfile
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

import deaoff_cli

REPO_ROOT = Path(deaoff_cli.__file__).resolve().parent.parent
FINISHED = "result.json"
ERROR_TAIL_LINES = 5
"""Lines of a failed command's stderr kept in the error message."""


def _child_env() -> dict[str, str]:
    """The environment of a trial's commands: this checkout first on PYTHONPATH, one thread per
    BLAS/OpenMP pool (train.py pins torch to one thread; the pools must agree for bitwise repeats)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = "1"
    env["PYTHONHASHSEED"] = "0"
    return env


def _run(cmd: list[str], log: Path, what: str) -> None:
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=_child_env(), cwd=REPO_ROOT)
    if proc.returncode != 0:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        tail = " | ".join(lines[-ERROR_TAIL_LINES:]) or "(no output)"
        raise RuntimeError(f"{what} exited with code {proc.returncode}: {tail}")


def run_trial(trial: dict[str, Any], trial_dir: str, episodes: int, eval_seed: int,
              deadline_ms: float | None) -> dict[str, Any]:
    """Train and evaluate one trial in ``trial_dir`` (emptied first); return its record.

    Never raises: a failure is returned as ``{"status": "failed", "error": ...}``."""
    start = time.perf_counter()
    out = Path(trial_dir)
    record: dict[str, Any] = {"trial_id": trial["trial_id"], "seed": trial["seed"], "params": trial["params"],
                              "trial_dir": str(out), "host": os.uname().nodename}
    try:
        if out.exists():
            shutil.rmtree(out)  # a half-done trial of an interrupted sweep starts again
        out.mkdir(parents=True)
        run = trial["run"]
        (out / "run.yaml").write_text(yaml.safe_dump({k: run[k] for k in ("hyperparams", "env_config") if k in run},
                                                     sort_keys=True))
        cmd = [sys.executable, "-m", "deaoff_cli.train", "--algo", run["algo"], "--env", run["env_id"],
               "--timesteps", str(run["timesteps"]), "--seed", str(trial["seed"]), "--log-dir", str(out / "train"),
               "--config", str(out / "run.yaml"), "--eval-freq", str(run.get("eval_freq", 0)), "--no-progress"]
        if "n_envs" in run:
            cmd += ["--n-envs", str(run["n_envs"])]
        if "eval_episodes" in run:
            cmd += ["--eval-episodes", str(run["eval_episodes"])]
        t0 = time.perf_counter()
        _run(cmd, out / "train.log", "train.py")
        record["train_wall_s"] = time.perf_counter() - t0
        run_dirs = sorted(p for p in (out / "train").iterdir() if p.is_dir())
        if len(run_dirs) != 1:
            raise RuntimeError(f"train.py left {len(run_dirs)} run directories in {out / 'train'}, expected 1")
        record["run_dir"] = str(run_dirs[0])
        record["policy_sha256"] = policy_digest(run_dirs[0] / "model.zip")
        cmd = [sys.executable, "-m", "deaoff_cli.evaluate", "agents", "--model", str(run_dirs[0]),
               "--episodes", str(episodes), "--seed", str(eval_seed), "--out", str(out / "eval")]
        if deadline_ms is not None:
            cmd += ["--deadline-ms", str(deadline_ms)]
        t0 = time.perf_counter()
        _run(cmd, out / "eval.log", "evaluate.py agents")
        record["eval_wall_s"] = time.perf_counter() - t0
        summary = json.loads((out / "eval" / "summary.json").read_text())
        agents = [name for name in summary["methods"] if name.startswith("agent-")]
        if len(agents) != 1:
            raise RuntimeError(f"evaluation summary has {len(agents)} agents, expected 1")
        record["metrics"] = summary["methods"][agents[0]]
        record["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure of a trial is reported, the sweep goes on
        record["status"] = "failed"
        record["error"] = str(exc) if isinstance(exc, RuntimeError) else \
            f"{type(exc).__name__}: {exc} ({traceback.format_exc(limit=1).splitlines()[-1]})"
    record["wall_s"] = time.perf_counter() - start
    return record


def policy_digest(model_zip: Path) -> str:
    """SHA-256 of the trained weights (``policy.pth`` inside SB3's zip): equal digests, equal models."""
    with zipfile.ZipFile(model_zip) as zf:
        return hashlib.sha256(zf.read("policy.pth")).hexdigest()


# --------------------------------------------------------------------------- backends
Job = tuple[dict[str, Any], str]
"""A trial (as a plain dict) and its directory."""


def run_local(jobs: list[Job], workers: int, eval_kw: dict[str, Any],
              on_done: Callable[[dict[str, Any]], None]) -> None:
    """Run the jobs on ``workers`` at once (threads, each waiting on its trial's subprocesses)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = {pool.submit(run_trial, t, d, **eval_kw) for t, d in jobs}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    on_done(fut.result())
        except KeyboardInterrupt:
            for fut in pending:
                fut.cancel()
            raise


def start_ray(address: str | None, workers: int) -> tuple[Any, float]:
    """Connect to the cluster at ``address``, or start a local instance of ``workers`` CPUs.

    Returns the ray module and the start-up time in seconds (init plus one round-trip task)."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("the ray backend needs Ray: pip install 'deaoff-gym[ray]'") from None
    t0 = time.perf_counter()
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        ray.init(address=address, **kw)
    else:
        ray.init(num_cpus=workers, runtime_env={"env_vars": {"PYTHONPATH": _child_env()["PYTHONPATH"]}}, **kw)
    ray.get(ray.remote(num_cpus=0)(_ping).remote())
    return ray, time.perf_counter() - t0


def _ping() -> str:
    return os.uname().nodename


def run_ray(ray: Any, jobs: list[Job], workers: int, eval_kw: dict[str, Any],
            on_done: Callable[[dict[str, Any]], None]) -> None:
    """One Ray task per trial (1 CPU each), at most ``workers`` in flight."""
    remote = ray.remote(num_cpus=1, max_retries=0)(run_trial)
    queue = list(jobs)
    in_flight: dict[Any, Job] = {}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < workers:
                trial, trial_dir = queue.pop(0)
                in_flight[remote.remote(trial, trial_dir, **eval_kw)] = (trial, trial_dir)
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                trial, trial_dir = in_flight.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a worker lost (node down, OOM kill)
                    record = {"trial_id": trial["trial_id"], "seed": trial["seed"], "params": trial["params"],
                              "trial_dir": trial_dir, "status": "failed", "error": f"ray task failed: {exc}"}
                on_done(record)
    except KeyboardInterrupt:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        raise


def pending_jobs(trials: Iterable[Any], trials_dir: Path) -> tuple[list[Job], list[dict[str, Any]]]:
    """Split trials into those still to run and the records of those already finished."""
    jobs, finished = [], []
    for t in trials:
        marker = trials_dir / t.trial_id / FINISHED
        if marker.exists():
            # the settings are those of this sweep (the same trial may have been run by a sweep
            # that swept other keys), the figures those of the finished run
            finished.append({**json.loads(marker.read_text()), "params": t.params,
                             "trial_dir": str(trials_dir / t.trial_id)})
        else:
            jobs.append(({"trial_id": t.trial_id, "seed": t.seed, "params": t.params, "run": t.run},
                         str(trials_dir / t.trial_id)))
    return jobs, finished
