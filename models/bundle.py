"""Paths of the data that ships inside the package: weights, the painting gallery, the examples."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
WEIGHTS_DIR = PACKAGE_DIR / "weights"
STYLES_DIR = PACKAGE_DIR / "assets" / "styles"
EXAMPLES_DIR = PACKAGE_DIR / "assets" / "examples"
#: the example photo (NASA, public domain) and clip (made by tools/make_bundle.py, with sound)
EXAMPLE_PHOTO = EXAMPLES_DIR / "astronaut.jpg"
EXAMPLE_CLIP = EXAMPLES_DIR / "rocket.mp4"


@dataclass(frozen=True)
class Painting:
    """One bundled style image and its credit line."""

    name: str
    artist: str
    title: str
    year: str
    source: str
    rights: str

    @property
    def path(self) -> Path:
        return STYLES_DIR / f"{self.name}.jpg"

    def credit(self) -> str:
        return f"{self.artist}, {self.title} ({self.year}); {self.rights}"


def bundled_paintings() -> list[Painting]:
    """The bundled paintings whose image is present, in the table's order (``styles.csv``)."""
    table = STYLES_DIR / "styles.csv"
    if not table.is_file():
        return []
    with open(table, newline="", encoding="utf-8") as f:
        rows = [Painting(**row) for row in csv.DictReader(f)]
    return [p for p in rows if p.path.is_file()]


def bundled_style_names() -> list[str]:
    """Names accepted by ``--style`` without any download (for help texts)."""
    return [p.name for p in bundled_paintings()]
