"""The run spine, one module a stage: plan (sources, budgets, per-item seeds -> Plan; nothing written) -> execute
(local pool or Ray -> objects + manifest rows) -> gate (candidate vs source -> GateResult, evaluation) -> commit
(staged, reported, committed or rejected, through curate.publish). `run_recipe` strings them together; sweeps use
the same stages (augment.sweep).

The source is the version the recipe reads (`dataset:`), whatever `output:` is; the lineage parent is the output
dataset's latest version. A media folder named as `dataset:` is imported on first use, after the plan is made.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from augment.run.plan import Plan, make_plan
from curate.checks import GateResult
from curate.exceptions import BadInput


@dataclass(frozen=True)
class RunResult:
    status: str                       # committed | rejected | dry-run | up-to-date
    plan: Plan
    gate: Optional[GateResult] = None
    version: Any = None
    rejected_dir: Optional[Path] = None
    evaluation: Optional[dict[str, Any]] = None


@dataclass(frozen=True)
class Source:
    """What a run reads and where it writes: `view` (a Version, or a view of a media folder to import first)."""
    view: Any
    output: Path
    folder: Optional[Path] = None


def open_source(recipe, output: str | None = None) -> Source:
    """Resolve the recipe's source and output; refuses (before anything is written) a source that is an older
    version of the output dataset, since a version made from it would drop what the newer ones added."""
    from curate.store import open_dataset, split_ref

    source_path, source_version = split_ref(recipe.dataset)
    target = Path(output or recipe.output or source_path)
    if (source_path / "labels.csv").is_file() and not (source_path / "dataset.json").is_file():
        if (target / "dataset.json").is_file() and open_dataset(target).latest() is not None:
            return Source(open_dataset(target).load("latest"), target)
        # not imported yet, or a first import that died before its version: (re-)import it cleanly
        return Source(folder_view(source_path), target, folder=source_path)
    view = open_dataset(source_path).load(source_version)
    if target.resolve() == source_path.resolve():
        latest = view.dataset.latest()
        if view.name != latest:
            names = view.dataset.versions()
            newer = ", ".join(names[names.index(view.name) + 1:])
            raise BadInput(f"dataset: {recipe.dataset} is not the latest version of {source_path} (newer: {newer}); "
                           f"a version made from it would drop what they added: read {source_path}@latest, or "
                           "write to another dataset with output:")
    return Source(view, target)


def folder_view(folder: Path):
    """A read-only view of a media folder not imported yet: decoded and hashed, nothing written."""
    from curate import manifest as mf
    from curate.importer import LABELS_FILE, build_manifest, read_labels, row_id
    from curate.media import probe, sha256_file
    from curate.view import FolderObjects, MemoryView

    header, rows = read_labels(folder)
    kinds = {r.line: probe(r.file) for r in rows}
    frame = mf.normalise(build_manifest(header, rows, kinds))
    files = {row_id(r): r.file for r in rows}
    frame["object"] = [sha256_file(files[i]) for i in frame["id"]]
    objects = FolderObjects(folder, {(d, e): files[i] for i, d, e in zip(frame["id"], frame["object"], frame["ext"])})
    return MemoryView(objects, frame, name="(folder)", ref=str(folder / LABELS_FILE))


def materialise(source: Source):
    """(output Dataset, source view): imports a media folder on first use; opens or creates the output."""
    from curate.store import open_dataset

    if source.folder is not None:
        from curate.importer import import_folder

        version = import_folder(source.folder, source.output).version
        return version.dataset, version
    return open_dataset(source.output, create=True), source.view


def build(loaded, plan: Plan, dataset, view, executor, progress: Callable | None = None):
    """Execute the plan and judge the result: (candidate view, GateResult, evaluation)."""
    from augment.run.execute import execute
    from augment.run.gate import judge
    from augment.run.plan import candidate_manifest
    from curate.view import MemoryView

    rows = execute(plan, loaded, view, dataset, executor, progress)
    candidate = MemoryView(dataset, candidate_manifest(view.manifest, plan, rows), name=f"candidate-{loaded.recipe.name}",
                           info={"source": {"targets": loaded.budgets}})
    gate, evaluation = judge(loaded, candidate, view, progress)
    return candidate, gate, evaluation


def run_recipe(loaded, *, output: str | None = None, workers: int | None = None, dry_run: bool = False,
               force: bool = False, executor=None, progress: Callable | None = None,
               command: str | None = None) -> RunResult:
    from augment.run.commit import write
    from augment.run.execute import LocalExecutor

    source = open_source(loaded.recipe, output)
    plan = make_plan(loaded, source.view)
    if dry_run:
        return RunResult("dry-run", plan)
    if plan.up_to_date:
        if source.folder is None:
            source.view.dataset.try_recover()
        return RunResult("up-to-date", plan, version=source.view if source.folder is None else None)
    dataset, view = materialise(source)
    with dataset.lock():
        candidate, gate, evaluation = build(loaded, plan, dataset, view, executor or LocalExecutor(workers), progress)
        outcome = write(loaded, dataset, candidate, view, plan, gate, evaluation, force=force, command=command)
    if outcome.status == "rejected":
        return RunResult("rejected", plan, gate, rejected_dir=outcome.rejected_dir, evaluation=evaluation)
    return RunResult("committed" if outcome.status == "committed" else "up-to-date", plan, gate,
                     version=outcome.version, evaluation=evaluation)
