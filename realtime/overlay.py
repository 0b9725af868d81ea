"""The overlay text of live views (model, style, backend, fps, latency, drops); front ends draw it."""

from __future__ import annotations

from realtime.stats import StageSnapshot
from realtime.stylizer import StylizerState


def overlay_lines(state: StylizerState, stats: dict[str, StageSnapshot], extra: str = "") -> list[str]:
    """The overlay's text, one entry per line: shown and keyframe rates side by side."""
    out, lat = stats["output"], stats["latency"]
    drops = stats["read"].drops + out.drops
    keys = stats.get("keyframe")
    rates = f"shown {out.fps:4.1f} fps"
    if keys is not None:
        rates += f" | keyframes {keys.fps:4.1f} fps ({keys.mean_ms:.0f} ms)"
    lines = [
        f"{state.model} | {state.backend}",
        state.describe(),
        f"{rates} | latency {lat.mean_ms:.0f} ms (p95 {lat.p95_ms:.0f}) | drops {drops}",
    ]
    if state.size_note:
        lines.append(state.size_note)  # the live size governor: the size in use and why
    if extra:
        lines.append(extra)
    if state.last_error:
        lines.append(f"error: {state.last_error[:80]}")
    return lines
