"""Make the package data the app ships with (run once by a maintainer; its outputs are committed).

    .venv/bin/python -m tools.make_bundle --shared ../shared

- ``models/weights/microast_official.safetensors``: the four official MicroAST state dicts (MIT) in one
  fp32 file, keys ``<role>.<key>``, bit-identical values (so ONNX artifact fingerprints stay the same). fp16
  would save 0.95 MB and looks the same (2026-12-07: 57.8-60.3 dB PSNR against fp32, at most 2 levels apart,
  chicago/golden_gate/coffee x starry_night/the_scream/great_wave at 512 px), but then the bundled network
  would differ from the official one and every cached ONNX artifact would be rebuilt: fp32 it is;
- ``models/assets/styles/*.jpg``: the public-domain paintings of ``shared/images/styles`` at most 512 px and
  100 kB, and ``styles.csv`` (artist, title, year, source, rights);
- ``models/assets/examples/astronaut.jpg`` (NASA, public domain) and ``rocket.mp4``: a 4 s pan across the
  public-domain SpaceX photo with a synthesised chime as its audio track.

Every file is written whole to a temporary name and renamed. The sha256 printed for the weights goes into
``models/registry.py``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
from pathlib import Path

import cv2
import numpy as np

from core.atomic import atomic_write

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "models" / "weights"
ASSETS = ROOT / "models" / "assets"
MICROAST_COMMIT = "5a6c9050d8c408191cb9db12c697f3e4c7ebe137"
MICROAST_FILES = {
    "content_encoder": "content_encoder_iter_160000.pth.tar",
    "style_encoder": "style_encoder_iter_160000.pth.tar",
    "modulator": "modulator_iter_160000.pth.tar",
    "decoder": "decoder_iter_160000.pth.tar",
}
_NS = "jcjohnson/neural-style@07c4b82 examples/inputs/"
_FNS = "jcjohnson/fast-neural-style@813c834 images/styles/"
#: name, artist, title, year, source (repository @ commit : path), rights; candy and mosaic are left out
#: (their artist and rights are unknown, per shared/weights/MANIFEST.md).
PAINTINGS = [
    ("starry_night", "Vincent van Gogh", "The Starry Night", "1889", _NS + "starry_night.jpg", "public domain"),
    ("the_scream", "Edvard Munch", "The Scream", "1893", _NS + "the_scream.jpg", "public domain"),
    ("great_wave", "Katsushika Hokusai", "The Great Wave off Kanagawa", "c. 1831", _FNS + "wave.jpg", "public domain"),
    ("composition_vii", "Wassily Kandinsky", "Composition VII", "1913", _FNS + "composition_vii.jpg", "public domain"),
    ("shipwreck", "J. M. W. Turner", "The Shipwreck", "1805", _NS + "shipwreck.jpg", "public domain"),
    (
        "udnie",
        "Francis Picabia",
        "Udnie",
        "1913",
        _FNS + "udnie.jpg",
        "public domain (artist died 1953; life+70 ended 2023)",
    ),
    (
        "woman_with_hat_matisse",
        "Henri Matisse",
        "Woman with a Hat",
        "1905",
        _NS + "woman-with-hat-matisse.jpg",
        "public domain (artist died 1954; life+70 ended 2024)",
    ),
    (
        "mondrian",
        "Piet Mondrian",
        "cubist-period composition",
        "c. 1913",
        "naoto0804/pytorch-AdaIN@47950d0 input/style/mondrian.jpg",
        "public domain (artist died 1944)",
    ),
]
MAX_SIDE, MAX_BYTES = 512, 100_000


def _write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def _jpeg(image: np.ndarray, max_bytes: int) -> bytes:
    """The best JPEG quality (95 down to 60) that fits ``max_bytes``."""
    for quality in range(95, 59, -3):
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_OPTIMIZE, 1])
        if ok and len(data) <= max_bytes:
            return data.tobytes()
    raise SystemExit(f"cannot fit the image into {max_bytes} bytes")


def _shrink(image: np.ndarray, longest: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = longest / max(h, w)
    return (
        image if scale >= 1 else cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    )


def make_weights(shared: Path) -> None:
    """The four official MicroAST state dicts as one fp32 safetensors file, checked against the network."""
    import torch
    from safetensors.torch import save

    from models.checkpoints import read_torch
    from models.microast import MicroAST

    tensors, meta = (
        {},
        {
            "model": "microast",
            "license": "MIT (c) 2022 Zhizhong Wang",
            "source": f"https://github.com/EndyWon/MicroAST @ {MICROAST_COMMIT} models/",
        },
    )
    for role, name in MICROAST_FILES.items():
        path = shared / "weights" / "microast" / name
        for key, value in read_torch(path, role, "").items():
            tensors[f"{role}.{key}"] = value.contiguous()
        meta[f"sha256.{name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    target = WEIGHTS / "microast_official.safetensors"
    _write(target, save(tensors, metadata=meta))
    official = MicroAST.from_files({r: shared / "weights" / "microast" / n for r, n in MICROAST_FILES.items()})
    bundled = MicroAST.from_files({r: target for r in MICROAST_FILES})
    for (k, a), (_, b) in zip(official.state_dict().items(), bundled.state_dict().items()):
        assert torch.equal(a, b), k
    print(
        f"{target.relative_to(ROOT)}: {target.stat().st_size} bytes, sha256 "
        f"{hashlib.sha256(target.read_bytes()).hexdigest()}; equal to the .pth files"
    )


def make_styles(shared: Path) -> None:
    folder = ASSETS / "styles"
    folder.mkdir(parents=True, exist_ok=True)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["name", "artist", "title", "year", "source", "rights"])
    for name, *row in PAINTINGS:
        image = cv2.imread(str(shared / "images" / "styles" / f"{name}.jpg"), cv2.IMREAD_COLOR)
        data = _jpeg(_shrink(image, MAX_SIDE), MAX_BYTES)
        _write(folder / f"{name}.jpg", data)
        writer.writerow([name, *row])
        print(f"styles/{name}.jpg: {len(data)} bytes")
    _write(folder / "styles.csv", table.getvalue().encode())


def make_examples(shared: Path, seconds: float = 4.0, fps: int = 24, size: tuple[int, int] = (480, 320)) -> None:
    import av

    folder = ASSETS / "examples"
    folder.mkdir(parents=True, exist_ok=True)
    photo = _jpeg(_shrink(cv2.imread(str(shared / "images" / "content" / "astronaut.jpg")), 512), 80_000)
    _write(folder / "astronaut.jpg", photo)
    print(f"examples/astronaut.jpg: {len(photo)} bytes")

    # The clip: a slow pan and zoom across the rocket photo (a moving "camera"), with a chime as its sound.
    rocket = cv2.imread(str(shared / "images" / "content" / "rocket.jpg"))
    h, w = rocket.shape[:2]
    tmp = folder / "rocket.mp4.part"
    out = av.open(str(tmp), "w", format="mp4")
    video = out.add_stream("libx264", rate=fps)
    video.width, video.height = size
    video.pix_fmt = "yuv420p"
    video.options = {"crf": "28", "preset": "slow"}
    audio = out.add_stream("aac", rate=44100)
    audio.bit_rate = 48000
    frames = int(seconds * fps)
    for i in range(frames):
        t = i / max(frames - 1, 1)
        zoom = 1.0 - 0.25 * t  # the crop shrinks: the camera moves in
        cw, ch = int(w * zoom), int(w * zoom * size[1] / size[0])
        ch = min(ch, h)
        x0, y0 = int((w - cw) * (0.2 + 0.6 * t)), int((h - ch) * (0.7 - 0.4 * t))
        crop = cv2.resize(rocket[y0 : y0 + ch, x0 : x0 + cw], size, interpolation=cv2.INTER_AREA)
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), format="rgb24")
        frame.pts = i
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    rate, n = 44100, int(seconds * 44100)
    t = np.arange(n) / rate
    tone = np.zeros(n, np.float32)
    for k, freq in enumerate((523.25, 659.25, 783.99, 1046.5)):  # C major arpeggio, one note a second
        start = k * rate
        env = np.exp(-3.0 * np.clip(t - k, 0, None)) * (t >= k)
        tone += (0.25 * env * np.sin(2 * np.pi * freq * (t - k))).astype(np.float32) * (np.arange(n) >= start)
    for k in range(0, n, 1024):
        chunk = av.AudioFrame.from_ndarray(tone[None, k : k + 1024], format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = rate, k
        out.mux(audio.encode(chunk))
    out.mux(audio.encode(None))
    out.close()
    tmp.replace(folder / "rocket.mp4")
    print(f"examples/rocket.mp4: {(folder / 'rocket.mp4').stat().st_size} bytes, {frames} frames at {fps} fps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared data folder")
    args = parser.parse_args()
    make_weights(args.shared)
    make_styles(args.shared)
    make_examples(args.shared)


if __name__ == "__main__":
    main()
