"""Join encoded chunks into one file by stream copy (no re-encoding) and mux the input's audio back in.

Every chunk was encoded with the same settings, so their streams share one codec configuration
and the packets can follow each other in one container. Each chunk's packets are placed at the
times the one-machine run gives its frames (the chunk's first frame at its source time), so the
joined file has the same timestamps, variable frame rate included. The audio is copied packet by
packet from the input as the one-machine writer does (re-encoded to AAC, or Opus for WebM, only
when the container cannot hold its codec), interleaved with the video. The file is written as
``<output>.part`` and renamed when complete, so a half-joined file never has the output's name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from core.atomic import PartFile
from realtime.audio_copy import AudioCopy
from realtime.errors import SinkError
from realtime.video_writer import check_video_suffix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkFile:
    """A finished chunk on disk and the source time of its first frame."""

    path: Path
    first_time: float
    frames: int


@dataclass(frozen=True)
class JoinResult:
    output: Path
    frames: int
    audio: str  # "copied", "re-encoded to aac", "none"


def muxer_for(path: Path) -> str:
    """The muxer for ``path``'s suffix (the one-machine writer's), or a SinkError naming the ones that work."""
    return check_video_suffix(path)


def join_chunks(
    chunks: list[ChunkFile], output: Path, audio_from: Path | None = None, target: PartFile | None = None
) -> JoinResult:
    """Stream-copy ``chunks`` (in order) into ``output`` with the audio of ``audio_from``; atomic rename.

    ``target`` is the job's own ``PartFile`` of ``output`` when it already holds its lock.
    """
    import av

    if not chunks:
        raise SinkError("nothing to join: the job has no finished chunks")
    output = Path(output)
    target = target or PartFile(output)  # the one-machine writer's rule: <output>.part, renamed when whole
    part = target.create()
    try:
        out = av.open(str(part), mode="w", format=muxer_for(output))
    except (av.FFmpegError, OSError, ValueError) as exc:
        target.discard()
        raise SinkError(f"cannot create {part}: {exc}") from exc
    audio = AudioCopy(out, audio_from, output.suffix.lower())
    frames = 0
    try:
        first = av.open(str(chunks[0].path))
        try:
            template = first.streams.video[0]
            video = out.add_stream_from_template(template)
            video.time_base = template.time_base
            extradata = template.codec_context.extradata
        finally:
            first.close()
        last_dts: int | None = None
        for chunk in chunks:
            with av.open(str(chunk.path)) as container:
                stream = container.streams.video[0]
                if stream.codec_context.extradata != extradata:
                    raise SinkError(
                        f"{chunk.path.name} was encoded with other settings than the first chunk; "
                        "remove the work folder and run the job again"
                    )
                packets = [p for p in container.demux(stream) if p.size]
                if not packets:
                    raise SinkError(f"{chunk.path.name} holds no video; remove it and run the job again")
                tb = stream.time_base
                # Where the one-machine writer puts this frame: round(t / (1/90000)) ticks, rescaled.
                want = int(round(int(round(chunk.first_time / Fraction(1, 90000))) * Fraction(1, 90000) / tb))
                shift = want - min(p.pts for p in packets)
                strict = all(p.dts is not None for p in packets)
                if not strict:
                    _decode_times(packets)  # Matroska stores presentation times only (and allows equal dts)
                for packet in packets:
                    packet.pts += shift
                    packet.dts += shift
                    # Two chunks' B-frame delays may overlap: decode times must still not go back.
                    if last_dts is not None and (packet.dts < last_dts or (strict and packet.dts == last_dts)):
                        packet.dts = last_dts + int(strict)
                        if packet.dts > packet.pts:
                            raise SinkError(
                                f"cannot join {chunk.path.name}: its decode times overlap the "
                                "previous chunk's; use --codec with fewer B-frames"
                            )
                    last_dts = packet.dts
                    audio.pump(float(packet.dts * tb))
                    packet.stream = video
                    out.mux(packet)
                frames += len(packets)
        audio.pump(None)
        audio.flush()
    except BaseException:
        out.close()
        audio.close()
        target.discard()  # an existing output stays as it was
        raise
    out.close()
    audio.close()
    target.commit()
    return JoinResult(output, frames, audio.describe())


def _decode_times(packets: list) -> None:
    """Decode times for packets in decode order that lack them: the smallest pts from there on.

    Never after its own pts, never decreasing: what a muxer needs; Matroska readers ignore it anyway.
    """
    low = None
    for packet in reversed(packets):
        low = packet.pts if low is None else min(low, packet.pts)
        packet.dts = low
