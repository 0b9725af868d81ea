"""The style gallery: numbered thumbnails, the active one highlighted; "+" and drag and drop add more."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PyQt6.QtCore import QSize, Qt, pyqtSignal
from PyQt6.QtGui import QIcon, QImage, QPixmap
from PyQt6.QtWidgets import QHBoxLayout, QListView, QListWidget, QListWidgetItem, QToolButton, QWidget

from core.images import IMAGE_SUFFIXES
from gui.live_view import bgr_to_qimage

THUMB = QSize(96, 72)


def thumbnail(bgr: np.ndarray, size: QSize = THUMB) -> QImage:
    """A centre-cropped thumbnail filling ``size`` (built off the GUI thread by the style loader)."""
    h, w = bgr.shape[:2]
    scale = max(size.width() / w, size.height() / h)
    small = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    y = (small.shape[0] - size.height()) // 2
    x = (small.shape[1] - size.width()) // 2
    return bgr_to_qimage(small[y : y + size.height(), x : x + size.width()])


def image_paths(urls_or_paths: list[str | Path]) -> list[Path]:
    """The image files among dropped paths; folders contribute the images directly inside them."""
    found: list[Path] = []
    for item in urls_or_paths:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            found.append(path)
    return found


class StyleGallery(QWidget):
    """A horizontal strip of style thumbnails; emits ``style_chosen(index)`` on click."""

    style_chosen = pyqtSignal(int)
    add_requested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget(self)
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setFlow(QListView.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setIconSize(THUMB)
        self.list.setGridSize(QSize(THUMB.width() + 16, THUMB.height() + 30))
        self.list.setFixedHeight(THUMB.height() + 50)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the window's hotkeys
        self.list.setStyleSheet(
            "QListWidget { background: #1e1e22; border: none; }"
            "QListWidget::item { color: #ddd; border: 2px solid transparent; border-radius: 4px; }"
            "QListWidget::item:selected { background: #2d5b8c; border: 2px solid #5fa8ff; color: white; }"
        )
        self.list.itemClicked.connect(lambda item: self.style_chosen.emit(self.list.row(item)))
        self.add_button = QToolButton(self)
        self.add_button.setText("+")
        self.add_button.setToolTip("Add style images (or drop image files or a folder onto the window)")
        self.add_button.setFixedSize(40, THUMB.height() + 30)
        self.add_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.add_button.clicked.connect(self.add_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.add_button)

    def count(self) -> int:
        return self.list.count()

    def add_style(self, name: str, thumb: QImage | None = None) -> int:
        """Append a style (thumbnail now or later via :meth:`set_thumbnail`); returns its index."""
        index = self.list.count()
        item = QListWidgetItem(self._label(index, name))
        item.setToolTip(name)
        item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
        if thumb is not None:
            item.setIcon(QIcon(QPixmap.fromImage(thumb)))
        self.list.addItem(item)
        return index

    def set_thumbnail(self, index: int, thumb: QImage) -> None:
        self.list.item(index).setIcon(QIcon(QPixmap.fromImage(thumb)))

    def names(self) -> list[str]:
        return [self.list.item(i).toolTip() for i in range(self.list.count())]

    def set_active(self, index: int) -> None:
        if 0 <= index < self.list.count():
            self.list.setCurrentRow(index)
            self.list.scrollToItem(self.list.item(index))

    def active(self) -> int:
        return self.list.currentRow()

    @staticmethod
    def _label(index: int, name: str) -> str:
        short = name if len(name) <= 14 else name[:13] + "…"
        return f"{index + 1} {short}" if index < 9 else short
