"""Stage 1 of a run: which sources, which new items, with which per-item seeds -> a Plan. Nothing is written here.

An augmented item's id carries a content key: a hash of (pipeline spec, recipe seed, source object, copy, target
tag, the new item's label and tags). Re-running an unchanged recipe therefore plans nothing ("up to date"), while an
edited pipeline, seed, label or tag rule plans new items. Items the same recipe made earlier that the plan no longer
contains are `previous`: replaced by default (dropped from the candidate) or kept (recipe `previous: keep`).

Per-item seed: SeedSequence([recipe seed, stable_hash(source id), copy, stable_hash(target tag)]): the draws do not
depend on worker count, order or process (no Python `hash`, which is salted per process).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curate.exceptions import BadInput


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
    label: str = ""
    tags: tuple[str, ...] = ()
    store: str = ""  # the dataset the worker writes the new object into


@dataclass(frozen=True)
class TagPlan:
    sources: int
    per_source: int
    budget: int
    planned: int
    existing: int


@dataclass
class Plan:
    tasks: list[Task]
    per_tag: dict[str, TagPlan] = field(default_factory=dict)
    existing: int = 0                                  # planned items already in the source (same content key)
    previous: list[str] = field(default_factory=list)  # this recipe's earlier items the plan no longer contains
    keep_previous: bool = False

    @property
    def dropped(self) -> list[str]:
        return [] if self.keep_previous else self.previous

    @property
    def up_to_date(self) -> bool:
        return not self.tasks and not self.dropped

    def summary(self) -> dict[str, Any]:
        return {"tags": {t: vars(p) for t, p in self.per_tag.items()}, "new": len(self.tasks),
                "existing": self.existing, "previous": len(self.previous),
                "previous_action": "kept" if self.keep_previous else "replaced"}


WHERE_KEYS = ("origin", "split", "label", "tags_any", "tags_none")


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


def output_ext(media: str, ext: str) -> str:
    """Augmented audio is stored as WAV (FLAC stays FLAC), images as PNG: never a second lossy encoding."""
    if media == "image":
        return "png"
    return "flac" if ext == "flac" else "wav"


def files_digest(spec: Any) -> str:
    """sha256 over the contents of every file a pipeline spec names (noise beds, impulse responses; a folder
    means its files): a bed edited in place makes new items, as an edited parameter does."""
    from pathlib import Path

    from augment.run.assets import sha256_of

    names: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, str) and len(value) < 4096:
            names.append(value)

    walk(spec)
    digest = hashlib.sha256()
    for name in names:
        path = Path(name)
        if not (path.is_file() or path.is_dir()):
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(f"{file.relative_to(path) if path.is_dir() else path.name}:{sha256_of(file)};".encode())
    return digest.hexdigest()


def content_key(spec: str, seed: int, source_object: str, copy: int, tag: str, label: str,
                tags: tuple[str, ...]) -> str:
    text = json.dumps([spec, seed, source_object, copy, tag, label, list(tags)], separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def augmented_id(recipe: str, tag: str, source_id: str, copy: int, ext: str, key: str) -> str:
    stem = source_id.rsplit(".", 1)[0] if source_id.lower().endswith("." + ext) else source_id
    return f"augmented/{recipe}/{tag}/{stem}-{copy}-{key}.{ext}"


def new_label_and_tags(recipe, rule, tag: str, source_label: str, source_tags) -> tuple[str, tuple[str, ...]]:
    """tags = source tags - remove_tags + target tag + add_tags (the recipe's and the target's own rules)."""
    tags = (set(source_tags) - set(rule.remove_tags)) | {tag} | set(rule.add_tags)
    label = recipe.set_label.get(tag) if isinstance(recipe.set_label, dict) else recipe.set_label
    return label or source_label, tuple(sorted(tags))


def make_plan(loaded, source) -> Plan:
    """The Plan for a loaded recipe on `source` (a DatasetView: the version, or media folder, the recipe reads).
    The content key names file assets by their canonical reference (augment.run.assets), not as spelled."""
    from augment.run.assets import canonical_spec, collect

    recipe = loaded.recipe
    manifest = source.manifest
    existing_ids = set(manifest["id"]) | reviewed_out(source)
    tasks, per_tag, wanted, existing = [], {}, set(), 0
    for tag, budget in loaded.budgets.items():
        rule = loaded.rule(tag)
        unknown = [c for c in rule.where if c not in WHERE_KEYS and c not in manifest.columns]
        if unknown:
            entry = (recipe.pipelines or {}).get(tag)
            own = unknown[0] in getattr(entry, "where", {})
            place = ("pipelines", tag, "where", unknown[0]) if own else ("sources", "where", unknown[0])
            from curate.strict_yaml import suggest

            raise BadInput(f"{loaded.at(*place)} {'.'.join(place)}: no such column in {source.ref}"
                           f"{suggest(unknown[0], [*WHERE_KEYS, *manifest.columns])} (columns: "
                           f"{', '.join(manifest.columns)})")
        sources = select_sources(manifest, rule.where)
        if sources.empty:
            raise BadInput(f"{loaded.path}: sources for {tag}: no real train item of {source.ref} matches "
                           f"where {rule.where or '{}'}; nothing to augment")
        compose = loaded.pipelines.get(tag) or loaded.pipelines["*"]
        kinds, wanted_media = sorted(set(sources["media"])), compose.pipeline_media()
        if wanted_media != "any" and kinds != [wanted_media]:
            raise BadInput(f"{loaded.path}: the pipeline for {tag} takes {wanted_media}, "
                           f"but its sources are {', '.join(kinds)}")
        pipeline = compose.to_dict()
        spec = json.dumps([canonical_spec(pipeline, collect({tag: pipeline})), files_digest(pipeline)], sort_keys=True)
        pairs = [(row, copy) for row in sources.itertuples(index=False) for copy in range(recipe.per_source)]
        if budget is not None and len(pairs) > budget:
            pairs = _stratified_subset(pairs, budget, recipe.seed, tag)
        planned = already = 0
        for row, copy in pairs:
            label, tags = new_label_and_tags(recipe, rule, tag, row.label, row.tags)
            key = content_key(spec, recipe.seed, row.object, copy, tag, label, tags)
            item = augmented_id(recipe.name, tag, row.id, copy, output_ext(row.media, row.ext), key)
            wanted.add(item)
            if item in existing_ids:
                already += 1
                continue
            tasks.append(Task(item, tag, row.id, copy, _object_location(source.dataset, row.object, row.ext),
                              row.media, (recipe.seed, stable_hash(row.id), copy, stable_hash(tag)), label, tags))
            planned += 1
        existing += already
        per_tag[tag] = TagPlan(len(sources), recipe.per_source, budget or 0, planned, already)
    previous = sorted(i for i, r in zip(manifest["id"], manifest["recipe"]) if r == recipe.name and i not in wanted)
    return Plan(tasks, per_tag, existing, previous, recipe.previous == "keep")


def _object_location(store, digest: str, ext: str) -> str:
    """Where the task finds its source: the object's path, or its URL on object storage (not fetched here: the
    plan reads nothing)."""
    from curate.storage import is_url

    if is_url(getattr(store, "location", "")):
        return store.object_url(digest, ext)
    return str(store.object_path(digest, ext))


def reviewed_out(view) -> set[str]:
    """Ids a reviewer rejected in the view's lineage (curate review apply): a re-run must not bring them back."""
    out: set[str] = set()
    dataset, name = getattr(view, "dataset", None), getattr(view, "name", None)
    names = dataset.versions() if hasattr(dataset, "versions") else []
    while name in names:
        info = dataset.load(name).info
        source = info.get("source") or {}
        if source.get("kind") == "review":
            out |= set(source.get("rejected_ids") or [])
        name = info.get("parent")
    return out


def candidate_manifest(source_manifest, plan: Plan, rows):
    """The source's rows, less the earlier items the plan replaces, plus the new rows (a DataFrame)."""
    import pandas as pd

    kept = source_manifest[~source_manifest["id"].isin(set(plan.dropped))]
    return pd.concat([kept, rows[list(source_manifest.columns)]], ignore_index=True)


def _stratified_subset(pairs: list, budget: int, seed: int, tag: str) -> list:
    """`budget` of the (source, copy) pairs with the labels in the sources' proportions (largest remainder); within
    a label, the pairs with the lowest stable hash of (seed, tag, source id, copy). A budget cut never skews the
    class priors the ambiguity guard protects, a smaller budget picks a subset of a larger one's items, and adding
    or removing one source changes the choice by that source alone."""
    by_label: dict[str, list] = {}
    for pair in pairs:
        by_label.setdefault(pair[0].label, []).append(pair)
    shares = {label: budget * len(group) / len(pairs) for label, group in by_label.items()}
    quota = {label: int(share) for label, share in shares.items()}
    for label in sorted(shares, key=lambda l: (-(shares[l] - quota[l]), l))[: budget - sum(quota.values())]:
        quota[label] += 1
    chosen = set()
    for label, group in by_label.items():
        ranked = sorted(group, key=lambda pair: stable_hash(f"{seed}\0{tag}\0{pair[0].id}\0{pair[1]}"))
        chosen |= {id(pair) for pair in ranked[: quota[label]]}
    return [pair for pair in pairs if id(pair) in chosen]
