"""The desktop app driven offscreen: a video file as the camera, real MicroAST weights, tiny frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gui.qt_env import fix_qt_plugin_path

fix_qt_plugin_path()  # before pytest-qt creates the QApplication (cv2 may have been imported already)

from PyQt6.QtCore import Qt  # noqa: E402

from tests.conftest import hide_weights  # noqa: E402

pytestmark = pytest.mark.gui

SIZE = 96  # processing short side: fast on 2 cores, still a real stylisation
STYLES = ("candy.jpg", "the_scream.jpg", "starry_night.jpg")
WAIT_MS = 90_000  # generous: a loaded 2-core machine builds models and encodes styles slowly


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def make_window(qapp, shared: Path, tmp: Path, source: str | Path, styles=STYLES, temporal: str = "off"):
    """A running window; temporal off by default so a shown frame can be compared with a fresh stylisation."""
    from gui.main_window import GuiOptions, MainWindow
    from gui.settings import SettingsStore
    from models.registry import feed_forward_models

    options = GuiOptions(
        source=str(source),
        styles=[shared / "images" / "styles" / s for s in styles],
        model="microast",
        backend="torch",
        size=SIZE,
        output_dir=tmp,
        style_size=128,
        keyframe_iterations=5,
        keyframe_size=48,
        allow_download=False,
        temporal=temporal,
    )
    window = MainWindow(options, SettingsStore(tmp / "settings.ini"), feed_forward_models())
    window.show()
    window.start()
    return window


@pytest.fixture(scope="module")
def gui_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gui")


@pytest.fixture(scope="module")
def window(qapp, shared, video_path, gui_tmp):
    """One running window for the module (model loading is the slow part); shut down at the end."""
    win = make_window(qapp, shared, gui_tmp, video_path)
    yield win
    win.close()


def wait_frames(qtbot, window, more: int = 1) -> None:
    start = window.live.frames_shown
    qtbot.waitUntil(lambda: window.live.frames_shown >= start + more, timeout=WAIT_MS)


def wait_look(qtbot, window) -> None:
    """Until a look change has faded in (realtime.stylizer.LOOK_FADE_S) and a frame after it is shown."""
    qtbot.waitUntil(lambda: not window.stylizer.fading, timeout=WAIT_MS)
    wait_frames(qtbot, window, 2)


def wait_styles(qtbot, window, n: int = len(STYLES)) -> None:
    qtbot.waitUntil(lambda: window.gallery.count() == n and len(window.stylizer.state.styles) == n, timeout=WAIT_MS)


def reference_output(window, source: np.ndarray, style_index: int) -> np.ndarray:
    """The same frame through a separate stylizer with the same model and style: what should show."""
    from realtime.backends.torch_backend import TorchBackend
    from realtime.stylizer import FrameStylizer, StylizerParams

    live_stylizer = window.stylizer
    ref = FrameStylizer(
        TorchBackend(live_stylizer.backend.model),
        live_stylizer.styles,
        StylizerParams(style_index=style_index, size=SIZE),
        cache=live_stylizer.cache,
        style_size=live_stylizer.style_size,
    )
    return ref.process(source)


def test_window_shows_stylised_frames_with_overlay(qtbot, window):
    wait_frames(qtbot, window, 2)
    live = window.worker.latest()
    assert live.output.shape == live.source.shape == (360, 640, 3)
    assert np.abs(live.output.astype(int) - live.source.astype(int)).mean() > 20  # stylised, not a copy
    assert psnr(live.output, reference_output(window, live.source, live.state.params.style_index)) > 40
    overlay = "\n".join(window._overlay(live))
    assert "microast" in overlay and "torch cpu" in overlay and "fps" in overlay and "latency" in overlay
    assert window.controls.backend_running.text().startswith("torch cpu")
    shot = window.live.grab().toImage()
    assert not shot.isNull() and shot.width() > 0


def test_key_2_switches_style_and_moves_highlight(qtbot, window):
    wait_styles(qtbot, window)
    qtbot.keyClick(window, "1")
    qtbot.waitUntil(lambda: window.worker.latest().state.params.style_index == 0, timeout=WAIT_MS)
    qtbot.keyClick(window, "2")
    qtbot.waitUntil(lambda: window.worker.latest().state.params.style_index == 1, timeout=WAIT_MS)
    wait_look(qtbot, window)
    assert window.gallery.active() == 1
    live = window.worker.latest()
    expected = reference_output(window, live.source, 1)
    other = reference_output(window, live.source, 0)
    assert psnr(live.output, expected) > 40  # the shown frame is style 2 ...
    assert psnr(live.output, other) < 25  # ... and clearly not style 1


def test_gallery_click_selects_style(qtbot, window):
    wait_styles(qtbot, window)
    item = window.gallery.list.item(2)
    rect = window.gallery.list.visualItemRect(item)
    qtbot.mouseClick(window.gallery.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: window.worker.latest().state.params.style_index == 2, timeout=WAIT_MS)
    assert window.gallery.active() == 2


def test_alpha_slider_and_keys_reach_the_stylizer(qtbot, window):
    window.controls.alpha.setValue(30)
    qtbot.waitUntil(lambda: abs(window.stylizer.state.params.alpha - 0.3) < 1e-6, timeout=WAIT_MS)
    qtbot.keyClick(window, "+")
    qtbot.waitUntil(lambda: abs(window.stylizer.state.params.alpha - 0.4) < 1e-6, timeout=WAIT_MS)
    wait_frames(qtbot, window)
    qtbot.waitUntil(lambda: window.controls.alpha.value() == 40, timeout=WAIT_MS)  # the slider follows keys
    qtbot.keyClick(window, "c")
    qtbot.waitUntil(lambda: window.stylizer.state.params.preserve_color, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.controls.color.isChecked(), timeout=WAIT_MS)
    qtbot.keyClick(window, "c")
    window.controls.alpha.setValue(100)
    qtbot.waitUntil(
        lambda: window.stylizer.state.params.alpha == 1.0 and not window.stylizer.state.params.preserve_color,
        timeout=WAIT_MS,
    )


def test_blend_and_bypass_controls(qtbot, window):
    wait_styles(qtbot, window)
    c = window.controls
    c.blend_a.setCurrentIndex(0)
    c.blend_b.setCurrentIndex(2)
    c.mix.setValue(25)
    c.blend.setChecked(True)
    qtbot.waitUntil(
        lambda: (
            window.stylizer.state.params.blend_index == 2
            and abs(window.stylizer.state.params.mix - 0.25) < 1e-6
            and window.stylizer.state.params.style_index == 0
        ),
        timeout=WAIT_MS,
    )
    c.blend.setChecked(False)
    qtbot.waitUntil(lambda: window.stylizer.state.params.blend_index is None, timeout=WAIT_MS)
    qtbot.keyClick(window, " ")
    qtbot.waitUntil(lambda: window.stylizer.state.params.bypass, timeout=WAIT_MS)
    wait_frames(qtbot, window, 6)  # past the frames rendered before the switch (queues hold a few)
    live = window.worker.latest()
    assert live.state.params.bypass
    assert np.array_equal(live.output, live.source)  # bypass shows the input itself
    qtbot.keyClick(window, " ")
    qtbot.waitUntil(lambda: not window.stylizer.state.params.bypass, timeout=WAIT_MS)


def test_record_writes_a_playable_file_with_audio(qtbot, window, gui_tmp):
    import av

    with qtbot.waitSignal(window.worker.recording_changed, timeout=WAIT_MS) as started:
        qtbot.keyClick(window, "r")
    assert started.args[0] is True
    path = Path(started.args[1])
    assert path.parent == gui_tmp and path.suffix == ".mp4"
    recorder = window.worker.recorder
    qtbot.waitUntil(lambda: recorder._writer is not None and recorder._writer.frames >= 4, timeout=WAIT_MS)
    assert window.controls.record.isChecked()
    with qtbot.waitSignal(window.worker.recording_changed, timeout=WAIT_MS) as ended:
        qtbot.keyClick(window, "r")
    assert ended.args[0] is False
    assert not window.controls.record.isChecked()
    with av.open(str(path)) as container:
        assert container.streams.audio, "the video file's audio is copied"
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        audio = [p for p in container.demux(audio=0) if p.size]
        audio_end = max(float((p.pts + p.duration) * p.time_base) for p in audio)
    assert len(frames) >= 4
    assert frames[0].shape == (360, 640, 3)
    # Recorded from the current point: the audio is taken from there too, so it lasts as long as the video.
    assert audio_end == pytest.approx(len(frames) / 24, abs=0.25)


def test_snapshot_saves_the_stylised_frame(qtbot, window):
    from core.images import read_image

    wait_frames(qtbot, window)
    before = set(window.options.output_dir.glob("snapshot-*.png"))
    qtbot.keyClick(window, "s")
    (path,) = set(window.options.output_dir.glob("snapshot-*.png")) - before
    image = read_image(path)
    assert image.shape == (360, 640, 3)
    assert np.abs(image.astype(int) - window.worker.latest().source.astype(int)).mean() > 20  # stylised


def test_keyframe_preview_completes_and_shows_both(qtbot, window):
    wait_frames(qtbot, window)
    qtbot.keyClick(window, "k")
    dialog = window.keyframes[-1]
    with qtbot.waitSignal(dialog.result_ready, timeout=WAIT_MS) as done:
        pass
    result = done.args[0]
    assert result.shape[2] == 3 and max(result.shape[:2]) == 48
    assert dialog.gatys is result and dialog.save_gatys.isEnabled()
    assert not dialog.gatys_view.pixmap().isNull() and not dialog.ff_view.pixmap().isNull()
    assert dialog.worker.thread.wait(60_000)
    saved = dialog.save(dialog.gatys, "k", window.options.output_dir / "keyframe.png")
    assert saved is not None and saved.is_file()
    dialog.close()


def test_keyframe_cancel_stops_the_optimisation(qtbot, window):
    wait_frames(qtbot, window)
    dialog = window.keyframe_preview()
    dialog.cancel()  # the first one is already running: cancel it, then run a long one to cancel mid-way
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
    dialog.iterations.setValue(2000)
    dialog.size.setValue(64)
    dialog.start()
    with qtbot.waitSignal(dialog.worker.progress, timeout=WAIT_MS):
        pass
    with qtbot.waitSignal(dialog.worker.cancelled, timeout=WAIT_MS):
        dialog.cancel_button.click()
    assert dialog.worker.thread.wait(60_000)
    assert dialog.progress.value() < 2000 and dialog.gatys is None
    assert "cancelled" in dialog.losses.text()
    dialog.close()


def test_bad_style_image_shows_a_message_not_a_crash(qtbot, window, gui_tmp):
    bad = gui_tmp / "broken.jpg"
    bad.write_bytes(b"not an image at all")
    count = window.gallery.count()
    window.add_styles([bad])
    qtbot.waitUntil(lambda: window.banner.isVisible() and "broken.jpg" in window.banner.text(), timeout=WAIT_MS)
    assert "not a readable image" in window.banner.text()
    assert window.gallery.count() == count
    wait_frames(qtbot, window)  # still running


def test_help_lists_the_hotkeys(qtbot, window):
    from gui.help_dialog import HelpDialog

    window.show_help()
    dialog = window.findChildren(HelpDialog)[-1]
    keys = [dialog.table.item(i, 0).text() for i in range(dialog.table.rowCount())]
    for key in ("1-9", "n", "p", "+", "-", "c", "space", "s", "r", "o", "f", "q", "k"):
        assert key in keys
    dialog.close()


def test_missing_source_shows_a_message(qtbot, qapp, shared, tmp_path):
    win = make_window(qapp, shared, tmp_path, tmp_path / "nothing.mp4", styles=STYLES[:1])
    try:
        qtbot.waitUntil(lambda: win.banner.isVisible() and "nothing.mp4" in win.banner.text(), timeout=WAIT_MS)
    finally:
        assert win.shutdown()


def test_close_ends_every_thread_and_saves_settings(qtbot, qapp, shared, video_path, tmp_path):
    from gui.settings import SettingsStore

    win = make_window(qapp, shared, tmp_path, video_path, styles=STYLES[:2])
    qtbot.waitUntil(lambda: win.live.frames_shown > 0, timeout=WAIT_MS)
    qtbot.keyClick(win, "k")  # a keyframe job running too
    with qtbot.waitSignal(win.keyframes[-1].worker.progress, timeout=WAIT_MS):
        pass
    worker, keyframe_job = win.worker, win.keyframes[-1].worker
    # Every thread ends before close returns (a step in progress is finished, never cut): asserted by state, not
    # by a clock (the one-second budget is shutdown's, which waits on regardless and warns on a loaded machine).
    win.close()
    assert not worker.running and not win.keyframes[-1].running and keyframe_job.thread.isFinished()
    saved = SettingsStore(tmp_path / "settings.ini").load()
    assert (saved.model, saved.backend, saved.size) == ("microast", "torch", SIZE)
    assert saved.geometry is not None


def test_size_auto_hands_the_size_to_the_governor_and_a_number_takes_it_back(qtbot, qapp, shared, video_path, tmp_path):
    from realtime.adaptive import AutoSize

    win = make_window(qapp, shared, tmp_path, video_path, styles=STYLES[:1])
    qtbot.waitUntil(lambda: win.live.frames_shown > 0, timeout=WAIT_MS)
    combo = win.controls.size
    combo.setCurrentIndex(combo.findData("auto"))
    qtbot.waitUntil(lambda: isinstance(win.stylizer.governor, AutoSize), timeout=WAIT_MS)
    combo.setCurrentIndex(combo.findData(240))
    qtbot.waitUntil(lambda: win.stylizer.governor is None and win.stylizer.state.params.size == 240, timeout=WAIT_MS)
    win.close()


def test_dropped_style_joins_the_gallery_and_is_selected(qtbot, window, shared):
    from PyQt6.QtCore import QMimeData, QPointF, QUrl
    from PyQt6.QtGui import QDropEvent

    wait_styles(qtbot, window)
    wait_frames(qtbot, window)
    count = window.gallery.count()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(shared / "images" / "styles" / "mosaic.jpg"))])
    event = QDropEvent(
        QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.gallery.count() == count + 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.worker.latest().state.style == "mosaic", timeout=WAIT_MS)
    assert window.gallery.active() == count and window.gallery.names()[-1] == "mosaic"
    qtbot.keyClick(window, "1")
    qtbot.waitUntil(lambda: window.worker.latest().state.params.style_index == 0, timeout=WAIT_MS)


def test_model_without_weights_shows_why_and_keeps_running(qtbot, window, tmp_path, monkeypatch):
    wait_frames(qtbot, window)  # MicroAST loaded and running; only then is every other checkpoint hidden
    hide_weights(tmp_path, monkeypatch)
    before = window.stylizer.backend
    window.controls.model.setCurrentText("adain")  # nothing can be found: see no_weights_env
    qtbot.waitUntil(lambda: window.banner.isVisible() and "not found" in window.banner.text(), timeout=WAIT_MS)
    assert "downloads are off" in window.banner.text()
    assert window.controls.model.currentText() == "microast"
    assert window.stylizer.backend is before
    wait_frames(qtbot, window)


def test_overlay_toggle_and_virtual_camera_button(qtbot, window):
    assert window.live.overlay_visible
    qtbot.keyClick(window, "o")
    assert not window.live.overlay_visible
    qtbot.keyClick(window, "o")
    assert window.live.overlay_visible
    import importlib.util

    button = window.controls.virtual_cam
    if importlib.util.find_spec("pyvirtualcam") is None:
        assert not button.isEnabled() and "pip install pyvirtualcam" in button.toolTip()
    else:  # the package is there: the button works, or says that no device exists
        assert button.isEnabled() or "no virtual camera device" in button.toolTip()


def test_still_image_source_keeps_restyling(qtbot, qapp, shared, content_path, tmp_path):
    from core.images import read_image

    win = make_window(qapp, shared, tmp_path, content_path, styles=STYLES[:2])
    try:
        qtbot.waitUntil(lambda: win.live.frames_shown >= 3, timeout=WAIT_MS)  # repeated, paced, not once
        qtbot.waitUntil(lambda: win.gallery.count() == 2, timeout=WAIT_MS)
        qtbot.keyClick(win, "2")
        qtbot.waitUntil(lambda: win.worker.latest().state.params.style_index == 1, timeout=WAIT_MS)
        assert win.worker.latest().output.shape == read_image(content_path).shape
        assert not win.banner.isVisible()
    finally:
        assert win.shutdown()


def test_flow_is_the_apps_default_and_shows_every_frame(qtbot, qapp, shared, video_path, tmp_path):
    from gui.app import merge_options
    from gui.settings import GuiSettings

    assert merge_options({"source": str(video_path)}, GuiSettings()).temporal == "flow"
    win = make_window(qapp, shared, tmp_path, video_path, styles=STYLES[:1], temporal="flow")
    try:
        assert win.controls.temporal.currentText() == "flow"
        qtbot.waitUntil(lambda: win.live.frames_shown >= 12, timeout=WAIT_MS)
        live = win.worker.latest()
        assert live.state.params.temporal == "flow"
        assert np.abs(live.output.astype(int) - live.source.astype(int)).mean() > 20  # carried, stylised
        assert "keyframes" in "\n".join(win._overlay(live))
        win.controls.temporal.setCurrentText("hold")
        qtbot.waitUntil(lambda: win.stylizer.state.params.temporal == "hold", timeout=WAIT_MS)
    finally:
        assert win.shutdown()
