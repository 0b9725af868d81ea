"""Temporal stages: what happens between inference and upscaling so video neither flickers nor swims.

``off`` stylises every frame on its own; ``hold`` keeps the previous output where the input stood
still (``hold.py``); ``flow`` (the default) holds still pixels exactly and carries stylised textures
along the input's optical flow where they move (``still.py``), and live shows every frame by
propagating keyframes (``flow.py``, live: ``live.py``). ``create_stage`` builds one by name.
"""

from __future__ import annotations

from core.errors import InputError
from realtime.temporal.base import OffStage, TemporalStage

TEMPORAL_MODES = ("off", "hold", "flow")
DEFAULT_STRENGTH = {"off": 0.0, "hold": 0.6, "flow": 0.85}  # --stability when it is not given


def check_mode(mode: str) -> str:
    if mode not in TEMPORAL_MODES:
        raise InputError(f"unknown temporal mode {mode!r}; choose one of: {', '.join(TEMPORAL_MODES)}")
    return mode


def create_stage(mode: str, strength: float = 0.6, live: bool = False) -> TemporalStage:
    """The temporal stage called ``mode`` with ``strength`` (0..1), for a live session or a file."""
    check_mode(mode)
    if mode == "hold":
        from realtime.temporal.hold import HoldStage

        return HoldStage(strength)
    if mode == "flow":
        from realtime.temporal.flow import FlowStage
        from realtime.temporal.live import LiveFlowStage

        return LiveFlowStage(strength) if live else FlowStage(strength)
    return OffStage()
