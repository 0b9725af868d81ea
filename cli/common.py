"""Argument helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from core.checks import finite, unit
from core.errors import InputError
from core.sizes import parse_short_side


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default once: not when the help already says it, and not for None/False (no default)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def finite_float(text: str) -> float:
    """A float option: NaN and ±inf are refused (a NaN weight turns the image black)."""
    try:
        return finite(text, "the value")
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("the value ", "")) from None


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0.0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0.0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def unit_float(text: str) -> float:
    try:
        return unit(text, "the value")
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("the value ", "")) from None


def bundled_styles_text() -> str:
    """The names --style takes without any file or download, for help texts."""
    from models.bundle import bundled_style_names

    names = bundled_style_names()
    return f"bundled: {', '.join(names)}" if names else "no bundled styles in this install"


def add_model_args(parser: argparse.ArgumentParser, default: str = "microast") -> None:
    from models.registry import MODELS

    parser.add_argument("--model", default=default, choices=sorted(MODELS), help="style-transfer model")
    parser.add_argument("--checkpoint", default=None, help="which checkpoint of the model (default: first found)")
    parser.add_argument(
        "--weights",
        nargs="+",
        default=[],
        metavar="ROLE=PATH",
        help="explicit checkpoint files, e.g. decoder=~/decoder.pth",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (a usable CUDA GPU, else cpu; says which and why), cpu, cuda or cuda:N"
    )


def weight_files(pairs: list[str]) -> dict[str, Path]:
    files = {}
    for pair in pairs:
        role, sep, path = pair.partition("=")
        if not sep or not role or not path:
            raise InputError(f"--weights takes ROLE=PATH pairs, got {pair!r}")
        files[role] = Path(path).expanduser()
    return files


def check_output(path: Path, inputs: tuple[Path, ...] = ()) -> Path:
    """Fail before any work when the output cannot be written or would overwrite an input."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(f"output {path} is a folder; give a file name")
    if not path.parent.exists():
        raise InputError(f"output folder {path.parent} does not exist; create it first")
    try:  # an unnamed probe file: an unwritable folder fails now, not after minutes of work
        tempfile.TemporaryFile(dir=path.parent).close()
    except OSError as exc:
        raise InputError(
            f"cannot write to folder {path.parent}: {exc.strerror}; choose another output folder"
        ) from None
    for inp in inputs:
        if Path(inp).exists() and path.exists() and path.resolve() == Path(inp).resolve():
            raise InputError(f"output {path} is the input file; choose another name")
    return path


def check_input_file(path: Path, what: str) -> Path:
    """An input that must be a file: a folder or a missing path is named as such."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; give a file")
    if not path.exists():
        raise InputError(f"{what} {path} does not exist; check the path")
    return path


def check_video_output(path: Path, inputs: tuple[Path, ...] = ()) -> Path:
    """``check_output`` plus a container this app can write, checked before any work."""
    from realtime.video_writer import check_video_suffix

    path = check_output(path, inputs)
    check_video_suffix(path)
    return path


def note_replacing(path: Path) -> None:
    """Say, before the work, that an existing output is replaced only when the job completes."""
    import sys

    part = path.with_name(path.name + ".part")
    if path.exists():
        print(
            f"note: {path} exists; it is replaced when this job completes (if it is interrupted or fails, "
            f"{path.name} stays as it is)",
            file=sys.stderr,
        )
    from core.atomic import is_being_written

    if part.exists() and not is_being_written(part):  # a live job's .part: the writer refuses in one line
        print(f"note: {part} (left by an earlier interrupted run) will be overwritten", file=sys.stderr)


class _LineWriter:
    """A file for tqdm when stderr is not a terminal: each refresh becomes one plain line, no carriage returns."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line and line != self.last:  # a closing refresh repeats the last state
            self.stream.write(line + "\n")
            self.last = line

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(total: int | None, desc: str, unit: str):
    """A tqdm bar: live on a terminal; in a log or pipe, one line every 5 s (not hundreds of \\r updates)."""
    import sys

    from tqdm import tqdm

    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
    return tqdm(total=total, desc=desc, unit=unit, file=_LineWriter(sys.stderr), mininterval=5.0, ncols=100, ascii=True)


def logging_through(bar):
    """A context in which log lines are written through ``bar`` (tqdm.write), so they do not break it."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm(tqdm_class=type(bar))


def size_or_auto(text: str) -> int | str:
    """``--size``: auto, or a short side in px (0 = frame size)."""
    try:
        return parse_short_side(text, "the value")
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("the value ", "")) from None
