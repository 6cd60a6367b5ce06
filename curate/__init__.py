"""curate: versioned datasets and judgement about them (checks, error analysis, reports).

Heavy modules (pandas, pyarrow) load on first use, so `import curate` stays cheap.

    import curate
    v = curate.open("datasets/speech").load("latest")
    for item in v.iter_media(split="train"): ...          # MediaItem(id, path, row[, data, sample_rate])
    gate = curate.check("datasets/speech@latest")         # curate.checks.GateResult, as `curate check` judges it
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curate.checks import GateResult
    from curate.store import Dataset, Version
    from curate.version import MediaItem

__all__ = ["open", "check", "Dataset", "Version", "MediaItem", "__version__"]


def open(path, *, create: bool = False) -> "Dataset":  # noqa: A001 - the documented API is curate.open
    """Open the dataset at `path` (a directory made by the store); `create=True` makes an empty one if absent."""
    from curate.store import open_dataset

    return open_dataset(path, create=create)


def check(ref, config=None, predictions=None, progress=None) -> "GateResult":
    """The curation gate on a version, as `curate check` runs it: `ref` ('PATH[@vNNNN|@latest]' or a Version) against
    the version it was made from; `config` None (defaults), a mapping, or a gate-config YAML path; `predictions` a
    predictions CSV. A failing gate is a GateResult with `passed == False`; bad input raises BadInput."""
    from curate.api import check as run_check

    return run_check(ref, config, predictions, progress)


def __getattr__(name: str) -> Any:
    if name in ("Dataset", "Version"):
        from curate import store

        return getattr(store, name)
    if name == "MediaItem":
        from curate.version import MediaItem

        return MediaItem
    if name == "__version__":
        from curate.store import package_version

        return package_version()
    raise AttributeError(f"module 'curate' has no attribute {name!r}")
