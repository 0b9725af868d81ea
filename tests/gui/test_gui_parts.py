"""GUI pieces without a running stream: Qt environment, settings, gallery, command-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gui.qt_env import fix_qt_plugin_path

fix_qt_plugin_path()

pytestmark = pytest.mark.gui


def test_qt_plugin_path_points_at_pyqt6_after_cv2_import():
    import cv2  # noqa: F401 - the import that points Qt at opencv's Qt5 plugins
    from PyQt6.QtCore import QLibraryInfo

    os.environ["QT_QPA_PLATFORM_PLUGIN_PATH"] = str(Path(cv2.__file__).parent / "qt" / "plugins")
    path = fix_qt_plugin_path()
    assert path == os.environ["QT_QPA_PLATFORM_PLUGIN_PATH"]
    assert Path(path).parent == Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    assert any(p.name.startswith("libqoffscreen") for p in Path(path).iterdir())


def test_settings_round_trip_in_a_private_file(qapp, tmp_path):
    from PyQt6.QtCore import QByteArray

    from gui.settings import GuiSettings, SettingsStore

    store = SettingsStore(tmp_path / "s.ini")
    assert store.load() == GuiSettings()
    store.save(
        GuiSettings(
            styles_folder=str(tmp_path), model="microast", backend="torch", size=480, geometry=QByteArray(b"\x01\x02")
        )
    )
    again = SettingsStore(tmp_path / "s.ini").load()
    assert (again.styles_folder, again.model, again.backend, again.size) == (str(tmp_path), "microast", "torch", 480)
    assert bytes(again.geometry) == b"\x01\x02"
    assert Path(store.file_name) == tmp_path / "s.ini"
    store.save(GuiSettings(size="auto"))
    assert SettingsStore(tmp_path / "s.ini").load().size == "auto"


def test_saved_settings_fill_in_what_the_command_line_leaves_out(qapp, style_folder, tmp_path):
    from gui.app import merge_options
    from gui.settings import GuiSettings

    styles = style_folder
    saved = GuiSettings(styles_folder=str(styles), model="microast", backend="onnxruntime", size=480)
    options = merge_options({"source": "x.mp4"}, saved)
    assert (options.backend, options.size, options.styles_folder) == ("onnxruntime", 480, styles)
    assert options.styles == [styles / n for n in ("candy.jpg", "starry_night.jpg", "the_scream.jpg")]
    options = merge_options({"source": "x.mp4", "backend": "torch", "size": 0}, saved)
    assert (options.backend, options.size) == ("torch", 0)
    gone = GuiSettings(styles_folder=str(tmp_path / "gone"), model="no-such-model")
    options = merge_options({}, gone)  # stale settings fall back to the search path and the default model
    assert options.model == "microast" and options.styles_folder is None and options.styles
    assert options.size == "auto"  # nothing saved, nothing asked: the size this machine keeps up with


def test_gallery_thumbnails_labels_and_dropped_paths(qapp, style_folder, tmp_path):
    from core.images import read_image
    from gui.gallery import THUMB, StyleGallery, image_paths, thumbnail

    styles = style_folder
    thumb = thumbnail(read_image(styles / "the_scream.jpg"))  # portrait image, centre-cropped
    assert (thumb.width(), thumb.height()) == (THUMB.width(), THUMB.height())
    gallery = StyleGallery()
    for i in range(10):
        gallery.add_style(f"style{i}", thumb)
    gallery.set_active(9)
    assert gallery.active() == 9 and gallery.list.item(0).text() == "1 style0"
    assert gallery.list.item(9).text() == "style9"  # only 1-9 have hotkeys
    (tmp_path / "notes.txt").write_text("x")
    dropped = image_paths([styles, tmp_path / "notes.txt", styles / "candy.jpg"])
    assert [p.name for p in dropped] == ["candy.jpg", "starry_night.jpg", "the_scream.jpg", "candy.jpg"]


def test_gui_command_line_errors_are_one_line(capsys, tmp_path):
    import main

    assert main.main(["gui", "--video", str(tmp_path / "missing.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: video") and "missing.mp4" in err and "\n" not in err
    assert main.main(["gui", "--model", "gatys"]) == 2
    assert "feed-forward" in capsys.readouterr().err


def test_no_display_is_a_clear_error(monkeypatch):
    import sys

    from realtime.errors import SinkError
    from gui.app import check_display

    if not sys.platform.startswith("linux"):
        pytest.skip("the DISPLAY check applies to Linux only")
    for var in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SinkError, match="no display"):
        check_display()
