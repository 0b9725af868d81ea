"""One helper per check of a user-supplied number, shared by the CLI, the stylizer and still images."""

from __future__ import annotations

import math

from core.errors import InputError


def finite(value: float, what: str) -> float:
    """``value`` as a float; NaN and ±inf are refused (they turn images black or loops endless)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{what} must be a finite number, got {value}")
    return number


def unit(value: float, what: str) -> float:
    """A finite number in [0, 1] (alpha, blend mix, stability strength)."""
    number = finite(value, what)
    if not 0.0 <= number <= 1.0:
        raise InputError(f"{what} must be between 0 and 1, got {value}")
    return number


# A working image above this is refused instead of running out of memory: MicroAST's forward pass
# needs about 450 MB per megapixel (measured: 0.77 GB at 1280x720, 1.9 GB at 2560x1440, torch CPU),
# so 16.8 MP (4096x4096) is about 7.5 GB; the VGG models need several times more.
MAX_WORK_PIXELS = 4096 * 4096


def check_work_size(size: tuple[int, int], target: int, side: str, option: str, min_side: int = 16) -> tuple[int, int]:
    """The (w, h) an image of ``size`` is processed at when ``side`` ('long'/'short') is ``target`` px (0 = as is).

    An InputError names the size, the limit and the largest ``option`` value that fits.
    """
    w, h = size
    ref = max(w, h) if side == "long" else min(w, h)
    scale = target / ref if target else 1.0
    work = (max(1, round(w * scale)), max(1, round(h * scale)))
    pixels = work[0] * work[1]
    if pixels > MAX_WORK_PIXELS:
        fits = int((MAX_WORK_PIXELS / (w * h)) ** 0.5 * ref)
        given = f"{option} {target}" if target else f"{option} 0 (the input's own size)"
        raise InputError(
            f"{given} makes a {work[0]}x{work[1]} working image ({pixels / 1e6:.1f} MP), above the "
            f"{MAX_WORK_PIXELS / 1e6:.1f} MP this app processes (memory); use {option} {fits} or less"
        )
    if min(work) < min_side:
        raise InputError(
            f"{option} {target} makes a {work[0]}x{work[1]} px working image; the models need at least "
            f"{min_side} px per side: use a larger {option}, or {option} 0 for the size as it is"
        )
    return work
