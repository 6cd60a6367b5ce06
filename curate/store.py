"""Versioned, content-addressed dataset store.

Layout of a dataset directory:
    dataset.json            format marker and name
    objects/ab/<sha256>.<ext>   media by content hash, shared by all versions, never rewritten
    versions/vNNNN/         manifest.parquet, version.json (+ reports): immutable once renamed into place
    LATEST                  name of the newest version
    .lock                   present while a writer commits
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import sys
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from curate.exceptions import BadInput, StoreLocked

FORMAT = "rubbersheet-dataset"
FORMAT_VERSION = 1
_VERSION_DIR = re.compile(r"^v(\d{4,})$")
_REF_SUFFIX = re.compile(r"^(?:v?(\d+)|latest)$", re.IGNORECASE)
_INFO_FIELDS = ("parent", "recipe", "seed", "command", "gate", "sweep", "evaluation", "source")


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rubbersheet")
    except PackageNotFoundError:
        return "0+unknown"


def version_name(number: int) -> str:
    return f"v{number:04d}"


def split_ref(ref: str | os.PathLike) -> tuple[Path, str]:
    """'PATH[@vNNNN|@latest]' -> (path, 'vNNNN' or 'latest'). An '@' not followed by a version is part of the path."""
    text = os.fspath(ref)
    if "@" in text:
        head, _, tail = text.rpartition("@")
        match = _REF_SUFFIX.match(tail)
        if match and head:
            return Path(head), (version_name(int(match.group(1))) if match.group(1) else "latest")
        if tail.lower().startswith("v") or tail.lower() == "":
            raise BadInput(f"{text}: bad version reference '@{tail}' (expected @vNNNN or @latest)")
    return Path(text), "latest"


def open_dataset(path: str | os.PathLike, *, create: bool = False) -> "Dataset":
    root = Path(path)
    marker = root / "dataset.json"
    if marker.is_file():
        try:
            meta = json.loads(marker.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BadInput(f"{marker}: not valid JSON ({exc})") from None
        if meta.get("format") != FORMAT:
            raise BadInput(f"{marker}: not a rubbersheet dataset (format {meta.get('format')!r})")
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise BadInput(f"{marker}: dataset format {meta['format_version']} is newer than this rubbersheet "
                           f"({package_version()}) understands; upgrade rubbersheet")
        return Dataset(root, meta)
    if not create:
        if root.exists():
            raise BadInput(f"{root}: not a rubbersheet dataset (no dataset.json)")
        raise BadInput(f"{root}: dataset does not exist")
    if root.exists() and not root.is_dir():
        raise BadInput(f"{root}: is a file, not a dataset directory")
    if root.exists() and any(root.iterdir()):
        raise BadInput(f"{root}: exists, is not empty and is not a rubbersheet dataset")
    (root / "objects").mkdir(parents=True, exist_ok=True)
    (root / "versions").mkdir(exist_ok=True)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": root.resolve().name,
            "created": _utc_now()}
    _atomic_write(marker, json.dumps(meta, indent=2).encode())
    return Dataset(root, meta)


def load_ref(ref: str | os.PathLike) -> "Version":
    """Open the version a reference names: 'PATH', 'PATH@latest' or 'PATH@vNNNN'."""
    path, version = split_ref(ref)
    return open_dataset(path).load(version)


class Dataset:
    def __init__(self, path: Path, meta: dict[str, Any]):
        self.path = path
        self.meta = meta
        self._lock_depth = 0  # the lock is re-entrant for this object: a runner holds it and commits inside

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.path.name)

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, versions={len(self.versions())})"

    def versions(self) -> list[str]:
        """Committed versions, oldest first (temporary directories of unfinished commits are never listed)."""
        found = []
        for entry in (self.path / "versions").iterdir() if (self.path / "versions").is_dir() else []:
            match = _VERSION_DIR.match(entry.name)
            if match and entry.is_dir() and (entry / "version.json").is_file():
                found.append((int(match.group(1)), entry.name))
        return [name for _, name in sorted(found)]

    def latest(self) -> str | None:
        marker = self.path / "LATEST"
        if marker.is_file():
            name = marker.read_text(encoding="utf-8").strip()
            if (self.path / "versions" / name / "version.json").is_file():
                return name
        names = self.versions()
        return names[-1] if names else None

    def load(self, ref: str = "latest") -> "Version":
        name = self.latest() if ref == "latest" else ref
        if name is None:
            raise BadInput(f"{self.path}: dataset has no versions yet")
        match = _REF_SUFFIX.match(name)
        if match and match.group(1):
            name = version_name(int(match.group(1)))
        directory = self.path / "versions" / name
        if not (directory / "version.json").is_file():
            known = ", ".join(self.versions()) or "none"
            raise BadInput(f"{self.path}@{name}: no such version (versions: {known})")
        return Version(self, directory)

    def object_path(self, digest: str, ext: str) -> Path:
        return self.path / "objects" / digest[:2] / f"{digest}.{ext}"

    def put_object(self, content: bytes | os.PathLike, ext: str) -> str:
        """Store media by content hash (idempotent; never rewrites an existing object); return the hash."""
        return put_object(self.path, content, ext)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive writer lock (a file created with O_EXCL). A lock left by a dead process on this host is taken over."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        lock_path = self.path / ".lock"
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": _utc_now(),
                  "command": shlex.join(sys.argv)}
        for attempt in range(2):
            try:
                fd = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                other = _read_lock(lock_path)
                if attempt == 0 and _is_stale(other):
                    lock_path.unlink(missing_ok=True)
                    continue
                raise StoreLocked(
                    f"{self.path}: locked by another writer (pid {other.get('pid', '?')} on {other.get('host', '?')} "
                    f"since {other.get('since', '?')}); wait for it to finish, or delete {lock_path} if no writer "
                    "is running") from None
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(holder, f)
            self._lock_depth = 1
            yield
        finally:
            self._lock_depth = 0
            lock_path.unlink(missing_ok=True)

    def commit(self, manifest, media: Mapping[str, bytes | os.PathLike] | None = None,
               info: Mapping[str, Any] | None = None,
               files: Callable[[dict[str, Any]], Mapping[str, bytes]] | None = None) -> "Version":
        """Write a new version: store the media of new items, then the manifest and version.json, atomically.

        `media` maps item id -> file bytes or a path; items not in it must reference an object already stored.
        `info` may set parent (default: the latest version), recipe ({'name', 'text'}), seed, command, gate,
        evaluation, sweep, source. `files(version_json) -> {name: bytes}` adds files (reports) to the version
        directory; they are written before the version appears, like everything else in it. Returns the Version."""
        from curate import manifest as mf

        media = dict(media or {})
        info = dict(info or {})
        unknown = sorted(set(info) - set(_INFO_FIELDS))
        if unknown:
            raise BadInput(f"commit info: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(_INFO_FIELDS)})")
        frame = mf.normalise(manifest)
        missing = sorted(set(media) - set(frame["id"]))
        if missing:
            raise BadInput(f"commit: media given for id {missing[0]!r}, which is not in the manifest")
        with self.lock():
            self.sweep_temporaries()
            parent = info.pop("parent", "latest")
            parent = self.latest() if parent == "latest" else parent
            if parent is not None and parent not in self.versions():
                raise BadInput(f"commit: parent {parent!r} is not a version of {self.path}")
            frame = self._store_media(frame, media)
            existing = self.versions()
            number = int(existing[-1][1:]) + 1 if existing else 1
            return self._write_version(version_name(number), parent, frame, info, files)

    def _store_media(self, frame, media: Mapping[str, bytes | os.PathLike]):
        objects = list(frame["object"])
        for index, (item_id, ext, kind) in enumerate(zip(frame["id"], frame["ext"], frame["media"])):
            if ext is None or kind is None:
                raise BadInput(f"manifest item {item_id!r}: 'ext' and 'media' must be set")
            if item_id in media:
                digest = self.put_object(media[item_id], ext)
                if objects[index] is not None and objects[index] != digest:
                    raise BadInput(f"manifest item {item_id!r}: object {objects[index]} does not match the "
                                   f"media given (sha256 {digest})")
                objects[index] = digest
            elif objects[index] is None:
                raise BadInput(f"manifest item {item_id!r}: no media given and no stored object")
            elif not self.object_path(objects[index], ext).is_file():
                raise BadInput(f"manifest item {item_id!r}: object {objects[index]}.{ext} is not in the store "
                               "and no media was given for it")
        frame = frame.copy()
        frame["object"] = objects
        return frame

    def _write_version(self, name: str, parent: str | None, frame, info: dict[str, Any],
                       files: Callable[[dict[str, Any]], Mapping[str, bytes]] | None = None) -> "Version":
        from curate import manifest as mf

        versions_dir = self.path / "versions"
        versions_dir.mkdir(exist_ok=True)
        temp = versions_dir / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
        temp.mkdir()
        try:
            _write_manifest(frame, temp / "manifest.parquet")
            recipe = info.pop("recipe", None)
            if recipe is not None:
                recipe = dict(recipe)
                if recipe.get("text") is not None:
                    recipe["sha256"] = hashlib.sha256(recipe["text"].encode("utf-8")).hexdigest()
            record = {
                "name": self.name,
                "version": name,
                "parent": parent,
                "created": _utc_now(),
                "fingerprint": mf.fingerprint(frame),
                "manifest_sha256": _sha256_bytes((temp / "manifest.parquet").read_bytes()),
                "counts": mf.counts(frame),
                "recipe": recipe,
                "seed": info.pop("seed", None),
                "package_version": package_version(),
                "command": info.pop("command", shlex.join(sys.argv)),
                "gate": info.pop("gate", None),
                **{k: v for k, v in info.items() if v is not None},
            }
            _durable_write(temp / "version.json", (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode())
            for file_name, data in (files(record) if files else {}).items():
                if file_name in ("manifest.parquet", "version.json") or "/" in file_name or file_name.startswith("."):
                    raise BadInput(f"commit: cannot add a file named {file_name!r} to a version")
                _durable_write(temp / file_name, data)
            _fsync_dir(temp)
            os.rename(temp, versions_dir / name)
            _fsync_dir(versions_dir)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        _atomic_write(self.path / "LATEST", (name + "\n").encode())
        return Version(self, versions_dir / name)

    def sweep_temporaries(self) -> None:
        """Remove what a writer killed mid-commit left behind (call only while holding the lock)."""
        for temp in (self.path / "versions").glob(".tmp-*"):
            shutil.rmtree(temp, ignore_errors=True)
        for temp in (self.path / "objects").glob("*/.tmp-*"):
            temp.unlink(missing_ok=True)


class Version:
    def __init__(self, dataset: Dataset, path: Path):
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

    @cached_property
    def _rows(self) -> dict[str, tuple[str, str]]:
        return {i: (o, e) for i, o, e in zip(self.manifest["id"], self.manifest["object"], self.manifest["ext"])}

    def media_path(self, item_id: str) -> Path:
        try:
            digest, ext = self._rows[item_id]
        except KeyError:
            raise BadInput(f"{self.ref}: no item with id {item_id!r}") from None
        return self.dataset.object_path(digest, ext)


@dataclass(frozen=True)
class Problem:
    """One thing `verify` found wrong: where, and what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def verify(dataset: Dataset) -> tuple[list[Problem], dict[str, int]]:
    """Re-hash every referenced object and every manifest; return (problems, figures)."""
    from curate import manifest as mf
    from curate.media import sha256_file

    problems: list[Problem] = []
    referenced: dict[Path, str] = {}
    names = dataset.versions()
    for name in names:
        version = dataset.load(name)
        manifest_path = version.path / "manifest.parquet"
        try:
            info = version.info
            if _sha256_bytes(manifest_path.read_bytes()) != info.get("manifest_sha256"):
                problems.append(Problem(str(manifest_path), "manifest bytes changed since commit (sha256 mismatch)"))
            frame = version.manifest
        except (BadInput, OSError, ValueError) as exc:
            problems.append(Problem(str(manifest_path), f"unreadable ({exc})"))
            continue
        if mf.fingerprint(frame) != info.get("fingerprint"):
            problems.append(Problem(str(manifest_path), "manifest fingerprint does not match version.json"))
        for digest, ext in zip(frame["object"], frame["ext"]):
            referenced[dataset.object_path(digest, ext)] = digest
    for path, digest in sorted(referenced.items()):
        if not path.is_file():
            problems.append(Problem(str(path), "object missing"))
        elif sha256_file(path) != digest:
            problems.append(Problem(str(path), "object content does not match its hash (corrupted)"))
    latest = (dataset.path / "LATEST")
    if names and latest.is_file() and latest.read_text(encoding="utf-8").strip() not in names:
        problems.append(Problem(str(latest), "names a version that does not exist"))
    stored = sum(1 for p in (dataset.path / "objects").glob("*/*") if not p.name.startswith("."))
    figures = {"versions": len(names), "objects_checked": len(referenced),
               "objects_unreferenced": max(0, stored - len(referenced))}
    return problems, figures


def put_object(root: str | os.PathLike, content: bytes | os.PathLike, ext: str) -> str:
    """Store media in the dataset at `root` by content hash; safe from several processes at once (each write goes
    to a temporary name and is renamed into place; an existing object is never rewritten). Returns the hash."""
    from curate.media import sha256_file

    digest = hashlib.sha256(content).hexdigest() if isinstance(content, (bytes, bytearray, memoryview)) \
        else sha256_file(Path(content))
    target = Path(root) / "objects" / digest[:2] / f"{digest}.{ext}"
    if not target.exists():
        _write_object(target, content)
    return digest


def _write_manifest(frame, path: Path) -> None:
    from curate.manifest import write_parquet

    write_parquet(frame, path)
    _fsync_file(path)


def _write_object(target: Path, content: bytes | os.PathLike) -> None:
    """Content-addressed write: a temporary name in the same folder, fsync, rename (idempotent, never partial)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".tmp-{uuid.uuid4().hex}"
    try:
        if isinstance(content, (bytes, bytearray, memoryview)):
            _durable_write(temp, bytes(content))
        else:
            shutil.copyfile(content, temp)
            _fsync_file(temp)
        os.chmod(temp, 0o444)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _durable_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _atomic_write(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        _durable_write(temp, data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _read_lock(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _is_stale(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
