"""The control panel: model, backend, size, strength, colour, blend, temporal mode, bypass, and actions."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from realtime.backends.factory import BACKENDS
from realtime.stylizer import PROCESSING_SIZES, StylizerParams
from realtime.temporal import TEMPORAL_MODES


def _slider(value: int) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setValue(value)
    slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrow keys stay with the window's hotkeys
    return slider


class ControlPanel(QWidget):
    """Widgets only: every change is a signal; the main window applies it to the stylizer."""

    model_changed = pyqtSignal(str)
    backend_changed = pyqtSignal(str)
    size_changed = pyqtSignal(object)  # a short side (int, 0 = frame size) or "auto"
    alpha_changed = pyqtSignal(float)
    color_toggled = pyqtSignal(bool)
    blend_changed = pyqtSignal(bool, int, int, float)  # enabled, style a, style b, mix (0 = a, 1 = b)
    stability_changed = pyqtSignal(float)
    temporal_changed = pyqtSignal(str)
    bypass_toggled = pyqtSignal(bool)

    def __init__(self, models: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = QComboBox()
        self.model.addItems(models)
        self.backend = QComboBox()
        self.backend.addItems(BACKENDS)
        self.backend_running = QLabel("—")
        self.backend_running.setToolTip("The backend really running (after 'auto' picked or a fallback)")
        self.backend_running.setWordWrap(True)
        self.size = QComboBox()
        self.size.addItem("auto", "auto")
        self.size.setToolTip("auto: the largest size that shows every camera frame with >= 8 keyframes/s")
        for s in PROCESSING_SIZES:
            self.size.addItem("original" if s == 0 else f"{s} px", s)
        self.alpha = _slider(100)
        self.alpha_label = QLabel("1.00")
        self.color = QCheckBox("Keep colours (c)")
        self.bypass = QCheckBox("Bypass (space)")
        self.temporal = QComboBox()
        self.temporal.addItems(TEMPORAL_MODES)
        self.temporal.setToolTip("off: every frame on its own; hold: still regions keep their look (less flicker)")
        default_strength = round(StylizerParams().stability * 100)
        self.stability = _slider(default_strength)
        self.stability_label = QLabel(f"{default_strength / 100:.2f}")

        self.blend = QGroupBox("Blend two styles")
        self.blend.setCheckable(True)
        self.blend.setChecked(False)
        self.blend_a = QComboBox()
        self.blend_b = QComboBox()
        self.mix = _slider(50)
        blend_form = QFormLayout(self.blend)
        blend_form.addRow("Style A", self.blend_a)
        blend_form.addRow("Style B", self.blend_b)
        blend_form.addRow("A ↔ B", self.mix)

        settings = QGroupBox("Model")
        form = QFormLayout(settings)
        form.addRow("Model", self.model)
        form.addRow("Backend", self.backend)
        form.addRow("Running", self.backend_running)
        form.addRow("Size", self.size)
        look = QGroupBox("Look")
        look_form = QFormLayout(look)
        look_form.addRow("Strength", self._with_label(self.alpha, self.alpha_label))
        look_form.addRow("Temporal", self.temporal)
        look_form.addRow("Stability", self._with_label(self.stability, self.stability_label))
        look_form.addRow(self.color)
        look_form.addRow(self.bypass)

        self.record = QPushButton("● Record (r)")
        self.record.setCheckable(True)
        self.snapshot = QPushButton("Snapshot (s)")
        self.keyframe = QPushButton("Keyframe preview (k)")
        self.keyframe.setToolTip("Run Gatys on the current frame for a high-quality still")
        self.virtual_cam = QPushButton("Virtual camera")
        self.virtual_cam.setCheckable(True)
        self.record_time = QLabel("")
        actions = QGroupBox("Output")
        actions_layout = QVBoxLayout(actions)
        row = QHBoxLayout()
        row.addWidget(self.record)
        row.addWidget(self.record_time)
        actions_layout.addLayout(row)
        actions_layout.addWidget(self.snapshot)
        actions_layout.addWidget(self.keyframe)
        actions_layout.addWidget(self.virtual_cam)

        layout = QVBoxLayout(self)
        layout.addWidget(settings)
        layout.addWidget(look)
        layout.addWidget(self.blend)
        layout.addWidget(actions)
        layout.addStretch(1)
        for w in (
            self.model,
            self.backend,
            self.size,
            self.temporal,
            self.blend_a,
            self.blend_b,
            self.color,
            self.bypass,
            self.record,
            self.snapshot,
            self.keyframe,
            self.virtual_cam,
            self.blend,
        ):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._connect()

    @staticmethod
    def _with_label(slider: QSlider, label: QLabel) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(slider, 1)
        label.setMinimumWidth(32)
        row.addWidget(label)
        return box

    def _connect(self) -> None:
        self.model.currentTextChanged.connect(self.model_changed)
        self.backend.currentTextChanged.connect(self.backend_changed)
        self.size.currentIndexChanged.connect(lambda i: self.size_changed.emit(self.size.itemData(i)))
        self.alpha.valueChanged.connect(self._alpha_moved)
        self.stability.valueChanged.connect(self._stability_moved)
        self.temporal.currentTextChanged.connect(self.temporal_changed)
        self.color.toggled.connect(self.color_toggled)
        self.bypass.toggled.connect(self.bypass_toggled)
        self.blend.toggled.connect(self._blend_edited)
        self.blend_a.currentIndexChanged.connect(self._blend_edited)
        self.blend_b.currentIndexChanged.connect(self._blend_edited)
        self.mix.valueChanged.connect(self._blend_edited)

    def _alpha_moved(self, value: int) -> None:
        self.alpha_label.setText(f"{value / 100:.2f}")
        self.alpha_changed.emit(value / 100)

    def _stability_moved(self, value: int) -> None:
        self.stability_label.setText(f"{value / 100:.2f}")
        self.stability_changed.emit(value / 100)

    def _blend_edited(self, *_: object) -> None:
        a, b = self.blend_a.currentIndex(), self.blend_b.currentIndex()
        if a >= 0 and b >= 0:
            self.blend_changed.emit(self.blend.isChecked(), a, b, self.mix.value() / 100)

    # -- updates from the window (no signals back) -----------------------------------------
    def add_style_name(self, name: str) -> None:
        for combo in (self.blend_a, self.blend_b):
            combo.blockSignals(True)
            combo.addItem(name)
            combo.blockSignals(False)
        if self.blend_b.count() == 2:  # a useful default pair: the first two styles
            self.blend_b.blockSignals(True)
            self.blend_b.setCurrentIndex(1)
            self.blend_b.blockSignals(False)

    def set_alpha(self, alpha: float) -> None:
        self.alpha.setValue(round(alpha * 100))  # emits alpha_changed: one path for keys and mouse

    def select(self, combo: QComboBox, value: object, by_data: bool = False) -> None:
        """Select ``value`` in ``combo`` without emitting change signals."""
        index = combo.findData(value) if by_data else combo.findText(str(value))
        if index >= 0:
            combo.blockSignals(True)
            combo.setCurrentIndex(index)
            combo.blockSignals(False)

    def set_recording(self, on: bool, elapsed: float = 0.0) -> None:
        self.record.blockSignals(True)
        self.record.setChecked(on)
        self.record.blockSignals(False)
        self.record.setText("■ Stop (r)" if on else "● Record (r)")
        minutes, seconds = divmod(int(elapsed), 60)
        self.record_time.setText(f"{minutes:02d}:{seconds:02d}" if on else "")
