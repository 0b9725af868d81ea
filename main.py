"""stylizer: real-time neural style transfer for webcam, video files and still images.

Thin front end: argparse subcommands (one module each under ``cli/``) over library calls.
This is the only place that configures logging or turns errors into exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

import cli
from models.errors import StylizerError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python main.py", description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = [importlib.import_module(f"cli.{m.name}") for m in pkgutil.iter_modules(cli.__path__)]
    for module in sorted((m for m in modules if hasattr(m, "add_parser")), key=lambda m: m.ORDER):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:  # OpenCV's own logger would add lines to our one-line errors (e.g. a missing camera)
        os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except StylizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
