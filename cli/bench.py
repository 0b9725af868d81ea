"""``main.py bench``: benchmarks. ``models``: per model/backend/size latency; ``pipeline``: the threaded pipeline."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import positive_int

ORDER = 60


def add_parser(sub: argparse._SubParsersAction) -> None:
    from models.registry import MODELS
    from realtime.backends.factory import BACKENDS, PRECISIONS

    p = sub.add_parser("bench", help="benchmark models per backend and size, or the whole pipeline")
    kind = p.add_subparsers(dest="kind", required=True, metavar="KIND")

    models = kind.add_parser("models", help="ms/frame, fps and peak memory per model, backend and frame size",
                             formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    feed_forward = sorted(name for name, c in MODELS.items() if c.feed_forward)
    models.add_argument("--models", default="microast", help=f"comma-separated, from: {', '.join(feed_forward)}")
    models.add_argument("--backend", default="torch,onnxruntime:plain,onnxruntime",
                        help=f"comma-separated, from: {', '.join(BACKENDS)}; onnxruntime:plain is today's graph "
                             "exported as written (onnxruntime alone: the tuned graph)")
    models.add_argument("--sizes", default="320x240,640x480,1280x720", help="frame sizes, WxH,...")
    models.add_argument("--precision", default="auto", choices=PRECISIONS, help="auto: fp16 on GPU, fp32 on CPU")
    models.add_argument("--device", default="auto", help="auto, cpu or cuda")
    models.add_argument("--warmup", type=positive_int, default=2, help="untimed frames first")
    models.add_argument("--iters", type=positive_int, default=10, help="timed frames per size")
    models.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results here")
    models.set_defaults(run=run_models)

    pipeline = kind.add_parser("pipeline", help="pipeline overhead, end-to-end fps and flicker with/without stability",
                               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    pipeline.add_argument("--frames", type=positive_int, default=60, help="frames per measurement")
    pipeline.add_argument("--sizes", default="360,480", help="processing short sides for end-to-end fps")
    pipeline.add_argument("--video", type=Path, default=None, help="clip for flicker (default: cutBunny.mp4 in shared)")
    pipeline.add_argument("--flicker-size", type=positive_int, default=360, help="processing short side for flicker")
    pipeline.add_argument("--stability", type=float, default=0.6, help="stability strength compared for flicker")
    pipeline.add_argument("--style", default="starry_night", help="style image or name")
    pipeline.add_argument("--backend", default="torch", choices=BACKENDS, help="backend for the MicroAST runs")
    pipeline.add_argument("--only", default="abc", help="parts: a overhead, b end-to-end, c flicker")
    pipeline.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results here")
    pipeline.set_defaults(run=run_pipeline)


def run_models(args: argparse.Namespace) -> int:
    from bench.models import BenchConfig, format_table, parse_backends, run_benchmarks, write_json
    from export.formats import parse_sizes
    from models.errors import InputError
    from models.registry import model_config

    names = tuple(n.strip() for n in args.models.split(",") if n.strip())
    for name in names:
        if not model_config(name).feed_forward:
            raise InputError(f"{name} has no per-frame network to benchmark; choose a feed-forward model")
    backends = parse_backends(args.backend)
    if args.iters < 1:
        raise InputError("--iters must be at least 1")
    if args.json is not None and not args.json.expanduser().parent.is_dir():
        raise InputError(f"folder {args.json.parent} for --json does not exist; create it first")
    config = BenchConfig(models=names, backends=backends, sizes=tuple(parse_sizes(args.sizes)),
                         precision=args.precision, device=args.device, warmup=args.warmup, iters=args.iters)
    results = run_benchmarks(config)
    print(format_table(results))
    if args.json is not None:
        write_json(results, args.json.expanduser(), config)
        print(f"wrote {args.json}")
    return 0 if any(not r.error for r in results) else 2


def run_pipeline(args: argparse.Namespace) -> int:
    from bench import pipeline

    return int(pipeline.run(args) or 0)
