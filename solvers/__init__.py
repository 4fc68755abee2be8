"""DeAOff (exact two-phase MILP / chain DP, relaxed mode), the classic heuristics and the
brute-force oracle.  Built on :mod:`core` only (no gymnasium, no torch)."""
