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
    from curate.media import sha256_file

    problems: list[Problem] = []
    referenced: dict[Path, str] = {}
    names = dataset.versions()
    for name in sorted(set(dataset.version_dirs()) - set(names)):
        problems.append(Problem(str(dataset.path / "versions" / name), "version directory without version.json"))
    digests: dict[str, str] = {}
    readable = []
    for name in names:
        version = dataset.load(name)
        raw = (version.path / "version.json").read_bytes()
        digests[name] = sha256_bytes(raw)
        try:
            version.info
        except BadInput as exc:
            problems.append(Problem(str(version.path / "version.json"), f"unreadable ({exc})"))
            continue
        readable.append(name)
        frame = _check_version(version, problems)
        if frame is not None:
            for digest, ext in zip(frame["object"], frame["ext"]):
                referenced[dataset.object_path(digest, ext)] = digest
    for name in readable:
        _check_chain(dataset, name, digests, problems)
    if not quick:
        for path, digest in sorted(referenced.items()):
            if not path.is_file():
                problems.append(Problem(str(path), "object missing"))
            elif sha256_file(path) != digest:
                problems.append(Problem(str(path), "object content does not match its hash (corrupted)"))
    _check_latest(dataset, names, digests, problems)
    stored = sum(1 for p in (dataset.path / "objects").glob("*/*") if not p.name.startswith("."))
    figures = {"versions": len(names), "objects_checked": 0 if quick else len(referenced),
               "objects_referenced": len(referenced), "objects_unreferenced": max(0, stored - len(referenced))}
    return problems, figures


def _check_version(version, problems: list[Problem]):
    from curate import manifest as mf

    here = version.path / "version.json"
    manifest_path = version.path / "manifest.parquet"
    try:
        info = version.info
        if sha256_bytes(manifest_path.read_bytes()) != info.get("manifest_sha256"):
            problems.append(Problem(str(manifest_path), "manifest bytes changed since commit (sha256 mismatch)"))
        frame = version.manifest
    except (BadInput, OSError, ValueError) as exc:
        problems.append(Problem(str(manifest_path), f"unreadable ({exc})"))
        return None
    if info.get("version") != version.name:
        problems.append(Problem(str(version.path / "version.json"), f"says version {info.get('version')!r}, but its "
                                f"directory is {version.name} (copied or renamed by hand)"))
    if mf.fingerprint(frame) != info.get("fingerprint"):
        problems.append(Problem(str(manifest_path), "manifest fingerprint does not match version.json"))
    files = info.get("files")
    if files is None:
        return frame  # written before digests were chained
    for file_name, digest in files.items():
        if file_name == "manifest.parquet":
            continue  # checked above against manifest_sha256
        path = version.path / file_name
        if not path.is_file():
            problems.append(Problem(str(path), "missing (version.json records it)"))
        elif sha256_bytes(path.read_bytes()) != digest:
            problems.append(Problem(str(path), "content changed since commit (sha256 mismatch)"))
    extra = sorted(p.name for p in version.path.iterdir() if p.name not in files and p.name != "version.json")
    if extra:
        problems.append(Problem(str(version.path), f"file(s) added after commit: {', '.join(extra)}"))
    if info.get("counts") != mf.counts(frame):
        problems.append(Problem(str(here), "counts do not match the manifest"))
    recipe = info.get("recipe") or {}
    if recipe.get("text") is not None and sha256_bytes(recipe["text"].encode("utf-8")) != recipe.get("sha256"):
        problems.append(Problem(str(here), "recipe text does not match its sha256"))
    return frame


def _check_chain(dataset, name: str, digests: dict[str, str], problems: list[Problem]) -> None:
    info = dataset.load(name).info
    here = dataset.path / "versions" / name / "version.json"
    parent = info.get("parent")
    if parent is None:
        return
    if parent not in digests:
        problems.append(Problem(str(here), f"parent {parent} is missing (versions/{parent} was deleted or renamed)"))
    elif info.get("parent_sha256") is not None and info["parent_sha256"] != digests[parent]:
        problems.append(Problem(str(dataset.path / "versions" / parent / "version.json"),
                                f"changed since {name} was committed on it (sha256 mismatch)"))


def _check_latest(dataset, names: list[str], digests: dict[str, str], problems: list[Problem]) -> None:
    marker = dataset.path / "LATEST"
    if not names:
        return
    newest = names[-1]
    if not marker.is_file():
        problems.append(Problem(str(marker), f"missing (the newest version is {newest}; any writer repairs it)"))
        return
    fields = marker.read_text(encoding="utf-8").split()
    if not fields or fields[0] != newest:
        problems.append(Problem(str(marker), f"names {fields[0] if fields else 'nothing'} but the newest version is "
                                f"{newest} (left by an interrupted commit or edited; any writer repairs it)"))
    elif len(fields) > 1 and fields[1] != digests[newest]:
        problems.append(Problem(str(dataset.path / "versions" / newest / "version.json"),
                                "changed since it was committed (sha256 recorded in LATEST does not match)"))


def collect(dataset: "Dataset", dry_run: bool = False) -> tuple[list[tuple[Path, int]], int]:
    """Objects no committed version references, with their sizes, removed unless `dry_run`; (objects, bytes).
    Runs under the writer lock, so no writer has objects in flight."""
    with dataset.lock():
        referenced: set[Path] = set()
        for name in dataset.versions():
            frame = dataset.load(name).manifest
            referenced |= {dataset.object_path(d, e) for d, e in zip(frame["object"], frame["ext"])}
        garbage = sorted((p, p.stat().st_size) for p in (dataset.path / "objects").glob("*/*")
                         if p.is_file() and not p.name.startswith(".") and p not in referenced)
        if not dry_run:
            for path, _ in garbage:
                path.unlink(missing_ok=True)
        return garbage, sum(size for _, size in garbage)


def discard(dataset: "Dataset", objects) -> int:
    """Remove the given (digest, ext) objects that no committed version references: what a run that failed after
    making them leaves behind. The caller holds the writer lock. Returns how many were removed."""
    wanted = {dataset.object_path(d, e) for d, e in objects}
    for name in dataset.versions():
        frame = dataset.load(name).manifest
        wanted -= {dataset.object_path(d, e) for d, e in zip(frame["object"], frame["ext"])}
        if not wanted:
            return 0
    for path in wanted:
        path.unlink(missing_ok=True)
    return len(wanted)
