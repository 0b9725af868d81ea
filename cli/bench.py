"""``main.py bench``: benchmarks. ``models``: per model/backend/size latency; ``pipeline``: the threaded pipeline;
``temporal``: warping error, style loss and time per temporal mode; ``live``: a clip played as a camera; ``train``:
seconds per training step per precision."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import positive_int

ORDER = 60


def add_parser(sub: argparse._SubParsersAction) -> None:
    from models.registry import feed_forward_models
    from realtime.backends.factory import BACKENDS, PRECISIONS

    p = sub.add_parser("bench", help="benchmark models per backend and size, or the whole pipeline")
    kind = p.add_subparsers(dest="kind", required=True, metavar="KIND")

    models = kind.add_parser(
        "models",
        help="ms/frame, fps and peak memory per model, backend and frame size",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    feed_forward = sorted(feed_forward_models())
    models.add_argument("--models", default="microast", help=f"comma-separated, from: {', '.join(feed_forward)}")
    models.add_argument(
        "--backend",
        default="torch,onnxruntime:plain,onnxruntime:tuned,onnxruntime",
        help=f"comma-separated, from: {', '.join(BACKENDS)}; onnxruntime:GRAPH runs a graph as "
        "exported (plain: the network as written; tuned: the CPU formulation); onnxruntime "
        "alone is what the app runs: the tuned graph rewritten for ORT's blocked layout",
    )
    models.add_argument("--sizes", default="320x240,640x480,1280x720", help="frame sizes, WxH,...")
    models.add_argument("--precision", default="auto", choices=PRECISIONS, help="auto: fp16 on GPU, fp32 on CPU")
    models.add_argument("--device", default="auto", help="auto, cpu or cuda")
    models.add_argument("--warmup", type=positive_int, default=2, help="untimed frames first")
    models.add_argument("--iters", type=positive_int, default=10, help="timed frames per size")
    models.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results here")
    models.set_defaults(run=run_models)

    pipeline = kind.add_parser(
        "pipeline",
        help="pipeline overhead, end-to-end fps and flicker with/without stability",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
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
    add_temporal_parsers(kind, BACKENDS)
    add_cluster_parser(kind)
    add_train_parser(kind)


def run_models(args: argparse.Namespace) -> int:
    from bench.models import BenchConfig, format_table, parse_backends, run_benchmarks, write_json
    from core.sizes import parse_sizes
    from core.errors import InputError
    from models.registry import require_feed_forward

    names = tuple(n.strip() for n in args.models.split(",") if n.strip())
    for name in names:
        require_feed_forward(name, "bench models times a per-frame network")
    backends = parse_backends(args.backend)
    if args.iters < 1:
        raise InputError("--iters must be at least 1")
    if args.json is not None and not args.json.expanduser().parent.is_dir():
        raise InputError(f"folder {args.json.parent} for --json does not exist; create it first")
    config = BenchConfig(
        models=names,
        backends=backends,
        sizes=tuple(parse_sizes(args.sizes)),
        precision=args.precision,
        device=args.device,
        warmup=args.warmup,
        iters=args.iters,
    )
    results = run_benchmarks(config)
    print(format_table(results))
    if args.json is not None:
        write_json(results, args.json.expanduser(), config)
        print(f"wrote {args.json}")
    return 0 if any(not r.error for r in results) else 2


def run_pipeline(args: argparse.Namespace) -> int:
    from bench import pipeline

    return int(pipeline.run(args) or 0)


# -- temporal and live (issue 10): the optical-flow stage's measurements ------------------------
def add_temporal_parsers(kind: argparse._SubParsersAction, backends: tuple[str, ...]) -> None:
    """``bench temporal`` (warping error, VGG losses and time per mode) and ``bench live`` (a clip as a camera)."""
    from cli.common import finite_float, unit_float

    temporal = kind.add_parser(
        "temporal",
        help="warping error, VGG content/style loss and time of off/hold/flow",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    temporal.add_argument(
        "--video",
        type=Path,
        nargs="+",
        default=None,
        metavar="PATH",
        help="clips to measure (default: a generated 1.7 px/frame pan, generated walkers, and "
        "shared/video/cutBunny.mp4 where found)",
    )
    temporal.add_argument(
        "--clips",
        default="pan,walkers,bunny,ntu,handheld,street",
        help="default clips to measure when no --video is given: pan, walkers (generated), bunny "
        "(cutBunny.mp4), ntu (ntu.mp4, drone), handheld, street (composed from real photos)",
    )
    temporal.add_argument("--frames", type=positive_int, default=90, help="frames per clip (and of generated clips)")
    temporal.add_argument("--size", type=positive_int, default=360, help="processing short side")
    temporal.add_argument("--modes", default="off,hold,flow", help="temporal modes compared (off is always run)")
    temporal.add_argument("--stability", type=unit_float, default=None, help="strength 0..1 (default: the app's)")
    temporal.add_argument("--style", default="starry_night", help="style image or name")
    temporal.add_argument("--backend", default="onnxruntime", choices=backends, help="backend for MicroAST")
    temporal.add_argument("--loss-every", type=positive_int, default=10, help="VGG losses on every Nth frame")
    temporal.add_argument("--loss-size", type=positive_int, default=256, help="short side the VGG losses see")
    temporal.add_argument(
        "--no-end-to-end",
        dest="end_to_end",
        action="store_false",
        help="skip timing the whole video pipeline (off vs flow) on the first clip",
    )
    temporal.add_argument(
        "--dump",
        type=Path,
        default=None,
        metavar="DIR",
        help="write each clip's middle frame and every mode's output there (PNG)",
    )
    temporal.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results here")
    temporal.set_defaults(run=run_temporal)

    live = kind.add_parser(
        "live",
        help="a 640x480 30 fps clip played as a camera: shown/keyframe fps, latency",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    live.add_argument("--video", type=Path, default=None, metavar="PATH", help="clip to play (default: generated)")
    live.add_argument(
        "--clip",
        default="pan",
        choices=("pan", "walkers", "handheld", "street", "ntu"),
        help="which clip to play: generated, composed from real photos, or ntu.mp4 (real drone footage)",
    )
    live.add_argument("--seconds", type=finite_float, default=10.0, help="length of the generated clip")
    live.add_argument(
        "--size",
        type=lambda t: "auto" if t == "auto" else positive_int(t),
        default="auto",
        help="processing short side, or auto (the webcam default: realtime.adaptive.AutoSize)",
    )
    live.add_argument("--modes", default="flow,off", help="temporal modes compared")
    live.add_argument("--stability", type=unit_float, default=None, help="strength 0..1 (default: the app's)")
    live.add_argument("--style", default="starry_night", help="style image or name")
    live.add_argument("--backend", default="onnxruntime", choices=backends, help="backend for MicroAST")
    live.add_argument("--net-runs", type=positive_int, default=15, help="timed runs of the network alone")
    live.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results here")
    live.set_defaults(run=run_live)


def run_temporal(args: argparse.Namespace) -> int:
    from bench import temporal

    return int(temporal.run(args) or 0)


def run_live(args: argparse.Namespace) -> int:
    from bench import live

    return int(live.run(args) or 0)


# -- cluster (issue 13): scaling of a chunked Ray job ------------------------------------------
def add_cluster_parser(kind: argparse._SubParsersAction) -> None:
    """``bench cluster``: wall time and speed-up for 1, 2, 4, … workers with a simulated GPU-bound backend."""
    from cli.common import finite_float

    cluster = kind.add_parser(
        "cluster",
        help="cluster job scaling over 1, 2, 4, ... Ray workers (simulated GPU time)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    cluster.add_argument("--workers", type=positive_int, default=8, help="the most workers; also 1, 2, 4, ... below")
    cluster.add_argument("--minutes", type=finite_float, default=10.0, help="length of the generated input")
    cluster.add_argument("--fps", type=positive_int, default=30, help="frame rate of the generated input")
    cluster.add_argument(
        "--delay-ms",
        type=finite_float,
        default=10.0,
        help="simulated GPU time per frame (sleep, no CPU), e.g. a 720p frame on one GPU",
    )
    cluster.add_argument(
        "--chunks-per-worker",
        type=positive_int,
        default=None,
        help="chunks planned per worker (default: as video --workers plans them)",
    )
    cluster.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results here")
    cluster.set_defaults(run=run_cluster)


def run_cluster(args: argparse.Namespace) -> int:
    from bench import cluster
    from core.errors import InputError

    if args.workers < 1 or args.minutes <= 0 or args.delay_ms < 0 or args.fps < 1:
        raise InputError("bench cluster needs --workers >= 1, --minutes > 0, --fps >= 1 and --delay-ms >= 0")
    return int(cluster.run(args) or 0)


# -- train (issue 19): seconds per optimiser step in each precision ---------------------------
def add_train_parser(kind: argparse._SubParsersAction) -> None:
    """``bench train``: one model's training step in fp32 and in the mixed precision ``train`` would use."""
    from models.training.common import TASKS

    train = kind.add_parser(
        "train",
        help="seconds per training step, fp32 against the mixed precision train uses",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("model", choices=sorted(TASKS), help="what to train")
    train.add_argument("--content", type=Path, required=True, help="folder of content photos (the corpus)")
    train.add_argument("--style", type=Path, required=True, help="folder of style images (the corpus)")
    train.add_argument("--size", type=positive_int, default=128, help="square crop size in px")
    train.add_argument("--batch", type=positive_int, default=4, help="images per step")
    train.add_argument("--steps", type=positive_int, default=5, help="timed steps per precision, interleaved")
    train.add_argument("--device", default="cpu", help="cpu or cuda")
    train.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from bench.train import bench_train, format_results
    from core.errors import InputError

    for name in ("content", "style"):
        if not getattr(args, name).is_dir():
            raise InputError(f"--{name} {getattr(args, name)} is not a folder; give a folder of images")
    import torch

    if args.device not in ("cpu", "cuda"):
        raise InputError(f"--device {args.device} is not one of cpu, cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is visible here; use --device cpu")
    results = bench_train(args.model, args.content, args.style, args.size, args.batch, args.steps, args.device)
    print(format_results(args.model, args.size, args.batch, args.device, results))
    return 0
