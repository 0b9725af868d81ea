"""One helper per check of a user-supplied number, shared by the CLI, the stylizer and still images."""

from __future__ import annotations

import math

from models.errors import InputError


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
