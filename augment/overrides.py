"""Recipe overrides, as in Hydra: `augment run RECIPE --set budget=0.5 --set pipeline[0].Gain.gain_db=[1,3]`.

A FIELD is a path into the recipe in the syntax sweeps use: names joined by dots, list positions in brackets
(`budget`, `pipeline[0].AddBackgroundNoise.snr_db`, `curation.block_on`, `sources.where.split`). The VALUE is read
as one YAML value with the recipe's own strict rules (`0.5`, `[5, 15]`, `cafe`, `{split: train}`, `null`). A name
missing from a mapping is added (the recipe's validation then refuses a key it does not know, with "did you mean");
a list position must exist. As in a sweep, `budget=0.5` (a number <= 1) is that fraction of the recipe's budget.
Overrides apply in order, after the file is read and before it is validated, so every
check a recipe gets applies to the resolved recipe.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Mapping, Sequence

from curate.exceptions import BadInput

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_FIELD = re.compile(r"[A-Za-z_*][\w*-]*(\[\d+\])*(\.[A-Za-z_*][\w*-]*(\[\d+\])*)*")


def field_path(field: str, flag: str = "--set") -> list[str | int]:
    """`pipeline[0].Gain.gain_db` -> ["pipeline", 0, "Gain", "gain_db"]; a malformed path is BadInput."""
    if not _FIELD.fullmatch(field):
        raise BadInput(f"{flag}: {field!r} is not a field path (names joined by dots, list positions in brackets, "
                       "e.g. pipeline[0].Gain.gain_db)")
    return [int(index) if index else name for name, index in _TOKEN.findall(field)]


def parse_override(text: str) -> tuple[str, Any]:
    """'FIELD=VALUE' -> (FIELD, VALUE read as strict YAML)."""
    from curate.strict_yaml import parse

    field, sep, raw = text.partition("=")
    if not sep or not field.strip():
        raise BadInput(f"--set {text}: expected FIELD=VALUE (e.g. budget=0.5 or pipeline[0].Gain.gain_db=[1,3])")
    field = field.strip()
    field_path(field, f"--set {text}")
    try:
        _, value = parse(raw if raw.strip() else "''", f"--set {field}")
    except BadInput as exc:
        raise BadInput(f"--set {text}: {str(exc).split(': ', 1)[-1]}") from None
    return field, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str] | Mapping[str, Any] | None) \
        -> tuple[dict[str, Any], list[str]]:
    """(a copy of the recipe data with every override applied, the overrides as 'FIELD=VALUE' texts). `overrides`
    is a list of 'FIELD=VALUE' strings (the CLI) or a mapping {FIELD: value} (the Python API)."""
    import json

    if not overrides:
        return data, []
    pairs = [parse_override(o) for o in overrides] if not isinstance(overrides, Mapping) else \
        [(str(k), v) for k, v in overrides.items()]
    data = copy.deepcopy(data)
    texts = []
    for field, value in pairs:
        if field == "budget" and isinstance(value, float) and 0 < value <= 1:
            from augment.sweep import set_field  # a fraction of the recipe's budget, as in a sweep

            data = set_field(data, field, value)
        else:
            set_path(data, field, value, "--set")
        texts.append(f"{field}={json.dumps(value, separators=(',', ':'), default=str)}")
    return data, texts


def set_path(data: dict[str, Any], field: str, value: Any, flag: str) -> None:
    """Set `field` in `data` in place; intermediate mappings are created, list positions must exist."""
    parts = field_path(field, flag)
    target: Any = data
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(parts[:n + 1]))
        if isinstance(part, int):
            if not isinstance(target, list) or part >= len(target):
                size = f"a list of {len(target)}" if isinstance(target, list) else "not a list"
                raise BadInput(f"{flag} {field}: {where} does not exist in the recipe ({size})")
        elif not isinstance(target, dict):
            raise BadInput(f"{flag} {field}: {where} cannot be set: its parent is not a mapping in the recipe")
        if last:
            target[part] = value
        else:
            if isinstance(part, str) and (part not in target or target[part] is None):
                target[part] = {}
            target = target[part]
