"""How a shared edge server serves this user: the time-sliced and the batched load model.

``ServerConfig.load_model`` selects one per server.

Time-sliced (default, the original model)
-----------------------------------------
Background work takes a fraction ρ of the server; this user gets the rest of both
resources, and a node's time is the roofline on what is left (arXiv 2402.16363):

    t_i = max(F_i / ((1 − ρ)·peak_flops),  M_i / ((1 − ρ)·bw))

Batched (continuous batching)
-----------------------------
The server runs continuous batching for B background users of the *same* model (as
vLLM / TGI-style servers do); an offloaded layer joins the batch step.  One step of a
layer reads its weights once for the whole batch, and every user's KV cache and
activations; it does every user's FLOPs:

    t_i = max(F_i·(B + 1) / peak_flops,  (W_i + U_i·(B + 1)) / bw)

with F_i the node's FLOPs, W_i the weight bytes it reads (shared by the batch) and U_i
= M_i − W_i its per-user bytes (KV cache read + activations), M_i the node's
``mem_bytes``.  Assumption: the scenario's B *background* users' contexts equal ours
(same U_i, same F_i: the single-user world knows nothing else of them); W_i is taken as
min(weight_bytes, mem_bytes) (an embedding lookup reads one row per user, not its whole
table — counted as shared, an underestimate of B rows).
With B = 0 the batched time is the dedicated roofline, the time-sliced one at ρ = 0.
No (1 − ρ) factor applies in batched mode; a batched server's ``load`` must be 0.

Explicit batch members (the other users of :mod:`core.multi`) are charged their OWN work:
a member v running layer i in the same batch step adds its FLOPs F_i^v and its per-user
bytes U_i^v = M_i^v − min(W_i, M_i^v) (:func:`member_bytes`), so

    t_i = max((F_i·(B + 1) + Σ_v F_i^v) / peak_flops,  (W_i + U_i·(B + 1) + Σ_v U_i^v) / bw)

(a decode batched with a prefill waits for the prefill's FLOPs; a prefill batched with
decodes adds only their small FLOPs and their KV reads).  With members equal to this user
it is the formula above with B + (their number).

Per-user memory
---------------
Weights of the same model are shared by all its users, caches are not:

    memory for this user = capacity − resident weights − B · KV_bg

:func:`per_user_memory_bytes` computes it.  In the engine (``make_snapshot``), a
batched server's capacity for this user is ``mem_capacity_bytes − B ·
background_kv_bytes_per_user`` and this user's placed weights count against it
(``Instance.mem_need`` = weights + KV): that equals the formula above exactly when this
user's layers at the server include every resident weight (the model's weights are
resident because the background users run it); it is optimistic by the resident
weights of layers this user places elsewhere.
"""
from __future__ import annotations

import math

LOAD_MODELS = ("time-sliced", "batched")


def _check(**values: float) -> None:
    for key, v in values.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{key} must be finite and >= 0, got {v!r}")


def time_sliced_time_s(flops: float, mem_bytes: float, load: float, peak_flops: float,
                       mem_bw_bytes_per_s: float) -> float:
    """t = max(F / ((1−ρ)·peak), M / ((1−ρ)·bw))."""
    _check(flops=flops, mem_bytes=mem_bytes)
    if not (0.0 <= load < 1.0):
        raise ValueError(f"load must lie in [0, 1), got {load!r}")
    if not (peak_flops > 0 and mem_bw_bytes_per_s > 0):
        raise ValueError("peak_flops and mem_bw_bytes_per_s must be > 0")
    return max(flops / ((1.0 - load) * peak_flops), mem_bytes / ((1.0 - load) * mem_bw_bytes_per_s))


def roofline_time_s(flops: float, mem_bytes: float, flops_per_s: float, mem_bw_bytes_per_s: float) -> float:
    """Compute time of one node on one processor: max(FLOPs / FLOP rate, bytes / bandwidth)
    ("LLM Inference Unveiled", arXiv 2402.16363), with the rates the processor achieves
    (peak × achieved fraction × share left by background load).  The one home of the rule:
    the device, the servers (time-sliced and batched) and the priority order all call it."""
    return max(flops / flops_per_s, mem_bytes / mem_bw_bytes_per_s)


def member_bytes(weight_bytes: float, mem_bytes: float) -> float:
    """Bytes a batch member adds to a layer's batch step beside the shared weights: its
    per-user bytes U = M − min(W, M) (KV cache read + activations; an embedding lookup,
    whose M is below its table's W, adds none: counted as shared, see the module docstring)."""
    _check(weight_bytes=weight_bytes, mem_bytes=mem_bytes)
    return mem_bytes - min(weight_bytes, mem_bytes)


def batched_step_time_s(flops: float, weight_bytes: float, mem_bytes: float, background_users: int,
                        peak_flops: float, mem_bw_bytes_per_s: float, *, others_flops: float = 0.0,
                        others_bytes: float = 0.0) -> float:
    """t = max((F·(B+1) + F_o)/peak, (W + U·(B+1) + U_o)/bw), W = min(weight_bytes, mem_bytes),
    U = M − W; B background users doing this user's work, and explicit batch members
    (:mod:`core.multi`) adding their OWN work: F_o = Σ their FLOPs of this layer, U_o =
    Σ their :func:`member_bytes` of it."""
    _check(flops=flops, weight_bytes=weight_bytes, mem_bytes=mem_bytes, others_flops=others_flops,
           others_bytes=others_bytes)
    if isinstance(background_users, bool) or not float(background_users).is_integer() or background_users < 0:
        raise ValueError(f"background_users must be an integer >= 0, got {background_users!r}")
    if not (peak_flops > 0 and mem_bw_bytes_per_s > 0):
        raise ValueError("peak_flops and mem_bw_bytes_per_s must be > 0")
    batch = int(background_users) + 1
    shared = min(weight_bytes, mem_bytes)
    per_user = mem_bytes - shared
    return roofline_time_s(flops * batch + others_flops, shared + per_user * batch + others_bytes, peak_flops,
                           mem_bw_bytes_per_s)


def per_user_memory_bytes(capacity_bytes: float, resident_weight_bytes: float, background_users: int,
                          background_kv_bytes_per_user: float) -> float:
    """Memory left for this user's KV caches: capacity − resident weights − B·KV_bg.

    Raises ValueError if the background alone does not fit (the scenario is impossible)."""
    _check(capacity_bytes=capacity_bytes, resident_weight_bytes=resident_weight_bytes,
           background_users=background_users, background_kv_bytes_per_user=background_kv_bytes_per_user)
    left = capacity_bytes - resident_weight_bytes - background_users * background_kv_bytes_per_user
    if left < 0:
        raise ValueError(f"{background_users} background users' KV ({background_kv_bytes_per_user / 1e9:.3f} GB "
                         f"each) and {resident_weight_bytes / 1e9:.3f} GB of weights exceed the server's "
                         f"{capacity_bytes / 1e9:.3f} GB")
    return left


def kv_bytes_per_user(kv_bytes_per_token: float, context_tokens: float) -> float:
    """KV cache of one user: bytes per token (all layers) × context length."""
    _check(kv_bytes_per_token=kv_bytes_per_token, context_tokens=context_tokens)
    return kv_bytes_per_token * context_tokens
