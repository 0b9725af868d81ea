"""stylizer: real-time neural style transfer for webcam, video files and still images.

Thin front end: argparse subcommands (one module each under ``cli/``) over library calls.
This is the only place that configures logging, turns errors into exit codes and decides what a
signal means: Ctrl-C (SIGINT) and SIGTERM (``kill``, ``timeout``, ``docker stop``, systemd) are
both an interruption, exit code 130, with every output finished by the rule of
``core.atomic.PartFile``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import pkgutil
import signal
import sys

EXIT_INTERRUPTED = 130


def _harden(parser: argparse.ArgumentParser) -> None:
    """Every float option refuses NaN/inf, and help shows each default once (all subcommands)."""
    from cli.common import HelpFormatter, finite_float

    for action in parser._actions:
        if action.type is float:  # a NaN weight writes a black image; an infinite limit never ends
            action.type = finite_float
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if sub.formatter_class is argparse.ArgumentDefaultsHelpFormatter:
                    sub.formatter_class = HelpFormatter
                _harden(sub)


def build_parser() -> argparse.ArgumentParser:
    import cli
    from cli.common import HelpFormatter

    # installed (pip install .), the console script is `stylizer`; in a checkout, `python main.py`
    prog = "stylizer" if os.path.basename(sys.argv[0]) == "stylizer" else "python main.py"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = [importlib.import_module(f"cli.{m.name}") for m in pkgutil.iter_modules(cli.__path__)]
    for module in sorted((m for m in modules if hasattr(m, "add_parser")), key=lambda m: m.ORDER):
        module.add_parser(sub)
    _harden(parser)
    return parser


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM raises KeyboardInterrupt in the main thread, once, so it ends a job like Ctrl-C."""

    def on_sigterm(signum, frame) -> None:
        # Later SIGTERMs must not break the clean-up the first one started (finishing the file).
        signal.signal(signal.SIGTERM, lambda *_: print("still finishing the output…", file=sys.stderr))
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread (embedded use): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    verbose = bool({"-v", "--verbose"} & set(sys.argv[1:] if argv is None else argv))
    if not verbose:
        # Before anything imports cv2 (the subcommands do): OpenCV reads it once, at import, and its own
        # logger would add lines to our one-line errors (11 warnings before `webcam --camera 7` fails).
        os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    with sigterm_as_interrupt():
        try:
            return _run(argv)
        except KeyboardInterrupt:  # during start-up (imports, parsing) or anything not handled below
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:  # `stylizer models list | head`: the reader left; no traceback, as `ls | head`
            # Python's own recipe: point stdout at devnull so the flush at exit does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141  # 128 + SIGPIPE, what a shell reports for a program a pipe stopped


def _run(argv: list[str] | None) -> int:
    from core.errors import StylizerError

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.run(args) or 0)
    except StylizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C before main() was entered (the imports above)
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
