"""``main.py image`` and ``main.py models list`` end to end, in process, on the shared images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from main import main

SIZE = "128"


@pytest.fixture(autouse=True)
def offline_private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty private cache, and downloads that fail fast (a dead proxy) instead of reaching out."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture()
def styles(shared: Path) -> tuple[Path, Path]:
    return shared / "images" / "styles" / "starry_night.jpg", shared / "images" / "styles" / "great_wave.jpg"


def stylise(content: Path, out: Path, *extra: str) -> np.ndarray:
    """Run ``main.py image`` and return the written image (BGR); the run must succeed."""
    rc = main(["image", str(content), "-o", str(out), "--size", SIZE, "--style-size", SIZE, *extra])
    assert rc == 0
    image = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.dtype == np.uint8 and image.shape[2] == 3
    return image


def assert_one_line_error(rc: int, capsys: pytest.CaptureFixture, *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


# ---- working runs -------------------------------------------------------------------------------


def test_microast_one_style(content_path, styles, tmp_path, capsys):
    out = stylise(content_path, tmp_path / "out.png", "--style", str(styles[0]))
    content = cv2.imread(str(content_path))
    assert max(out.shape[:2]) == int(SIZE)
    assert out.shape[1] / out.shape[0] == pytest.approx(content.shape[1] / content.shape[0], rel=0.03)
    small = cv2.resize(content, out.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert mean_diff(out, small) > 10  # visibly stylised, not a copy
    assert "wrote" in capsys.readouterr().out


def test_auto_runs_onnx_runtime_and_matches_pytorch(content_path, styles, tmp_path, capsys):
    from export.verify import MIN_PSNR_DB, psnr

    auto = stylise(content_path, tmp_path / "auto.png", "--style", str(styles[0]), "--alpha", "0.7")
    said = capsys.readouterr().out
    on_torch = stylise(
        content_path, tmp_path / "torch.png", "--style", str(styles[0]), "--alpha", "0.7", "--backend", "torch"
    )
    if not torch.cuda.is_available():  # a CPU-only machine: auto is ONNX Runtime, and the line says so
        assert "microast on onnxruntime cpu" in said
    assert "microast on torch" in capsys.readouterr().out
    # the exported graph's own threshold: fp32 on a CPU, fp16 where auto picked a GPU's fp16 artifact
    assert psnr(auto, on_torch) >= MIN_PSNR_DB["fp16" if "fp16" in said else "fp32"]


@pytest.mark.parametrize(
    "extra,words",
    [
        (["--model", "gatys"], ["gatys", "PyTorch"]),
        (["--mask", "MASK"], ["--mask", "PyTorch", "--backend auto or torch"]),
    ],
)
def test_what_runs_only_on_pytorch_refuses_another_backend(extra, words, content_path, styles, tmp_path, capsys):
    mask = tmp_path / "mask.png"
    cv2.imwrite(str(mask), np.full((32, 32), 255, np.uint8))
    style_args = ["--style", str(styles[0])] + ([str(styles[1])] if "--mask" in extra else [])
    extra = [str(mask) if e == "MASK" else e for e in extra]
    rc = main(
        ["image", str(content_path), *style_args, *extra, "--backend", "onnxruntime", "-o", str(tmp_path / "o.png")]
    )
    assert_one_line_error(rc, capsys, *words)
    assert not (tmp_path / "o.png").exists()


def test_style_by_name_equals_style_by_path(content_path, styles, tmp_path):
    from models.bundle import STYLES_DIR

    # a bundled name is the package's copy (found before the original on STYLIZER_PATH)
    by_name = stylise(content_path, tmp_path / "name.png", "--style", "starry_night")
    by_path = stylise(content_path, tmp_path / "path.png", "--style", str(STYLES_DIR / "starry_night.jpg"))
    np.testing.assert_array_equal(by_name, by_path)
    # a name not bundled (rights unknown) is the file on STYLIZER_PATH
    by_name = stylise(content_path, tmp_path / "candy_name.png", "--style", "candy")
    by_path = stylise(content_path, tmp_path / "candy_path.png", "--style", str(styles[0].parent / "candy.jpg"))
    np.testing.assert_array_equal(by_name, by_path)


def test_style_weights_blend(content_path, styles, tmp_path):
    a = stylise(content_path, tmp_path / "a.png", "--style", str(styles[0]))
    b = stylise(content_path, tmp_path / "b.png", "--style", str(styles[1]))
    only_a = stylise(content_path, tmp_path / "only_a.png", "--style", *map(str, styles), "--style-weights", "1", "0")
    half = stylise(content_path, tmp_path / "half.png", "--style", *map(str, styles), "--style-weights", "1", "1")
    assert mean_diff(only_a, a) < 1.0
    # The even blend is a third image, between the two styles rather than equal to either.
    assert mean_diff(half, a) > 3 and mean_diff(half, b) > 3
    assert mean_diff(half, a) < mean_diff(a, b) and mean_diff(half, b) < mean_diff(a, b)


def test_mask_splits_two_styles(content_path, styles, tmp_path):
    content = cv2.imread(str(content_path))
    mask = np.zeros(content.shape[:2], np.uint8)
    mask[:, : content.shape[1] // 2] = 255  # left half: first style; right half: second
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    a = stylise(content_path, tmp_path / "a.png", "--style", str(styles[0]))
    b = stylise(content_path, tmp_path / "b.png", "--style", str(styles[1]))
    mixed = stylise(
        content_path, tmp_path / "m.png", "--style", *map(str, styles), "--mask", str(tmp_path / "mask.png")
    )
    w = mixed.shape[1]
    left, right = slice(0, w // 2 - 4), slice(w // 2 + 4, w)
    assert mean_diff(mixed[:, left], a[:, left]) < 1.0 and mean_diff(mixed[:, left], b[:, left]) > 5
    assert mean_diff(mixed[:, right], b[:, right]) < 1.0 and mean_diff(mixed[:, right], a[:, right]) > 5


def test_preserve_color_keeps_content_chroma(content_path, styles, tmp_path):
    plain = stylise(content_path, tmp_path / "plain.png", "--style", str(styles[0]))
    kept = stylise(content_path, tmp_path / "kept.png", "--style", str(styles[0]), "--preserve-color")
    content = cv2.resize(cv2.imread(str(content_path)), plain.shape[1::-1], interpolation=cv2.INTER_AREA)

    def chroma(img: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)[..., 1:]

    assert mean_diff(chroma(kept), chroma(content)) < 0.5 * mean_diff(chroma(plain), chroma(content))
    luma = cv2.cvtColor(kept, cv2.COLOR_BGR2GRAY)
    assert mean_diff(luma, cv2.cvtColor(plain, cv2.COLOR_BGR2GRAY)) < 3  # the stylised luminance stays


def test_gatys_through_the_cli(content_path, styles, tmp_path):
    out = stylise(
        content_path,
        tmp_path / "g.png",
        "--style",
        str(styles[0]),
        "--model",
        "gatys",
        "--iters",
        "3",
        "--size",
        "48",
        "--style-size",
        "48",
    )
    assert max(out.shape[:2]) == 48


@pytest.mark.parametrize("kind", ["grey", "rgba", "16bit"])
def test_unusual_png_inputs_work(kind, content_path, styles, tmp_path):
    bgr = cv2.resize(cv2.imread(str(content_path)), (96, 64), interpolation=cv2.INTER_AREA)
    image = {
        "grey": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
        "rgba": np.dstack([bgr, np.full(bgr.shape[:2], 200, np.uint8)]),
        "16bit": bgr.astype(np.uint16) * 257,
    }[kind]
    path = tmp_path / f"{kind}.png"
    assert cv2.imwrite(str(path), image)
    out = stylise(path, tmp_path / "out.png", "--style", str(styles[0]), "--size", "0")
    assert out.shape == (64, 96, 3)


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an EXIF APP1 segment holding only the orientation tag (as phones write it)."""
    tiff = (
        b"MM\x00\x2a\x00\x00\x00\x08"
        + b"\x00\x01"
        + b"\x01\x12\x00\x03\x00\x00\x00\x01"
        + orientation.to_bytes(2, "big")
        + b"\x00\x00"
        + b"\x00\x00\x00\x00"
    )
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


@pytest.mark.parametrize("grey", [False, True])
def test_phone_jpeg_with_exif_rotation_is_read_upright(grey, content_path, styles, tmp_path):
    from core.images import read_image

    stored = np.zeros((40, 80, 3), np.uint8)
    stored[:, :40] = 255  # left half white; orientation 6 shows it rotated 90 degrees clockwise: top half white
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(stored, cv2.COLOR_BGR2GRAY) if grey else stored)
    path = tmp_path / "phone.jpg"
    path.write_bytes(with_exif_orientation(jpeg.tobytes(), 6))
    image = read_image(path)
    assert image.shape == (80, 40, 3)
    assert np.abs(image.astype(int) - np.rot90(stored, -1).astype(int)).mean() < 8
    out = stylise(path, tmp_path / "out.png", "--style", str(styles[0]), "--size", "0")
    assert out.shape == (80, 40, 3)


# ---- errors: one line on stderr, exit 2, no traceback ----------------------------------------------


def test_missing_content_file(styles, tmp_path, capsys):
    rc = main(["image", str(tmp_path / "nope.jpg"), "--style", str(styles[0]), "-o", str(tmp_path / "o.png")])
    assert_one_line_error(rc, capsys, "nope.jpg", "does not exist")


def test_corrupt_image(styles, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    rc = main(["image", str(bad), "--style", str(styles[0]), "-o", str(tmp_path / "o.png")])
    assert_one_line_error(rc, capsys, "bad.jpg", "not a readable image")


def test_unsupported_file(styles, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("a text file\n")
    rc = main(["image", str(text), "--style", str(styles[0]), "-o", str(tmp_path / "o.png")])
    assert_one_line_error(rc, capsys, "notes.txt")


def test_tiny_image(styles, tmp_path, capsys):
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.full((8, 8, 3), 128, np.uint8))
    rc = main(["image", str(tiny), "--style", str(styles[0]), "-o", str(tmp_path / "o.png")])
    assert_one_line_error(rc, capsys, "8x8")


def test_unknown_style_name(content_path, tmp_path, capsys):
    rc = main(["image", str(content_path), "--style", "no_such_painting", "-o", str(tmp_path / "o.png")])
    assert_one_line_error(rc, capsys, "no_such_painting", "starry_night")


def test_output_folder_missing(content_path, styles, tmp_path, capsys):
    rc = main(["image", str(content_path), "--style", str(styles[0]), "-o", str(tmp_path / "no" / "o.png")])
    assert_one_line_error(rc, capsys, "does not exist")


def test_output_is_the_input(content_path, styles, tmp_path, capsys):
    copy = tmp_path / "content.jpg"
    copy.write_bytes(content_path.read_bytes())
    rc = main(["image", str(copy), "--style", str(styles[0]), "-o", str(copy)])
    assert_one_line_error(rc, capsys, "is the input")
    assert copy.read_bytes() == content_path.read_bytes()


def test_adain_without_weights(content_path, styles, tmp_path, capsys, no_weights_env):
    rc = main(
        ["image", str(content_path), "--style", str(styles[0]), "--model", "adain", "-o", str(tmp_path / "o.png")]
    )
    err = assert_one_line_error(rc, capsys, "not found")
    assert "vgg_normalised.pth" in err or "decoder.pth" in err
    assert not (tmp_path / "o.png").exists()


def test_gatys_with_two_styles(content_path, styles, tmp_path, capsys):
    rc = main(
        ["image", str(content_path), "--style", *map(str, styles), "--model", "gatys", "-o", str(tmp_path / "o.png")]
    )
    assert_one_line_error(rc, capsys, "one style")


@pytest.mark.parametrize(
    "device, words",
    [
        ("foo", ("unknown torch device", "'foo'")),
        ("cuda:x", ("unknown torch device",)),
        pytest.param(
            "cuda",
            ("no CUDA GPU", "--device cpu"),
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA"),
        ),
    ],
)
def test_bad_device(device, words, content_path, styles, tmp_path, capsys):
    rc = main(
        ["image", str(content_path), "--style", str(styles[0]), "--device", device, "-o", str(tmp_path / "o.png")]
    )
    assert_one_line_error(rc, capsys, *words)
    assert not (tmp_path / "o.png").exists()


def test_unknown_weights_role_is_not_ignored(content_path, styles, shared, tmp_path, capsys):
    decoder = shared / "weights" / "microast" / "decoder_iter_160000.pth.tar"
    rc = main(
        [
            "image",
            str(content_path),
            "--style",
            str(styles[0]),
            "--weights",
            f"decodr={decoder}",
            "-o",
            str(tmp_path / "o.png"),
        ]
    )
    assert_one_line_error(rc, capsys, "decodr", "decoder")
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--model", "nosuchmodel"], ("invalid choice", "nosuchmodel")),
        (["--alpha", "1.5"], ("--alpha", "between 0 and 1")),
        (["--alpha", "-0.1"], ("--alpha",)),
    ],
)
def test_bad_options_are_argparse_errors(args, words, content_path, styles, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["image", str(content_path), "--style", str(styles[0]), "-o", str(tmp_path / "o.png"), *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(w in err for w in words), err
    assert not (tmp_path / "o.png").exists()


# ---- models list -----------------------------------------------------------------------------------


def test_models_list_tells_found_and_missing(shared, capsys):
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    microast = [line for line in lines if "official/" in line and "_iter_160000" in line]
    assert len(microast) == 4 and all("found" in line and str(shared / "weights") in line for line in microast)
    adain = [line for line in lines if "official/decoder" in line and "decoder.pth" in line]
    assert adain and all("missing" in line for line in adain)
    assert any("vgg19" in line and "found" in line for line in lines)
