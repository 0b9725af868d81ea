"""The keyframe preview: Gatys on one grabbed frame, beside the feed-forward result, with save buttons."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import (
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.errors import StylizerError
from gui.gatys_worker import GatysModelHolder, GatysWorker, KeyframeJob
from gui.live_view import bgr_to_qimage

log = logging.getLogger(__name__)
PANE = 480  # px: each result is shown at most this large


class KeyframeDialog(QDialog):
    """Non-modal dialog; :meth:`start` runs Gatys in a background thread."""

    result_ready = pyqtSignal(object)  # uint8 BGR gatys result

    def __init__(
        self,
        content: np.ndarray,
        feed_forward: np.ndarray,
        style: np.ndarray,
        style_name: str,
        model_name: str,
        save_dir: Path,
        iterations: int = 100,
        size: int = 256,
        models: GatysModelHolder | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Keyframe preview — {style_name}")
        self.content, self.feed_forward, self.style = content, feed_forward, style
        self.style_name, self.save_dir = style_name, save_dir
        self.gatys: np.ndarray | None = None
        self.worker: GatysWorker | None = None
        self.models = models or GatysModelHolder()

        self.iterations = QSpinBox()
        self.iterations.setRange(1, 5000)
        self.iterations.setValue(iterations)
        self.size = QSpinBox()
        self.size.setRange(32, 2048)
        self.size.setSingleStep(32)
        self.size.setValue(size)
        self.size.setSuffix(" px")
        self.style_weight = self._weight_box("style_weight")
        self.content_weight = self._weight_box("content_weight")
        params = QFormLayout()
        params.addRow("Iterations", self.iterations)
        params.addRow("Size (longest side)", self.size)
        params.addRow("Style weight", self.style_weight)
        params.addRow("Content weight", self.content_weight)

        self.run_button = QPushButton("Run Gatys")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.losses = QLabel("")
        self.losses.setStyleSheet("font-family: monospace")
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)

        self.ff_view = self._pane()
        self.gatys_view = self._pane()
        self.ff_view.setPixmap(self._pixmap(feed_forward))
        self.gatys_view.setText("Gatys result appears here")
        self.save_ff = QPushButton(f"Save feed-forward ({model_name})…")
        self.save_gatys = QPushButton("Save Gatys…")
        self.save_gatys.setEnabled(False)
        self.save_ff.clicked.connect(lambda: self.save(self.feed_forward, f"{style_name}_{model_name}"))
        self.save_gatys.clicked.connect(lambda: self.save(self.gatys, f"{style_name}_gatys"))
        grid = QGridLayout()
        grid.addWidget(QLabel(f"<b>Feed-forward</b> ({model_name})"), 0, 0)
        grid.addWidget(QLabel("<b>Gatys</b> (optimisation)"), 0, 1)
        grid.addWidget(self.ff_view, 1, 0)
        grid.addWidget(self.gatys_view, 1, 1)
        grid.addWidget(self.save_ff, 2, 0)
        grid.addWidget(self.save_gatys, 2, 1)

        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(params)
        layout.addLayout(buttons)
        layout.addWidget(self.losses)
        layout.addLayout(grid)

    @staticmethod
    def _weight_box(field: str) -> QDoubleSpinBox:
        from models.gatys import GatysConfig

        box = QDoubleSpinBox()
        box.setDecimals(4)
        box.setRange(0.0, 1e9)
        box.setValue(float(getattr(GatysConfig(), field)))
        return box

    @staticmethod
    def _pane() -> QLabel:
        label = QLabel()
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setMinimumSize(PANE, PANE * 9 // 16)
        label.setStyleSheet("background: #1e1e22; color: #aaa")
        return label

    @staticmethod
    def _pixmap(bgr: np.ndarray) -> QPixmap:
        pix = QPixmap.fromImage(bgr_to_qimage(bgr))
        return pix.scaled(PANE, PANE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)

    # -- running ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.running

    def start(self) -> None:
        if self.running:
            return
        job = KeyframeJob(
            self.content,
            self.style,
            iterations=self.iterations.value(),
            size=self.size.value(),
            style_size=self.size.value(),
            content_weight=self.content_weight.value(),
            style_weight=self.style_weight.value(),
        )
        self.progress.setRange(0, job.iterations)
        self.progress.setValue(0)
        self.losses.setText("starting…")
        self.worker = GatysWorker(job, self.models)
        self.worker.progress.connect(self._on_progress)
        self.worker.result.connect(self._on_finished)
        self.worker.cancelled.connect(lambda: self._ended("cancelled"))
        self.worker.errored.connect(lambda msg: self._ended(f"error: {msg}"))
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.worker.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.abort()
            self.losses.setText("cancelling…")

    def _on_progress(self, report: tuple[int, dict]) -> None:
        step, losses = report
        self.progress.setValue(min(step, self.progress.maximum()))
        shown = "  ".join(f"{k} {v:.3g}" for k, v in losses.items())
        self.losses.setText(f"iteration {step}/{self.progress.maximum()}  {shown}")

    def _on_finished(self, image: np.ndarray | None) -> None:
        if image is None:
            return
        self.gatys = image
        self.gatys_view.setPixmap(self._pixmap(image))
        self.save_gatys.setEnabled(True)
        self.progress.setValue(self.progress.maximum())
        self._ended(self.losses.text().replace("iteration", "done:", 1))
        self.result_ready.emit(image)

    def _ended(self, text: str) -> None:
        self.losses.setText(text)
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def save(self, image: np.ndarray | None, stem: str, path: Path | None = None) -> Path | None:
        """Write ``image`` as PNG (asks where unless ``path`` is given); errors are shown, not raised."""
        from core.images import save_image

        if image is None:
            return None
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(
                self, "Save image", str(self.save_dir / f"{stem}.png"), "Images (*.png *.jpg)"
            )
            if not chosen:
                return None
            path = Path(chosen)
        try:
            return save_image(image, path)
        except StylizerError as exc:
            self.losses.setText(f"error: {exc}")
            return None

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self, timeout_ms: int = 2000) -> bool:
        """Cancel a running job and wait for its thread; True when it ended within ``timeout_ms``."""
        return self.worker is None or self.worker.join(timeout_ms)
