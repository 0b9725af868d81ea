"""The live view: the newest stylised frame scaled to fit, with an optional text overlay."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget


def bgr_to_qimage(bgr: np.ndarray) -> QImage:
    """A deep-copied QImage of a uint8 BGR frame (safe to build off the GUI thread and keep)."""
    bgr = np.ascontiguousarray(bgr)
    h, w = bgr.shape[:2]
    return QImage(bgr.data, w, h, bgr.strides[0], QImage.Format.Format_BGR888).copy()


class LiveView(QWidget):
    """Paints the last frame given to :meth:`show_frame`, letterboxed, plus overlay lines."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._image: QImage | None = None
        self._lines: list[str] = []
        self._placeholder = "Opening the source…"
        self.overlay_visible = True
        self.frames_shown = 0

    def show_frame(self, image: QImage) -> None:
        self._image = image
        self.frames_shown += 1
        self.update()  # Qt merges pending updates: at most one paint per event-loop turn

    def set_overlay(self, lines: list[str]) -> None:
        self._lines = lines
        if self.overlay_visible:
            self.update()

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def toggle_overlay(self) -> bool:
        self.overlay_visible = not self.overlay_visible
        self.update()
        return self.overlay_visible

    @property
    def image(self) -> QImage | None:
        return self._image

    def image_rect(self) -> QRectF:
        """Where the frame is drawn: as large as fits, aspect kept, centred."""
        if self._image is None or self._image.isNull():
            return QRectF()
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(18, 18, 20))
        if self._image is None:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._placeholder)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        target = self.image_rect()
        painter.drawImage(target, self._image)
        if self.overlay_visible and self._lines:
            self._paint_overlay(painter, target)

    def _paint_overlay(self, painter: QPainter, target: QRectF) -> None:
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, self.font().pointSizeF()))
        font.setFamily("DejaVu Sans Mono")
        painter.setFont(font)
        metrics = painter.fontMetrics()
        pad, line_h = 6, metrics.height()
        width = max(metrics.horizontalAdvance(line) for line in self._lines) + 2 * pad
        box = QRectF(target.left() + 8, target.top() + 8, width, line_h * len(self._lines) + 2 * pad)
        painter.fillRect(box, QColor(0, 0, 0, 150))
        painter.setPen(QColor(235, 235, 235))
        for i, line in enumerate(self._lines):
            painter.drawText(int(box.left() + pad), int(box.top() + pad + metrics.ascent() + i * line_h), line)
