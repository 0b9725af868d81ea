"""The overlay text of live views (model, style, backend, fps, latency, drops); front ends draw it."""

from __future__ import annotations

from realtime.stats import StageSnapshot
from realtime.stylizer import StylizerState


def overlay_lines(state: StylizerState, stats: dict[str, StageSnapshot], extra: str = "") -> list[str]:
    """The overlay's text, one entry per line."""
    out, sty, lat = stats["output"], stats["stylize"], stats["latency"]
    drops = stats["read"].drops + out.drops
    lines = [f"{state.model} | {state.backend}",
             state.describe(),
             f"{out.fps:5.1f} fps | stylize {sty.mean_ms:.0f} ms | latency {lat.mean_ms:.0f} ms "
             f"(p95 {lat.p95_ms:.0f}) | drops {drops}"]
    if extra:
        lines.append(extra)
    if state.last_error:
        lines.append(f"error: {state.last_error[:80]}")
    return lines
