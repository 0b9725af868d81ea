"""What the app remembers between runs (QSettings): styles folder, model, backend, size, geometry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PyQt6.QtCore import QByteArray, QSettings

ORGANIZATION = "stylizer"
APPLICATION = "stylizer-gui"


@dataclass
class GuiSettings:
    """The persisted choices; ``None`` means 'not saved yet, use the command line or default'."""

    styles_folder: str | None = None
    model: str | None = None
    backend: str | None = None
    size: int | str | None = None  # a short side, 0 = frame size, or "auto"
    geometry: QByteArray | None = None


class SettingsStore:
    """Reads and writes :class:`GuiSettings` in an INI file (a given path, or Qt's user location)."""

    def __init__(self, path: Path | None = None) -> None:
        if path is not None:  # tests and portable installs: an explicit file, never the user's settings
            self._qs = QSettings(str(path), QSettings.Format.IniFormat)
        else:
            self._qs = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)

    @property
    def file_name(self) -> str:
        return self._qs.fileName()

    def load(self) -> GuiSettings:
        def text(key: str) -> str | None:
            value = self._qs.value(key)
            return str(value) if value not in (None, "") else None

        size = self._qs.value("size")
        try:
            size_value = None if size in (None, "") else "auto" if size == "auto" else int(size)
        except (TypeError, ValueError):  # a hand-edited file: ignore the bad value, keep the default
            size_value = None
        geometry = self._qs.value("geometry")
        return GuiSettings(
            styles_folder=text("styles_folder"),
            model=text("model"),
            backend=text("backend"),
            size=size_value,
            geometry=geometry if isinstance(geometry, QByteArray) else None,
        )

    def save(self, settings: GuiSettings) -> None:
        for key in ("styles_folder", "model", "backend", "size", "geometry"):
            value = getattr(settings, key)
            if value is not None:
                self._qs.setValue(key, value)
        self._qs.sync()
