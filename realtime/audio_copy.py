"""The input's audio into an output container, packet by packet, up to the time the video has reached.

Copied as it is when the container can hold its codec, otherwise re-encoded (AAC, or Opus for
WebM, resampled to a rate the encoder takes). ADTS AAC (MPEG-TS: broadcast and HLS recordings)
goes into MP4/MOV through the ``aac_adtstoasc`` bitstream filter, which MP4 needs (the AAC config
moves from each packet's header into the file's header); where the filter cannot be set up the
audio is re-encoded. ``describe()`` says which. ``start`` makes the output's t = 0 a point inside the
input (a recording started mid-file). Used by the one-machine writer and by the cluster's join, so
both put the same packets at the same times.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class AudioCopy:
    """The first audio stream of ``source`` muxed into ``out`` (a PyAV output container) on demand."""

    def __init__(self, out, source: str | Path | None, suffix: str, start: float = 0.0) -> None:
        import av

        self.out = out
        self.input = None
        self.stream = None
        self.encoder = False
        self.filter = None  # a bitstream filter the copied packets go through (ADTS AAC into MP4)
        self.packets = None
        self.pending = None
        self.start = max(0.0, float(start))  # seconds into the source where the output's t = 0 is
        if source is None:
            return
        try:
            self.input = av.open(str(source))
        except (av.FFmpegError, OSError):
            return
        if not self.input.streams.audio:
            self.close()
            return
        stream = self.input.streams.audio[0]
        codec = stream.codec_context.name
        adts = is_adts_into_mp4(codec, stream, suffix)
        if codec in out.supported_codecs and (not adts or _has_filter("aac_adtstoasc")):
            try:
                self.stream = out.add_stream_from_template(stream)
            except (av.FFmpegError, ValueError) as exc:
                log.info("audio %s cannot be copied into %s (%s); re-encoding", codec, suffix, exc)
        if self.stream is not None and adts:
            from av.bitstream import BitStreamFilterContext

            self.filter = BitStreamFilterContext("aac_adtstoasc", stream)
            # The muxer writes its header before the first packet, which is where the filter finds the
            # config: take it from the first packet now (a second reader), so the header holds it.
            self.stream.codec_context.extradata = _asc_of(source, stream.index)
        if self.stream is None:
            target = "libopus" if suffix == ".webm" else "aac"
            # Opus only takes 8/12/16/24/48 kHz; PyAV resamples the decoded frames to the encoder's rate.
            rate, rates = stream.codec_context.sample_rate or 48000, av.Codec(target, "w").audio_rates
            self.stream = out.add_stream(target, rate=rate if not rates or rate in rates else 48000)
            self.encoder = True
            log.info("re-encoding audio %s → %s for %s", codec, target, suffix)
        if self.start > 0 and stream.time_base:
            try:
                self.input.seek(int(self.start / stream.time_base), stream=stream, backward=True)
            except av.FFmpegError as exc:
                log.info("cannot seek the audio of %s to %.2f s (%s); it starts from the top", source, self.start, exc)
                self.start = 0.0
        self.codec = self.stream.codec_context.name
        self.packets = self.input.demux(stream)

    @property
    def present(self) -> bool:
        return self.stream is not None

    def pump(self, until: float | None) -> None:
        """Mux input audio up to ``until`` seconds of the output (None: all of it)."""
        while self.packets is not None:
            packet = self.pending
            if packet is None:
                try:
                    packet = next(self.packets)
                except StopIteration:
                    self.packets = None
                    return
                if packet.pts is None and packet.size == 0:  # the demuxer's flush packet
                    continue
            t = float(packet.pts * packet.time_base) - self.start if packet.pts is not None else 0.0
            if until is not None and t > until:
                self.pending = packet
                return
            self.pending = None
            if t < 0:  # before the output's start (an AAC priming packet, or before a recording began)
                continue
            if self.encoder:
                for frame in packet.decode():
                    frame.pts = None  # the encoder numbers samples itself
                    self.out.mux(self.stream.encode(frame))
            else:
                if self.start:
                    shift = int(round(self.start / packet.time_base))
                    packet.pts -= shift
                    if packet.dts is not None:
                        packet.dts -= shift
                packet.stream = self.stream
                if self.filter is not None:
                    for filtered in self.filter.filter(packet):
                        filtered.stream = self.stream
                        self.out.mux(filtered)
                else:
                    self.out.mux(packet)

    def flush(self) -> None:
        """Drain the audio encoder (when re-encoding)."""
        if self.encoder and self.stream is not None:
            self.out.mux(self.stream.encode(None))

    def describe(self) -> str:
        if self.stream is None:
            return "none"
        if self.filter is not None:
            return "copied (ADTS AAC made MP4's by aac_adtstoasc)"
        return f"re-encoded to {self.codec}" if self.encoder else "copied"

    def close(self) -> None:
        if self.input is not None:
            self.input.close()
            self.input = None


MP4_SUFFIXES = (".mp4", ".m4v", ".mov")


def is_adts_into_mp4(codec: str, stream, suffix: str) -> bool:
    """AAC without an AudioSpecificConfig (ADTS, as MPEG-TS carries it) going into MP4/MOV, which needs one."""
    return codec == "aac" and not stream.codec_context.extradata and suffix in MP4_SUFFIXES


def _has_filter(name: str) -> bool:
    try:
        from av.bitstream import bitstream_filters_available
    except ImportError:  # an old PyAV without bitstream filters: re-encode instead
        return False
    return name in bitstream_filters_available


def _asc_of(source: str | Path, index: int) -> bytes | None:
    """The AudioSpecificConfig ``aac_adtstoasc`` makes of stream ``index``'s first ADTS packet."""
    import av
    from av.bitstream import BitStreamFilterContext

    with av.open(str(source)) as container:
        stream = container.streams[index]
        bsf = BitStreamFilterContext("aac_adtstoasc", stream)
        for packet in container.demux(stream):
            if packet.size:
                for out in bsf.filter(packet):
                    if out.has_sidedata("new_extradata"):
                        return bytes(out.get_sidedata("new_extradata"))
                return None
    return None
