"""The run spine, one module a stage: plan (sources, budgets, per-item seeds -> Plan; nothing written) -> execute
(local pool or Ray -> objects + manifest rows) -> gate (candidate vs source -> GateResult, evaluation) -> commit
(staged, reported, committed or rejected, through curate.publish). `run_recipe` strings them together; sweeps use
the same stages (augment.sweep).

The source is the version the recipe reads (`dataset:`), whatever `output:` is; the lineage parent is the output
dataset's latest version. A media folder named as `dataset:` is imported on first use, after the plan is made and
after the executor has joined its cluster (so a cluster that cannot be reached leaves nothing written).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

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
    """What a run reads and where it writes: `view` (a Version, or a view of a media folder to import first) is
    what the gate compares with; `base` is what the candidate starts from: the view, plus the items this recipe
    already wrote into another `output` dataset."""
    view: Any
    output: Path | str                # a directory, or a URL on object storage
    folder: Optional[Path] = None
    base: Any = None

    @property
    def start(self):
        return self.base if self.base is not None else self.view


def open_source(recipe, output: str | None = None) -> Source:
    """Resolve the recipe's source and output; refuses (before anything is written) a source that is an older
    version of the output dataset, since a version made from it would drop what the newer ones added."""
    from curate.storage import is_url, location
    from curate.store import existing_dataset, open_dataset, refuse_inside_dataset, split_ref

    source_path, source_version = split_ref(recipe.dataset)
    target = location(output or recipe.output or source_path)
    refuse_inside_dataset(target, "output", dataset_itself=True)
    output_dataset = existing_dataset(target) if is_url(target) else None  # reach the store first: one line
    if not is_url(source_path) and (source_path / "labels.csv").is_file() and \
            not (source_path / "dataset.json").is_file():
        existing = output_dataset if is_url(target) else existing_dataset(target)
        if existing is not None and existing.latest() is not None:
            return Source(existing.load("latest"), target)
        # not imported yet, or a first import that died before its version: (re-)import it cleanly
        return Source(folder_view(source_path), target, folder=source_path)
    view = open_dataset(source_path).load(source_version)
    if _same_place(target, source_path):
        latest = view.dataset.latest()
        if view.name != latest:
            names = view.dataset.versions()
            newer = ", ".join(names[names.index(view.name) + 1:])
            raise BadInput(f"dataset: {recipe.dataset} is not the latest version of {source_path} (newer: {newer}); "
                           f"a version made from it would drop what they added: read {source_path}@latest, or "
                           "write to another dataset with output:")
        return Source(view, target)
    return Source(view, target, base=_base_in_output(recipe, view, target))


def _same_place(a: Path | str, b: Path | str) -> bool:
    from curate.storage import is_url

    if is_url(a) or is_url(b):
        return str(a) == str(b)
    return Path(a).resolve() == Path(b).resolve()


def _base_in_output(recipe, view, target: Path | str):
    """The candidate's starting rows when the recipe writes into another dataset: the source's rows plus the items
    this recipe made there before. Anything else the output holds would be dropped by the new version: refused."""
    import pandas as pd

    from curate.store import existing_dataset
    from curate.view import MemoryView

    output = existing_dataset(target)
    if output is None or output.latest() is None:
        return None
    existing = output.load("latest")
    rows = existing.manifest
    mine = rows[(rows["recipe"] == recipe.name) & ~rows["id"].isin(set(view.manifest["id"]))]
    columns = ["id", "object", "label", "split"]
    others = rows.drop(index=mine.index)[columns].merge(view.manifest[columns], how="left", on="id",
                                                         suffixes=("", "_source"), indicator=True)
    foreign = (others["_merge"] == "left_only") | (others["object"] != others["object_source"]) | \
        (others["label"] != others["label_source"]) | (others["split"].fillna("") != others["split_source"].fillna(""))
    if foreign.any():
        example = others.loc[foreign, "id"].iloc[0]
        raise BadInput(f"output: {existing.ref} holds {int(foreign.sum())} item(s) that are not in {view.ref} as they "
                       f"are (e.g. {example!r}) and not made by recipe {recipe.name!r}; a version made from the source "
                       "would drop them: write to a new dataset, or read the output")
    if mine.empty:
        return None
    return MemoryView(view.dataset, pd.concat([view.manifest, mine], ignore_index=True), name=view.name, ref=view.ref,
                      info=view.info)


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


def materialise(source: Source) -> tuple[Any, Source]:
    """(output Dataset, the source with its views in place): imports a media folder on first use; opens or
    creates the output."""
    from curate.store import open_dataset

    if source.folder is not None:
        from curate.importer import import_folder

        version = import_folder(source.folder, source.output).version
        return version.dataset, Source(version, source.output)
    return open_dataset(source.output, create=True), source


def evaluator_for(loaded, source: Source, progress: Callable | None = None):
    """The recipe's evaluation model with the source already scored (None when the recipe does not evaluate).
    Scoring the source first means a broken model (a failing command) stops the run before anything is made."""
    if not loaded.recipe.evaluate:
        return None
    from augment.run.evaluate import Evaluator

    evaluator = Evaluator(loaded, source.view, progress)
    evaluator.before()
    return evaluator


def build(loaded, plan: Plan, dataset, source: Source, executor, progress: Callable | None = None,
          evaluator=None):
    """Execute the plan and judge the result against the source: (candidate view, GateResult, evaluation). When
    the evaluation of the candidate fails, the objects this run made (and no version references) are removed."""
    from augment.run.execute import execute
    from augment.run.gate import judge
    from augment.run.plan import candidate_manifest
    from curate.verify import discard
    from curate.view import MemoryView

    rows = execute(plan, loaded, source.start, dataset, executor, progress)
    candidate = MemoryView(dataset, candidate_manifest(source.start.manifest, plan, rows),
                           name=f"candidate-{loaded.recipe.name}", info={"source": {"targets": loaded.budgets}})
    if evaluator is not None:
        evaluator.rebase(source.view)
    try:
        gate, evaluation = judge(loaded, candidate, source.view, progress, evaluator)
    except BadInput:
        discard(dataset, list(zip(rows["object"], rows["ext"])))
        raise
    return candidate, gate, evaluation


@contextlib.contextmanager
def connected(executor) -> Iterator[Any]:
    """Join the executor's cluster, when it has one (Ray), before anything is written: a cluster that cannot be
    reached or refuses this process fails the run in one line while the dataset is as it was. Leaves it at the end."""
    connect, close = getattr(executor, "connect", None), getattr(executor, "close", None)
    if callable(connect):
        connect()
    try:
        yield executor
    finally:
        if callable(close):
            close()


def run_recipe(loaded, *, output: str | None = None, workers: int | None = None, dry_run: bool = False,
               force: bool = False, executor=None, progress: Callable | None = None,
               command: str | None = None, on_plan: Callable[[Plan], Any] | None = None) -> RunResult:
    """Plan, then (unless a dry run, or up to date) join the executor's cluster, import a media folder on first
    use, execute, gate and commit or reject. `on_plan(plan)` is called as soon as the plan is made (the CLI prints
    its plan line then, before the long work)."""
    from augment.run.commit import write
    from augment.run.execute import LocalExecutor

    from augment.run.gate import gate_config

    gate_config(loaded)  # a bad curation setting is refused before anything is made
    source = open_source(loaded.recipe, output)
    plan = make_plan(loaded, source.start)
    if on_plan is not None:
        on_plan(plan)
    if dry_run:
        return RunResult("dry-run", plan)
    if plan.up_to_date:
        if source.folder is None:
            source.view.dataset.try_recover()
        return RunResult("up-to-date", plan, version=source.view if source.folder is None else None)
    with connected(executor or LocalExecutor(workers)) as engine:
        evaluator = evaluator_for(loaded, source, progress)
        dataset, source = materialise(source)
        with dataset.lock():
            candidate, gate, evaluation = build(loaded, plan, dataset, source, engine, progress, evaluator)
            outcome = write(loaded, dataset, candidate, source.view, plan, gate, evaluation, force=force,
                            command=command, logs=evaluator.logs if evaluator else None)
    if outcome.status == "rejected":
        return RunResult("rejected", plan, gate, rejected_dir=outcome.rejected_dir, evaluation=evaluation)
    return RunResult("committed" if outcome.status == "committed" else "up-to-date", plan, gate,
                     version=outcome.version, evaluation=evaluation)
