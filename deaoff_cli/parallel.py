"""An ordered parallel map for evaluate.py's independent cases, on the backends of sweep.py:
``local`` (a process pool, no Ray) or ``ray`` (one task per case, a local instance or a
cluster given its address).

    results = parallel_map(fn, items, workers=2, backend="local")

``fn`` must be a module-level function (it is pickled to the workers) and every case
seeded from its own item, so the results do not depend on the backend or the number of
workers; with ``workers == 1`` and the local backend it is a plain loop in this process.
Results come back in the order of ``items``; ``on_result(index, result)`` is called as
each arrives (for progress lines).
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Sequence

BACKENDS = ("local", "ray")


def check(workers: int, backend: str, address: str | None) -> None:
    """ValueError naming a bad option."""
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"--workers must be an integer >= 1, got {workers!r}")
    if backend not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if address and backend != "ray":
        raise ValueError("--address is for --backend ray")
    if backend == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ValueError("--backend ray needs Ray: pip install 'deaoff-gym[ray]'")


def _init_worker() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def parallel_map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int = 1, backend: str = "local",
                 address: str | None = None, on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    check(workers, backend, address)
    results: list[Any] = [None] * len(items)

    def done(i: int, value: Any) -> None:
        results[i] = value
        if on_result is not None:
            on_result(i, value)

    if backend == "local" and workers == 1:
        for i, item in enumerate(items):
            done(i, fn(item))
        return results
    if backend == "local":
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            for fut in as_completed(futures):
                done(futures[fut], fut.result())
        return results
    from deaoff_cli.sweep_backends import start_ray

    ray, _ = start_ray(address, workers)
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        pending = {remote.remote(item): i for i, item in enumerate(items)}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                done(pending.pop(ref), ray.get(ref))
    finally:
        ray.shutdown()
    return results
