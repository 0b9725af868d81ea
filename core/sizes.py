"""The one parser of sizes the user types: ``WIDTHxHEIGHT`` frame sizes and a short side in px (or ``auto``)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InputError


@dataclass(frozen=True)
class FrameSize:
    """A frame size in pixels."""

    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def parse_size(text: str, min_side: int = 16, max_side: int | None = 8192, what: str = "size") -> FrameSize:
    """``'640x480'`` → FrameSize(640, 480); a one-line error naming ``what`` for anything else."""
    w, sep, h = text.lower().partition("x")
    if not sep or not w.strip().isdigit() or not h.strip().isdigit():
        raise InputError(f"{what} {text!r} must be WIDTHxHEIGHT in pixels, e.g. 640x480")
    size = FrameSize(int(w), int(h))
    if max_side is None:
        if min(size.width, size.height) < min_side:
            raise InputError(f"{what} {text} is too small: each side must be at least {min_side} px")
    elif not (min_side <= size.width <= max_side and min_side <= size.height <= max_side):
        raise InputError(f"{what} {text} is out of range: each side must be {min_side}..{max_side} px")
    return size


def parse_sizes(text: str, max_side: int | None = 8192, what: str = "size") -> list[FrameSize]:
    """``'320x240,640x480'`` → two FrameSizes."""
    sizes = [parse_size(part.strip(), max_side=max_side, what=what) for part in text.split(",") if part.strip()]
    if not sizes:
        raise InputError("give at least one size, e.g. 640x480")
    return sizes


def parse_short_side(text: str, what: str = "size", auto: bool = True) -> int | str:
    """A processing size: ``auto`` (where ``auto``), or a short side in px, 0 meaning the frame's own size."""
    if auto and text == "auto":
        return text
    if not text.strip().isdigit():
        choices = "auto or a short side in px" if auto else "a short side in px"
        raise InputError(f"{what} takes {choices} (0 = frame size), got {text!r}")
    return int(text)
