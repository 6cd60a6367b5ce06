"""A dataset on object storage (`s3://bucket/prefix/name`, or any fsspec URL): the layout of curate.store, the same
commit protocol built on the one atomic step object storage has, a conditional create (curate.storage).

Layout under the prefix: dataset.json, objects/ab/<sha256>.<ext>, versions/vNNNN/{manifest.parquet, reports,
version.json}, LATEST, .lock (+ .lock-takeover-* markers), rejected/<time>-<what>/ (also kept in the local
working directory, where the refused candidate's report can be opened).

A version exists once its version.json exists: @latest is the newest versions/vNNNN/ holding a version.json (LATEST
is a cache of it, as locally). Files are uploaded before version.json, each with a conditional create, so a second
writer can neither overwrite them nor commit the same number: the create of version.json is the commit point.

Commit protocol (RemoteStagedVersion.commit), with what a reader sees if the writer dies after each step:
    lock            .lock created (conditional create) holding pid, host, a token and a lease expiry; recovery:
                    uploads of a dead writer (versions/vNNNN/ without version.json) deleted, a stale LATEST
                    rewritten                                                   -> reader: old state
    stage.manifest  objects uploaded (content-addressed, write-once), manifest written into a local staging
                    directory (in the cache, see curate.storage)                -> old state
    stage.files     reports written beside it (locally)                         -> old state
    commit.record   manifest and reports uploaded to versions/vNNNN/ (conditional creates; version.json not yet)
                                                                                -> old state: vNNNN is not listed
                                                                                   (no version.json); the next
                                                                                   writer or `curate gc` deletes it
    commit.rename   versions/vNNNN/version.json created (the commit point)      -> NEW state; LATEST stale until
                                                                                   the next writer repairs it
    commit.ref      (about to write LATEST)                                     -> new state
    commit.done     LATEST written (one PUT: readers see the old or new bytes)  -> new state, LATEST current
The step names are those of the local protocol, so the crash tests name the same points.

The lock (curate.lease_lock) is an object created only if absent, with a lease, since no one can check from
another machine whether a writer is alive: a lock past its lease, or left by a dead process on this host, is taken
over, and a writer that finds at commit that its lock was taken over commits nothing.

Objects uploaded by a run that never commits are unreferenced: `curate gc` removes them, as locally.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from curate.exceptions import BadInput
from curate.files import crash_point, durable_write, sha256_bytes, utc_now
from curate.lease_lock import LeaseLock
from curate.storage import Remote, cache_root, fetch, cached_object, object_key, one_line
from curate.store import VERSION_DIR, FORMAT, FORMAT_VERSION, Dataset, check_format
from curate.version import StagedVersion, Version, version_json_bytes

def open_remote(url: str, *, create: bool = False, missing_ok: bool = False) -> "RemoteDataset | None":
    """Open (or create) the dataset at `url`. Reaching the store, its bucket and the credentials are checked
    first: a failure there is one line (BadInput) and nothing is written. `missing_ok`: None when there is no
    dataset there yet."""
    remote = Remote(url)
    remote.check()
    with one_line(remote.url):
        raw = remote.read("dataset.json")
        if raw is not None:
            marker = remote.url_of("dataset.json")
            try:
                meta = json.loads(raw)
            except ValueError as exc:
                raise BadInput(f"{marker}: not valid JSON ({exc})") from None
            check_format(marker, meta)
            return RemoteDataset(remote, meta)
        if missing_ok:
            return None
        occupied = remote.occupied()
    if not create:
        if occupied:
            raise BadInput(f"{remote.url}: not a rubbersheet dataset (no dataset.json)")
        raise BadInput(f"{remote.url}: dataset does not exist")
    if occupied:
        raise BadInput(f"{remote.url}: exists, is not empty and is not a rubbersheet dataset")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": remote.url.rsplit("/", 1)[-1],
            "created": utc_now()}
    if not remote.create("dataset.json", json.dumps(meta, indent=2).encode()):
        meta = json.loads(remote.read("dataset.json"))  # another process created it first: theirs stands
    return RemoteDataset(remote, meta)


def put_remote_object(url: str, content: bytes | os.PathLike, ext: str) -> str:
    """Store media by content hash in the dataset at `url` (write-once: an existing object is left as it is)."""
    data = bytes(content) if isinstance(content, (bytes, bytearray, memoryview)) else Path(content).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    Remote(url).create(object_key(digest, ext), data)
    return digest


def work_dir(url: str) -> Path:
    """This machine's working directory for a remote dataset: verified copies of its versions, staging, caches."""
    return cache_root() / "datasets" / hashlib.sha256(url.encode()).hexdigest()[:16]


class RemoteDataset(Dataset):
    """curate.store.Dataset on object storage. `path` is the local working directory (work_dir): versions load
    from verified copies there and the feature caches live there; `location` is the URL."""

    def __init__(self, remote: Remote, meta: dict[str, Any]):
        super().__init__(work_dir(remote.url), meta)
        self.remote = remote
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = LeaseLock(remote)
        self._known: set[str] | None = None   # object keys seen while holding the lock (gc needs the lock)
        self._relisted = False

    _staging = None  # set below, once RemoteStagedVersion exists

    @property
    def location(self) -> str:
        return self.remote.url

    def where(self, key: str) -> str:
        return self.remote.url_of(key)

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.remote.url.rsplit("/", 1)[-1])

    # -- versions ----------------------------------------------------------------------------------------------
    def _listing(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for entry in self.remote.list("versions"):
            parts = entry.key.split("/")
            if len(parts) == 3 and VERSION_DIR.match(parts[1]):
                found.setdefault(parts[1], set()).add(parts[2])
        return found

    def version_dirs(self) -> list[str]:
        return sorted(self._listing(), key=lambda name: int(name[1:]))

    def versions(self) -> list[str]:
        listing = self._listing()
        return sorted((n for n, files in listing.items() if "version.json" in files), key=lambda n: int(n[1:]))

    def read_ref(self) -> list[str]:
        raw = self.remote.read("LATEST")
        return raw.decode("utf-8").split() if raw is not None else []

    def write_ref(self, data: bytes, step: str | None = None) -> None:
        if step:
            crash_point(step)
        self.remote.write("LATEST", data)

    def version_record(self, name: str) -> bytes:
        raw = self.remote.read(f"versions/{name}/version.json")
        if raw is None:
            raise FileNotFoundError(2, "no such version record", self.where(f"versions/{name}/version.json"))
        return raw

    def version_file(self, name: str, file_name: str) -> bytes | None:
        return self.remote.read(f"versions/{name}/{file_name}")

    def version_file_names(self, name: str) -> list[str]:
        return sorted(self._listing().get(name, set()))

    def load(self, ref: str = "latest") -> Version:
        name = self.version_named(ref)
        raw = self.remote.read(f"versions/{name}/version.json") if VERSION_DIR.match(name) else None
        if raw is None:
            known = ", ".join(self.versions()) or "none"
            raise BadInput(f"{self.location}@{name}: no such version (versions: {known})")
        local = self.path / "versions" / f"{name}-{sha256_bytes(raw)[:16]}"
        if not (local / "version.json").is_file():
            local = self._download(name, raw, local)
        return Version(self, local, name)

    def _download(self, name: str, raw: bytes, target: Path) -> Path:
        """Copy a committed version into the working directory. Only a copy whose every file matches the digests
        version.json records is kept for later; otherwise the bytes are read as they are (as a local dataset
        would read an edited file) into a directory the next writer sweeps, and `curate verify` names them."""
        try:
            info = json.loads(raw)
        except ValueError:
            info = {}
        digests = dict(info.get("files") or {})
        digests["manifest.parquet"] = info.get("manifest_sha256")
        found = self.remote.read_many([f"versions/{name}/{f}" for f in sorted(digests)])
        temp = self.path / "versions" / f".tmp-read-{uuid.uuid4().hex[:8]}"
        temp.mkdir(parents=True)
        intact = True
        for file_name, digest in digests.items():
            data = found.get(f"versions/{name}/{file_name}")
            if data is None:
                intact = False
                continue
            intact &= sha256_bytes(data) == digest
            (temp / file_name).write_bytes(data)
        (temp / "version.json").write_bytes(raw)
        if not intact:
            return temp
        try:
            os.rename(temp, target)
        except OSError:  # another process put the same verified copy there first
            shutil.rmtree(temp, ignore_errors=True)
        return target

    # -- objects -----------------------------------------------------------------------------------------------
    def object_path(self, digest: str, ext: str) -> Path:
        """The object's verified copy in the local cache (fetched on first use)."""
        path = cached_object(digest, ext)
        if not path.is_file():
            fetch(self.remote, [(digest, ext)])
        return path

    def object_url(self, digest: str, ext: str) -> str:
        return self.remote.url_of(object_key(digest, ext))

    def has_object(self, digest: str, ext: str) -> bool:
        """Under the lock nothing but this writer removes objects, so a listing taken then stays true; objects that
        workers added since are found by one fresh listing, then by a request each."""
        key = object_key(digest, ext)
        if not self._lock_depth:
            return self.remote.exists(key)
        if key in self._snapshot():
            return True
        if not self._relisted:
            self._relisted = True
            self._known = None
            if key in self._snapshot():
                return True
        present = self.remote.exists(key)
        if present:
            self._known.add(key)
        return present

    def prefetch(self, pairs) -> None:
        fetch(self.remote, list(pairs))

    def stored_objects(self) -> dict[str, int]:
        return {self.remote.url_of(e.key): e.size for e in self.remote.list("objects")}

    def remove_objects(self, names) -> None:
        start = len(self.remote.url) + 1
        keys = [str(n)[start:] for n in names]
        self.remote.delete(keys)
        if self._known is not None:
            self._known -= set(keys)

    def _snapshot(self) -> set[str]:
        if self._known is None:
            self._known = {e.key for e in self.remote.list("objects")}
        return self._known

    def bring_objects(self, view) -> int:
        known = self._snapshot() if self._lock_depth else {e.key for e in self.remote.list("objects")}
        missing = sorted({(d, e) for d, e in zip(view.manifest["object"], view.manifest["ext"])
                          if object_key(d, e) not in known})
        for digest, ext in missing:
            self.put_object(view.dataset.object_path(digest, ext), ext)
        return len(missing)

    def put_object(self, content: bytes | os.PathLike, ext: str) -> str:
        data = bytes(content) if isinstance(content, (bytes, bytearray, memoryview)) else Path(content).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        key = object_key(digest, ext)
        if self._known is None or key not in self._known:
            self.remote.create(key, data)
            if self._known is not None:
                self._known.add(key)
        return digest

    def put_objects(self, objects: dict[tuple[str, str], bytes]) -> None:
        """Store several objects whose digests the caller has checked, concurrently (write-once)."""
        self.remote.create_many({object_key(d, e): data for (d, e), data in objects.items()})
        if self._known is not None:
            self._known |= {object_key(d, e) for d, e in objects}

    # -- the lock (curate.lease_lock) ------------------------------------------------------------------------------
    def acquire(self) -> None:
        if self._lock_depth:
            self._lock_depth += 1
            return
        self._lock.take()
        self._lock_depth = 1
        try:
            self.recover()
        except BaseException:
            self._lock_depth = 0
            self._drop_lock()
            raise

    def renew(self) -> None:
        self._lock.renew()

    def release(self) -> None:
        if self._lock_depth > 1:
            self._lock_depth -= 1
        elif self._lock_depth == 1:
            self._lock_depth = 0
            self._drop_lock()

    def _drop_lock(self) -> None:
        self._known, self._relisted = None, False
        self._lock.drop()

    def stage(self, *args, **kwargs):
        self.acquire()
        try:
            self.renew()
            return super().stage(*args, **kwargs)
        finally:
            self.release()  # stage holds its own level of the lock until the staged version is closed

    def sweep_temporaries(self) -> None:
        """Under the lock: local staging left by a dead writer, uploads of a commit that never reached its
        version.json, and takeover markers older than a day."""
        super().sweep_temporaries()
        listing = self._listing()
        partial = [f"versions/{n}/{f}" for n, files in listing.items() if "version.json" not in files
                   for f in files]
        self.remote.delete(partial)
        self._lock.prune_markers()


class RemoteStagedVersion(StagedVersion):
    """A version staged locally (in the working directory), committed by uploading its files and then creating
    its version.json; see the module docstring for the protocol."""

    def commit(self) -> Version:
        self._check_open()
        if self.rejected:
            raise BadInput(f"{self.ref}: a refused candidate cannot be committed")
        dataset: RemoteDataset = self.dataset
        prefix = f"versions/{self.name}"
        created: list[str] = []
        try:
            dataset.renew()
            record = self._record()
            durable_write(self.path / "version.json", record)
            for file_name in sorted(self._files):
                key = f"{prefix}/{file_name}"
                if not dataset.remote.create(key, (self.path / file_name).read_bytes()):
                    raise BadInput(f"{dataset.where(key)}: already exists: another writer is committing "
                                   f"{self.name}; nothing committed")
                created.append(key)
            crash_point("commit.record")
            if not dataset.remote.create(f"{prefix}/version.json", record):
                raise BadInput(f"{dataset.where(prefix)}: another writer committed {self.name} first; nothing "
                               "committed")
        except BaseException:
            dataset.remote.delete(created)
            self.discard()
            raise
        try:  # committed: from here a failure only leaves LATEST stale, which the next writer repairs
            crash_point("commit.rename")
            dataset.write_ref(f"{self.name} {sha256_bytes(record)}\n".encode(), step="commit.ref")
            crash_point("commit.done")
        except OSError:
            pass
        finally:
            self._close()
        target = dataset.path / "versions" / f"{self.name}-{sha256_bytes(record)[:16]}"
        try:
            os.rename(self.path, target)
        except OSError:
            shutil.rmtree(self.path, ignore_errors=True)
            return dataset.load(self.name)
        return Version(dataset, target, self.name)

    def reject(self, label: str) -> Path:
        """Upload the refused candidate (manifest, version.json, reports) to rejected/<time>-<label>/ in the store,
        and keep it in the working directory too: the returned local folder is where its report can be opened."""
        self._check_open()
        dataset: RemoteDataset = self.dataset
        prefix = f"rejected/{self.name.removeprefix('rejected-')}-{label}"
        try:
            files = {name: (self.path / name).read_bytes() for name in self._files}
            files["version.json"] = version_json_bytes(self.info)
            for file_name, data in sorted(files.items()):
                dataset.remote.write(f"{prefix}/{file_name}", data)
        except BaseException:
            self.discard()
            raise
        return super().reject(label)


RemoteDataset._staging = RemoteStagedVersion
