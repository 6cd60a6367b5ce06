"""Is a dataset what its writers left? `verify` re-checks every digest the commit protocol recorded; `collect`
lists (and removes) objects no version references.

verify checks, naming the file of each problem:
  objects       every referenced object exists and hashes to its name (skipped with quick=True);
  manifests     bytes (sha256 in version.json) and content (fingerprint) unchanged;
  version.json  the digests of the files beside it (manifest, reports), its counts against its manifest, its recipe
                text against the recipe's sha256, and its own digest as recorded by its child (parent_sha256) or,
                for the newest version, by LATEST;
  the chain     a version's parent exists;
  LATEST        names the newest version (a stale LATEST is what an interrupted commit leaves: any writer repairs it).
Versions written before digests were chained (no `files` in version.json) get the manifest and object checks only.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from curate.exceptions import BadInput
from curate.files import sha256_bytes

if TYPE_CHECKING:
    from curate.store import Dataset


@dataclass(frozen=True)
class Problem:
    """One thing `verify` found wrong: where, and what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def verify(dataset: "Dataset", quick: bool = False) -> tuple[list[Problem], dict[str, int]]:
    """Check the dataset (see the module docstring); return (problems, figures)."""
    problems: list[Problem] = []
    referenced: dict[tuple[str, str], str] = {}
    names = dataset.versions()
    interrupted = sorted(set(dataset.version_dirs()) - set(names))
    if getattr(dataset, "remote", None) is None:
        for name in interrupted:
            problems.append(Problem(str(dataset.where(f"versions/{name}")), "version directory without version.json"))
    # on object storage, files under versions/vNNNN/ without a version.json are the uploads of a commit that never
    # reached its commit point: not a version, and removed by the next writer (like a local .tmp- directory)
    digests: dict[str, str] = {}
    readable = []
    for name in names:
        version = dataset.load(name)
        raw = dataset.version_record(name)
        digests[name] = sha256_bytes(raw)
        try:
            version.info
        except BadInput as exc:
            problems.append(Problem(str(dataset.where(f"versions/{name}/version.json")), f"unreadable ({exc})"))
            continue
        readable.append(name)
        frame = _check_version(version, problems)
        if frame is not None:
            for digest, ext in zip(frame["object"], frame["ext"]):
                referenced[(digest, ext)] = digest
    for name in readable:
        _check_chain(dataset, name, digests, problems)
    if not quick:
        for problem in _check_objects(dataset, sorted(referenced)):
            problems.append(problem)
    _check_latest(dataset, names, digests, problems)
    stored = len(dataset.stored_objects())
    figures = {"versions": len(names), "objects_checked": 0 if quick else len(referenced),
               "objects_referenced": len(referenced), "objects_unreferenced": max(0, stored - len(referenced))}
    if getattr(dataset, "remote", None) is not None:
        figures["interrupted_uploads"] = len(interrupted)
    return problems, figures


def _check_objects(dataset, pairs: list[tuple[str, str]]) -> list[Problem]:
    """Every referenced object exists and hashes to its name. On object storage the bytes are read from the store
    itself (never from the local cache, which holds only verified copies)."""
    from curate.media import sha256_file

    problems = []
    remote = getattr(dataset, "remote", None)
    if remote is None:
        for digest, ext in pairs:
            path = dataset.object_path(digest, ext)
            if not path.is_file():
                problems.append(Problem(str(path), "object missing"))
            elif sha256_file(path) != digest:
                problems.append(Problem(str(path), "object content does not match its hash (corrupted)"))
        return problems
    from curate.storage import object_key

    for start in range(0, len(pairs), 64):
        batch = pairs[start:start + 64]
        found = remote.read_many([object_key(d, e) for d, e in batch])
        for digest, ext in batch:
            key = object_key(digest, ext)
            if key not in found:
                problems.append(Problem(dataset.where(key), "object missing"))
            elif sha256_bytes(found[key]) != digest:
                problems.append(Problem(dataset.where(key), "object content does not match its hash (corrupted)"))
    return problems


def _check_version(version, problems: list[Problem]):
    from curate import manifest as mf

    dataset = version.dataset
    here = dataset.where(f"versions/{version.name}/version.json")
    manifest_path = dataset.where(f"versions/{version.name}/manifest.parquet")
    try:
        info = version.info
        manifest_bytes = dataset.version_file(version.name, "manifest.parquet")
        if manifest_bytes is None:
            raise FileNotFoundError(2, "No such file or directory", str(manifest_path))
        if sha256_bytes(manifest_bytes) != info.get("manifest_sha256"):
            problems.append(Problem(str(manifest_path), "manifest bytes changed since commit (sha256 mismatch)"))
        frame = version.manifest
    except (BadInput, OSError, ValueError) as exc:
        problems.append(Problem(str(manifest_path), f"unreadable ({exc})"))
        return None
    if info.get("version") != version.name:
        problems.append(Problem(str(here), f"says version {info.get('version')!r}, but its "
                                f"directory is {version.name} (copied or renamed by hand)"))
    if mf.fingerprint(frame) != info.get("fingerprint"):
        problems.append(Problem(str(manifest_path), "manifest fingerprint does not match version.json"))
    files = info.get("files")
    if files is None:
        return frame  # written before digests were chained
    for file_name, digest in files.items():
        if file_name == "manifest.parquet":
            continue  # checked above against manifest_sha256
        path = dataset.where(f"versions/{version.name}/{file_name}")
        data = dataset.version_file(version.name, file_name)
        if data is None:
            problems.append(Problem(str(path), "missing (version.json records it)"))
        elif sha256_bytes(data) != digest:
            problems.append(Problem(str(path), "content changed since commit (sha256 mismatch)"))
    extra = [n for n in dataset.version_file_names(version.name) if n not in files and n != "version.json"]
    if extra:
        problems.append(Problem(str(dataset.where(f"versions/{version.name}")),
                                f"file(s) added after commit: {', '.join(extra)}"))
    if info.get("counts") != mf.counts(frame):
        problems.append(Problem(str(here), "counts do not match the manifest"))
    recipe = info.get("recipe") or {}
    if recipe.get("text") is not None and sha256_bytes(recipe["text"].encode("utf-8")) != recipe.get("sha256"):
        problems.append(Problem(str(here), "recipe text does not match its sha256"))
    return frame


def _check_chain(dataset, name: str, digests: dict[str, str], problems: list[Problem]) -> None:
    info = dataset.load(name).info
    here = dataset.where(f"versions/{name}/version.json")
    parent = info.get("parent")
    if parent is None:
        return
    if parent not in digests:
        problems.append(Problem(str(here), f"parent {parent} is missing (versions/{parent} was deleted or renamed)"))
    elif info.get("parent_sha256") is not None and info["parent_sha256"] != digests[parent]:
        problems.append(Problem(str(dataset.where(f"versions/{parent}/version.json")),
                                f"changed since {name} was committed on it (sha256 mismatch)"))


def _check_latest(dataset, names: list[str], digests: dict[str, str], problems: list[Problem]) -> None:
    marker = dataset.where("LATEST")
    if not names:
        return
    newest = names[-1]
    fields = dataset.read_ref()
    if not fields and (getattr(dataset, "remote", None) is not None or not Path(marker).is_file()):
        problems.append(Problem(str(marker), f"missing (the newest version is {newest}; any writer repairs it)"))
        return
    if not fields or fields[0] != newest:
        problems.append(Problem(str(marker), f"names {fields[0] if fields else 'nothing'} but the newest version is "
                                f"{newest} (left by an interrupted commit or edited; any writer repairs it)"))
    elif len(fields) > 1 and fields[1] != digests[newest]:
        problems.append(Problem(str(dataset.where(f"versions/{newest}/version.json")),
                                "changed since it was committed (sha256 recorded in LATEST does not match)"))


def collect(dataset: "Dataset", dry_run: bool = False) -> tuple[list[tuple[Path | str, int]], int, int]:
    """Objects no committed version references, with their sizes, removed unless `dry_run`; (objects, bytes,
    bytes of those that another dataset shares as hard links: removing this name leaves them on disk).
    Runs under the writer lock, so no writer has objects in flight (taking it also removes what an interrupted
    commit left: on object storage, the uploads of a version that never got its version.json)."""
    with dataset.lock():
        referenced: set[tuple[str, str]] = set()
        for name in dataset.versions():
            frame = dataset.load(name).manifest
            referenced |= set(zip(frame["object"], frame["ext"]))
        names = {_object_name(dataset, d, e) for d, e in referenced}
        garbage = sorted((p, size) for p, size in dataset.stored_objects().items() if p not in names)
        shared = sum(size for p, size in garbage if isinstance(p, Path) and _links(p) > 1)
        if not dry_run:
            dataset.remove_objects([p for p, _ in garbage])
        return garbage, sum(size for _, size in garbage), shared


def _links(path: Path) -> int:
    try:
        return path.stat().st_nlink
    except OSError:
        return 1


def _object_name(dataset, digest: str, ext: str) -> Path | str:
    """An object as `stored_objects` names it (its path; its URL on object storage), without fetching it."""
    if getattr(dataset, "remote", None) is not None:
        return dataset.object_url(digest, ext)
    return dataset.object_path(digest, ext)


def discard(dataset: "Dataset", objects) -> int:
    """Remove the given (digest, ext) objects that no committed version references: what a run that failed after
    making them leaves behind. The caller holds the writer lock. Returns how many were removed."""
    wanted = set(objects)
    for name in dataset.versions():
        frame = dataset.load(name).manifest
        wanted -= set(zip(frame["object"], frame["ext"]))
        if not wanted:
            return 0
    dataset.remove_objects([_object_name(dataset, d, e) for d, e in wanted])
    return len(wanted)
