"""Argument helpers shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from models.checks import unit
from models.errors import InputError


def positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def unit_float(text: str) -> float:
    try:
        return unit(text, "the value")
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("the value ", "")) from None


def add_model_args(parser: argparse.ArgumentParser, default: str = "microast") -> None:
    from models.registry import MODELS

    parser.add_argument("--model", default=default, choices=sorted(MODELS), help="style-transfer model")
    parser.add_argument("--checkpoint", default=None, help="which checkpoint of the model (default: first found)")
    parser.add_argument("--weights", nargs="+", default=[], metavar="ROLE=PATH",
                        help="explicit checkpoint files, e.g. decoder=~/decoder.pth")
    parser.add_argument("--device", default="auto",
                        help="auto (a usable CUDA GPU, else cpu; says which and why), cpu, cuda or cuda:N")


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
    for inp in inputs:
        if Path(inp).exists() and path.exists() and path.resolve() == Path(inp).resolve():
            raise InputError(f"output {path} is the input file; choose another name")
    return path
