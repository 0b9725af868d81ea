"""Self-trained weights (``main.py train`` exports) are usable from the CLI by path, checked by their loader."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import torch

from main import main
from models.adain import make_decoder, save_our_decoder


@pytest.fixture()
def trained_decoder(tmp_path: Path) -> Path:
    # Random decoder weights: this checks the plumbing from a trained file to an image, not the look.
    torch.manual_seed(0)
    return save_our_decoder(make_decoder(), tmp_path / "adain-trained.safetensors")


def run_image(content_path, out: Path, model: str, weights: str) -> int:
    return main(
        [
            "image",
            str(content_path),
            "--style",
            "starry_night",
            "--model",
            model,
            "--weights",
            weights,
            "--size",
            "80",
            "-o",
            str(out),
        ]
    )


def test_adain_runs_with_a_trained_decoder_given_by_path(trained_decoder, content_path, tmp_path):
    out = tmp_path / "out.png"
    assert run_image(content_path, out, "adain", f"decoder={trained_decoder}") == 0
    image = cv2.imread(str(out))
    assert image is not None and max(image.shape[:2]) == 80


def test_trained_file_of_another_model_is_refused_in_one_line(trained_decoder, content_path, tmp_path, capsys):
    assert run_image(content_path, tmp_path / "out.png", "aesfa", f"main={trained_decoder}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an AesFA file" in err[0]


def test_missing_trained_file_and_official_roles_keep_their_checks(content_path, tmp_path, capsys):
    assert run_image(content_path, tmp_path / "out.png", "adain", f"decoder={tmp_path / 'nope.safetensors'}") == 2
    assert "do not exist" in capsys.readouterr().err
    fake = tmp_path / "decoder.pth"
    fake.write_bytes(b"not the official decoder")
    assert run_image(content_path, tmp_path / "out.png", "adain", f"decoder={fake}") == 2
    assert "git blob" in capsys.readouterr().err  # official files are still verified by hash
