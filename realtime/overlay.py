"""Text overlay for live views: model, style, backend, fps, latency and drops."""

from __future__ import annotations

import cv2
import numpy as np

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


def draw_overlay(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """Draw ``lines`` top-left on a translucent box; returns a new frame, the input is untouched."""
    out = image.copy()
    scale = max(0.4, min(0.7, image.shape[1] / 1400))
    thick = 1
    sizes = [cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0] for line in lines]
    step = int(max((h for _, h in sizes), default=12) * 1.8)
    width = max((w for w, _ in sizes), default=0) + 16
    height = step * len(lines) + 8
    box = out[:height, :width]
    box[:] = (box.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken behind the text for contrast
    for i, line in enumerate(lines):
        cv2.putText(out, line, (8, step * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick,
                    cv2.LINE_AA)
    return out
