"""Regenerate the GUI screenshots in this folder (needs a display; on a server use Xvfb).

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/make_screenshots.py

Starts the app on ../shared/video/cutBunny.mp4 with every style on the search path, picks
starry_night, grabs the window, runs a keyframe preview (Gatys) and grabs its dialog, then the
hotkey help. Images are scaled and palette-quantised to stay small.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
os.environ.setdefault("STYLIZER_PATH", f"{SHARED / 'weights'}{os.pathsep}{SHARED / 'images'}")

from gui.qt_env import fix_qt_plugin_path  # noqa: E402

fix_qt_plugin_path()

from PIL import Image  # noqa: E402
from PyQt6.QtTest import QTest  # noqa: E402
from PyQt6.QtWidgets import QApplication, QWidget  # noqa: E402


def save_small(widget: QWidget, path: Path, width: int) -> None:
    """Grab ``widget`` and write a palette PNG at most ``width`` px wide."""
    raw = path.with_suffix(".raw.png")
    widget.grab().save(str(raw))
    image = Image.open(raw).convert("RGB")
    raw.unlink()
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
        path, optimize=True
    )
    print(f"{path}: {path.stat().st_size // 1024} KB")


def wait(condition, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the app did not get there in time")
        QTest.qWait(100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--iterations", type=int, default=200, help="Gatys iterations for the keyframe")
    parser.add_argument("--keyframe-size", type=int, default=320, help="Gatys image size (longest side)")
    parser.add_argument("--size", type=int, default=360, help="live processing size (short side)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from gui.app import feed_forward_models, gallery_styles
    from gui.help_dialog import HelpDialog
    from gui.main_window import GuiOptions, MainWindow
    from gui.settings import SettingsStore

    _app = QApplication(sys.argv[:1])  # kept alive for the windows below
    options = GuiOptions(
        source=str(SHARED / "video" / "cutBunny.mp4"),
        styles=gallery_styles(None),
        backend="auto",
        size=args.size,
        output_dir=Path("/tmp"),
        keyframe_iterations=args.iterations,
        keyframe_size=args.keyframe_size,
    )
    window = MainWindow(options, SettingsStore(Path("/tmp/stylizer-screenshots.ini")), feed_forward_models())
    window.resize(1280, 760)
    window.show()
    window.start()
    try:
        wait(lambda: window.gallery.count() == len(options.styles) and window.live.frames_shown > 0, 600)
        names = window.gallery.names()
        QTest.keyClick(window, str(names.index("starry_night") + 1) if "starry_night" in names[:9] else "1")
        wait(lambda: window.worker.latest().state.style == "starry_night", 120)
        shown = window.live.frames_shown
        wait(lambda: window.live.frames_shown > shown + 2, 120)
        save_small(window, args.out / "gui_main.png", 1024)
        QTest.keyClick(window, "k")
        dialog = window.keyframes[-1]
        wait(lambda: dialog.gatys is not None, 1800)
        QTest.qWait(300)
        save_small(dialog, args.out / "gui_keyframe.png", 1024)
        QTest.keyClick(window, "h")
        QTest.qWait(300)
        save_small(window.findChildren(HelpDialog)[-1], args.out / "gui_help.png", 600)
    finally:
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
