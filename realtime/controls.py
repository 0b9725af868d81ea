"""The hotkey map shared by the OpenCV window and the desktop app: key → action → stylizer command.

The help text of both front ends is built from ``KEY_MAP`` here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from realtime.stylizer import FrameStylizer

ALPHA_STEP = 0.1


class Action(Enum):
    """What a key does; stylizer actions are applied by ``apply_to_stylizer``, the rest by the front end."""

    SELECT_STYLE = "select style"
    NEXT_STYLE = "next style"
    PREV_STYLE = "previous style"
    ALPHA_UP = "more style (alpha +)"
    ALPHA_DOWN = "less style (alpha -)"
    TOGGLE_COLOR = "toggle colour preservation"
    TOGGLE_BYPASS = "toggle bypass (show the input)"
    SNAPSHOT = "save a PNG snapshot"
    RECORD = "start/stop recording"
    OVERLAY = "toggle the overlay"
    FULLSCREEN = "toggle fullscreen"
    HELP = "print this key map"
    QUIT = "quit"


@dataclass(frozen=True)
class KeyBinding:
    """One key: the character it is typed with, its action and an argument (the style index)."""

    key: str
    action: Action
    arg: int | None = None
    label: str = ""  # how help shows the key, when not the character itself


KEY_MAP: tuple[KeyBinding, ...] = (
    *(KeyBinding(str(i + 1), Action.SELECT_STYLE, i) for i in range(9)),
    KeyBinding("n", Action.NEXT_STYLE),
    KeyBinding("p", Action.PREV_STYLE),
    KeyBinding("+", Action.ALPHA_UP),
    KeyBinding("=", Action.ALPHA_UP, label="="),  # '+' without shift on most layouts
    KeyBinding("-", Action.ALPHA_DOWN),
    KeyBinding("c", Action.TOGGLE_COLOR),
    KeyBinding(" ", Action.TOGGLE_BYPASS, label="space"),
    KeyBinding("s", Action.SNAPSHOT),
    KeyBinding("r", Action.RECORD),
    KeyBinding("o", Action.OVERLAY),
    KeyBinding("f", Action.FULLSCREEN),
    KeyBinding("h", Action.HELP),
    KeyBinding("q", Action.QUIT),
    KeyBinding("\x1b", Action.QUIT, label="Esc"),
)

_BY_KEY = {b.key: b for b in KEY_MAP}


def binding_for(key: str) -> KeyBinding | None:
    """The binding of a typed character (case-insensitive), or None."""
    return _BY_KEY.get(key) or _BY_KEY.get(key.lower())


def binding_for_code(code: int) -> KeyBinding | None:
    """The binding of an OpenCV ``waitKey`` code (-1 = no key)."""
    if code < 0:
        return None
    code &= 0xFFFF  # GTK puts modifier state above bit 16
    if code > 0xFF:  # X11 keysyms of arrows and F-keys (Left = 0xff51) would alias letters ('Q' = quit)
        return None
    return binding_for(chr(code))


def help_rows(extra: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, str]]:
    """(key, what it does) for every binding (style keys folded into one row), then a front end's ``extra``."""
    rows = [("1-9", "select style 1-9")]
    rows += [
        (b.label or b.key, b.action.value) for b in KEY_MAP if b.action is not Action.SELECT_STYLE and b.key != "="
    ]
    return rows + list(extra)


def help_text(extra: tuple[tuple[str, str], ...] = ()) -> str:
    """The key map as printable lines."""
    return "\n".join(f"{key:>6}  {what}" for key, what in help_rows(extra))


def apply_to_stylizer(binding: KeyBinding, stylizer: FrameStylizer) -> bool:
    """Send a stylizer action as a command; False when the action belongs to the front end."""
    if binding.action is Action.SELECT_STYLE:
        if binding.arg is not None and binding.arg < len(stylizer.state.styles):
            stylizer.select_style(binding.arg)
    elif binding.action is Action.NEXT_STYLE:
        stylizer.next_style()
    elif binding.action is Action.PREV_STYLE:
        stylizer.prev_style()
    elif binding.action is Action.ALPHA_UP:
        stylizer.change_alpha(ALPHA_STEP)
    elif binding.action is Action.ALPHA_DOWN:
        stylizer.change_alpha(-ALPHA_STEP)
    elif binding.action is Action.TOGGLE_COLOR:
        stylizer.toggle_preserve_color()
    elif binding.action is Action.TOGGLE_BYPASS:
        stylizer.toggle_bypass()
    else:
        return False
    return True
