"""``main.py doctor``: what this machine offers the app, what it would use, and the command for each missing piece."""

from __future__ import annotations

import argparse
import platform
import sys
import time

ORDER = 90

#: the live processing sizes doctor chooses from (short side, px), and the network rate it asks of one
PROBE_SIZES = (160, 240, 360, 480, 720)
LIVE_FPS = 12.0
PROBE_SECONDS = 2.0
PROBE_FRAME = (640, 480)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check this machine: GPU, ONNX Runtime, cameras, weights; pick a live size",
        description="Says what the app would use here and why, and names every missing piece with the "
        "command that fixes it. Always exits 0.",
    )
    p.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "torch"),
        help="backend of the speed probe: auto measures what webcam picks (on the first run that may "
        "export the network to ONNX first, ~20 s on a 2-core CPU, cached for webcam); torch starts "
        "at once",
    )
    p.add_argument("--no-probe", action="store_true", help="skip the two-second speed probe")
    p.set_defaults(run=run)


class Report:
    """Lines grouped in sections, and the fixes collected for the summary."""

    def __init__(self) -> None:
        self.fixes: list[str] = []

    def section(self, title: str) -> None:
        print(f"\n{title}")

    def line(self, label: str, text: str) -> None:
        print(f"  {label:14s} {text}")

    def missing(self, label: str, text: str, fix: str) -> None:
        print(f"  {label:14s} {text} -> fix: {fix}")
        self.fixes.append(f"{label}: {fix}")


def check_python(r: Report) -> None:
    r.section("Python")
    r.line("python", f"{platform.python_version()} ({sys.executable})")
    r.line("platform", f"{platform.system()} {platform.release()} {platform.machine()}")


def check_torch(r: Report) -> str:
    """PyTorch's build and CUDA devices; returns the device the app would use (cuda or cpu)."""
    import torch

    from realtime.backends.factory import cuda_unavailable_reason, nvidia_gpu_present

    r.section("PyTorch")
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
    r.line("torch", f"{torch.__version__} ({build}), {torch.get_num_threads()} CPU threads")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            r.line(
                f"cuda:{i}", f"{props.name}, {props.total_memory / 2**30:.1f} GiB, compute {props.major}.{props.minor}"
            )
        return "cuda"
    reason = cuda_unavailable_reason()
    if nvidia_gpu_present() and torch.version.cuda is None:
        r.missing("CUDA", reason, "pip install torch --index-url https://download.pytorch.org/whl/cu126")
    elif nvidia_gpu_present():
        r.missing("CUDA", reason, "update the NVIDIA driver (nvidia-smi shows it) or unset CUDA_VISIBLE_DEVICES")
    else:
        r.line("CUDA", f"none ({reason}); everything runs on the CPU")
    return "cpu"


def check_onnxruntime(r: Report, device: str) -> None:
    r.section("ONNX Runtime / TensorRT")
    from realtime.backends.ort_packages import ort_package_problem

    problem = ort_package_problem(gpu=device == "cuda")  # none, two builds, or the CPU build beside a GPU
    try:
        import onnxruntime as ort
    except ImportError:
        pass
    else:
        providers = ort.get_available_providers()
        r.line("onnxruntime", f"{ort.__version__}, providers: {', '.join(providers)}")
        if problem is None and device == "cuda" and "CUDAExecutionProvider" not in providers:
            problem = (
                "a CUDA GPU is usable but onnxruntime has no CUDAExecutionProvider; "
                'pip install "stylizer[gpu]" (onnxruntime-gpu in place of onnxruntime)'
            )
    if problem is not None:
        reason, _, fix = problem.partition("; ")
        r.missing("onnxruntime", reason, fix or "see the README's Backends section")
    try:
        import tensorrt
    except ImportError:
        if device == "cuda":
            r.missing("TensorRT", "not installed (the fastest backend on NVIDIA GPUs)", 'pip install "stylizer[gpu]"')
        else:
            r.line("TensorRT", "not installed (only useful with an NVIDIA GPU)")
    else:
        r.line("TensorRT", tensorrt.__version__)


def check_cameras(r: Report) -> None:
    from models.bundle import EXAMPLE_CLIP
    from realtime.cameras import PROBE_INDICES, probe_cameras

    r.section("Cameras")
    cameras = probe_cameras()
    for camera in cameras:
        r.line(f"camera {camera.index}", f"{camera.mode()} (opens and gives frames)")
    if not cameras:
        r.line(
            "cameras",
            f"none open (indices {PROBE_INDICES.start}-{PROBE_INDICES.stop - 1} probed); play a file "
            f"as a camera: webcam --camera {EXAMPLE_CLIP}",
        )


def check_virtual_camera(r: Report) -> None:
    import importlib.util
    from pathlib import Path

    r.section("Virtual camera")
    if importlib.util.find_spec("pyvirtualcam") is None:
        r.missing("pyvirtualcam", "not installed (webcam --virtual-cam needs it)", 'pip install "stylizer[vcam]"')
        return
    import pyvirtualcam

    r.line("pyvirtualcam", getattr(pyvirtualcam, "__version__", "installed"))
    if sys.platform.startswith("linux"):
        if Path("/sys/module/v4l2loopback").exists():
            r.line("backend", "v4l2loopback (kernel module loaded)")
        else:
            r.missing(
                "backend",
                "v4l2loopback is not loaded",
                "sudo apt install v4l2loopback-dkms && sudo modprobe v4l2loopback devices=1 exclusive_caps=1",
            )
    else:
        r.line(
            "backend", "OBS Virtual Camera (Windows/macOS: install OBS Studio 26+ and start its virtual camera once)"
        )


def check_weights(r: Report) -> None:
    from models.bundle import EXAMPLES_DIR, bundled_paintings
    from models.errors import WeightsError
    from models.registry import default_store, list_models

    r.section("Weights and styles")
    store = default_store()
    store.allow_download = False
    for config in list_models():
        if not config.checkpoints:
            continue
        found = None
        for ckpt in config.checkpoints:
            try:
                paths = {role: store.locate(spec) for role, spec in ckpt.files.items()}
            except WeightsError as exc:
                r.missing(
                    config.name, f"{ckpt.name}: {exc}", "delete the damaged file, then run: stylizer models fetch"
                )
                continue
            if all(paths.values()):
                found = (ckpt.name, store.origin(next(iter(paths.values()))), next(iter(paths.values())))
                break
        if found:
            r.line(config.name, f"{found[0]} checkpoint, from {found[1]}: {found[2]}")
        else:
            r.line(
                config.name,
                f"no checkpoint on disk (optional; 'stylizer models fetch {config.name}' downloads "
                "what has a public URL)",
            )
    r.line(
        "styles",
        f"{len(bundled_paintings())} bundled paintings; more from ${'STYLIZER_PATH'} "
        f"({len(store.search_path)} folders)",
    )
    r.line("examples", str(EXAMPLES_DIR))
    size = sum(p.stat().st_size for p in store.cache_dir.rglob("*") if p.is_file()) if store.cache_dir.is_dir() else 0
    r.line("cache", f"{store.cache_dir} ({size / 2**20:.1f} MiB)")


def speed_probe(backend_name: str, device: str, seconds: float = PROBE_SECONDS) -> tuple[int | None, list[str], str]:
    """The largest PROBE_SIZES short side whose per-frame network reaches LIVE_FPS, a line per size tried, the backend.

    Sizes are tried smallest first, each getting an equal share of the time left (at least one timed run after a
    warm-up), and the probe stops at the first size below LIVE_FPS: larger ones are slower still.
    """
    import cv2
    import numpy as np
    import torch

    from models.bundle import EXAMPLE_PHOTO
    from core.images import read_image, resize_short, to_tensor
    from models.registry import create_model, default_store
    from models.styles import find_style
    from realtime.backends.factory import create_backend

    store = default_store()
    model = create_model("microast", store=store, device=device).eval()
    with torch.inference_mode():
        code = model.encode_style(to_tensor(read_image(find_style("starry_night", store)), model.device))
    backend = create_backend(backend_name, model, device, live=True)
    frame = cv2.resize(read_image(EXAMPLE_PHOTO), PROBE_FRAME, interpolation=cv2.INTER_AREA)
    lines, best, used = [], None, str(backend.info)
    deadline = time.perf_counter() + seconds
    try:
        for i, size in enumerate(PROBE_SIZES):
            image = resize_short(frame, size)
            backend.run(image, code)  # warm-up: first-run allocations and kernel choices
            times = []
            share = max(deadline - time.perf_counter(), 0.0) / (len(PROBE_SIZES) - i)
            start = time.perf_counter()
            while not times or (time.perf_counter() - start < share and len(times) < 20):
                t0 = time.perf_counter()
                backend.run(image, code)
                times.append(time.perf_counter() - t0)
            fps = 1.0 / float(np.median(times))
            lines.append(f"{image.shape[1]}x{image.shape[0]}: {fps:.1f} fps ({len(times)} runs)")
            if fps < LIVE_FPS:
                break  # larger sizes are slower still
            best = size
            if time.perf_counter() > deadline:
                break
    finally:
        backend.close()
    return best, lines, used


def check_speed(r: Report, backend_name: str, device: str) -> None:
    r.section("Speed probe")
    try:
        best, lines, used = speed_probe(backend_name, device)
    except Exception as exc:  # noqa: BLE001 - doctor reports every failure and carries on
        r.missing("probe", f"failed: {exc}", "run 'stylizer models list' to see which weights are missing")
        return
    r.line(
        "measured",
        f"MicroAST per-frame network alone (content encoder + decoder, one style) on {used}, "
        f"a 640x480 frame at each short side, median of up to 20 runs, ~{PROBE_SECONDS:.0f} s",
    )
    for text in lines:
        r.line("", text)
    if best is None:
        r.line("live size", f"none reaches {LIVE_FPS:.0f} fps; use webcam --size 160 --target-fps 8, or a GPU")
    else:
        r.line(
            "live size",
            f"{best} (largest of {'/'.join(map(str, PROBE_SIZES))} at >= {LIVE_FPS:.0f} fps): webcam --size {best}",
        )
    if backend_name == "torch":
        r.line(
            "",
            "webcam's --backend auto may pick a faster backend (ONNX Runtime on a CPU): "
            "'stylizer doctor' without --backend torch measures that one",
        )


def run(args: argparse.Namespace) -> int:
    r = Report()
    check_python(r)
    device = check_torch(r)
    check_onnxruntime(r, device)
    check_cameras(r)
    check_virtual_camera(r)
    check_weights(r)
    if not args.no_probe:
        check_speed(r, args.backend, device)
    print("\nSummary")
    if r.fixes:
        for fix in r.fixes:
            print(f"  missing {fix}")
    else:
        print("  nothing missing")
    return 0
