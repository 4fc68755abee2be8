"""Text and picture views of a schedule: a placement table and a Gantt chart."""
from __future__ import annotations

from typing import Any

import numpy as np

from core.cost import Result
from core.instance import Instance


def _token_label(token: int, num_tokens: int, context: int | None) -> str:
    return f"token {token + 1}/{num_tokens} ({'prefill' if context is None else f'context {context}'})"


def _rows(inst: Instance, loc: list[int] | None, placed: int) -> list[str]:
    names = inst.location_names
    lines = [f"{'node':<14}{'kind':<8}{'location':<10}{'GFLOP':>9}{'KV MB':>9}"]
    for i in range(inst.num_nodes):
        where = names[loc[i]] if loc is not None and i < placed else "-"
        lines.append(f"{inst.names[i]:<14}{inst.kinds[i]:<8}{where:<10}{inst.flops[i] / 1e9:>9.3f}"
                     f"{inst.kv_bytes[i] / 1e6:>9.3f}")
    return lines


def placement_table(env: Any) -> str:
    """The ansi render: the placement of the token in progress, or of the token just done.

    * ``DecoderOffload-v0`` in the middle of a token: the nodes placed so far (the rest
      ``-``).
    * Once a token is done (every step of ``DecoderSplit-v0``, the last step of a token
      of ``DecoderOffload-v0``, and the terminal step): that token's full placement and
      its latency and energy beside the reference's, then which token comes next.
    * After ``reset()``: the first token, nothing placed yet.
    """
    node = getattr(env, "node", 0)  # DecoderOffload-v0: nodes placed in the current token
    in_progress = getattr(env, "loc", None) is not None and node > 0 and env.token < env.num_tokens
    done = getattr(env, "last_token_info", None)
    if in_progress or done is None:
        lines = [f"{_token_label(env.token, env.num_tokens, env.context)}: {node}/{env.inst.num_nodes} nodes "
                 f"placed; reference {env.ref.makespan_s * 1e3:.2f} ms, {env.ref.energy_j * 1e3:.2f} mJ"]
        lines += _rows(env.inst, getattr(env, "loc", None), node)
        return "\n".join(lines) + "\n"
    lines = [f"{_token_label(done['token'], env.num_tokens, done['context'])} done: "
             f"{done['latency_s'] * 1e3:.2f} ms, {done['energy_j'] * 1e3:.2f} mJ "
             f"(reference {done['ref_latency_s'] * 1e3:.2f} ms, {done['ref_energy_j'] * 1e3:.2f} mJ)"]
    placement = env.last_placement.loc
    lines += _rows(env._last_inst, list(placement), len(placement))
    if env.token < env.num_tokens:
        lines.append(f"next: {_token_label(env.token, env.num_tokens, env.context)}")
    else:
        lines.append("episode done")
    return "\n".join(lines) + "\n"


def plot_gantt(ax, inst: Instance, res: Result, title: str = "") -> None:
    """Draw compute on each location and every transfer (needs ``record=True``)."""
    rows = inst.location_names + ["uplink", "downlink", "backhaul"]
    colors = {"compute": "tab:blue", "activation": "tab:orange", "migration": "tab:red",
              "input": "tab:green", "output": "tab:purple"}
    for i, (s, f) in enumerate(zip(res.start_s, res.finish_s)):
        ax.barh(rows.index(inst.location_names[res.loc[i]]), (f - s) * 1e3, left=s * 1e3,
                color=colors["compute"], edgecolor="black", linewidth=0.3)
    for t in res.transfers:
        ax.barh(rows.index(t.link), (t.finish_s - t.start_s) * 1e3, left=t.start_s * 1e3,
                color=colors[t.kind], edgecolor="black", linewidth=0.3, alpha=0.8)
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.set_xlabel("time (ms)")
    ax.set_title(title or f"makespan {res.makespan_s * 1e3:.2f} ms, device energy {res.energy_j * 1e3:.2f} mJ")
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color=c, label=k) for k, c in colors.items()], loc="lower right", fontsize=7)


def gantt_rgb(env: Any) -> np.ndarray:
    """RGB array of the last completed token's schedule (rgb_array render mode)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=80)
    if env.last_result is not None and env.last_result.start_s:
        plot_gantt(ax, env._last_inst, env.last_result)
    else:
        ax.set_title("no token completed yet")
    fig.tight_layout()
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return img
