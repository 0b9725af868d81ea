"""Temporal stages: what happens between inference and upscaling so video neither flickers nor swims.

``off`` stylises every frame on its own; ``hold`` keeps the previous output where the input stood
still (``hold.py``). ``create_stage`` is the one way to build one by name.
"""

from __future__ import annotations

from models.errors import InputError
from realtime.temporal.base import OffStage, TemporalStage

TEMPORAL_MODES = ("off", "hold")


def check_mode(mode: str) -> str:
    if mode not in TEMPORAL_MODES:
        raise InputError(f"unknown temporal mode {mode!r}; choose one of: {', '.join(TEMPORAL_MODES)}")
    return mode


def create_stage(mode: str, strength: float = 0.6) -> TemporalStage:
    """The temporal stage called ``mode`` with ``strength`` (0..1)."""
    from realtime.temporal.hold import HoldStage

    check_mode(mode)
    if mode == "hold":
        return HoldStage(strength)
    return OffStage()
