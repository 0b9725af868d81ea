"""Write stylised frames to a video file with PyAV, copying the input's audio in sync.

Video frames keep the source's presentation times (so frame rate, count and duration match the
input, variable rate included). The input's first audio stream is remuxed packet by packet,
interleaved with the video as it is written; it is re-encoded (AAC, or Opus for WebM) only when
the output container cannot hold its codec. ``close()`` always flushes the encoder and writes
the trailer, so an interrupted job leaves a playable file of the frames done so far, with the
audio cut at the same point.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from models.errors import SinkError

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class VideoOptions:
    """Encoder settings for the output file."""

    codec: str | None = None  # None: libx264 where the container takes it, else the container's default
    crf: int = 18
    preset: str = "veryfast"
    pix_fmt: str = "yuv420p"
    size: tuple[int, int] | None = None  # (width, height) to scale to; None keeps the frame size
    audio: bool = True


class VideoFileWriter:
    """A video file being written; frames in with their timestamps, audio copied from ``audio_from``."""

    def __init__(self, path: str | Path, rate: Fraction | float, options: VideoOptions | None = None,
                 audio_from: str | Path | None = None, time_base: Fraction | None = None,
                 audio_start: float = 0.0) -> None:
        import av

        self.path = Path(path)
        self.options = options or VideoOptions()
        self.rate = Fraction(rate).limit_denominator(1001) if not isinstance(rate, Fraction) else rate
        # Frame times are given in seconds and stored in this base; 1/90000 is exact for 24/25/30/60 fps.
        self.time_base = time_base or Fraction(1, 90000)
        try:
            self._out = av.open(str(self.path), mode="w")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise SinkError(f"cannot create {self.path}: {exc}") from exc
        self.codec = self._pick_codec(self.options.codec)
        self._video = None
        self._audio_in = None
        self._audio_out = None
        self._audio_packets = None
        self._audio_encoder = False
        self._next_audio = None
        self._audio_start = max(0.0, float(audio_start))  # seconds into audio_from where this file's t=0 is
        self._last_pts = -1
        self.frames = 0
        self.last_time = 0.0
        self.closed = False
        if audio_from is not None and self.options.audio:
            self._open_audio(audio_from)

    def _pick_codec(self, codec: str | None) -> str:
        import av

        supported = self._out.supported_codecs
        if codec is None:
            return "libx264" if "libx264" in supported else self._out.default_video_codec
        if codec not in supported:
            self._out.close()
            if codec not in av.codecs_available:
                raise SinkError(f"unknown video codec {codec!r}; try --codec {self._out.default_video_codec}")
            raise SinkError(f"{self.path.suffix or 'this'} files cannot hold video codec {codec!r}; "
                            f"use .mp4/.mkv or --codec {self._out.default_video_codec}")
        return codec

    # ----- audio -----

    def _open_audio(self, source: str | Path) -> None:
        import av

        try:
            self._audio_in = av.open(str(source))
        except (av.FFmpegError, OSError):
            return
        if not self._audio_in.streams.audio:
            self._audio_in.close()
            self._audio_in = None
            return
        stream = self._audio_in.streams.audio[0]
        codec = stream.codec_context.name
        if codec in self._out.supported_codecs:
            try:
                self._audio_out = self._out.add_stream_from_template(stream)
            except (av.FFmpegError, ValueError) as exc:
                log.info("audio %s cannot be copied into %s (%s); re-encoding", codec, self.path.suffix, exc)
        if self._audio_out is None:
            target = "libopus" if self.path.suffix.lower() == ".webm" else "aac"
            # Opus only takes 8/12/16/24/48 kHz; PyAV resamples the decoded frames to the encoder's rate.
            rate, rates = stream.codec_context.sample_rate or 48000, av.Codec(target, "w").audio_rates
            self._audio_out = self._out.add_stream(target, rate=rate if not rates or rate in rates else 48000)
            self._audio_encoder = True
            log.info("re-encoding audio %s → %s for %s", codec, target, self.path.name)
        self._audio_stream_in = stream
        if self._audio_start > 0 and stream.time_base:  # a recording started mid-file: audio from there
            try:
                self._audio_in.seek(int(self._audio_start / stream.time_base), stream=stream, backward=True)
            except av.FFmpegError as exc:
                log.info("cannot seek the audio of %s to %.2f s (%s); it starts from the top", source,
                         self._audio_start, exc)
                self._audio_start = 0.0
        self._audio_packets = self._audio_in.demux(stream)

    def _pump_audio(self, until: float | None) -> None:
        """Mux input audio up to time ``until`` (seconds; None = all of it)."""
        if self._audio_packets is None:
            return
        while True:
            packet = self._next_audio
            if packet is None:
                try:
                    packet = next(self._audio_packets)
                except StopIteration:
                    self._audio_packets = None
                    return
                if packet.pts is None and packet.size == 0:  # demuxer's flush packet
                    continue
            t = float(packet.pts * packet.time_base) - self._audio_start if packet.pts is not None else 0.0
            if until is not None and t > until:
                self._next_audio = packet
                return
            self._next_audio = None
            if t < 0:  # before the point this file starts at
                continue
            if self._audio_start and not self._audio_encoder:
                shift = int(round(self._audio_start / packet.time_base))
                packet.pts -= shift
                if packet.dts is not None:
                    packet.dts -= shift
            if self._audio_encoder:
                for frame in packet.decode():
                    frame.pts = None  # the encoder numbers samples itself
                    self._out.mux(self._audio_out.encode(frame))
            else:
                packet.stream = self._audio_out
                self._out.mux(packet)

    # ----- video -----

    def _open_video(self, width: int, height: int) -> None:
        import av

        opts, codec = self.options, self.codec
        try:
            stream = self._out.add_stream(codec, rate=self.rate)
        except (av.FFmpegError, ValueError) as exc:
            raise SinkError(f"video codec {codec!r} is not available: {exc}; try --codec libx264") from exc
        stream.pix_fmt = opts.pix_fmt if codec != "libx264rgb" else "bgr24"
        width, height = opts.size or (width, height)
        fmt = av.VideoFormat(stream.pix_fmt)
        # Subsampled chroma (yuv420p) needs even sides: drop the odd last column/row rather than fail.
        even_w, even_h = fmt.chroma_width(2) < 2, fmt.chroma_height(2) < 2
        stream.width, stream.height = width - (width % 2 if even_w else 0), height - (height % 2 if even_h else 0)
        if (stream.width, stream.height) != (width, height):
            log.info("%s: %dx%d cropped to %dx%d (%s needs even sides)", self.path.name, width, height,
                     stream.width, stream.height, stream.pix_fmt)
        stream.codec_context.time_base = self.time_base
        encoder = stream.codec_context.codec.name  # "vp9" and "h264" name libvpx-vp9 and libx264
        if encoder in ("libx264", "libx265"):
            stream.options = {"crf": str(opts.crf), "preset": opts.preset}
        elif encoder.startswith("libvpx"):
            stream.options = {"crf": str(opts.crf), "b": "0"}
        self._video = stream

    def write(self, image: np.ndarray, timestamp: float) -> None:
        """Encode one uint8 BGR frame shown at ``timestamp`` seconds."""
        import av

        if self._video is None:
            self._open_video(image.shape[1], image.shape[0])
        pts = int(round(timestamp / self.time_base))
        if pts <= self._last_pts:  # encoders need strictly increasing times
            pts = self._last_pts + 1
        self._last_pts = pts
        size = self._video.width, self._video.height
        if not self.options.size and (image.shape[1], image.shape[0]) != size:
            image = np.ascontiguousarray(image[:size[1], :size[0]])  # odd sides cropped to even
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        if (frame.width, frame.height) != size:
            frame = frame.reformat(width=size[0], height=size[1])
        frame.pts = pts
        frame.time_base = self.time_base
        try:
            # Never ahead of the video: a cut-off file stays in sync. The first mux opens every encoder.
            self._pump_audio(timestamp)
            self._out.mux(self._video.encode(frame))
        except (av.FFmpegError, OSError) as exc:
            raise SinkError(f"cannot write frame {self.frames} to {self.path}: {exc}") from exc
        self.frames += 1
        self.last_time = timestamp

    def close(self, complete: bool = True) -> None:
        """Flush the encoders and write the trailer; audio ends with the video unless ``complete``."""
        if self.closed:
            return
        self.closed = True
        try:
            if self._video is not None:
                self._out.mux(self._video.encode(None))
                end = None if complete else self.last_time + float(1 / self.rate)
                self._pump_audio(end)
                if self._audio_encoder and self._audio_out is not None:
                    self._out.mux(self._audio_out.encode(None))
        finally:
            self._out.close()
            if self._audio_in is not None:
                self._audio_in.close()
