"""A dataset version: committed (`Version`, read-only) or staged (`StagedVersion`, the first phase of a commit).

Both are DatasetViews (curate.view). The commit protocol itself is documented in curate.store.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional

from curate.exceptions import BadInput
from curate.files import (
    atomic_write,
    crash_point,
    durable_write,
    fsync_dir,
    fsync_file,
    sha256_bytes,
    utc_now,
)
from curate.view import MediaByManifest

if TYPE_CHECKING:
    from curate.store import Dataset

RESERVED_FILES = ("manifest.parquet", "version.json")
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class MediaItem:
    """One item of a version (Version.iter_media): its `id`, the absolute `path` of its stored object, its manifest
    `row` (a dict of plain values: label, tags, split, group, metadata; a missing number is None) and, when asked to
    decode, `data` (float32 audio, shape (n,) or (channels, n), with its `sample_rate`; or a uint8 image HxW[xC])."""
    id: str
    path: Path
    row: dict[str, Any]
    data: Any = None
    sample_rate: Optional[int] = None

    @property
    def label(self) -> str:
        return self.row["label"]


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, float) and value != value:
            value = None              # pandas' NaN for a missing metadata number
        elif hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
            value = value.tolist()    # numpy scalars and arrays (tags) as Python values
        out[key] = value
    return out


def _split_filter(split, ref: str) -> Optional[tuple[str, ...]]:
    if split is None:
        return None
    wanted = (split,) if isinstance(split, str) else tuple(split)
    unknown = [s for s in wanted if s not in SPLITS]
    if unknown or not wanted:
        raise BadInput(f"{ref}: split must be one of {', '.join(SPLITS)} (or a list of them), got {split!r}")
    return wanted


def write_manifest(frame, path: Path) -> None:
    from curate.manifest import write_parquet

    write_parquet(frame, path)
    fsync_file(path)


def version_json_bytes(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode()


class StagedVersion(MediaByManifest):
    """A version being written into a temporary directory, invisible to readers: a DatasetView to gate and report
    on, then `commit()` (renamed into place, LATEST updated), `reject(label)` (moved to rejected/) or `discard()`.
    `info` is what version.json will hold, less the digests that `commit` adds (files, parent_sha256)."""

    def __init__(self, dataset: "Dataset", name: str, parent: str | None, frame, info: dict[str, Any]):
        from curate import manifest as mf
        from curate.store import package_version

        self.dataset, self.name, self.manifest, self.parent = dataset, name, frame, parent
        self.rejected = name.startswith("rejected-")
        versions_dir = dataset.path / "versions"
        versions_dir.mkdir(exist_ok=True)
        self.path = versions_dir / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
        self.path.mkdir()
        self._open = True
        self._files: dict[str, str] = {}
        try:
            write_manifest(frame, self.path / "manifest.parquet")
            manifest_sha256 = sha256_bytes((self.path / "manifest.parquet").read_bytes())
            self._files["manifest.parquet"] = manifest_sha256
            crash_point("stage.manifest")
            recipe = info.pop("recipe", None)
            if recipe is not None:
                recipe = dict(recipe)
                if recipe.get("text") is not None:
                    recipe["sha256"] = sha256_bytes(recipe["text"].encode("utf-8"))
            self.info = {
                "name": dataset.name,
                "version": name,
                "parent": parent,
                "created": utc_now(),
                "fingerprint": mf.fingerprint(frame),
                "manifest_sha256": manifest_sha256,
                "counts": mf.counts(frame),
                "recipe": recipe,
                "seed": info.pop("seed", None),
                "package_version": package_version(),
                "command": info.pop("command", shlex.join(sys.argv)),
                "gate": info.pop("gate", None),
                **{k: v for k, v in info.items() if v is not None},
            }
            if self.rejected:
                self.info["status"] = "rejected"
        except BaseException:
            shutil.rmtree(self.path, ignore_errors=True)  # the lock stays with Dataset.stage, which releases it
            self._open = False
            raise

    @property
    def ref(self) -> str:
        return f"{self.dataset.location}@{self.name}"

    def __repr__(self) -> str:
        return f"StagedVersion({self.ref!r})"

    def add_files(self, files: Mapping[str, bytes]) -> None:
        """Add files (reports) to the version; version.json will carry their digests."""
        self._check_open()
        for file_name, data in files.items():
            if file_name in RESERVED_FILES or "/" in file_name or file_name.startswith("."):
                raise BadInput(f"commit: cannot add a file named {file_name!r} to a version")
            durable_write(self.path / file_name, data)
            self._files[file_name] = sha256_bytes(data)
        crash_point("stage.files")

    def _record(self) -> bytes:
        """version.json: the info, the digest of every file beside it, and the digest of the parent's version.json
        (so editing any committed version is seen by its child, and the newest one by LATEST)."""
        parent_sha256 = None
        if self.parent is not None:
            parent_sha256 = sha256_bytes(self.dataset.version_record(self.parent))
        return version_json_bytes({**self.info, "files": dict(sorted(self._files.items())),
                                   "parent_sha256": parent_sha256})

    def commit(self) -> "Version":
        self._check_open()
        if self.rejected:
            raise BadInput(f"{self.ref}: a refused candidate cannot be committed")
        target = self.dataset.path / "versions" / self.name
        try:
            record = self._record()
            durable_write(self.path / "version.json", record)
            fsync_dir(self.path)
            crash_point("commit.record")
            os.rename(self.path, target)
        except BaseException:
            self.discard()
            raise
        try:  # committed: from here a failure only leaves LATEST stale, which the next writer repairs
            fsync_dir(target.parent)
            crash_point("commit.rename")
            atomic_write(self.dataset.path / "LATEST", f"{self.name} {sha256_bytes(record)}\n".encode(),
                         step="commit.ref")
            crash_point("commit.done")
        except OSError:
            pass
        finally:
            self._close()
        return Version(self.dataset, target)

    def reject(self, label: str) -> Path:
        """Move the refused candidate (manifest, version.json, reports) to rejected/<time>-<label>/."""
        self._check_open()
        folder = self.dataset.path / "rejected" / f"{self.name.removeprefix('rejected-')}-{label}"
        try:
            durable_write(self.path / "version.json", version_json_bytes(self.info))
            folder.parent.mkdir(exist_ok=True)
            fsync_dir(self.path)
            os.rename(self.path, folder)
        except BaseException:
            self.discard()
            raise
        self._close()
        return folder

    def discard(self) -> None:
        if self._open:
            shutil.rmtree(self.path, ignore_errors=True)
            self._close()

    def _check_open(self) -> None:
        if not self._open:
            raise BadInput(f"{self.ref}: this staged version was already committed, rejected or discarded")

    def _close(self) -> None:
        self._open = False
        self.dataset.release()


class Version(MediaByManifest):
    """A committed version. `path` is its directory (for a dataset on object storage, its verified copy in the
    local cache, curate.storage), `name` its vNNNN."""

    def __init__(self, dataset: "Dataset", path: Path, name: str | None = None):
        self.dataset = dataset
        self.path = path
        self.name = name or path.name

    def __repr__(self) -> str:
        return f"Version({str(self.dataset.location)!r}@{self.name})"

    @property
    def ref(self) -> str:
        return f"{self.dataset.location}@{self.name}"

    @cached_property
    def info(self) -> dict[str, Any]:
        path = self.path / "version.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BadInput(f"{path}: not valid JSON ({exc})") from None

    @cached_property
    def manifest(self):
        from curate.manifest import read_parquet

        try:
            return read_parquet(self.path / "manifest.parquet")
        except OSError as exc:
            raise BadInput(f"{self.path / 'manifest.parquet'}: unreadable ({exc})") from None

    def manifest_with_paths(self, split: str | list[str] | None = None):
        """A copy of the manifest (pandas DataFrame) with a `path` column: the absolute path (str) of each item's
        stored object, ready for a data loader. `split` keeps only train, dev or test (or a list of them). The
        manifest itself is not changed; do not commit this copy as it is (`path` would become metadata)."""
        frame = self.manifest
        wanted = _split_filter(split, self.ref)
        if wanted is not None:
            frame = frame[frame["split"].isin(wanted)]
        frame = frame.reset_index(drop=True).copy()
        self.dataset.prefetch(zip(frame["object"], frame["ext"]))
        frame["path"] = [str(self.dataset.object_path(d, e).absolute()) for d, e in zip(frame["object"], frame["ext"])]
        return frame

    def iter_media(self, split: str | list[str] | None = None, *, decode: bool = False,
                   sample_rate: int | None = None) -> Iterator[MediaItem]:
        """Every item (of `split`, when given) in manifest order as a MediaItem(id, path, row): `path` is the
        absolute path of its stored object. `decode=True` also reads the media into `data` (audio resampled to
        `sample_rate` when given); an unreadable object raises BadInput naming the item."""
        from curate.media import read_audio, read_image

        if sample_rate is not None and (isinstance(sample_rate, bool) or not isinstance(sample_rate, int)
                                        or sample_rate <= 0):
            raise BadInput(f"{self.ref}: sample_rate must be a positive integer, got {sample_rate!r}")
        frame = self.manifest_with_paths(split)
        for row in frame.to_dict("records"):
            path = Path(row.pop("path"))
            row = _plain_row(row)
            if not decode:
                yield MediaItem(row["id"], path, row)
                continue
            try:
                if row["media"] == "audio":
                    data, rate = read_audio(path, sample_rate=sample_rate)
                else:
                    data, rate = read_image(path), None
            except (ValueError, OSError) as exc:
                raise BadInput(f"{self.ref}: item {row['id']!r}: {exc}") from None
            yield MediaItem(row["id"], path, row, data, rate)
