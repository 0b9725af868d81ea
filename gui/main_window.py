"""The main window: live view, style gallery and controls, wired to the stylizer and its worker."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QImage, QKeyEvent, QKeySequence
from PyQt6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QMainWindow, QScrollArea, QVBoxLayout, QWidget

from models.styles import StyleImage
from gui.controls import ControlPanel
from gui.gatys_worker import GatysModelHolder
from gui.gallery import StyleGallery, image_paths, thumbnail
from gui.help_dialog import HelpDialog
from gui.keyframe_dialog import KeyframeDialog
from gui.live_view import LiveView, bgr_to_qimage
from gui.settings import GuiSettings, SettingsStore
from gui.threads import TaskQueue
from gui.virtual_camera import virtual_camera_status
from gui.worker import LiveFrame, LiveWorker
from realtime.controls import ALPHA_STEP, Action, binding_for, help_rows
from realtime.overlay import overlay_lines
from realtime.sources import is_camera
from realtime.stylizer import FrameStylizer, StylizerParams, load_backend

log = logging.getLogger(__name__)
BANNER_MS = 10_000


@dataclass
class GuiOptions:
    """What the window starts with (command line over saved settings over these defaults)."""

    source: str | int = 0
    styles: list[Path] = field(default_factory=list)  # gallery images, in order
    styles_folder: Path | None = None
    model: str = "microast"
    backend: str = "auto"
    device: str = "cpu"
    size: int | str = "auto"  # a short side, 0 = frame size, or auto (realtime.adaptive.AutoSize)
    temporal: str = "flow"  # live: every frame shown, keyframes carried along the flow
    output_dir: Path = Path(".")
    style_size: int = 512
    loop: bool = True
    keyframe_iterations: int = 100
    keyframe_size: int = 256
    allow_download: bool = True  # fetch missing checkpoints when a model is picked


@dataclass(frozen=True)
class _LoadedStyle:
    image: StyleImage
    thumb: QImage


def _apply_size(stylizer: FrameStylizer, size: int | str) -> None:
    """The size combo's choice: auto hands the size to the AutoSize governor, a number fixes it."""
    if size == "auto":
        stylizer.set_auto_size()
    else:
        stylizer.set_target_fps(None)
        stylizer.set_size(int(size))


class MainWindow(QMainWindow):
    """Everything the user sees; heavy work goes to the worker thread or the background pools."""

    def __init__(self, options: GuiOptions, settings: SettingsStore, models: list[str]) -> None:
        super().__init__()
        self.options = options
        self.settings = settings
        self.setWindowTitle("stylizer")
        self.setAcceptDrops(True)
        self.stylizer: FrameStylizer | None = None
        self.worker: LiveWorker | None = None
        self.keyframes: list[KeyframeDialog] = []
        self.gatys_models = GatysModelHolder()
        self.setup_tasks = TaskQueue("loading the model")  # model and backend builds
        self.style_tasks = TaskQueue("loading a style")  # style decoding + encoding, in gallery order
        self._style_paths: list[Path] = []
        self._record_started = 0.0
        self._seen_style: int | None = None
        self._closing = False

        self.live = LiveView()
        self.gallery = StyleGallery()
        self.controls = ControlPanel(models)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background: #8c2d2d; color: white; padding: 6px; border-radius: 3px")
        self.banner.hide()
        self._banner_timer = QTimer(self)
        self._banner_timer.setSingleShot(True)
        self._banner_timer.timeout.connect(self.banner.hide)
        self._record_timer = QTimer(self)
        self._record_timer.setInterval(500)
        self._record_timer.timeout.connect(self._show_record_time)
        self.source_label = QLabel("")
        self.statusBar().addPermanentWidget(self.source_label)

        centre = QWidget()
        column = QVBoxLayout(centre)
        column.setContentsMargins(6, 6, 6, 6)
        column.addWidget(self.banner)
        column.addWidget(self.live, 1)
        column.addWidget(self.gallery)
        side = QScrollArea()
        side.setWidget(self.controls)
        side.setWidgetResizable(True)
        side.setFixedWidth(self.controls.sizeHint().width() + 24)
        side.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        root = QWidget()
        row = QHBoxLayout(root)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(centre, 1)
        row.addWidget(side)
        self.setCentralWidget(root)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._menus()
        self._connect()
        self._init_controls()
        self.resize(1180, 720)

    # ----- construction -----

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        add = QAction("Add styles…", self)
        add.triggered.connect(self.choose_styles)
        file_menu.addAction(add)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        keys = QAction("Keyboard shortcuts", self)
        keys.setShortcut(QKeySequence("F1"))
        keys.triggered.connect(self.show_help)
        help_menu.addAction(keys)

    def _connect(self) -> None:
        c = self.controls
        self.gallery.style_chosen.connect(self.select_style)
        self.gallery.add_requested.connect(self.choose_styles)
        c.model_changed.connect(lambda name: self.switch_backend(model=name))
        c.backend_changed.connect(lambda name: self.switch_backend(backend=name))
        c.size_changed.connect(lambda size: self._command(lambda s: _apply_size(s, size)))
        c.alpha_changed.connect(lambda a: self._command(lambda s: s.set_alpha(a)))
        c.color_toggled.connect(lambda on: self._command(lambda s: s.set_preserve_color(on)))
        c.bypass_toggled.connect(lambda on: self._command(lambda s: s.set_bypass(on)))
        c.stability_changed.connect(lambda v: self._command(lambda s: s.set_stability(v)))
        c.temporal_changed.connect(lambda mode: self._command(lambda s: s.set_temporal(mode)))
        c.blend_changed.connect(self._blend)
        c.record.toggled.connect(self.set_recording)
        c.snapshot.clicked.connect(self.snapshot)
        c.keyframe.clicked.connect(self.keyframe_preview)
        c.virtual_cam.toggled.connect(self.set_virtual_camera)

    def _init_controls(self) -> None:
        c = self.controls
        c.select(c.model, self.options.model)
        c.select(c.backend, self.options.backend)
        c.select(c.temporal, self.options.temporal)
        if c.size.findData(self.options.size) < 0:
            c.size.addItem(f"{self.options.size} px", self.options.size)
        c.select(c.size, self.options.size, by_data=True)
        available, why = virtual_camera_status()
        c.virtual_cam.setEnabled(available)
        c.virtual_cam.setToolTip("Send the stylised video to a virtual camera" if available else why)

    # ----- start-up -----

    def start(self) -> None:
        """Build the model and the first style in the background, then start the live worker."""
        self.live.set_placeholder(f"Loading {self.options.model}…")
        if not self.options.styles:
            self.show_error("no style images found: add some with '+' or drop image files here")
            self.live.set_placeholder("No styles: add one with '+'")
            return
        first, rest = self.options.styles[0], self.options.styles[1:]
        opts = self.options
        params = StylizerParams(
            size=0 if opts.size == "auto" else opts.size,
            temporal=self.controls.temporal.currentText(),
            stability=self.controls.stability.value() / 100,
        )  # read widgets here, not in build()

        def build() -> tuple[FrameStylizer, _LoadedStyle]:
            loaded = _load_style(first)
            backend = _build_backend(opts.model, opts.backend, opts.device, opts.allow_download)
            stylizer = FrameStylizer(backend, [loaded.image], params, style_size=opts.style_size)
            if opts.size == "auto":
                stylizer.set_auto_size()
            return stylizer, loaded

        self.setup_tasks.submit(build, lambda result: self._ready(*result, rest), self._startup_failed)

    def _ready(self, stylizer: FrameStylizer, first: _LoadedStyle, rest: list[Path]) -> None:
        if self._closing:
            stylizer.close()
            return
        self.stylizer = stylizer
        self._style_added(first)
        self.gallery.set_active(0)
        self._show_backend()
        self.worker = LiveWorker(
            self.options.source,
            stylizer,
            loop=self.options.loop and not is_camera(self.options.source),
            output_dir=self.options.output_dir,
        )
        self.worker.frame_ready.connect(self._show_frame)
        self.worker.errored.connect(self.show_error)
        self.worker.warned.connect(self.show_error)
        self.worker.recording_changed.connect(self._recording_changed)
        self.worker.ended.connect(self._worker_stopped)
        self.worker.virtual_camera_changed.connect(self._virtual_camera_changed)
        self.live.set_placeholder(f"Opening {self.options.source}…")
        self.worker.start()
        self.add_styles(rest, select=False)

    def _startup_failed(self, message: str) -> None:
        self.show_error(message)
        self.live.set_placeholder("Could not start: see the message above")

    # ----- frames -----

    def _show_frame(self) -> None:
        if self.worker is None:
            return
        live = self.worker.take_frame()
        if live is None:
            return
        self.live.show_frame(bgr_to_qimage(live.output))
        self.live.set_overlay(self._overlay(live))
        active = live.state.params.style_index
        if active != self._seen_style:  # follow changes made by the stylizer (n/p), not stale frames
            self._seen_style = active
            self.gallery.set_active(active)

    def _overlay(self, live: LiveFrame) -> list[str]:
        recording = self.worker is not None and self.worker.recording
        return overlay_lines(live.state, live.stats, f"● REC {self._elapsed()}" if recording else "")

    def _worker_stopped(self) -> None:
        if not self._closing:
            self.live.set_placeholder("The source stopped")
            self.controls.set_recording(False)
            self._record_timer.stop()

    # ----- commands -----

    def _command(self, fn) -> None:
        """Apply a stylizer command; a bad value shows as a message, never an exception."""
        if self.stylizer is None:
            return
        try:
            fn(self.stylizer)
        except Exception as exc:  # StylizerError mostly; a GUI handler must not raise into Qt
            self.show_error(str(exc))

    def select_style(self, index: int) -> None:
        if self.stylizer is not None and 0 <= index < self.gallery.count():
            self._command(lambda s: s.select_style(index))
            self.gallery.set_active(index)

    def _blend(self, enabled: bool, a: int, b: int, mix: float) -> None:
        if not enabled:
            self._command(lambda s: s.set_blend(None, 0.0))
            return
        self.select_style(a)
        self._command(lambda s: s.set_blend(b, mix))

    def switch_backend(self, model: str | None = None, backend: str | None = None) -> None:
        """Build the new model/backend in the background; the live view keeps running meanwhile."""
        if self.stylizer is None:
            return
        model = model or self.controls.model.currentText()
        backend = backend or self.controls.backend.currentText()
        device, download = self.options.device, self.options.allow_download
        stylizer = self.stylizer
        self.statusBar().showMessage(f"loading {model} on {backend}…")

        def build() -> str:
            new = _build_backend(model, backend, device, download)
            stylizer.set_backend(new)  # encodes the styles here, off the GUI and worker threads
            return str(new.info)

        def failed(message: str) -> None:
            self.show_error(message)
            self.controls.select(self.controls.model, stylizer.state.model)
            self._show_backend()

        self.setup_tasks.submit(build, lambda info: self._backend_switched(model, backend, info), failed)

    def _backend_switched(self, model: str, backend: str, info: str) -> None:
        self.options.model, self.options.backend = model, backend
        self.controls.backend_running.setText(info)
        self.statusBar().showMessage(f"now running {model} on {info}", BANNER_MS)

    def _show_backend(self) -> None:
        if self.stylizer is not None:
            self.controls.backend_running.setText(str(self.stylizer.backend.info))

    # ----- styles -----

    def choose_styles(self) -> None:
        start = self.options.styles_folder or (self._style_paths[0].parent if self._style_paths else Path.home())
        files, _ = QFileDialog.getOpenFileNames(
            self, "Add style images", str(start), "Images (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff)"
        )
        if files:
            self.options.styles_folder = Path(files[0]).parent
            self.add_styles([Path(f) for f in files])

    def add_styles(self, paths: list[Path], select: bool = True) -> None:
        """Decode and encode styles in the background (in order); each joins the gallery when ready."""
        if self.stylizer is None:
            self.options.styles.extend(paths)
            if len(self.options.styles) == len(paths):
                self.start()
            return
        stylizer = self.stylizer
        for i, path in enumerate(paths):
            last = select and i == len(paths) - 1

            def load(path: Path = path, last: bool = last) -> tuple[_LoadedStyle, bool]:
                loaded = _load_style(path)
                stylizer.add_style(loaded.image, select=last)
                return loaded, last

            self.style_tasks.submit(load, self._style_loaded, self.show_error)

    def _style_loaded(self, result: tuple[_LoadedStyle, bool]) -> None:
        loaded, selected = result
        index = self._style_added(loaded)
        if selected:
            self.gallery.set_active(index)

    def _style_added(self, loaded: _LoadedStyle) -> int:
        index = self.gallery.add_style(loaded.image.name, loaded.thumb)
        self.controls.add_style_name(loaded.image.name)
        self._style_paths.append(loaded.image.path)
        return index

    # Drops anywhere in the window, the gallery included (its widgets pass them up), add styles.
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        paths = image_paths([u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()])
        if paths:
            self.add_styles(paths)
            event.acceptProposedAction()
        else:
            self.show_error("drop image files (JPEG, PNG…) or a folder of them to add styles")

    # ----- outputs -----

    def set_recording(self, on: bool) -> None:
        if self.worker is None:
            self.controls.set_recording(False)
            return
        if on and not self.worker.recording:
            self.worker.start_recording()  # a fresh time-stamped name in the output folder
        elif not on and self.worker.recording:
            self.worker.stop_recording()

    def _recording_changed(self, on: bool, path: str) -> None:
        self._record_started = time.monotonic()
        self.controls.set_recording(on)
        if on:
            self._record_timer.start()
        else:
            self._record_timer.stop()
            self.statusBar().showMessage(f"recording saved: {path}", BANNER_MS)

    def _elapsed(self) -> str:
        minutes, seconds = divmod(int(time.monotonic() - self._record_started), 60)
        return f"{minutes:02d}:{seconds:02d}"

    def _show_record_time(self) -> None:
        self.controls.set_recording(True, time.monotonic() - self._record_started)

    def snapshot(self) -> Path | None:
        """Save the frame on screen as a PNG in the output folder."""
        if self.worker is None:
            self.show_error("no frame to save yet")
            return None
        outcome = self.worker.snapshot()
        if outcome.failed:
            self.show_error(outcome.message)
            return None
        self.statusBar().showMessage(f"saved {outcome.path}", BANNER_MS)
        return outcome.path

    def set_virtual_camera(self, on: bool) -> None:
        if self.worker is not None:
            self.worker.set_virtual_camera(on)

    def _virtual_camera_changed(self, on: bool) -> None:
        button = self.controls.virtual_cam
        if button.isChecked() != on:
            button.blockSignals(True)
            button.setChecked(on)
            button.blockSignals(False)

    # ----- keyframe preview -----

    def keyframe_preview(self) -> KeyframeDialog | None:
        """Open a dialog running Gatys on the current frame beside the feed-forward result."""
        live = self.worker.latest() if self.worker is not None else None
        if live is None or self.stylizer is None:
            self.show_error("no frame yet: wait for the live view to start")
            return None
        state = live.state
        style = self.stylizer.styles[state.params.style_index]
        dialog = KeyframeDialog(
            live.source,
            live.output,
            style.bgr,
            style.name,
            state.model,
            self.options.output_dir,
            iterations=self.options.keyframe_iterations,
            size=self.options.keyframe_size,
            models=self.gatys_models,
            parent=self,
        )
        self.keyframes = [d for d in self.keyframes if d.isVisible() or d.running]  # forget closed ones
        self.keyframes.append(dialog)
        dialog.finished.connect(lambda _: dialog.shutdown())
        dialog.show()
        dialog.start()
        return dialog

    # ----- keys, help, messages -----

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        """Keys map to actions by the shared key map; the session carries them out, except where a widget
        shows the value (style, strength, colours, bypass: through the widget) and the window's own."""
        text = event.text()
        if event.key() == Qt.Key.Key_Escape:
            text = "\x1b"
        if text == "k":
            self.keyframe_preview()
            return
        binding = binding_for(text) if text else None
        if binding is None:
            super().keyPressEvent(event)
            return
        action = binding.action
        if action is Action.SELECT_STYLE:
            self.select_style(binding.arg or 0)
        elif action in (Action.ALPHA_UP, Action.ALPHA_DOWN):
            step = round(ALPHA_STEP * 100) * (1 if action is Action.ALPHA_UP else -1)
            self.controls.alpha.setValue(self.controls.alpha.value() + step)
        elif action is Action.TOGGLE_COLOR:
            self.controls.color.toggle()
        elif action is Action.TOGGLE_BYPASS:
            self.controls.bypass.toggle()
        elif action is Action.OVERLAY:
            self.live.toggle_overlay()
        elif action is Action.FULLSCREEN:
            self.showNormal() if self.isFullScreen() else self.showFullScreen()
        elif action is Action.HELP:
            self.show_help()
        elif action is Action.QUIT:
            self.close()
        elif action is Action.SNAPSHOT:
            self.snapshot()
        elif self.worker is not None:  # next/previous style, record: the session's
            outcome = self.worker.session.handle(binding)
            if outcome.failed:
                self.show_error(outcome.message)
        elif action is Action.RECORD:
            self.controls.set_recording(False)

    def show_help(self) -> None:
        extra = (("k", "keyframe preview: Gatys on the current frame"), ("F1", "show this help"))
        rows = [(key, what.replace("print this key map", "show this help")) for key, what in help_rows(extra)]
        HelpDialog(rows, self).show()

    def show_error(self, message: str) -> None:
        """A non-blocking message: a banner over the view for a while, and the status bar."""
        log.warning("%s", message)
        self.banner.setText(message)
        self.banner.show()
        self._banner_timer.start(BANNER_MS)
        self.statusBar().showMessage(message, BANNER_MS)

    # ----- shutdown -----

    def current_settings(self) -> GuiSettings:
        folder = self.options.styles_folder
        return GuiSettings(
            styles_folder=str(folder) if folder else None,
            model=self.controls.model.currentText(),
            backend=self.controls.backend.currentText(),
            size=self.controls.size.currentData(),
            geometry=self.saveGeometry(),
        )

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self, timeout_ms: int = 1000) -> bool:
        """Stop the worker, dialogs and background work; True when every thread ended in time."""
        if self._closing:
            return True
        self._closing = True
        started = time.perf_counter()
        self.settings.save(self.current_settings())
        ok = True
        for dialog in self.keyframes:  # cancel all first, so they wind down in parallel
            if dialog.worker is not None:
                dialog.worker.abort()
        if self.worker is not None:
            ok &= self.worker.join(timeout_ms)
        for dialog in self.keyframes:
            ok &= dialog.shutdown(timeout_ms)
        ok &= self.style_tasks.wait(timeout_ms)
        ok &= self.setup_tasks.wait(timeout_ms)
        if self.stylizer is not None:
            self.stylizer.close()
        if not ok:
            log.warning("some background work did not stop within %d ms", timeout_ms)
        log.info("stopped in %.0f ms", (time.perf_counter() - started) * 1000)
        return ok


def _load_style(path: Path) -> _LoadedStyle:
    image = StyleImage.load(path)
    return _LoadedStyle(image, thumbnail(image.bgr))


def _build_backend(model_name: str, backend: str, device: str, allow_download: bool = True):
    from models.registry import default_store

    store = default_store()
    store.allow_download = allow_download
    return load_backend(model_name, backend, device, store=store, live=True)
