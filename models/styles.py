"""Style images by name or path, and the cache of encoded style codes.

A built-in name is looked up in the package first (``models/assets/styles``: eight public-domain
paintings, re-encoded at most 512 px), then as the original file on ``STYLIZER_PATH``, in the cache,
or downloaded (hash-checked).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.base import StyleCode, StyleModel
from models.bundle import STYLES_DIR, bundled_paintings, bundled_style_names
from core.errors import InputError
from models.errors import WeightsError
from core.images import IMAGE_SUFFIXES, read_image, resize_longest, to_tensor
from models.weights import FileSpec, WeightStore

_JCJ_NS = (
    "https://raw.githubusercontent.com/jcjohnson/neural-style/07c4b8299f8fbdafec0c514fc820ff1d7ff62e46/examples/inputs/"
)
_JCJ_FNS = "https://raw.githubusercontent.com/jcjohnson/fast-neural-style/813c83441953ead2adb3f65f4cc2d5599d735fa7/images/styles/"
_NAOTO = (
    "https://raw.githubusercontent.com/naoto0804/pytorch-AdaIN/47950d0e6656a95a80a4b105c4c0f58d38ef785c/input/style/"
)

#: The built-in gallery: public-domain paintings (and the two classic fast-style images, not bundled: their
#: rights are unknown). These specs are of the original files; the bundled copies are found first.
BUILTIN_STYLES: dict[str, FileSpec] = {
    "starry_night": FileSpec(
        "starry_night.jpg",
        _JCJ_NS + "starry_night.jpg",
        sha256="0592ab0f7b51b3ce72608a95e53880bd93971e5b48f93a0ce8dfd3cbccf3d098",
        license="public domain",
    ),
    "the_scream": FileSpec(
        "the_scream.jpg",
        _JCJ_NS + "the_scream.jpg",
        sha256="f3075cddeb974a9ee1d6418f7f33fd05185a7ac7dcb4288bd2805d499a9dcaee",
        license="public domain",
    ),
    "great_wave": FileSpec(
        "great_wave.jpg",
        _JCJ_FNS + "wave.jpg",
        sha256="14bcf58a39b7095168f27756d76d0c615bb8954acc5eae9e62c66a9684c2ee2b",
        license="public domain",
    ),
    "composition_vii": FileSpec(
        "composition_vii.jpg",
        _JCJ_FNS + "composition_vii.jpg",
        sha256="8f992ed4aecd6dd56972d7bc8166761de7c94e670ee6effa8fd05f3daeb33409",
        license="public domain",
    ),
    "shipwreck": FileSpec(
        "shipwreck.jpg",
        _JCJ_NS + "shipwreck.jpg",
        sha256="4f7cf34e3cd4a5daaf3f421f059ca9a01aaa2a3afd7243d6670c9c8bc001a213",
        license="public domain",
    ),
    "udnie": FileSpec(
        "udnie.jpg",
        _JCJ_FNS + "udnie.jpg",
        sha256="c3d3d4b9e325b485820d1a91df3bad591c2bab86919412e9f1b424e862cf204a",
        license="public domain (US)",
    ),
    "woman_with_hat_matisse": FileSpec(
        "woman_with_hat_matisse.jpg",
        _JCJ_NS + "woman-with-hat-matisse.jpg",
        sha256="6a8b2383d9c110354a97a42c74bdcc5341be879cbb842ddb7ab5843dbdf56d53",
        license="public domain (US)",
    ),
    "mondrian": FileSpec(
        "mondrian.jpg",
        _NAOTO + "mondrian.jpg",
        sha256="b3f228ad1dfa21ed368451a08af372640b2fc062597d47688fffbd06f3c82b0f",
        license="public domain",
    ),
    "candy": FileSpec(
        "candy.jpg",
        _JCJ_FNS + "candy.jpg",
        sha256="1af09b2c18a6674b7d88849cb87564dd77e1ce04d1517bb085449b614cc0c8d8",
        license="unknown",
    ),
    "mosaic": FileSpec(
        "mosaic.jpg",
        _JCJ_FNS + "mosaic.jpg",
        sha256="17698add60e1ce8618103c04e6cdddc5ac21b82181a37b7517413f36a5b785a4",
        license="unknown",
    ),
}


def find_style(name_or_path: str | Path, store: WeightStore) -> Path:
    """A style image given by path, by file name or stem on the search path, or by built-in name."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    name = str(name_or_path)
    if name in bundled_style_names():
        return STYLES_DIR / f"{name}.jpg"
    if name in BUILTIN_STYLES:
        try:
            return store.resolve(BUILTIN_STYLES[name])
        except WeightsError as exc:
            raise InputError(f"style {name!r} is not on disk and could not be fetched: {exc}") from exc
    if path.suffix.lower() in IMAGE_SUFFIXES or "/" in name:
        raise InputError(f"style image {name} does not exist; give a path or one of: {', '.join(BUILTIN_STYLES)}")
    for suffix in IMAGE_SUFFIXES:
        found = store.find_local(name + suffix)
        if found:
            return found[0]
    raise InputError(
        f"unknown style {name!r}: not a file, and not an image on the search path; "
        f"give a path or one of: {', '.join(BUILTIN_STYLES)}"
    )


def style_origin(path: Path, store: WeightStore) -> str:
    """Where a style image came from: ``package``, ``STYLIZER_PATH``, ``cache`` or ``explicit path``."""
    return "package" if Path(path).resolve().parent == STYLES_DIR else store.origin(path)


def list_styles_on_path(store: WeightStore) -> list[Path]:
    """The bundled paintings, then every image in a 'styles' folder on the search path (for galleries).

    An image on the path with a bundled painting's name is the same painting, so it is left out.
    """
    found: list[Path] = [p.path for p in bundled_paintings()]
    names = {p.stem for p in found}
    for root in store.search_path:
        if root.is_dir():
            for folder in [root] + sorted(p for p in root.rglob("styles") if p.is_dir()):
                if folder.name == "styles":
                    found.extend(
                        sorted(
                            p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.stem not in names
                        )
                    )
    return found


@dataclass(frozen=True)
class StyleImage:
    """A decoded style image plus the digest that identifies it in the code cache."""

    path: Path
    bgr: np.ndarray
    digest: str

    @classmethod
    def load(cls, path: str | Path) -> "StyleImage":
        bgr = read_image(path)
        return cls(Path(path), bgr, hashlib.sha256(bgr.tobytes()).hexdigest()[:16])

    @property
    def name(self) -> str:
        return self.path.stem


class StyleCodeCache:
    """Encoded style codes keyed by (model, image digest, style size); thread-safe LRU.

    The model part of the key is the model object itself (held weakly), so a new model that
    happens to reuse a freed one's ``id()`` never gets the old model's codes.
    """

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._codes: OrderedDict[tuple[int, str, int], tuple[weakref.ref, StyleCode]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._codes)

    def get(self, model: StyleModel, style: StyleImage, style_size: int = 512) -> StyleCode:
        key = (id(model), style.digest, style_size)
        with self._lock:
            entry = self._codes.get(key)
            if entry is not None and entry[0]() is model:
                self._codes.move_to_end(key)
                return entry[1]
        with torch.inference_mode():
            code = model.encode_style(to_tensor(resize_longest(style.bgr, style_size), model.device))
        with self._lock:
            self._codes[key] = (weakref.ref(model), code)
            self._codes.move_to_end(key)
            while len(self._codes) > self.capacity:
                self._codes.popitem(last=False)
        return code
