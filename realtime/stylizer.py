"""The stylizer stage: one backend, a list of styles and the live parameters, changed by commands.

Commands (switch style, alpha, colour, blend, bypass, add style, size, temporal mode, backend) may
come from any thread (hotkeys, GUI); they are queued and applied at the start of the next
``process`` call, so a frame is always rendered with one consistent set of parameters.

One frame: resize → infer → temporal stage → upscale → colour. The temporal stage runs at
processing size and gets ``infer`` rather than a result, so it may skip inference between
keyframes; colour preservation comes last so it sees the full-resolution input. Whenever the
identity of the output changes (style, blend, alpha, colour mode, size, temporal mode, model or
backend), the temporal stage forgets what it held: it must never show the old look.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from models.base import StyleCode
from core.checks import finite, unit
from core.color import preserve_color_bgr
from core.errors import InputError
from core.images import resize_short
from models.styles import StyleCodeCache, StyleImage
from models.weights import WeightStore
from realtime.adaptive import AutoSize, SizeGovernor
from realtime.backends.base import Backend
from realtime.stats import StageStats
from realtime.temporal import check_mode, create_stage
from realtime.temporal.base import TemporalStage

log = logging.getLogger(__name__)

LOOK_FADE_S = 0.3  # live: a new look (style, strength, size...) fades in over this long instead of cutting
PROCESSING_SIZES = (0, 240, 360, 480, 720)  # short side in px; 0 = the frame's own size (CLI help, GUI menu)


def load_backend(
    model: str,
    backend: str = "auto",
    device: str = "cpu",
    precision: str = "auto",
    checkpoint: str | None = None,
    files: dict[str, Path] | None = None,
    store: WeightStore | None = None,
    live: bool = False,
) -> Backend:
    """A feed-forward model with its checkpoint, on a backend (``auto`` logs what it picked and why)."""
    from models.registry import create_model, default_store, require_feed_forward
    from realtime.backends.factory import create_backend

    require_feed_forward(model, "video and live views run a per-frame network")
    net = create_model(
        model,
        checkpoint=checkpoint,
        store=store or default_store(),
        files=files,
        device="cuda" if device.startswith("cuda") else "cpu",
    )
    return create_backend(backend, net.eval(), device, precision, live=live)


def build_stylizer(
    model: str,
    styles: list[str],
    backend: str = "auto",
    device: str = "cpu",
    precision: str = "auto",
    params: StylizerParams | None = None,
    checkpoint: str | None = None,
    files: dict[str, Path] | None = None,
    style_size: int = 512,
    live: bool = False,
) -> FrameStylizer:
    """Model, backend and styles (names or paths) → a ready stylizer; every input checked before the model loads."""
    from models.registry import default_store, require_feed_forward
    from models.styles import find_style

    require_feed_forward(model, "video and live views run a per-frame network")
    store = default_store()
    images = [StyleImage.load(find_style(s, store)) for s in styles]
    return FrameStylizer(
        load_backend(model, backend, device, precision, checkpoint, files, store, live),
        images,
        params,
        style_size=style_size,
    )


@dataclass(frozen=True)
class StylizerParams:
    """The parameters one frame is rendered with."""

    style_index: int = 0
    alpha: float = 1.0
    preserve_color: bool = False
    bypass: bool = False
    blend_index: int | None = None  # second style of a blend, or None
    mix: float = 0.0  # weight of the second style, 0..1
    size: int = 0  # processing short side in px, 0 = frame size
    temporal: str = "off"  # temporal stage: one of realtime.temporal.TEMPORAL_MODES
    stability: float = 0.85  # the temporal stage's strength, 0..1 (what it means depends on the mode)

    def identity(self) -> tuple:
        """What the output looks like; when it changes, temporal state must be forgotten."""
        return (
            self.style_index,
            self.alpha,
            self.preserve_color,
            self.bypass,
            self.blend_index,
            self.mix if self.blend_index is not None else 0.0,
            self.size,
            self.temporal,
        )


@dataclass(frozen=True)
class StylizerState:
    """A read-only snapshot for overlays and GUIs."""

    model: str
    backend: str
    styles: tuple[str, ...]
    style: str
    params: StylizerParams
    frames: int
    errors: int
    last_error: str
    size_note: str = ""  # live: why the governor chose the size in use ("" with a fixed size)

    @property
    def blend_style(self) -> str | None:
        i = self.params.blend_index
        return self.styles[i] if i is not None and i < len(self.styles) else None

    def describe(self) -> str:
        """One line: style (with blend), alpha and flags."""
        p = self.params
        style = self.style if not self.blend_style or p.mix <= 0 else f"{self.style}+{self.blend_style} {p.mix:.2f}"
        flags = [f for f, on in (("colour", p.preserve_color), ("bypass", p.bypass)) if on]
        if p.temporal != "off":
            flags.append(f"{p.temporal} {p.stability:.2f}")
        size = f"  {p.size} px" if p.size else ""
        if self.size_note.startswith("auto"):
            size = f"  {p.size} px (auto)" if p.size else "  auto"
        return f"{style}  alpha {p.alpha:.2f}{size}" + (f"  [{', '.join(flags)}]" if flags else "")


class FrameStylizer:
    """Stylises frames with a backend; thread-safe commands change styles and parameters between frames."""

    def __init__(
        self,
        backend: Backend,
        styles: list[StyleImage],
        params: StylizerParams | None = None,
        cache: StyleCodeCache | None = None,
        style_size: int = 512,
    ) -> None:
        if not styles:
            raise InputError("the stylizer needs at least one style image")
        self.backend = backend
        self.cache = (
            cache if cache is not None else StyleCodeCache()
        )  # an empty cache passed in is still the one to fill
        self.style_size = style_size
        self._styles: list[StyleImage] = list(styles)
        self._codes: list[StyleCode] = [self._encode(s) for s in self._styles]
        self._params = params or StylizerParams()
        self._check(self._params)
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.live = False  # a live session: the flow stage then runs the network asynchronously
        self.keyframe_stats = StageStats("keyframe")  # every network run (all of them, unless flow skips some)
        self.governor: SizeGovernor | AutoSize | None = None  # live: adapts the processing size to measured costs
        self._sync_infer_s = 0.0  # network time spent inside process() itself (a restart), not per-frame work
        self._process_thread: int | None = None
        self._last_out: np.ndarray | None = None  # live: the frame shown last, the start of a look's fade-in
        self._fade_from: np.ndarray | None = None  # live: the old look, while a new one fades in over it
        self._fade_start: float | None = None
        self._stage: TemporalStage = create_stage(self._params.temporal, self._params.stability)
        self._code: StyleCode | None = None  # the code for the current params, rebuilt when they change
        self._frames = 0
        self._errors = 0
        self._last_error = ""
        self._state_lock = threading.Lock()
        self._state = self._make_state()

    # ----- commands: callable from any thread, applied before the next frame -----

    def select_style(self, index: int) -> None:
        self._submit(lambda: self._update(style_index=self._wrap(index, strict=True)))

    def next_style(self) -> None:
        self._submit(lambda: self._update(style_index=self._wrap(self._params.style_index + 1)))

    def prev_style(self) -> None:
        self._submit(lambda: self._update(style_index=self._wrap(self._params.style_index - 1)))

    def set_alpha(self, alpha: float) -> None:
        alpha = unit(alpha, "alpha")
        self._submit(lambda: self._update(alpha=alpha))

    def change_alpha(self, delta: float) -> None:
        self._submit(lambda: self._update(alpha=min(1.0, max(0.0, round(self._params.alpha + delta, 3)))))

    def set_preserve_color(self, on: bool) -> None:
        self._submit(lambda: self._update(preserve_color=bool(on)))

    def toggle_preserve_color(self) -> None:
        self._submit(lambda: self._update(preserve_color=not self._params.preserve_color))

    def set_bypass(self, on: bool) -> None:
        self._submit(lambda: self._update(bypass=bool(on)))

    def toggle_bypass(self) -> None:
        self._submit(lambda: self._update(bypass=not self._params.bypass))

    def set_blend(self, second: int | None, mix: float) -> None:
        """Blend the current style with style ``second`` (None = no blend); ``mix`` is its weight."""
        mix = unit(mix, "blend mix")
        self._submit(
            lambda: self._update(blend_index=None if second is None else self._wrap(second, strict=True), mix=mix)
        )

    def set_size(self, size: int) -> None:
        if size < 0:
            raise InputError(f"processing size must be 0 (frame size) or a positive short side, got {size}")
        self._submit(lambda: self._update(size=int(size)))

    def set_stability(self, strength: float) -> None:
        strength = unit(strength, "stability strength")
        self._submit(lambda: self._update(stability=strength))

    def set_temporal(self, mode: str, strength: float | None = None) -> None:
        """Switch the temporal stage (off, hold, flow), optionally with a new strength."""
        mode = check_mode(mode)
        changes = {"temporal": mode}
        if strength is not None:
            changes["stability"] = unit(strength, "stability strength")
        self._submit(lambda: self._update(**changes))

    def set_target_fps(self, fps: float | None) -> None:
        """Live sessions: adjust the processing size so keyframes come at about ``fps`` (None: fixed size)."""
        if fps is not None and finite(fps, "target fps") <= 0:
            raise InputError(f"target fps must be above 0, got {fps}")
        governor = SizeGovernor(fps) if fps else None
        self._submit(lambda: setattr(self, "governor", governor))

    def set_auto_size(self) -> None:
        """Live sessions: the largest size that shows every frame with ≥ 8 keyframes/s (``--size auto``)."""
        governor = AutoSize()
        self._submit(lambda: setattr(self, "governor", governor))

    def set_live(self, live: bool) -> None:
        """Live semantics for the temporal stage (the pipeline says so when it starts)."""
        live = bool(live)

        def apply() -> None:
            if live != self.live:
                self.live = live
                self._stage.close()
                self._stage = create_stage(self._params.temporal, self._params.stability, live)

        self._submit(apply)

    def reset_temporal(self) -> None:
        """Forget held frames before the next one (the source was reopened or jumped)."""
        self._submit(lambda: self._stage.reset())  # the stage in use when applied, not when asked

    def add_style(self, style: StyleImage | str | Path, select: bool = True) -> None:
        """Encode a style now (in the caller's thread) and append it; selecting it takes effect next frame."""
        image = style if isinstance(style, StyleImage) else StyleImage.load(style)
        code = self._encode(image)

        def apply() -> None:
            self._styles.append(image)
            self._codes.append(code)
            if select:
                self._update(style_index=len(self._styles) - 1)

        self._submit(apply)

    def set_backend(self, backend: Backend) -> None:
        """Switch backend (and with it possibly the model); styles are re-encoded in the caller's thread."""
        styles = list(self._styles)  # a snapshot; styles added meanwhile are encoded when applied
        codes = [self.cache.get(backend.model, s, self.style_size) for s in styles]

        def apply() -> None:
            old = self.backend
            self.backend = backend
            self._codes = codes + [self._encode(s) for s in self._styles[len(codes) :]]
            self._code = None
            self._stage.reset()  # another model or backend: the held output is another look
            if old is not backend:
                self._stage.quiesce()  # a live keyframe may still be running on the old backend
                old.close()

        self._submit(apply)

    def apply_pending(self) -> None:
        """Apply queued commands now; ``process`` does this itself before each frame."""
        changed = False
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                break
            try:
                command()
            except Exception as exc:  # a bad command must not stop the stream; report and go on
                log.warning("stylizer command failed: %s", exc)
                self._last_error = str(exc)
            changed = True
        if changed:
            self._publish()

    # ----- per frame -----

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Stylise one uint8 BGR frame with the current parameters; returns a frame of the same size."""
        self.apply_pending()
        start = time.perf_counter()
        self._process_thread, self._sync_infer_s = threading.get_ident(), 0.0
        if isinstance(self.governor, AutoSize) and self.live and not self._params.size:
            self._update(size=self.governor.start_size(min(frame.shape[:2])))
        p = self._params
        try:
            if p.bypass:
                out = frame
            else:
                small = resize_short(frame, p.size, upscale=False)
                out = self._stage.step(small, self._inference(self.backend, self._current_code(), p.alpha))
                if out.shape[:2] != frame.shape[:2]:
                    out = cv2.resize(out, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
                if p.preserve_color:
                    out = preserve_color_bgr(out, frame)
        except Exception as exc:
            self._errors += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
            self._publish()
            raise
        if self.live:
            out = self._fade_look(out)
        self._frames += 1
        if self.governor is not None and self.live and not p.bypass:
            now = time.perf_counter()
            note = self.governor.reason
            size = self.governor.observe(
                now, self.keyframe_stats.frames, p.size, min(frame.shape[:2]), now - start - self._sync_infer_s
            )
            if size is not None:
                self._update(size=size)
            if size is not None or note != self.governor.reason:
                self._publish()
        if self._frames % 16 == 0:  # the counters in the snapshot need not be exact per frame
            self._publish()
        return out

    @property
    def state(self) -> StylizerState:
        """The latest snapshot (immutable; safe to read from any thread)."""
        with self._state_lock:
            return self._state

    @property
    def fading(self) -> bool:
        """Live: a new look is still fading in over the old one (``LOOK_FADE_S``)."""
        return self._fade_from is not None

    @property
    def styles(self) -> list[StyleImage]:
        return list(self._styles)

    def close(self) -> None:
        self._stage.close()
        self.backend.close()

    # ----- internals -----

    def _fade_look(self, out: np.ndarray) -> np.ndarray:
        """Live: a new look blended over the last frame of the old one, for ``LOOK_FADE_S`` from its first frame.

        The temporal stage was reset behind the change, so nothing of the old look is carried on;
        only the frame shown last fades out (a still image: short, so a moving scene shows no trail).
        """
        old = self._fade_from
        if old is not None and old.shape == out.shape:
            now = time.perf_counter()
            if self._fade_start is None:
                self._fade_start = now
            ramp = (now - self._fade_start) / LOOK_FADE_S
            if ramp < 1.0:
                out = cv2.addWeighted(out, max(ramp, 0.1), old, 1.0 - max(ramp, 0.1), 0.0)
            else:
                self._fade_from = None
        else:
            self._fade_from = None
        self._last_out = out
        return out

    def _submit(self, command: Callable[[], None]) -> None:
        self._commands.put(command)

    def _update(self, **changes) -> None:
        old, new = self._params, replace(self._params, **changes)
        self._check(new)
        if (new.style_index, new.blend_index, new.mix) != (old.style_index, old.blend_index, old.mix):
            self._code = None
        if new.temporal != old.temporal:
            self._stage.close()
            self._stage = create_stage(new.temporal, new.stability, self.live)
        elif new.stability != old.stability:
            self._stage.strength = new.stability
        if new.identity() != old.identity():
            self._stage.reset()  # what it holds belongs to the old look
            if new.bypass != old.bypass:  # bypass is a before/after comparison: it cuts, both ways
                self._fade_from = None
            elif self.live and self._last_out is not None:
                self._fade_from, self._fade_start = self._last_out, None
        self._params = new

    def _inference(self, backend: Backend, code: StyleCode, alpha: float) -> Callable[[np.ndarray], np.ndarray]:
        """The network with this frame's backend, code and alpha fixed (a live stage may run it later)."""
        stats = self.keyframe_stats

        def infer(image: np.ndarray) -> np.ndarray:
            start = time.perf_counter()
            out = backend.run(image, code, alpha)
            spent = time.perf_counter() - start
            stats.record(spent)
            if threading.get_ident() == self._process_thread:  # a restart, not the keyframe thread
                self._sync_infer_s += spent
            return out

        return infer

    def _check(self, p: StylizerParams) -> None:
        unit(p.alpha, "alpha")
        unit(p.mix, "blend mix")
        unit(p.stability, "stability strength")
        check_mode(p.temporal)
        if not 0 <= p.style_index < len(self._styles):
            raise InputError(f"style {p.style_index + 1} does not exist; there are {len(self._styles)} styles")

    def _wrap(self, index: int, strict: bool = False) -> int:
        n = len(self._styles)
        if strict and not 0 <= index < n:
            raise InputError(f"style {index + 1} does not exist; there are {n} styles")
        return index % n

    def _encode(self, style: StyleImage) -> StyleCode:
        return self.cache.get(self.backend.model, style, self.style_size)

    def _current_code(self) -> StyleCode:
        if self._code is None:
            p = self._params
            code = self._codes[p.style_index]
            if p.blend_index is not None and p.mix > 0:
                code = StyleCode.blend([code, self._codes[p.blend_index]], [1.0 - p.mix, p.mix])
            self._code = code
        return self._code

    def _make_state(self) -> StylizerState:
        names = tuple(s.name for s in self._styles)
        return StylizerState(
            model=self.backend.model.name,
            backend=str(self.backend.info),
            styles=names,
            style=names[self._params.style_index],
            params=self._params,
            frames=self._frames,
            errors=self._errors,
            last_error=self._last_error,
            size_note=self.governor.reason if self.governor is not None and self.live else "",
        )

    def _publish(self) -> None:
        state = self._make_state()
        with self._state_lock:
            self._state = state
