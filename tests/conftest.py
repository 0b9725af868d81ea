"""Shared fixtures: the search path onto ../shared, real images, small sizes, one torch thread pool."""

from __future__ import annotations

import os
import random
import zlib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT.parent / "shared").resolve()
os.environ.setdefault("STYLIZER_PATH", f"{SHARED / 'weights'}{os.pathsep}{SHARED / 'images'}")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def seeded_generators(request) -> int:
    """Every test's global generators (random, NumPy, PyTorch) seeded from its name, or by STYLIZER_TEST_SEED:
    a draw a test forgot to seed is the same on every run. The seed is printed, so a failure shows it."""
    import torch

    seed = int(os.environ.get("STYLIZER_TEST_SEED") or zlib.crc32(request.node.nodeid.encode()))
    print(f"random seed {seed}: rerun with STYLIZER_TEST_SEED={seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: tests need the shared weights and images beside the checkout")
    return SHARED


@pytest.fixture(scope="session")
def content_path(shared: Path) -> Path:
    return shared / "images" / "content" / "chicago.jpg"


@pytest.fixture(scope="session")
def style_path(shared: Path) -> Path:
    return shared / "images" / "styles" / "starry_night.jpg"


@pytest.fixture(scope="session")
def video_path(shared: Path) -> Path:
    return shared / "video" / "cutBunny.mp4"


@pytest.fixture()
def store(tmp_path: Path):
    """A weight store on the shared search path with a private, empty cache and no downloads."""
    from models.registry import default_store

    s = default_store()
    s.cache_dir = tmp_path / "cache"
    s.allow_download = False
    return s


def _write_pattern_clip(
    path: Path,
    *,
    frames: int = 48,
    fps: int = 24,
    size: tuple[int, int] = (160, 120),
    audio_rate: int | None = 48000,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
) -> Path:
    """A moving colour pattern (and a 440 Hz AAC tone unless ``audio_rate`` is None) written with PyAV."""
    import av
    import numpy as np

    out = av.open(str(path), "w")
    video = out.add_stream(codec, rate=fps)
    video.width, video.height = size
    video.pix_fmt = pix_fmt
    if codec == "libx264":
        video.options = {"preset": "ultrafast"}
    audio = out.add_stream("aac", rate=audio_rate) if audio_rate else None
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    for i in range(frames):
        rgb = np.stack([(xx * 3 + i * 9) % 256, (yy * 3) % 256, (xx + yy + i * 8) % 256], -1).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = i
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    if audio is not None:
        samples = audio_rate * frames // fps
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / audio_rate)).astype(np.float32)
        for k in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, k : k + 1024], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = audio_rate, k
            out.mux(audio.encode(chunk))
        out.mux(audio.encode(None))
    out.close()
    return path


def _write_rotated_clip(path: Path, degrees: int, fps: int = 24):
    """A 96×64 clip stored landscape with a display rotation; returns the frame as a player shows it."""
    import av
    import numpy as np

    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
    video.set_display_rotation(degrees)  # stored landscape, shown rotated (counter-clockwise)
    stored = np.zeros((64, 96, 3), np.uint8)
    stored[:, :48] = 255  # left half white
    for i in range(3):
        frame = av.VideoFrame.from_ndarray(stored, format="bgr24")
        frame.pts = i
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    out.close()
    return np.rot90(stored, degrees // 90)


@pytest.fixture(scope="session")
def write_clip():
    """Factory: ``write_clip(path, frames=, fps=, size=, audio_rate=, codec=, pix_fmt=) -> path``."""
    return _write_pattern_clip


@pytest.fixture(scope="session")
def write_rotated_clip():
    """Factory: ``write_rotated_clip(path, degrees) -> frame as shown``."""
    return _write_rotated_clip


@pytest.fixture()
def no_weights_env(tmp_path: Path, monkeypatch):
    """A process where no checkpoint can be found: empty search path, empty cache, no bundled weights."""
    return hide_weights(tmp_path, monkeypatch)


def hide_weights(tmp_path: Path, monkeypatch) -> Path:
    """From now on no checkpoint can be found (see no_weights_env); for a test that first loads one, then hides all."""
    import models.registry

    empty = tmp_path / "no-weights"
    empty.mkdir()
    monkeypatch.setenv("STYLIZER_PATH", str(empty))
    monkeypatch.setenv("XDG_CACHE_HOME", str(empty / "cache"))
    monkeypatch.setattr(models.registry, "BUNDLED_DIR", empty / "bundled")
    return empty


@pytest.fixture()
def style_folder(tmp_path: Path, shared: Path) -> Path:
    """A folder with exactly three style images (tests must not count what the search path holds)."""
    folder = tmp_path / "styles"
    folder.mkdir()
    for name in ("candy.jpg", "the_scream.jpg", "starry_night.jpg"):
        (folder / name).write_bytes((shared / "images" / "styles" / name).read_bytes())
    return folder


@pytest.fixture(scope="module")
def microast(shared):
    """The official MicroAST (one per test module: backends may convert the model they are given)."""
    import torch

    from models.registry import create_model

    torch.set_num_threads(2)
    return create_model("microast").eval()


@pytest.fixture(scope="module")
def code(microast, style_path):
    """Starry Night encoded by MicroAST at 128 px."""
    from core.images import read_image, resize_longest, to_tensor

    return microast.encode_style(to_tensor(resize_longest(read_image(style_path), 128)))
