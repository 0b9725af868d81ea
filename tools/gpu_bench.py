"""Inference figures of the GPU job: per-frame network fps (fp16, style encoded once) and fp16-vs-fp32 PSNR.

For each model (AdaIN and AesFA with the weights the job just trained, MicroAST with its official
files) and each size, the per-frame network (``model.frame_network()``, as the app's torch backend
runs it) is timed in these variants:

* ``fp32``: the reference (TF32 off, so it is a true fp32 result), also timed;
* ``fp16``: a half-precision copy, NCHW;
* ``fp16-cl``: the same, channels-last weights and input (what the app's CUDA backend uses);
* ``fp16-cl-graph``: that, captured once as a CUDA graph and replayed (launch overhead gone);
  each replay copies the frame into the graph's static input first, as a live pipeline would;
* ``fp16-cl-compile``: ``torch.compile`` (default mode) of the channels-last copy, only where the
  job's time budget leaves room for compilation.

Timing: CUDA events around every iteration after a warm-up (on the CPU, ``perf_counter``); the
median is reported, with the mean. PSNR compares each fp16 output (clamped to [0, 1]) with the
fp32 one. Every item checks the job's deadline first and is recorded as skipped when it cannot
fit. ONNX Runtime GPU and TensorRT are not measured: their wheels do not fit the job's 64 MiB.
"""

from __future__ import annotations

import copy
import logging
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from models.base import StyleCode, StyleModel
from core.images import read_image, resize_longest

log = logging.getLogger(__name__)

VARIANTS = ("fp32", "fp16", "fp16-cl", "fp16-cl-graph")
COMPILE_VARIANT = "fp16-cl-compile"
COMPILE_RESERVE_S = 90.0  # seconds a torch.compile item needs at least (compile + autotune + timing)
ITEM_RESERVE_S = 6.0


@dataclass
class BenchModel:
    label: str  # "adain (ours)"
    model: StyleModel


def load_models(
    inputs: Path, trained: Path, device: torch.device, names: tuple[str, ...] = ("adain", "aesfa", "microast")
) -> list[BenchModel]:
    """The benchmarked models: ours from ``trained`` (the job's exports), MicroAST's official files from ``inputs``."""
    from models.adain import AdaIN, CaffeVGGEncoder, load_our_decoder
    from models.aesfa import AesFA
    from models.errors import WeightsError
    from models.microast import MicroAST
    from models.registry import checkpoint_named
    from models.vgg import VGG19Features, load_relu4_1_cut
    from models.weights import matches
    from tools.prepare_gpu_inputs import VGG_NAME

    out = []
    for name in names:
        if name == "adain":
            decoder, scale = load_our_decoder(trained / "adain.safetensors")
            encoder = CaffeVGGEncoder(VGG19Features("relu4_1", state=load_relu4_1_cut(inputs / VGG_NAME)))
            out.append(BenchModel("adain (ours)", AdaIN(encoder, decoder, feature_scale=scale)))
        elif name == "aesfa":
            out.append(BenchModel("aesfa (ours)", AesFA.from_files({"main": trained / "aesfa.safetensors"})))
        elif name == "microast":
            files = {}
            for role, spec in checkpoint_named("microast", "official").files.items():
                path = inputs / "weights" / "microast" / spec.filename
                if not matches(spec, path):
                    raise WeightsError(f"{path} does not match {spec.expected_hash}")
                files[role] = path
            out.append(BenchModel("microast (official)", MicroAST.from_files(files)))
    for m in out:
        m.model.to(device).eval()
    return out


def image_tensor(path: Path, size: tuple[int, int] | None, device: torch.device, longest: int = 512) -> torch.Tensor:
    """An image file as (1, 3, H, W) RGB [0, 1]: resized to exactly ``size`` (W, H), or to ``longest``."""
    import cv2

    bgr = read_image(path)
    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA) if size else resize_longest(bgr, longest)
    return torch.from_numpy(bgr[..., ::-1].copy()).permute(2, 0, 1).unsqueeze(0).float().div(255.0).to(device)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two images in [0, 1] (inf when identical)."""
    mse = float((a.double().clamp(0, 1) - b.double().clamp(0, 1)).pow(2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def time_calls(
    fn, device: torch.device, warmup: int = 5, min_iters: int = 10, max_iters: int = 200, target_s: float = 1.0
) -> list[float]:
    """Milliseconds of each of up to ``max_iters`` calls (about ``target_s`` in all) after ``warmup`` calls."""
    cuda = device.type == "cuda"
    if not cuda:  # CPU proofs only: fp16 convolutions are emulated there and take seconds
        warmup, min_iters = 1, 2
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize(device)
    tick = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize(device)
    estimate = max(time.perf_counter() - tick, 1e-5)
    iters = int(min(max_iters, max(min_iters, target_s / estimate)))
    times = []
    if cuda:
        pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
        for start, end in pairs:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(device)
        times = [s.elapsed_time(e) for s, e in pairs]
    else:
        for _ in range(iters):
            tick = time.perf_counter()
            fn()
            times.append((time.perf_counter() - tick) * 1000.0)
    return times


def _prepare(network: nn.Module, variant: str, device: torch.device) -> tuple[nn.Module, torch.dtype, bool]:
    dtype = torch.float32 if variant == "fp32" else torch.float16
    net = copy.deepcopy(network).to(device, dtype).eval()
    channels_last = "-cl" in variant
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net, dtype, channels_last


def run_variant(
    network: nn.Module, variant: str, frame: torch.Tensor, code: StyleCode, device: torch.device, target_s: float
) -> tuple[list[float], torch.Tensor, str]:
    """Times of one variant and its output (fp32, on the device); also a note (e.g. compile seconds)."""
    net, dtype, channels_last = _prepare(network, variant, device)
    x = frame.to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    tensors = [t.to(device, dtype) for t in code.tensors.values()]
    alpha = torch.tensor(1.0, device=device, dtype=dtype)
    note = ""
    with torch.inference_mode():
        if variant.endswith("-graph"):
            static_in = x.clone()
            stream = torch.cuda.Stream(device)
            stream.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(stream):  # warm-up (cuDNN autotune, allocations) off the capture
                for _ in range(3):
                    net(static_in, *tensors, alpha)
            torch.cuda.current_stream(device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = net(static_in, *tensors, alpha)

            def call():
                static_in.copy_(x)
                graph.replay()
                return static_out
        elif variant.endswith("-compile"):
            compiled = torch.compile(net, mode="default", dynamic=False)
            tick = time.perf_counter()
            compiled(x, *tensors, alpha)
            torch.cuda.synchronize(device)
            note = f"compiled in {time.perf_counter() - tick:.0f} s"

            def call():
                return compiled(x, *tensors, alpha)
        else:

            def call():
                return net(x, *tensors, alpha)

        times = time_calls(call, device, target_s=target_s)
        out = call().float().clone()
    return times, out, note


def run_bench(
    models: list[BenchModel],
    content: Path,
    style: Path,
    sizes: list[tuple[int, int]],
    device: torch.device,
    deadline: float,
    compile_ok: bool = True,
    target_s: float = 1.0,
    variants: tuple[str, ...] = VARIANTS,
    on_row=None,
) -> list[dict]:
    """Every model × size × variant that fits before ``deadline`` (time.monotonic()); one row each.

    ``on_row(rows)`` is called after every item (the job saves its report there, so a job killed
    in the middle of a long compile still returns the rows measured before it).
    """
    cuda = device.type == "cuda"
    rows: list[dict] = []
    style_image = image_tensor(style, None, device)
    plans = [(m, size, v) for size in sizes for m in models for v in variants]
    if compile_ok and cuda:
        plans += [(m, max(sizes, key=lambda s: s[0] * s[1]), COMPILE_VARIANT) for m in models]
    refs: dict[tuple[str, tuple[int, int]], torch.Tensor] = {}
    codes: dict[str, StyleCode] = {}
    frames: dict[tuple[int, int], torch.Tensor] = {}
    for bench_model, size, variant in plans:
        row = {"model": bench_model.label, "size": f"{size[0]}x{size[1]}", "variant": variant, "device": str(device)}
        rows.append(row)
        left = deadline - time.monotonic()
        need = COMPILE_RESERVE_S if variant == COMPILE_VARIANT else ITEM_RESERVE_S
        if left < need:
            row["skipped"] = f"out of time ({left:.0f} s left, needs {need:.0f} s)"
            continue
        if not cuda and (variant.endswith("-graph") or variant.endswith("-compile")):
            row["skipped"] = "CUDA only"
            continue
        try:
            if bench_model.label not in codes:
                with torch.no_grad():
                    codes[bench_model.label] = bench_model.model.encode_style(style_image)  # once, fp32
            if size not in frames:
                frames[size] = image_tensor(content, size, device)
            key = (bench_model.label, size)
            if variant != "fp32" and key not in refs:
                row["skipped"] = "no fp32 reference"
                continue
            precise = torch.backends.cudnn.allow_tf32
            torch.backends.cudnn.allow_tf32 = variant != "fp32"  # the fp32 reference is true fp32
            try:
                times, out, note = run_variant(
                    bench_model.model.frame_network(), variant, frames[size], codes[bench_model.label], device, target_s
                )
            finally:
                torch.backends.cudnn.allow_tf32 = precise
            if variant == "fp32":
                refs[key] = out
            median = statistics.median(times)
            row.update(
                {
                    "ms_median": round(median, 3),
                    "ms_mean": round(statistics.fmean(times), 3),
                    "fps": round(1000.0 / median, 1),
                    "iters": len(times),
                    "psnr_vs_fp32_db": None if variant == "fp32" else round(psnr(out, refs[key]), 2),
                    "finite": bool(torch.isfinite(out).all()),
                }
            )
            if note:
                row["note"] = note
            log.info(
                "bench %s %s %s: %.2f ms (%.1f fps)%s",
                row["model"],
                row["size"],
                variant,
                median,
                row["fps"],
                "" if variant == "fp32" else f", PSNR vs fp32 {row['psnr_vs_fp32_db']} dB",
            )
        except Exception as exc:  # one failing variant (e.g. a capture problem) must not cost the others
            row["error"] = f"{type(exc).__name__}: {exc}"[:300]
            log.error("bench %s %s %s failed: %s", row["model"], row["size"], variant, row["error"])
        finally:
            if cuda:
                torch.cuda.empty_cache()
            if on_row is not None:
                on_row(rows)
    return rows


def markdown(rows: list[dict]) -> str:
    """The rows as a markdown table."""
    lines = ["| model | size | variant | ms (median) | fps | PSNR fp16 vs fp32 |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "ms_median" in r:
            p = "—" if r["psnr_vs_fp32_db"] is None else f"{r['psnr_vs_fp32_db']} dB"
            lines.append(f"| {r['model']} | {r['size']} | {r['variant']} | {r['ms_median']} | {r['fps']} | {p} |")
        else:
            lines.append(f"| {r['model']} | {r['size']} | {r['variant']} | {r.get('skipped') or r.get('error')} | | |")
    return "\n".join(lines)
