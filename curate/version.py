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
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

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
        return f"{self.dataset.path}@{self.name}"

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
            parent_sha256 = sha256_bytes((self.dataset.path / "versions" / self.parent / "version.json").read_bytes())
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
    def __init__(self, dataset: "Dataset", path: Path):
        self.dataset = dataset
        self.path = path
        self.name = path.name

    def __repr__(self) -> str:
        return f"Version({str(self.dataset.path)!r}@{self.name})"

    @property
    def ref(self) -> str:
        return f"{self.dataset.path}@{self.name}"

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

