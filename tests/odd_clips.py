"""Small real-world-shaped clips written with PyAV: the kinds of file that broke the app (issues 21 and 22).

Every clip shows frame ``i`` as a flat grey with a white column at ``x = 3 i``, so a
test can tell from the pixels which frame it holds and check that it sits at the right time.
Frames are at ``i / FPS`` s (plus the container's start offset) unless said otherwise.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FPS = 25
SIZE = (96, 64)


def picture(i: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """Frame ``i`` of every clip here (BGR)."""
    image = np.full((size[1], size[0], 3), 40 + (i * 8) % 128, np.uint8)
    x = (3 * i) % size[0]
    image[:, x : x + 2] = 255  # two columns wide: it survives a lossy codec
    return image


def which_frame(image: np.ndarray) -> int:
    """The ``i`` (modulo 32, where the column wraps) whose white column the (decoded, lossy) ``image`` shows."""
    column = image.astype(np.float32).mean(axis=(0, 2)) - image.astype(np.float32).mean()
    return int(np.argmax(column)) // 3


def _encode(
    codec: str, frames: range, size: tuple[int, int] = SIZE, options: dict | None = None, global_header: bool = False
) -> tuple[list, bytes | None]:
    """Packets (decode order, pts in 1/FPS) and extradata of ``frames`` encoded with ``codec``."""
    enc = av.CodecContext.create(codec, "w")
    enc.width, enc.height, enc.pix_fmt, enc.time_base = *size, "yuv420p", Fraction(1, FPS)
    if global_header:
        enc.flags |= av.codec.context.Flags.global_header  # extradata instead of in-band headers
    enc.options = dict(options or {})
    packets = []
    for i in frames:
        frame = av.VideoFrame.from_ndarray(picture(i, size), format="bgr24")
        frame.pts = i
        packets += enc.encode(frame)
    packets += enc.encode(None)
    return packets, enc.extradata


def _tone(stream, seconds: float) -> list:
    """Packets of a 440 Hz tone of ``seconds`` for ``stream`` (an audio stream added before any muxing)."""
    rate = stream.codec_context.sample_rate
    samples = int(rate * seconds)
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)).astype(np.float32)
    packets = []
    for k in range(0, samples, 1024):
        chunk = av.AudioFrame.from_ndarray(wave[None, k : k + 1024], format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts, chunk.time_base = rate, k, Fraction(1, rate)
        packets += stream.encode(chunk)
    packets += stream.encode(None)
    return packets


def swapped_pts(path: Path, frames: int = 30, audio: bool = False) -> Path:
    """MPEG-4 part 2 whose pts swap in every third pair (1, 2, 3, 5, 4, 6, 8, 7 …) while the dts keep order.

    The shape of a packed-bitstream DivX AVI as the decoder sees it. AVI stores no pts, so the
    container is whatever ``path`` names: MPEG-TS keeps pts and dts, Matroska keeps only the pts.
    """
    packets, extradata = _encode("mpeg4", range(frames), options={"g": "12", "bf": "0"})
    order = list(range(frames))
    for k in range(3, frames - 1, 3):
        order[k], order[k + 1] = order[k + 1], order[k]
    out = av.open(str(path), "w")
    video = out.add_stream("mpeg4", rate=FPS)
    video.width, video.height = SIZE
    video.time_base = Fraction(1, FPS)
    tone = _tone(out.add_stream("aac", rate=16000), frames / FPS) if audio else []
    for i, packet in enumerate(packets):
        packet.stream, packet.time_base = video, Fraction(1, FPS)
        packet.dts, packet.pts = i, order[i] + 1  # dts one frame early: a muxer refuses pts < dts
        out.mux(packet)
    for packet in tone:
        out.mux(packet)
    out.close()
    return path


def encoded_clip(
    path: Path,
    codec: str = "libx264",
    frames: int = 30,
    options: dict | None = None,
    audio: str | None = "aac",
    durations: tuple[int, ...] = (),
    rotation: int = 0,
    pix_fmt: str = "yuv420p",
) -> Path:
    """A clip in ``path``'s container: ``codec`` with ``options`` (B-frames, GOP), audio, VFR (durations in ms)."""
    out = av.open(str(path), "w")
    video = out.add_stream(codec, rate=FPS)
    video.width, video.height, video.pix_fmt = *SIZE, pix_fmt
    video.options = {"b": "2M", **(options or {})}  # a bitrate at which every frame's column shows
    if rotation:
        video.set_display_rotation(rotation)
    sound = out.add_stream(audio, rate=16000 if audio == "aac" else 48000) if audio else None
    tb = Fraction(1, 1000) if durations else Fraction(1, FPS)
    video.codec_context.time_base = tb
    t = 0
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(picture(i), format="bgr24")
        frame.pts, frame.time_base = t, tb
        out.mux(video.encode(frame))
        t += durations[i % len(durations)] if durations else 1
    out.mux(video.encode(None))
    if sound is not None:
        out.mux(_tone(sound, float(t * tb)))
    out.close()
    return path


def ts_with_adts(path: Path, frames: int = 30) -> Path:
    """MPEG-TS as broadcast and HLS recordings are: H.264 with B-frames and ADTS AAC audio."""
    return encoded_clip(path, "libx264", frames, {"preset": "ultrafast", "bf": "2", "g": "12"}, audio="aac")


def size_change(path: Path, sizes: tuple[tuple[int, int], ...] = ((96, 64), (64, 64)), frames: int = 12) -> Path:
    """H.264 in MPEG-TS whose frame size changes every ``frames`` frames (new SPS in-band), as after a cut."""
    out = av.open(str(path), "w", format="mpegts")
    video = out.add_stream("h264", rate=FPS)
    video.width, video.height = sizes[0]
    video.time_base = Fraction(1, FPS)
    for k, size in enumerate(sizes):
        packets, _ = _encode(
            "libx264", range(k * frames, (k + 1) * frames), size, {"preset": "ultrafast", "bf": "0", "g": "6"}
        )
        for packet in packets:
            packet.stream, packet.time_base = video, Fraction(1, FPS)
            out.mux(packet)
    out.close()
    return path
