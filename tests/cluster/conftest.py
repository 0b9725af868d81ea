"""Cluster fixtures: one local Ray instance (2 CPUs) shared by the tests, clips with chosen keyframes and timing."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Ray reads this when it is imported (before any test module imports it): every Ray port on loopback.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray instance for the session; shut down at the end."""
    import ray

    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}}
    )
    yield ray
    ray.shutdown()


def _write_gop_clip(
    path: Path,
    *,
    frames: int = 96,
    gop: int = 12,
    size: tuple[int, int] = (96, 64),
    durations_ms: tuple[int, ...] = (),
    audio: bool = True,
    bframes: bool = True,
) -> Path:
    """A moving gradient with a keyframe every ``gop`` frames; ``durations_ms`` (cycled) makes it variable-rate."""
    import av
    import numpy as np

    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=24)
    video.width, video.height, video.pix_fmt = *size, "yuv420p"
    video.codec_context.time_base = Fraction(1, 1000)
    video.options = {
        "preset": "ultrafast",
        "g": str(gop),
        "keyint_min": str(gop),
        "sc_threshold": "0",
        "bf": "2" if bframes else "0",
    }
    tone = out.add_stream("aac", rate=16000) if audio else None
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
    t_ms = 0
    for i in range(frames):
        phase = i * 0.15
        rgb = np.stack(
            [
                128 + 100 * np.sin(xx / 9 + phase),
                128 + 100 * np.cos(yy / 7 - phase),
                128 + 60 * np.sin((xx + yy) / 13 + 2 * phase),
            ],
            -1,
        ).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, frame.time_base = t_ms, Fraction(1, 1000)
        out.mux(video.encode(frame))
        t_ms += durations_ms[i % len(durations_ms)] if durations_ms else 42
    out.mux(video.encode(None))
    if tone is not None:
        samples = 16 * t_ms
        wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 16000)).astype(np.float32)
        for k in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(wave[None, k : k + 1024], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 16000, k
            out.mux(tone.encode(chunk))
        out.mux(tone.encode(None))
    out.close()
    return path


@pytest.fixture(scope="session")
def write_gop_clip():
    """Factory: ``write_gop_clip(path, frames=, gop=, size=, durations_ms=, audio=, bframes=) -> path``."""
    return _write_gop_clip


def decoded(path: Path) -> tuple[list[float], list]:
    """Every frame's presentation time (s) and RGB pixels (float64)."""
    import av
    import numpy as np

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [
            (float(f.pts * stream.time_base), f.to_ndarray(format="rgb24").astype(np.float64))
            for f in container.decode(stream)
        ]
    return [t for t, _ in frames], [im for _, im in frames]


def audio_packets(path: Path) -> list[tuple[float, bytes]]:
    """(time in s, payload) of every audio packet."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        stream = container.streams.audio[0]
        return [(round(float(p.pts * p.time_base), 6), bytes(p)) for p in container.demux(stream) if p.size]


def psnr(a: list, b: list) -> float:
    import numpy as np

    mse = float(np.mean([np.mean((x - y) ** 2) for x, y in zip(a, b)]))
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


@pytest.fixture(scope="session")
def media():
    """Helpers to read outputs: ``decoded(path)``, ``audio_packets(path)``, ``psnr(a, b)``."""
    from types import SimpleNamespace

    return SimpleNamespace(decoded=decoded, audio_packets=audio_packets, psnr=psnr)
