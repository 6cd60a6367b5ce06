"""curate: versioned datasets and judgement about them (checks, error analysis, reports).

Heavy modules (pandas, pyarrow) load on first use, so `import curate` stays cheap.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curate.store import Dataset, Version

__all__ = ["open", "Dataset", "Version", "__version__"]


def open(path, *, create: bool = False) -> "Dataset":  # noqa: A001 - the documented API is curate.open
    """Open the dataset at `path` (a directory made by the store); `create=True` makes an empty one if absent."""
    from curate.store import open_dataset

    return open_dataset(path, create=create)


def __getattr__(name: str) -> Any:
    if name in ("Dataset", "Version"):
        from curate import store

        return getattr(store, name)
    if name == "__version__":
        from curate.store import package_version

        return package_version()
    raise AttributeError(f"module 'curate' has no attribute {name!r}")
