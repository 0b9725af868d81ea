"""``webcam`` picks its processing size itself unless told (``--size auto``, the default), and says why."""

from __future__ import annotations

import pytest

from main import main


def test_webcam_defaults_to_auto_size_and_reports_it(tmp_path, write_clip, capsys):
    clip = write_clip(tmp_path / "cam.mp4", frames=24, fps=24, size=(320, 240), audio_rate=None)
    assert main(["webcam", "--camera", str(clip), "--no-window", "--style", "starry_night", "--max-seconds", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("auto")  # the size note: the size in use and why (or that it is still measuring)


def test_an_explicit_size_wins_over_auto(tmp_path, write_clip, capsys):
    clip = write_clip(tmp_path / "cam.mp4", frames=12, fps=24, size=(320, 240), audio_rate=None)
    assert (
        main(
            [
                "webcam",
                "--camera",
                str(clip),
                "--no-window",
                "--style",
                "starry_night",
                "--size",
                "120",
                "--max-seconds",
                "3",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "auto" not in out.splitlines()[-1] and "120 px" not in out  # no governor: no size note


def test_a_bad_size_is_one_error_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["webcam", "--camera", "0", "--size", "big"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--size: takes auto or a short side in px" in err and "Traceback" not in err
