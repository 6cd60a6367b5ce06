"""The files a pipeline reads besides its input (noise beds; audiomentations' `*_path` parameters): where its spec
names them, the canonical reference each is recorded under, and where a worker reads them.

A canonical reference does not depend on how the recipe spells a path. A file under the working directory is
named by its path relative to it (`sample_media/noise/cafe/MarketFull1.wav`: `./sample_media/noise/cafe/`, the
absolute path and the relative one give the same name, and it is the name recipes written from the project root
have always recorded, so their item ids and fingerprints stay as they were); any other file by its content,
`sha256:HEX` (a folder: the hash of its listing of names and content hashes), which is the same on every machine.
Item ids carry the assets' content besides (plan.files_digest), so an edited bed makes new items whatever its name.

Workers never resolve a path of the recipe themselves: the driver binds each asset to an absolute path (shared
storage) or ships its bytes, and a worker binds it to its own copy (`materialise`); the records its transforms
write name the files it read, which `rename` turns back into canonical references.
"""
from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

ASSET_PARAMS = {"AddBackgroundNoise": ("noise",)}   # transform -> parameters that name files or folders
_HASHES: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class Asset:
    """One file or folder a pipeline spec names. `files`: (name inside the folder, or '' for a file; sha256)."""
    written: str
    absolute: str
    folder: bool
    files: tuple[tuple[str, str], ...]
    ref: str

    @property
    def digest(self) -> str:
        """The content: a file's sha256, or the sha256 of a folder's listing of names and content hashes."""
        if not self.folder:
            return self.files[0][1]
        return hashlib.sha256("".join(f"{name}:{sha};" for name, sha in self.files).encode()).hexdigest()

    def file_ref(self, name: str, sha: str) -> str:
        if self.ref.startswith("sha256:"):
            return f"sha256:{sha}"
        return f"{self.ref}/{name}" if name else self.ref


def _keys(name: str, params: dict[str, Any]) -> list[str]:
    keys = list(ASSET_PARAMS.get(name, ()))
    if name == "Audiomentations":   # audiomentations' file parameters: sounds_path, ir_path
        keys += [k for k in params if isinstance(k, str) and k.endswith("_path")]
    return [k for k in keys if k in params]


def slots(spec: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """(params, key) of every asset parameter in a transform spec `{Name: {...}}`, containers searched."""
    if not isinstance(spec, dict) or len(spec) != 1:
        return
    (name, params), = spec.items()
    if not isinstance(params, dict):
        return
    for child in params.get("transforms") or []:
        yield from slots(child)
    if isinstance(params.get("transform"), dict):
        yield from slots(params["transform"])
    for key in _keys(name, params):
        yield params, key


def _paths(value: Any) -> list[str]:
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    if isinstance(value, (list, tuple)):
        return [os.fspath(v) for v in value if isinstance(v, (str, os.PathLike))]
    return []


def sha256_of(path: Path) -> str:
    """sha256 of a file, remembered for its size and modification time (the plan and the run both ask)."""
    from curate.media import sha256_file

    stat = path.stat()
    key = (str(path.absolute()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = sha256_file(path)
    return _HASHES[key]


def reference(path: str, digest: Callable[[], str]) -> str:
    """The canonical reference of `path`: relative to the working directory when it lies under it (symlinks kept,
    or resolved when only that places it there), else `sha256:` and its content digest."""
    cwd = Path(os.getcwd())
    for candidate, base in ((Path(os.path.abspath(path)), cwd),
                            (Path(path).resolve(), cwd.resolve())):
        try:
            relative = candidate.relative_to(base)
        except ValueError:
            continue
        return relative.as_posix() if relative.parts else "."
    return f"sha256:{digest()}"


def describe(written: str) -> Asset | None:
    """The asset `written` names (None when it names nothing: the transform has refused it already)."""
    path = Path(written)
    if path.is_file():
        files: tuple[tuple[str, str], ...] = (("", sha256_of(path)),)
        folder = False
    elif path.is_dir():
        files = tuple((p.relative_to(path).as_posix(), sha256_of(p))
                      for p in sorted(q for q in path.rglob("*") if q.is_file()))
        folder = True
    else:
        return None
    draft = Asset(written, os.path.abspath(written), folder, files, "")
    return Asset(written, draft.absolute, folder, files, reference(written, lambda: draft.digest))


def collect(specs: dict[str, Any]) -> dict[str, Asset]:
    """Every asset of the specs (tag -> spec), by the path as written."""
    found: dict[str, Asset] = {}
    for spec in specs.values():
        for params, key in slots(spec):
            for written in _paths(params[key]):
                if written not in found:
                    asset = describe(written)
                    if asset is not None:
                        found[written] = asset
    return found


def rebind(spec: Any, assets: dict[str, Asset], where: Callable[[Asset], str]) -> Any:
    """A copy of `spec` with every asset path replaced by `where(asset)`."""
    out = copy.deepcopy(spec)
    for params, key in slots(out):
        value = params[key]
        if isinstance(value, (list, tuple)):
            params[key] = [where(assets[v]) if v in assets else v for v in map(os.fspath, value)]
        elif os.fspath(value) in assets:
            params[key] = where(assets[os.fspath(value)])
    return out


def canonical_spec(spec: Any, assets: dict[str, Asset]) -> Any:
    """The spec with every asset named by its canonical reference (what item ids hash)."""
    return rebind(spec, assets, lambda a: a.ref)


def record_names(assets: dict[str, Asset], where: Callable[[Asset], str]) -> dict[str, str]:
    """{file path as a transform built on `where(asset)` records it: canonical reference of that file}."""
    names: dict[str, str] = {}
    for asset in assets.values():
        root = Path(where(asset))
        for name, sha in asset.files:
            names[str(root / name) if name else str(root)] = asset.file_ref(name, sha)
    return names


def rename(value: Any, names: dict[str, str]) -> Any:
    """A record with every file path a worker read replaced by its canonical reference."""
    if not names:
        return value
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [rename(v, names) for v in value]
    if isinstance(value, dict):
        return {k: rename(v, names) for k, v in value.items()}
    return value


def payload(assets: dict[str, Asset]) -> dict[str, dict[str, bytes]]:
    """The assets' bytes, for workers that cannot see the driver's files: {written: {name: bytes}}."""
    out: dict[str, dict[str, bytes]] = {}
    for asset in assets.values():
        root = Path(asset.absolute)
        out[asset.written] = {name: (root / name if name else root).read_bytes() for name, _ in asset.files}
    return out


def materialise(asset: Asset, files: dict[str, bytes]) -> str:
    """This machine's copy of a shipped asset, in a cache folder named by its content (written once, atomically;
    a later run with the same bed reuses it, and its decoded bed stays cached in the worker)."""
    root = Path(tempfile.gettempdir()) / f"rubbersheet-assets-{os.getuid() if hasattr(os, 'getuid') else 0}" / \
        asset.digest
    base = root if asset.folder else root / (Path(asset.written).name or "asset")
    for name, sha in asset.files:
        target = base / name if name else base
        if target.is_file() and target.stat().st_size == len(files[name]):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.parent / f".tmp-{os.getpid()}-{target.name}"
        temp.write_bytes(files[name])
        os.replace(temp, target)
    return str(base)
