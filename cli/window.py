"""The OpenCV front end of ``webcam``: a window on the main thread showing a live session.

OpenCV's highgui must run on the main thread; the pipeline's stages run on their own threads, so
this loop only waits for the session's newest output, draws the overlay, shows it and hands key
presses to the session (``realtime.session``), keeping only the window's own (overlay, fullscreen, help).
"""

from __future__ import annotations

import cv2
import numpy as np

from realtime.controls import Action, KeyBinding, binding_for_code, help_text
from realtime.errors import SinkError
from realtime.overlay import overlay_lines
from realtime.pipeline import Output, PipelineResult
from realtime.session import LiveSession
from realtime.stylizer import FrameStylizer


class OpenCVWindow:
    """An OpenCV window: shows frames, returns the bindings of pressed keys (QUIT when closed)."""

    def __init__(self, title: str = "stylizer", fullscreen: bool = False) -> None:
        self.title = title
        self.fullscreen = fullscreen
        self.overlay = True
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
        except cv2.error as exc:
            raise SinkError(f"cannot open a window ({exc.err}); no display? use --no-window") from exc
        self._apply_fullscreen()
        self._shown = False

    def _apply_fullscreen(self) -> None:
        mode = cv2.WINDOW_FULLSCREEN if self.fullscreen else cv2.WINDOW_NORMAL
        cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN, mode)

    def toggle_fullscreen(self) -> None:
        self.fullscreen = not self.fullscreen
        self._apply_fullscreen()

    def show(self, image: np.ndarray, wait_ms: int = 1) -> KeyBinding | None:
        """Display a frame and pump events; returns the binding of a pressed key."""
        if not self._shown:
            cv2.resizeWindow(self.title, image.shape[1], image.shape[0])
            self._shown = True
        cv2.imshow(self.title, image)
        return self.poll(wait_ms)

    def poll(self, wait_ms: int = 1) -> KeyBinding | None:
        code = cv2.waitKeyEx(wait_ms)
        if self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            return KeyBinding("q", Action.QUIT)  # the window was closed with the mouse
        return binding_for_code(code)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:  # already gone with the display
            pass


def draw_overlay(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """Draw ``lines`` top-left on a translucent box; returns a new frame, the input is untouched."""
    out = image.copy()
    scale = max(0.4, min(0.7, image.shape[1] / 1400))
    thick = 1
    sizes = [cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0] for line in lines]
    step = int(max((h for _, h in sizes), default=12) * 1.8)
    width = max((w for w, _ in sizes), default=0) + 16
    height = step * len(lines) + 8
    box = out[:height, :width]
    box[:] = (box.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken behind the text for contrast
    for i, line in enumerate(lines):
        cv2.putText(
            out, line, (8, step * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA
        )
    return out


class WindowFrontEnd:
    """Shows a live session in an OpenCV window on this (the main) thread until quit or the end."""

    def __init__(self, session: LiveSession, window: OpenCVWindow) -> None:
        self.session = session
        self.window = window

    def run(self, stylizer: FrameStylizer) -> PipelineResult:
        session, seq = self.session, 0
        try:
            session.start(stylizer)
            while not session.done:
                out = session.latest(after=seq, timeout=0.03)  # short: the window must keep pumping events
                if out is not None:
                    seq = out.seq
                    binding = self.window.show(self._with_overlay(out))
                else:
                    binding = self.window.poll(1)
                if binding is not None and self.handle_key(binding):
                    break
        except KeyboardInterrupt:
            session.stop("interrupted")
        finally:
            try:
                result = session.finish()
            finally:
                self.window.close()
        return result

    def _with_overlay(self, out: Output) -> np.ndarray:
        if not self.window.overlay:
            return out.image
        session = self.session
        state = out.state or session.stylizer.state
        extra = "REC" if session.recording else ""
        return draw_overlay(out.image, overlay_lines(state, session.pipeline.stats.snapshot(), extra))

    def handle_key(self, binding: KeyBinding) -> bool:
        """Carry out a key through the session, or here when it is the window's own; True when it means quit."""
        outcome = self.session.handle(binding)
        if outcome.message:
            print(outcome.message, flush=True)
        if outcome.handled:
            return outcome.action is Action.QUIT
        if outcome.action is Action.OVERLAY:
            self.window.overlay = not self.window.overlay
        elif outcome.action is Action.FULLSCREEN:
            self.window.toggle_fullscreen()
        elif outcome.action is Action.HELP:
            print(help_text(), flush=True)
        return False
