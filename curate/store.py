"""Versioned, content-addressed dataset store.

Layout of a dataset directory:
    dataset.json            format marker and name
    objects/ab/<sha256>.<ext>   media by content hash, shared by all versions, never rewritten
    versions/vNNNN/         manifest.parquet, version.json (+ reports): immutable once renamed into place
    LATEST                  "vNNNN <sha256 of its version.json>": a verified cache of the newest version
    .lock                   present while a writer works
    rejected/<time>-<what>/ candidates the gate refused, with their reports

@latest is the newest version DIRECTORY, never only what LATEST says: a version directory exists only once it is
complete (it is written under a temporary name and renamed), so the ref cannot lose a committed version.

Commit protocol (curate.version.StagedVersion), with what a reader sees if the writer dies after each step:
    lock            .lock created; recovery: temporaries of a dead writer removed, a stale LATEST rewritten
                    -> reader: old state
    stage.manifest  versions/.tmp-vNNNN-*/manifest.parquet written (media objects first, content-addressed)
                    -> old state (temporary directories are never listed; the next writer removes them)
    stage.files     reports written beside it                                  -> old state
    commit.record   version.json written: info + digests of every file + parent's version.json digest
                                                                               -> old state
    commit.rename   directory renamed to versions/vNNNN (atomic)               -> NEW state; LATEST is stale until
                                                                                  the next writer repairs it
    commit.ref      LATEST written to a temporary name                         -> new state
    commit.done     LATEST renamed into place                                  -> new state, LATEST current
Objects written by a run that never reaches commit.rename are unreferenced: `curate gc` lists and removes them.

On object storage (a reference `s3://bucket/prefix/name[@vNNNN]`, or any fsspec URL) the layout is the same, but
there is no rename and no O_EXCL: curate.remote.RemoteDataset uploads a version's files first and makes the
conditional create of its version.json the commit point (a second writer can neither overwrite the files nor
commit the same number); a lock there carries a lease, since no pid can be checked on another machine, and a lock
past its lease is taken over. Its docstring gives the crash points and what a reader sees after each. Local paths
never go through it: they keep the code path below (O_EXCL lock, fsync, atomic rename), which writes the same bytes
and prints the same messages as before datasets could live on object storage.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping

from curate.exceptions import BadInput, StoreLocked
from curate.files import atomic_write, durable_write, fsync_file, sha256_bytes, utc_now, utc_stamp
from curate.storage import is_url, location
from curate.version import StagedVersion, Version

FORMAT = "rubbersheet-dataset"
FORMAT_VERSION = 1
VERSION_DIR = re.compile(r"^v(\d{4,})$")
REF_SUFFIX = re.compile(r"^(?:v?(\d+)|latest)$", re.IGNORECASE)
BATCH_MIN_OBJECTS = 64   # Dataset.put_files writes this many new objects or more as one syncfs batch
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
    """'PATH[@vNNNN|@latest]' -> (path, 'vNNNN' or 'latest'). An '@' not followed by a version is part of the path.
    A URL ('s3://bucket/prefix/name[@vNNNN]') stays a str (a Path would fold its '//')."""
    text = os.fspath(ref)
    if "@" in text:
        head, _, tail = text.rpartition("@")
        match = REF_SUFFIX.match(tail)
        if match and head:
            return location(head), (version_name(int(match.group(1))) if match.group(1) else "latest")
        if tail.lower().startswith("v") or tail.lower() == "":
            raise BadInput(f"{text}: bad version reference '@{tail}' (expected @vNNNN or @latest)")
    return location(text), "latest"


def open_dataset(path: str | os.PathLike, *, create: bool = False) -> "Dataset":
    if is_url(path):
        from curate.remote import open_remote

        return open_remote(str(path), create=create)
    root = Path(path)
    marker = root / "dataset.json"
    if marker.is_file():
        try:
            meta = json.loads(marker.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BadInput(f"{marker}: not valid JSON ({exc})") from None
        check_format(marker, meta)
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
            "created": utc_now()}
    atomic_write(marker, json.dumps(meta, indent=2).encode())
    return Dataset(root, meta)


def check_format(marker: Path | str, meta: dict[str, Any]) -> None:
    """Refuse a dataset.json that is not ours, or that a newer rubbersheet wrote."""
    if meta.get("format") != FORMAT:
        raise BadInput(f"{marker}: not a rubbersheet dataset (format {meta.get('format')!r})")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise BadInput(f"{marker}: dataset format {meta['format_version']} is newer than this rubbersheet "
                       f"({package_version()}) understands; upgrade rubbersheet")


def existing_dataset(path: Path | str) -> "Dataset | None":
    """The dataset at `path` when one is there (with or without versions), else None."""
    if is_url(path):
        from curate.remote import open_remote

        return open_remote(str(path), missing_ok=True)
    return open_dataset(path) if (Path(path) / "dataset.json").is_file() else None


def load_ref(ref: str | os.PathLike) -> "Version":
    """Open the version a reference names: 'PATH', 'PATH@latest' or 'PATH@vNNNN'."""
    path, version = split_ref(ref)
    return open_dataset(path).load(version)


class Dataset:
    """A dataset in a local directory. curate.remote.RemoteDataset is the same on object storage: it overrides the
    few methods below that touch the bytes (listing, records, the ref, objects, the lock, staging)."""

    def __init__(self, path: Path, meta: dict[str, Any]):
        self.path = path
        self.meta = meta
        self._lock_depth = 0  # the lock is re-entrant for this object: a runner holds it and commits inside

    _staging = StagedVersion

    @property
    def location(self) -> Path | str:
        """Where the dataset is, as references and messages name it (the directory; a URL on object storage)."""
        return self.path

    def where(self, key: str) -> Path | str:
        """A file of the dataset ('versions/v0001/version.json') as messages name it."""
        return self.path / key

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.path.name)

    def __repr__(self) -> str:
        return f"Dataset({str(self.location)!r}, versions={len(self.versions())})"

    def versions(self) -> list[str]:
        """Committed versions, oldest first (temporary directories of unfinished commits are never listed)."""
        return [name for name in self.version_dirs() if (self.path / "versions" / name / "version.json").is_file()]

    def version_dirs(self) -> list[str]:
        """Every vNNNN directory, complete or not, oldest first (numbers are never reused)."""
        found = []
        for entry in (self.path / "versions").iterdir() if (self.path / "versions").is_dir() else []:
            match = VERSION_DIR.match(entry.name)
            if match and entry.is_dir():
                found.append((int(match.group(1)), entry.name))
        return [name for _, name in sorted(found)]

    def latest(self) -> str | None:
        """The newest version: the newest complete version directory (LATEST is a cache a writer keeps current)."""
        names = self.versions()
        return names[-1] if names else None

    def recover(self) -> None:
        """What a writer does first, under the lock: remove what a dead writer left (temporary version directories,
        object and LATEST temporaries) and bring LATEST up to the newest version when it shows the state an
        interrupted commit leaves (missing, or naming the previous version with that version's digest). Any other
        mismatch is not a crash: it is refused, so that no commit chains onto an edited version."""
        self.sweep_temporaries()
        names = self.versions()
        if not names:
            return
        latest = names[-1]
        try:
            recorded = json.loads(self.version_record(latest).decode("utf-8"))
        except (OSError, ValueError):
            recorded = {}
        if recorded.get("version") != latest:
            raise BadInput(f"{self.where('versions/' + latest)}: its version.json says version "
                           f"{recorded.get('version')!r}, not {latest!r} (copied or renamed by hand?); run "
                           f"`curate verify {self.location}` and remove what does not belong")
        record = self._record_digest(latest)
        marker = self.where("LATEST")
        current = self.read_ref()
        if current == [latest, record] or current == [latest]:
            if len(current) == 1:  # written by an older rubbersheet: add the digest
                self.write_ref(f"{latest} {record}\n".encode())
            return
        interrupted = not current or (len(current) == 2 and current[0] in names[:-1] and
                                      current[1] == self._record_digest(current[0]))
        if not interrupted:
            raise BadInput(f"{marker}: says {' '.join(current) or 'nothing'}, but the newest version is {latest} "
                           f"(sha256 {record[:12]}...): not what an interrupted commit leaves. Run `curate verify "
                           f"{self.location}`; once the versions are as they should be, delete {marker} and the next "
                           "writer rewrites it")
        self.write_ref(f"{latest} {record}\n".encode())

    def read_ref(self) -> list[str]:
        """LATEST's fields ([] when it is missing)."""
        marker = self.path / "LATEST"
        return marker.read_text(encoding="utf-8").split() if marker.is_file() else []

    def write_ref(self, data: bytes, step: str | None = None) -> None:
        atomic_write(self.path / "LATEST", data, step=step)

    def version_record(self, name: str) -> bytes:
        """The bytes of a version's version.json."""
        return (self.path / "versions" / name / "version.json").read_bytes()

    def version_file(self, name: str, file_name: str) -> bytes | None:
        """A file of a version (manifest, report), or None when it is missing."""
        path = self.path / "versions" / name / file_name
        return path.read_bytes() if path.is_file() else None

    def version_file_names(self, name: str) -> list[str]:
        return sorted(p.name for p in (self.path / "versions" / name).iterdir())

    def _record_digest(self, name: str) -> str:
        return sha256_bytes(self.version_record(name))

    def version_named(self, ref: str) -> str:
        """The version name a reference suffix means ('latest', 'v2', '2' -> 'v0002'); a name not of that form is
        returned as given, for load() to refuse."""
        name = self.latest() if ref == "latest" else ref
        if name is None:
            raise BadInput(f"{self.location}: dataset has no versions yet")
        match = REF_SUFFIX.match(name)
        return version_name(int(match.group(1))) if match and match.group(1) else name

    def load(self, ref: str = "latest") -> "Version":
        name = self.version_named(ref)
        directory = self.path / "versions" / name
        if not (directory / "version.json").is_file():
            known = ", ".join(self.versions()) or "none"
            raise BadInput(f"{self.location}@{name}: no such version (versions: {known})")
        return Version(self, directory)

    def object_path(self, digest: str, ext: str) -> Path:
        return self.path / "objects" / digest[:2] / f"{digest}.{ext}"

    def object_url(self, digest: str, ext: str) -> str:
        """Where a worker reads the object: a local absolute path here (a URL on object storage)."""
        return str(self.object_path(digest, ext).absolute())

    def has_object(self, digest: str, ext: str) -> bool:
        return os.path.isfile(f"{self.path}/objects/{digest[:2]}/{digest}.{ext}")   # no Path objects: 10^5 calls

    def prefetch(self, pairs) -> None:
        """Make `object_path` of these (digest, ext) cheap (object storage fetches them in one batch); here a no-op."""

    def stored_objects(self) -> dict[Path | str, int]:
        """Every stored object (as messages name it) with its size."""
        return {p: p.stat().st_size for p in (self.path / "objects").glob("*/*")
                if p.is_file() and not p.name.startswith(".")}

    def remove_objects(self, names) -> None:
        """Delete stored objects named as `stored_objects` names them (gc, discard: under the lock)."""
        for name in names:
            Path(name).unlink(missing_ok=True)

    def bring_objects(self, view) -> int:
        """Put into this store the objects of `view` (a version of another dataset) that it lacks; returns how
        many were brought. Call it under the lock, so `curate gc` cannot remove them before the commit.
        From another local store they are hard links where the filesystem allows and the object is read-only
        (objects are never rewritten, so two names of one file cannot drift apart; removing one name, as `curate
        gc` does, leaves the other), else copies: copying a 10k-clip parent into a new dataset wrote 300 MB and took
        9 s of a 25 s run on a 2-core VM, linking it takes under a second. Each is hashed first either way. The
        features the other store has cached for its objects come along (curate.features.share_cache)."""
        pairs = sorted(set(zip(view.manifest["object"], view.manifest["ext"])))
        files = [(view.dataset.object_path(digest, ext), ext, digest) for digest, ext in pairs]

        def mismatch(n: int, stored: str) -> BadInput:
            return BadInput(f"{files[n][0]}: object {files[n][2]} of {view.dataset.location} does not match its "
                            f"content (sha256 {stored}); run `curate verify {view.dataset.location}`")

        if type(view.dataset) is Dataset and type(self) is Dataset:   # both local stores (not a cache of a bucket)
            from curate.features import share_cache

            linked, left = self._link_objects(files, mismatch)
            brought = linked + self.put_files([files[n] for n in left], lambda k, stored: mismatch(left[k], stored))
            share_cache(self, view.dataset, {digest for digest, _ in pairs})   # and their cached features
            return brought
        return self.put_files(files, mismatch)

    def _link_objects(self, files: list[tuple[Path, str, str]], mismatch) -> tuple[int, list[int]]:
        """Hard-link the objects of another local store that this one lacks, each hashed first; returns (how many
        were linked, the positions in `files` of those to copy instead: on another filesystem, one without hard
        links, or an object someone made writable, which a link would bring in writable)."""
        import curate.files as io_files
        from curate.media import sha256_file

        todo = [n for n, (_, ext, digest) in enumerate(files) if not self.object_path(digest, ext).exists()]
        for n in todo:   # every object checked before any is stored: a damaged one stores nothing
            stored = sha256_file(Path(files[n][0]))
            if stored != files[n][2]:
                raise mismatch(n, stored)
        linked, left, folders, refused = 0, [], set(), False
        for n in todo:
            file, ext, digest = files[n]
            target = self.object_path(digest, ext)
            if refused or os.stat(file).st_mode & 0o222:   # once linking failed, the rest are copied too
                left.append(n)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(file, target)   # the whole object appears at once: no temporary needed
            except FileExistsError:
                continue   # another writer stored it meanwhile
            except OSError:
                refused = True
                left.append(n)
                continue
            linked += 1
            folders.add(target.parent)
        if linked:   # the new names on disk before the version that references them
            syncfs = io_files.syncfs_function()
            if syncfs is not None:
                io_files.sync_filesystem(syncfs, os.fspath(self.path / "objects"))
            else:
                for folder in folders:
                    io_files.fsync_dir(folder)
        return linked, left

    def put_files(self, files: list[tuple[str | os.PathLike, str, str]], mismatch) -> int:
        """Store local files whose content hash is known, `(path, ext, sha256)`, skipping those the store holds;
        returns how many were written. Each is hashed as it is copied: one whose bytes do not match raises
        `mismatch(position in files, sha256 found)`. A few go through put_object (fsync, then rename); from
        BATCH_MIN_OBJECTS on they are written as a batch made durable by two syncfs calls, one after every
        temporary is written and before any is renamed to its object name, one after the renames: a stored name
        never holds a partial object, and every object is on disk before the version that references it.
        Temporaries a crash leaves are removed by the next writer (sweep_temporaries)."""
        import curate.files as io_files

        objects = os.fspath(self.path / "objects")
        folders = set(os.listdir(objects)) if os.path.isdir(objects) else set()   # objects/ab/: at most 256
        todo = [n for n, (_, ext, digest) in enumerate(files)
                if not (digest[:2] in folders and os.path.exists(f"{objects}/{digest[:2]}/{digest}.{ext}"))]
        syncfs = io_files.syncfs_function() if len(todo) >= BATCH_MIN_OBJECTS else None
        if syncfs is None:
            for n in todo:
                stored = self.put_object(Path(files[n][0]), files[n][1])
                if stored != files[n][2]:
                    raise mismatch(n, stored)
            return len(todo)
        token = uuid.uuid4().hex
        names: list[tuple[str, str]] = []   # (temporary, object name)
        renamed = 0
        try:
            for n in todo:
                file, ext, digest = files[n]
                folder = f"{objects}/{digest[:2]}"
                if digest[:2] not in folders:
                    os.makedirs(folder, exist_ok=True)
                    folders.add(digest[:2])
                names.append((f"{folder}/.tmp-{token}-{len(names)}", f"{folder}/{digest}.{ext}"))
                stored = io_files.copy_and_hash(os.fspath(file), names[-1][0])
                if stored != digest:
                    raise mismatch(n, stored)
            io_files.sync_filesystem(syncfs, objects)   # every object's bytes on disk before any takes its name
            for temp, name in names:
                os.replace(temp, name)
                renamed += 1
            io_files.sync_filesystem(syncfs, objects)   # and the names, before the version that references them
        finally:
            for temp, _ in names[renamed:]:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
        return len(todo)

    def put_object(self, content: bytes | os.PathLike, ext: str) -> str:
        """Store media by content hash (idempotent; never rewrites an existing object); return the hash."""
        return put_object(self.path, content, ext)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive writer lock (a file created with O_EXCL). A lock left by a dead process on this host is taken over."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self) -> None:
        """Take the writer lock (re-entrant for this object: a runner holds it and stages and commits inside)."""
        if self._lock_depth:
            self._lock_depth += 1
            return
        lock_path = self.path / ".lock"
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": utc_now(),
                  "command": shlex.join(sys.argv)}
        for attempt in range(2):
            try:
                fd = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                other = _read_lock(lock_path)
                if attempt == 0 and (lock_is_stale(other) or _abandoned(lock_path, other)):
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
            self.recover()
        except BaseException:
            self._lock_depth = 0
            lock_path.unlink(missing_ok=True)
            raise

    def try_recover(self) -> bool:
        """Recover (see `recover`) if no writer holds the lock now; a reader that found nothing to write calls it so
        that an interrupted commit's stale LATEST does not outlive the next run."""
        try:
            self.acquire()
        except StoreLocked:
            return False
        self.release()
        return True

    def release(self) -> None:
        if self._lock_depth > 1:
            self._lock_depth -= 1
        elif self._lock_depth == 1:
            self._lock_depth = 0
            (self.path / ".lock").unlink(missing_ok=True)

    def commit(self, manifest, media: Mapping[str, bytes | os.PathLike] | None = None,
               info: Mapping[str, Any] | None = None) -> "Version":
        """Write a new version at once (stage, then commit; see `stage`). Returns the Version."""
        return self.stage(manifest, media, info).commit()

    def stage(self, manifest, media: Mapping[str, bytes | os.PathLike] | None = None,
              info: Mapping[str, Any] | None = None, *, rejected: bool = False) -> "StagedVersion":
        """First phase of a commit: store the media of new items and write the manifest into a temporary
        directory (version.json follows at commit), under the writer lock (held until the staged version is committed, rejected or
        discarded). Reports are rendered from the staged version and added with `add_files`.

        `media` maps item id -> file bytes or a path; items not in it must reference an object already stored.
        `info` may set parent (default: the latest version; any other parent is refused, so a new version never
        silently drops what a newer one added), recipe ({'name', 'text'}), seed, command, gate, evaluation, sweep,
        source. `rejected=True` stages a refused candidate: it can only be `reject`ed into rejected/."""
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
        self.acquire()
        staged = False
        try:
            latest = self.latest()
            parent = info.pop("parent", "latest")
            parent = latest if parent == "latest" else parent
            if parent is not None and parent not in self.versions():
                raise BadInput(f"commit: parent {parent!r} is not a version of {self.location}")
            if parent != latest and not rejected:
                names = self.versions()
                newer = names[names.index(parent) + 1:] if parent else names
                raise BadInput(f"commit: {self.location}@{parent} is not the latest version (newer: {', '.join(newer)}); "
                               "a version made from it would drop what they added")
            frame = self._store_media(frame, media)
            existing = self.version_dirs()
            number = int(existing[-1][1:]) + 1 if existing else 1
            name = f"rejected-{utc_stamp()}" if rejected else version_name(number)
            version = self._staging(self, name, parent, frame, info)
            staged = True
            return version
        finally:
            if not staged:
                self.release()

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
            elif not self.has_object(objects[index], ext):
                raise BadInput(f"manifest item {item_id!r}: object {objects[index]}.{ext} is not in the store "
                               "and no media was given for it")
        frame = frame.copy()
        frame["object"] = objects
        return frame

    def sweep_temporaries(self) -> None:
        """Remove what a writer killed mid-commit left behind (call only while holding the lock)."""
        for temp in (self.path / "versions").glob(".tmp-*"):
            shutil.rmtree(temp, ignore_errors=True)
        for temp in (self.path / "objects").glob("*/.tmp-*"):
            temp.unlink(missing_ok=True)
        for temp in self.path.glob(".LATEST.tmp-*"):
            temp.unlink(missing_ok=True)


def put_object(root: str | os.PathLike, content: bytes | os.PathLike, ext: str) -> str:
    """Store media in the dataset at `root` (a directory, or a URL on object storage) by content hash; safe from
    several processes at once (each write goes to a temporary name and is renamed into place, or is a conditional
    create; an existing object is never rewritten). Returns the hash."""
    from curate.media import sha256_file

    if is_url(root):
        from curate.remote import put_remote_object

        return put_remote_object(str(root), content, ext)

    digest = hashlib.sha256(content).hexdigest() if isinstance(content, (bytes, bytearray, memoryview)) \
        else sha256_file(Path(content))
    target = Path(root) / "objects" / digest[:2] / f"{digest}.{ext}"
    if not target.exists():
        _write_object(target, content)
    return digest


def _write_object(target: Path, content: bytes | os.PathLike) -> None:
    """Content-addressed write: a temporary name in the same folder, fsync, rename (idempotent, never partial)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".tmp-{uuid.uuid4().hex}"
    try:
        if isinstance(content, (bytes, bytearray, memoryview)):
            durable_write(temp, bytes(content))
        else:
            shutil.copyfile(content, temp)
            fsync_file(temp)
        os.chmod(temp, 0o444)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def inside_dataset(path: str | os.PathLike) -> Path | None:
    """The dataset directory that `path` lies in (or is), if any: nothing but the store may write there."""
    if is_url(path):
        return None  # a prefix on object storage: the store's own checks (dataset.json) apply there
    here = Path(path).resolve()
    for folder in (here, *here.parents):
        if (folder / "dataset.json").is_file():
            return folder
    return None


def refuse_inside_dataset(path: str | os.PathLike, what: str, dataset_itself: bool = False) -> None:
    """Refuse a target inside a dataset directory (`dataset_itself`: the dataset's own directory is fine)."""
    dataset = inside_dataset(path)
    if dataset is not None and not (dataset_itself and dataset == Path(path).resolve()):
        raise BadInput(f"{what}: {path} is inside the dataset {dataset}; only the store writes there (choose a "
                       "folder outside it)")


def _read_lock(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _abandoned(path: Path, holder: dict[str, Any]) -> bool:
    """An empty or unreadable lock file older than a minute: a writer killed between creating it and writing its
    pid (a live writer fills it within microseconds)."""
    import time

    try:
        return not holder and time.time() - path.stat().st_mtime > 60
    except OSError:
        return False


def lock_is_stale(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
