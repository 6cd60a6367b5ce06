"""Curation checks: each module holds one check, a function (candidate, parent, config) -> list[Finding].

`candidate` and `parent` are dataset views (a committed Version, or an uncommitted Candidate whose new media are
already in the dataset's object store); `parent` may be None. `config` is the check's own section of the gate
config (a pydantic model, see curate.checks.gate). The gate runs the configured checks; any finding whose severity
blocks (error, and warning when configured) stops the write.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("info", "warning", "error")


@dataclass
class Finding:
    check: str
    severity: str
    message: str
    items: list[Any] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity: {self.severity!r} is not one of {', '.join(SEVERITIES)}")

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def _plain(value: Any) -> Any:
    from curate.manifest import jsonable

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return jsonable(value)


class Candidate:
    """An uncommitted version: a manifest whose objects are already in `dataset`'s store. Quacks like Version."""

    def __init__(self, dataset, manifest, info: dict[str, Any] | None = None, ref: str = "candidate"):
        from curate.manifest import normalise

        self.dataset = dataset
        self.manifest = normalise(manifest)
        self.info = dict(info or {})
        self.ref = f"{dataset.path}@{ref}"
        self.name = ref
        self._rows = {i: (o, e) for i, o, e in zip(self.manifest["id"], self.manifest["object"],
                                                   self.manifest["ext"])}

    def media_path(self, item_id: str):
        digest, ext = self._rows[item_id]
        return self.dataset.object_path(digest, ext)


def train_mask(manifest):
    """Items that count as training data: split == train, or every item when no split is assigned at all."""
    import numpy as np

    splits = list(manifest["split"])
    if all(s is None for s in splits):
        return np.ones(len(splits), bool)
    return np.array([s == "train" for s in splits])
