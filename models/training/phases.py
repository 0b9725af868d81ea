"""The phases of a training run: which settings trained which steps.

A long CPU run is resumed many times, and its settings change between resumes (128-px then 192-px
crops, a higher content weight, fp32 then bf16). The checkpoint keeps one entry per phase, so a model
card can say which steps ran with what, instead of only the last resume's config.

Each phase is a plain dict (it lives in the checkpoint, loaded with ``weights_only``): ``first_step``
plus the settings in :data:`SETTINGS` and ``precision``. A checkpoint written before phases were
recorded gets one phase from step 1 with its stored config, marked ``"recorded": False``.
"""

from __future__ import annotations

#: the run settings a phase records (TrainConfig fields); a change in any of them starts a new phase.
SETTINGS = ("size", "batch", "lr", "lr_decay", "content_weight", "style_weight", "ema", "device")


def phase_settings(config: dict, precision: str) -> dict:
    """The settings of a phase from a TrainConfig as a dict (``dataclasses.asdict``) and the precision name."""
    return {**{k: config.get(k) for k in SETTINGS}, "precision": precision}


def _same(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in (*SETTINGS, "precision"))


def extend(phases: list[dict], step: int, settings: dict) -> list[dict]:
    """``phases`` with the run about to train step ``step + 1`` under ``settings``.

    Unchanged settings continue the last phase; a last phase that never trained a step (resumed and
    stopped at once) is replaced rather than kept empty.
    """
    phases = [dict(p) for p in phases]
    if phases and _same(phases[-1], settings):
        return phases
    if phases and phases[-1]["first_step"] > step:
        phases.pop()
        if phases and _same(phases[-1], settings):
            return phases
    return [*phases, {"first_step": step + 1, "recorded": True, **settings}]


def legacy_phases(config: dict) -> list[dict]:
    """The single phase a checkpoint without a phase history implies: its stored config, from step 1."""
    return [{"first_step": 1, "recorded": False, **phase_settings(config, "precision not recorded")}]


def read_phases(state: dict) -> list[dict]:
    """The phases a checkpoint's state holds, or the one :func:`legacy_phases` implies for an older checkpoint."""
    return list(state.get("phases") or legacy_phases(dict(state.get("config", {}))))


def describe(phases: list[dict], last_step: int) -> list[str]:
    """One Markdown bullet per phase that trained a step, e.g. ``steps 1–94: 128-px crops, batch 4, …``."""
    lines = []
    for i, phase in enumerate(phases):
        first = int(phase["first_step"])
        last = int(phases[i + 1]["first_step"]) - 1 if i + 1 < len(phases) else last_step
        if first > last:
            continue
        text = (
            f"- steps {first:,}–{last:,}: {phase.get('size')}-px crops, batch {phase.get('batch')}, "
            f"lr {phase.get('lr')} (decay {phase.get('lr_decay')}), content weight {phase.get('content_weight')}, "
            f"style weight {phase.get('style_weight')}, EMA {phase.get('ema')}, {phase.get('precision')} "
            f"on `{phase.get('device')}`"
        )
        if not phase.get("recorded", True):
            text += " (the checkpoint's last settings: earlier changes were not recorded)"
        lines.append(text)
    return lines
