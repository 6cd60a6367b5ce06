"""The one notion of "a manifest plus where its media are" that checks, features, reports and baselines read.

`DatasetView` is a Protocol: a committed `curate.store.Version`, a staged (not yet committed) version and the
in-memory `MemoryView` below all satisfy it. A `MemoryView` is a candidate: a manifest whose objects are already in
a dataset's object store (or, for a media folder not imported yet, files located by a function).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ObjectStore(Protocol):
    """Where media objects live: `path` (features are cached under it) and the file of an object."""

    path: Path

    def object_path(self, digest: str, ext: str) -> Path: ...


@runtime_checkable
class DatasetView(Protocol):
    dataset: ObjectStore
    name: str

    @property
    def manifest(self): ...

    @property
    def info(self) -> dict[str, Any]: ...

    @property
    def ref(self) -> str: ...

    def media_path(self, item_id: str) -> Path: ...


class MediaByManifest:
    """`media_path` for any view whose manifest names each item's object (Version, StagedVersion, MemoryView)."""

    def media_path(self, item_id: str) -> Path:
        from curate.exceptions import BadInput

        rows = self.__dict__.get("_object_rows")
        if rows is None:
            frame = self.manifest
            rows = self.__dict__["_object_rows"] = dict(zip(frame["id"], zip(frame["object"], frame["ext"])))
        try:
            digest, ext = rows[item_id]
        except KeyError:
            raise BadInput(f"{self.ref}: no item with id {item_id!r}") from None
        return self.dataset.object_path(digest, ext)


class FolderObjects:
    """Objects of a media folder that has not been imported: each digest maps to the file it was hashed from. The
    folder is the user's: nothing (no feature cache) is ever written into it."""

    writable = False

    def __init__(self, path: Path, files: dict[tuple[str, str], Path]):
        self.path = path
        self._files = files

    def object_path(self, digest: str, ext: str) -> Path:
        return self._files[(digest, ext)]


class MemoryView(MediaByManifest):
    """An uncommitted version: a manifest (normalised here) whose objects `dataset` can locate."""

    def __init__(self, dataset: ObjectStore, manifest, info: dict[str, Any] | None = None, name: str = "candidate",
                 ref: str | None = None):
        from curate.manifest import normalise

        self.dataset = dataset
        self.manifest = normalise(manifest)
        self.info = dict(info or {})
        self.name = name
        self.ref = ref or f"{dataset.path}@{name}"

    def __repr__(self) -> str:
        return f"MemoryView({self.ref!r}, items={len(self.manifest)})"

