"""Command-line subcommands: one module each, with ``add_parser(subparsers)`` and ``ORDER``.

``main.py`` discovers them; each module's ``run(args) -> int`` calls library functions only.
"""
