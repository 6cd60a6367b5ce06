"""Run a recipe: select sources -> plan (per-item seeds) -> transform in a pool -> gate -> write a new version.

Per-item seeds: np.random.SeedSequence([recipe seed, stable_hash(source id), copy index, stable_hash(target tag)])
(DESIGN's triple plus the target tag, so one source augmented for two tags does not get identical draws). Results
therefore do not depend on worker count or order. Media objects are written as they are produced
(content-addressed, so an interrupted run leaves at most unreferenced objects); the version is committed only
after the gate passes, and the dataset's lock is held for the whole run.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import json
import multiprocessing
import os
import shlex
import sys
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from curate.exceptions import BadInput

CHUNK = 16


def stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


@dataclass(frozen=True)
class Task:
    item_id: str
    tag: str
    source_id: str
    copy: int
    path: str
    media: str
    entropy: tuple[int, ...]
    store: str = ""  # the dataset the worker writes the new object into


@dataclass
class Plan:
    tasks: list[Task]
    per_tag: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped_existing: int = 0


# -- sources and plan ------------------------------------------------------------------------------------------
def select_sources(manifest, where: dict[str, Any]):
    """Rows usable as sources: train (or every item when no split exists), real by default, filtered by `where`."""
    from curate.checks import train_mask

    mask = np.asarray(train_mask(manifest), dtype=bool)
    where = dict(where)
    origin = where.pop("origin", "real")
    mask &= np.asarray([o in _as_list(origin) for o in manifest["origin"]])
    where.pop("split", None)
    if "label" in where:
        labels = _as_list(where.pop("label"))
        mask &= np.asarray([l in labels for l in manifest["label"]])
    if "tags_any" in where:
        wanted = set(where.pop("tags_any"))
        mask &= np.asarray([bool(wanted & set(t)) for t in manifest["tags"]])
    if "tags_none" in where:
        unwanted = set(where.pop("tags_none"))
        mask &= np.asarray([not (unwanted & set(t)) for t in manifest["tags"]])
    for column, allowed in where.items():
        if column not in manifest.columns:
            raise BadInput(f"sources.where.{column}: no such column in the dataset (columns: "
                           f"{', '.join(manifest.columns)})")
        mask &= np.asarray([v in _as_list(allowed) for v in manifest[column]])
    return manifest[mask].sort_values("id", kind="stable")


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def augmented_id(recipe: str, tag: str, source_id: str, copy: int, ext: str) -> str:
    stem = source_id.rsplit(".", 1)[0] if source_id.lower().endswith("." + ext) else source_id
    return f"augmented/{recipe}/{tag}/{stem}-{copy}.{ext}"


def output_ext(media: str, ext: str) -> str:
    """Augmented audio is stored as WAV (FLAC stays FLAC), images as PNG: never a second lossy encoding."""
    if media == "image":
        return "png"
    return "flac" if ext == "flac" else "wav"


def make_plan(loaded, parent_view) -> Plan:
    recipe = loaded.recipe
    manifest = parent_view.manifest
    sources = select_sources(manifest, recipe.sources.where)
    existing = set(manifest["id"])
    tasks, per_tag, skipped = [], {}, 0
    for tag, budget in loaded.budgets.items():
        pairs = [(row, copy) for row in sources.itertuples(index=False) for copy in range(recipe.per_source)]
        if budget is not None and len(pairs) > budget:
            pairs = _stratified_subset(pairs, budget, recipe.seed, tag)
        planned = 0
        for row, copy in pairs:
            item = augmented_id(recipe.name, tag, row.id, copy, output_ext(row.media, row.ext))
            if item in existing:
                skipped += 1
                continue
            tasks.append(Task(item, tag, row.id, copy, str(parent_view.dataset.object_path(row.object, row.ext)),
                              row.media, (recipe.seed, stable_hash(row.id), copy, stable_hash(tag))))
            planned += 1
        per_tag[tag] = {"sources": len(sources), "per_source": recipe.per_source, "budget": budget or 0,
                        "planned": planned}
    return Plan(tasks, per_tag, skipped)


def _stratified_subset(pairs: list, budget: int, seed: int, tag: str) -> list:
    """`budget` of the (source, copy) pairs with the labels in the sources' proportions (largest remainder), a seeded
    permutation within each label: a budget cut never skews the class priors the ambiguity guard protects, and a
    smaller budget picks a subset of a larger one's items."""
    by_label: dict[str, list] = {}
    for pair in pairs:
        by_label.setdefault(pair[0].label, []).append(pair)
    shares = {label: budget * len(group) / len(pairs) for label, group in by_label.items()}
    quota = {label: int(share) for label, share in shares.items()}
    for label in sorted(shares, key=lambda l: (-(shares[l] - quota[l]), l))[: budget - sum(quota.values())]:
        quota[label] += 1
    chosen = []
    for label, group in sorted(by_label.items()):
        rng = np.random.default_rng(np.random.SeedSequence([seed, stable_hash(tag), stable_hash(label)]))
        chosen += [group[i] for i in sorted(rng.permutation(len(group))[: quota[label]])]
    order = {id(pair): n for n, pair in enumerate(pairs)}
    return sorted(chosen, key=lambda pair: order[id(pair)])


# -- executing ---------------------------------------------------------------------------------------------------
_PIPELINES: dict[str, Any] = {}


def _init_worker(pipelines: dict[str, Any]) -> None:
    _PIPELINES.clear()
    _PIPELINES.update(pipelines)


class ItemFailed(Exception):
    """One planned item could not be produced; carries its id and source across process boundaries."""

    def __init__(self, item_id: str, source_id: str, message: str):
        super().__init__(item_id, source_id, message)
        self.item_id, self.source_id, self.message = item_id, source_id, message


def augment_one(task: Task) -> tuple[str, str, str, list[dict]]:
    """Transform one source item and store the result; returns (item id, object hash, extension, record).
    Runs in a worker: content-addressed writes are safe from several processes."""
    item_id, data, ext, record = produce(task)
    return item_id, store_result(task, data, ext), ext, record


def store_result(task: Task, data: bytes, ext: str) -> str:
    from curate.store import put_object

    try:
        return put_object(task.store, data, ext)
    except OSError as exc:
        raise ItemFailed(task.item_id, task.source_id, f"cannot store the result: {exc}") from None


def produce(task: Task) -> tuple[str, bytes, str, list[dict]]:
    """Transform one source item; returns (item id, encoded bytes, extension, record)."""
    try:
        return _produce(task)
    except (ValueError, OSError, RuntimeError) as exc:
        raise ItemFailed(task.item_id, task.source_id, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _produce(task: Task) -> tuple[str, bytes, str, list[dict]]:
    from curate.media import read_audio, read_image

    pipeline = _PIPELINES.get(task.tag) or _PIPELINES["*"]
    rng = np.random.default_rng(np.random.SeedSequence(list(task.entropy)))
    buffer = io.BytesIO()
    ext = task.item_id.rsplit(".", 1)[-1]
    if task.media == "audio":
        import soundfile as sf

        audio, rate = read_audio(task.path)
        out, record = pipeline.apply(audio, sample_rate=rate, rng=rng, context={"item_id": task.item_id})
        subtype = "PCM_16" if float(np.abs(out).max()) <= 1.0 else "FLOAT"  # on_clip="allow" keeps the overs
        sf.write(buffer, out.T if out.ndim == 2 else out, rate, format=ext.upper(), subtype=subtype)
    else:
        from PIL import Image

        out, record = pipeline.apply(read_image(task.path), rng=rng, context={"item_id": task.item_id})
        Image.fromarray(out).save(buffer, format="PNG")
    return task.item_id, buffer.getvalue(), ext, record


def augment_chunk(tasks: list[Task]) -> list[tuple[str, str, str, list[dict]]]:
    return [augment_one(t) for t in tasks]


class LocalExecutor:
    """Runs tasks in this process (workers=1) or a local process pool, streaming results in plan order."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = max(1, int(workers or os.cpu_count() or 1))

    def map(self, pipelines: dict[str, Any], tasks: list[Task]) -> Iterator[tuple[str, str, str, list[dict]]]:
        if self.workers == 1 or len(tasks) <= 1:
            _init_worker(pipelines)
            yield from (augment_one(t) for t in tasks)
            return
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        chunks = (tasks[i:i + CHUNK] for i in range(0, len(tasks), CHUNK))
        with context.Pool(self.workers, initializer=_init_worker, initargs=(pipelines,)) as pool:
            # a bounded window of chunks in flight: results stream out in plan order and memory stays flat
            pending = deque(pool.apply_async(augment_chunk, (c,)) for c in itertools.islice(chunks, 2 * self.workers))
            while pending:
                done = pending.popleft().get()
                for chunk in itertools.islice(chunks, 1):
                    pending.append(pool.apply_async(augment_chunk, (chunk,)))
                yield from done


# -- the run -----------------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    status: str                       # committed | rejected | dry-run | up-to-date
    plan: Plan
    gate: dict[str, Any] | None = None
    version: Any = None
    rejected_dir: Path | None = None
    evaluation: dict[str, Any] | None = None


def _open_parent(recipe, output: str | None, dry_run: bool):
    """(dataset to write to, parent version or an in-memory view). A media folder is imported on first use."""
    from curate.store import open_dataset, split_ref

    source_path, source_version = split_ref(recipe.dataset)
    target = Path(output or recipe.output or source_path)
    if (source_path / "labels.csv").is_file() and not (source_path / "dataset.json").is_file():
        if (target / "dataset.json").is_file():
            dataset = open_dataset(target)
            return dataset, dataset.load("latest")
        if dry_run:
            return None, _folder_view(source_path)
        from curate.importer import import_folder

        version = import_folder(source_path, target).version
        return version.dataset, version
    source = open_dataset(source_path)
    parent = source.load(source_version)
    if target.resolve() == source_path.resolve():
        return source, parent
    return (None if dry_run else open_dataset(target, create=True)), parent


def _folder_view(folder: Path):
    """A read-only view of a media folder not imported yet (for --dry-run): decoded, hashed, nothing written."""
    from types import SimpleNamespace

    from curate import manifest as mf
    from curate.importer import LABELS_FILE, build_manifest, read_labels
    from curate.media import probe, sha256_file

    header, rows = read_labels(folder)
    kinds = {r.line: probe(r.file) for r in rows}
    frame = mf.normalise(build_manifest(header, rows, kinds))
    files = {(r.values.get("id") or r.values["path"]): r.file for r in rows}
    frame["object"] = [sha256_file(files[i]) for i in frame["id"]]
    paths = {(d, e): files[i] for i, d, e in zip(frame["id"], frame["object"], frame["ext"])}
    dataset = SimpleNamespace(path=folder, object_path=lambda d, e: paths[(d, e)])
    return SimpleNamespace(manifest=frame, dataset=dataset, ref=str(folder / LABELS_FILE), name="(folder)")


def run_recipe(loaded, *, output: str | None = None, workers: int | None = None, dry_run: bool = False,
               force: bool = False, executor=None, progress: Callable | None = None,
               command: str | None = None) -> RunResult:
    dataset, parent = _open_parent(loaded.recipe, output, dry_run)
    plan = make_plan(loaded, parent)
    if dry_run:
        return RunResult("dry-run", plan)
    if not plan.tasks:
        return RunResult("up-to-date", plan, version=parent)
    executor = executor or LocalExecutor(workers)
    with dataset.lock():
        built = build_candidate(loaded, dataset, parent, plan, executor, progress)
        if not built.gate["passed"] and not force:
            folder = _reject(dataset, loaded, plan, built)
            return RunResult("rejected", plan, built.gate, rejected_dir=folder, evaluation=built.evaluation)
        version = commit_candidate(loaded, dataset, parent, plan, built, command)
        return RunResult("committed", plan, built.gate, version=version, evaluation=built.evaluation)


@dataclass
class Built:
    """A candidate version: its objects are stored, its manifest gated (and evaluated), nothing committed yet."""
    manifest: Any
    candidate: Any
    gate: dict[str, Any]
    evaluation: dict[str, Any] | None
    report_parent: Any


def build_candidate(loaded, dataset, parent, plan, executor, progress=None) -> Built:
    import pandas as pd

    from curate.checks import Candidate
    from curate.checks.gate import parse_config, run_gate

    recipe = loaded.recipe
    parent_rows = parent.manifest
    same = dataset.path.resolve() == parent.dataset.path.resolve()
    if not same:  # writing into another dataset: bring the parent's objects along
        for digest, ext in zip(parent_rows["object"], parent_rows["ext"]):
            dataset.put_object(parent.dataset.object_path(digest, ext), ext)
    by_id = {r["id"]: r for r in parent_rows.to_dict("records")}
    work = [replace(t, store=str(dataset.path)) for t in plan.tasks]
    tasks = {t.item_id: t for t in work}
    stream = executor.map(loaded.pipelines, work)
    results: Iterable = progress(stream, f"augment {recipe.name}", total=len(plan.tasks)) if progress else stream
    try:
        rows = _rows_from_results(results, tasks, by_id, recipe)
    except ItemFailed as failure:
        getattr(stream, "close", lambda: None)()  # stop the workers before their half-written files are swept
        dataset.sweep_temporaries()
        raise BadInput(f"item {failure.item_id!r} (source {failure.source_id!r}) failed: {failure.message}; "
                       "no version written") from None
    manifest = pd.concat([parent_rows, pd.DataFrame(rows, columns=parent_rows.columns)], ignore_index=True)
    candidate = Candidate(dataset, manifest, ref=f"candidate-{recipe.name}")
    curation = dict(recipe.curation)
    targets = list(loaded.budgets)
    curation.setdefault("realism", {}).setdefault("target_tags", targets)
    report_parent = parent if same else None
    gate = run_gate(candidate, report_parent, parse_config(curation, where=f"{loaded.path}: curation"),
                    progress=progress)
    evaluation = _evaluate(recipe, parent, candidate, targets) if recipe.evaluate else None
    if evaluation:
        from curate.checks import evaluation as evaluation_check
        from curate.checks.gate import add_findings

        config = parse_config(curation, where=f"{loaded.path}: curation").section("evaluation")
        gate = add_findings(gate, evaluation_check.check(evaluation, targets, config))
    return Built(manifest, candidate, gate, evaluation, report_parent)


def commit_candidate(loaded, dataset, parent, plan, built: Built, command: str | None = None,
                     sweep: dict[str, Any] | None = None):
    from curate.report import build_report, report_files

    recipe = loaded.recipe
    info = {"parent": built.report_parent.name if built.report_parent is not None else None,
            "recipe": {"name": recipe.name, "text": loaded.text, "path": str(loaded.path)}, "seed": recipe.seed,
            "command": command or shlex.join(sys.argv), "gate": gate_summary(built.gate, forced=not built.gate["passed"]),
            "evaluation": built.evaluation, "sweep": sweep,
            "source": {"kind": "recipe", "dataset": parent.ref, "targets": loaded.budgets, "plan": plan.per_tag}}

    def reports(record):
        return report_files(build_report(built.candidate, built.report_parent, built.gate, record), built.candidate,
                            built.report_parent)

    return dataset.commit(built.manifest, {}, info, files=reports)


def _rows_from_results(results, tasks, by_id, recipe) -> list[dict[str, Any]]:
    """Manifest rows for the produced items: the source's columns, plus lineage, tags and the transform record."""
    rows = []
    for item_id, digest, ext, record in results:
        task = tasks[item_id]
        source = by_id[task.source_id]
        tags = (set(source["tags"]) - set(recipe.remove_tags)) | {task.tag} | set(recipe.add_tags)
        label = recipe.set_label.get(task.tag) if isinstance(recipe.set_label, dict) else recipe.set_label
        rows.append({**source, "id": item_id, "label": label or source["label"], "object": digest, "ext": ext,
                     "tags": sorted(tags), "origin": "augmented", "source_id": task.source_id, "recipe": recipe.name,
                     "transform": json.dumps(record, sort_keys=True, separators=(",", ":"))})
    return rows


def gate_summary(gate: dict[str, Any], forced: bool = False) -> dict[str, Any]:
    return {"verdict": "forced" if forced else ("passed" if gate["passed"] else "failed"), "passed": gate["passed"],
            "forced": forced, "counts": gate["counts"], "block_on": gate["block_on"],
            "findings": [{"check": f["check"], "severity": f["severity"], "message": f["message"]}
                         for f in gate["findings"] if f["severity"] != "info"]}


def _reject(dataset, loaded, plan, built: Built) -> Path:
    """A refused run leaves its evidence (report, gate result, recipe, plan) in DATASET/rejected/<time>-<recipe>/."""
    from curate.report import build_report, write_report

    gate, candidate, parent, evaluation = built.gate, built.candidate, built.report_parent, built.evaluation
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    folder = dataset.path / "rejected" / f"{stamp}-{loaded.recipe.name}"
    folder.mkdir(parents=True)
    (folder / "gate.json").write_text(json.dumps(gate, indent=2) + "\n")
    (folder / "recipe.yaml").write_text(loaded.text)
    (folder / "plan.json").write_text(json.dumps(plan.per_tag, indent=2) + "\n")
    info = {"name": dataset.name, "version": f"rejected-{stamp}", "status": "rejected",
            "parent": parent.name if parent is not None else None, "seed": loaded.recipe.seed,
            "recipe": {"name": loaded.recipe.name, "sha256": loaded.sha256}, "evaluation": evaluation,
            "source": {"targets": loaded.budgets}}
    write_report(folder, build_report(candidate, parent, gate, info), candidate, parent)
    return folder


def _evaluate(recipe, parent, candidate, targets: list[str]) -> dict[str, Any]:
    """Baseline dev accuracy per target tag (and overall) trained on the parent vs on the candidate."""
    from curate.baseline import run_baseline

    options = dict(recipe.evaluate.baseline or {})
    model, seed = options.get("model", "logreg"), int(options.get("seed", recipe.seed))
    split = options.get("split", "dev")
    out: dict[str, Any] = {"model": model, "split": split, "before": {}, "after": {}, "n": {}}
    # "(untargeted)": scored items carrying none of the targets, i.e. what adding data might cost elsewhere
    for key, view in (("before", parent), ("after", candidate)):
        predictions = run_baseline(view, model=model, seed=seed)
        scored = predictions[predictions["split"] == split] if (predictions["split"] == split).any() else predictions
        correct = scored["label"] == scored["prediction"]
        out[key]["(all)"] = float(correct.mean())
        out["n"]["(all)"] = int(len(scored))
        tags = scored["tags"].str.split(";")
        for tag in targets:
            member = tags.map(lambda t: tag in t)
            if member.any():
                out[key][tag] = float(correct[member].mean())
                out["n"][tag] = int(member.sum())
        rest = ~tags.map(lambda t: bool(set(t) & set(targets)))
        if rest.any():
            out[key]["(untargeted)"] = float(correct[rest].mean())
            out["n"]["(untargeted)"] = int(rest.sum())
    return out
