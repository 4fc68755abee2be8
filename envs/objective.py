"""The objective the environments score, and the reward's fixed reference scale.

Two objectives (``EnvConfig.objective``), both a cost per token summed over the request:

* ``weighted``: C_t = w_T·T_t + w_E·E_t (:func:`core.cost.weighted_cost`, the one home of
  the formula), T_t the token's latency (s), E_t the device's energy (J).
* ``slo``: device energy subject to a per-token latency target — the time to first token
  (TTFT) for the prefill, the time per output token (TPOT) for each decode token.  A token
  over its target is charged a fixed ``slo_penalty_j`` on top of its energy:
  C_t = E_t + slo_penalty_j · [T_t > target_t].  The default targets, TTFT 200 ms and
  TPOT 50 ms, are the chat-service example in vLLM's GuideLLM README
  (https://github.com/vllm-project/guidellm: "setting TTFT to 200ms and ITL 25ms ...
  If we relax our constraints on ITL to 50 ms").

The episode's cost is Σ_t C_t.  The reward is that sum, negated and divided by a scale
fixed at reset (the cost of DeAOff's plan for the request under the
conditions known at reset, see ``EnvConfig``), so a decision that makes later tokens expensive is
charged for them, and the return orders policies exactly as their true episode costs.
"""
from __future__ import annotations

from core.cost import weighted_cost

OBJECTIVES = ("weighted", "slo")


def token_cost(objective: str, makespan_s: float, energy_j: float, *, prefill: bool, w_time_per_s: float,
               w_energy_per_j: float, ttft_target_s: float, tpot_target_s: float, slo_penalty_j: float) -> float:
    """The cost of one token under ``objective`` (module docstring)."""
    if objective == "weighted":
        return weighted_cost(makespan_s, energy_j, w_time_per_s=w_time_per_s, w_energy_per_j=w_energy_per_j)
    if objective == "slo":
        return energy_j + (slo_penalty_j if slo_violated(makespan_s, prefill=prefill, ttft_target_s=ttft_target_s,
                                                         tpot_target_s=tpot_target_s) else 0.0)
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


def slo_violated(makespan_s: float, *, prefill: bool, ttft_target_s: float, tpot_target_s: float) -> bool:
    """Whether a token misses its latency target (TTFT for the prefill, TPOT for decode)."""
    return makespan_s > (ttft_target_s if prefill else tpot_target_s)
