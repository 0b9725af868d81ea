"""Check an exported artifact against PyTorch on real images; record the figures in the artifact.

Tolerance by precision (timm's ``onnx_validate`` / torch2trt's ``cross_validate`` habit): the
artifact's uint8 output is compared with the fp32 PyTorch frame graph's on the same frames.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import torch

from export.metadata import ArtifactMetadata
from export.onnx import ALPHA_INPUT, FRAME_INPUT, FrameGraph, read_metadata, save_with_metadata
from models.bundle import EXAMPLE_PHOTO
from models.base import StyleCode, StyleModel
from core.atomic import atomic_write
from core.errors import StylizerError
from export.errors import ArtifactError
from core.images import read_image, resize_longest, to_tensor
from models.weights import WeightStore

log = logging.getLogger(__name__)

MIN_PSNR_DB = {"fp32": 45.0, "fp16": 35.0}
#: Longest sides of the verification frames: two sizes, neither a multiple of the network's stride.
VERIFY_SIDES = (203, 333)
#: (width, height) of the frames every fp16 verification adds: fp16 overflows (a pixel count above
#: 65504, a sum of squares) only show on large frames, in both orientations; small ones cannot see them.
FP16_LARGE_SIZES = ((1920, 1080), (1080, 1920), (3840, 2160))
CONTENT_NAMES = ("chicago.jpg", "golden_gate.jpg")
STYLE_NAME = "starry_night"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 images (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def test_pattern(h: int, w: int, seed: int) -> np.ndarray:
    """A deterministic uint8 BGR frame (gradients plus noise) for when no real image is on the path."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], axis=-1) * 200.0
    return np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)


def content_image(store: WeightStore | None, name: str) -> Path | None:
    """``name`` from the search path, else the bundled example photo (a fresh install), else None."""
    found = store.find_local(name) if store else []
    if found:
        return found[0]
    return EXAMPLE_PHOTO if EXAMPLE_PHOTO.is_file() else None


def sample_frames(store: WeightStore | None, sides: tuple[int, ...] = VERIFY_SIDES) -> list[np.ndarray]:
    """Real content images from the search path (else the bundled example photo) at each side, or test patterns."""
    frames: list[np.ndarray] = []
    for i, side in enumerate(sides):
        found = content_image(store, CONTENT_NAMES[i % len(CONTENT_NAMES)])
        if found:
            frames.append(resize_longest(read_image(found), side))
        else:
            log.warning("verify: no content image on the search path; using a synthetic test pattern")
            frames.append(test_pattern(side * 3 // 4, side, seed=i))
    return frames


def large_frames(store: WeightStore | None, sizes: tuple[tuple[int, int], ...] = FP16_LARGE_SIZES) -> list[np.ndarray]:
    """A real content image (else the bundled example photo) resized to each (width, height), or test patterns."""
    import cv2

    found = content_image(store, CONTENT_NAMES[0])
    if not found:
        log.warning("verify: no content image on the search path; using synthetic test patterns")
        return [test_pattern(h, w, seed=w + h) for w, h in sizes]
    image = read_image(found)
    return [cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC) for w, h in sizes]


def large_sizes_verified(figures: dict[str, float]) -> bool:
    """Whether verification figures (``psnr_db``) include every fp16 large size."""
    return all(f"{w}x{h}" in figures for w, h in FP16_LARGE_SIZES)


def verification_frames(store: WeightStore | None, precision: str) -> list[np.ndarray]:
    """The frames an artifact of ``precision`` is verified on: two small ones, and for fp16 the large ones."""
    return sample_frames(store) + (large_frames(store) if precision == "fp16" else [])


def sample_code(model: StyleModel, store: WeightStore | None, style_side: int = 256) -> StyleCode:
    """A real style's code (starry_night when on the path), else a test pattern's."""
    from models.styles import find_style

    image = None
    if store is not None:
        try:
            image = read_image(find_style(STYLE_NAME, store))
        except StylizerError as exc:  # a missing picture only downgrades the check to a test pattern
            log.warning("verify: style %s unavailable (%s); using a synthetic test pattern", STYLE_NAME, exc)
    if image is None:
        image = test_pattern(style_side, style_side, seed=99)
    with torch.no_grad():
        return model.encode_style(to_tensor(resize_longest(image, style_side), model.device))


def reference_frames(model: StyleModel, code: StyleCode, frames: list[np.ndarray], alpha: float) -> list[np.ndarray]:
    """The fp32 PyTorch frame graph's outputs on CPU: what the artifact must reproduce."""
    graph = FrameGraph(copy.deepcopy(model.frame_network())).to("cpu").float().eval()  # leave the caller's model be
    code_tensors = [t.to("cpu", torch.float32) for t in code.tensors.values()]
    with torch.inference_mode():
        return [graph(torch.from_numpy(f)[None], *code_tensors, torch.tensor(alpha))[0].numpy() for f in frames]


def run_onnx_cpu(
    path: Path, code: StyleCode, frames: list[np.ndarray], alpha: float, cuda: bool = False
) -> list[np.ndarray]:
    """The artifact's outputs in ONNX Runtime on the CPU (fp16 graphs run there too, slowly); ``cuda``: on the
    CUDA provider instead where there is one (else the CPU, logged)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ArtifactError(
            'verifying an ONNX export needs ONNX Runtime; pip install "stylizer[cpu]" (or [gpu])'
        ) from None
    session = None
    if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        try:
            session = ort.InferenceSession(str(path), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - a CUDA that fails to start: verify on the CPU all the same
            log.warning("verify: CUDA provider unavailable (%s); verifying on the CPU", str(exc).splitlines()[0])
    if session is None:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    log.info("verify: running %s on %s", Path(path).name, session.get_providers()[0])
    feeds = {name: t.detach().to("cpu", torch.float32).numpy() for name, t in code.tensors.items()}
    feeds[ALPHA_INPUT] = np.array(alpha, dtype=np.float32)
    return [session.run(None, {**feeds, FRAME_INPUT: f[None]})[0][0] for f in frames]


def verify_onnx(
    path: Path, model: StyleModel, code: StyleCode, frames: list[np.ndarray], alpha: float = 1.0
) -> ArtifactMetadata:
    """Compare ``path`` with PyTorch on ``frames``; store the PSNRs in it; ArtifactError below the threshold."""
    start = time.perf_counter()
    path = Path(path)
    meta = read_metadata(path)
    onnx.checker.check_model(str(path), full_check=True)
    expected = reference_frames(model, code, frames, alpha)
    # ORT's CPU provider computes most fp16 ops in fp32: fp16 is verified on the GPU's fp16 kernels where there are
    got = run_onnx_cpu(path, code, frames, alpha, cuda=meta.precision == "fp16")
    figures: dict[str, float] = {}
    for f, ref, out in zip(frames, expected, got):
        if out.shape != ref.shape or out.dtype != np.uint8:
            raise ArtifactError(f"{path} returned {out.dtype} {out.shape} for a {f.shape} frame; re-export it")
        if out.min() == out.max() and ref.min() != ref.max():  # the fp16 overflow's signature: every pixel alike
            raise ArtifactError(
                f"{path} returned a blank frame ({int(out.min())} everywhere) at {f.shape[1]}x"
                f"{f.shape[0]}; the export is wrong, try --precision fp32"
            )
        value = psnr(out, ref)
        figures[f"{f.shape[1]}x{f.shape[0]}"] = round(value, 2) if math.isfinite(value) else 999.0
    threshold = MIN_PSNR_DB[meta.precision]
    worst = min(figures.values())
    log.info(
        "verify: %s %s vs PyTorch fp32: PSNR %s dB (needs >= %.0f) in %.1f s",
        path.name,
        meta.precision,
        ", ".join(f"{k} {v:.1f}" for k, v in figures.items()),
        threshold,
        time.perf_counter() - start,
    )
    if worst < threshold:
        raise ArtifactError(
            f"{path} differs from PyTorch: PSNR {worst:.1f} dB < {threshold:.0f} dB "
            f"({meta.precision}); the export is wrong, try --precision fp32"
        )
    meta = replace(meta, psnr_db=figures)
    save_with_metadata(onnx.load(str(path)), meta, path)
    return meta


def export_onnx_verified(
    model: StyleModel,
    path: Path,
    precision: str,
    store: WeightStore | None,
    opset: int = 17,
    style_size: int = 256,
    checkpoint_sha256: str = "",
    graph: str | None = None,
) -> Path:
    """Export, check and verify one ONNX file against PyTorch on real images (test patterns if none)."""
    from export.onnx import export_onnx

    code = sample_code(model, store, style_size)

    def export_and_verify(staged: str) -> None:
        export_onnx(model, code, Path(staged), precision, opset, checkpoint_sha256=checkpoint_sha256, graph=graph)
        if precision == "fp16":
            log.info("onnx: verifying fp16 at 1080p (both orientations) and 4K too; minutes on a small CPU")
        verify_onnx(Path(staged), model, code, verification_frames(store, precision))

    # Made and verified under a temporary name beside the target, renamed only once verified: a failed,
    # interrupted or killed export never leaves an unverified file, nor removes a good one already there.
    return atomic_write(Path(path), export_and_verify)
