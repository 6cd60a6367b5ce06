"""Curation reports: report.json (the source of truth), report.md (CI logs, pull requests) and report.html (one
self-contained page a person reviews: verdict first, counts, findings, evaluation, realism plots, and the media
itself: players and spectrograms for audio, source | augmented | difference grids for images).

Each finding in report.json carries its "evidence" (curate.report.evidence): the flagged items as cards with the
reason, pairs side by side, real examples of both labels of a confusable pair; report.html shows them with their
media (curate.report.media) within a size budget (curate.report.html.render_html). The augmented items shown
next to their sources are a seeded, stratified sample (`representative`).

    report = build_report(view, source, gate, info)      # JSON-safe dict, schema rubbersheet.report v1
    write_report(folder, report, view, source)           # report.json, report.md, report.html
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curate.checks import GateResult

SCHEMA = "rubbersheet.report"
SCHEMA_VERSION = 1
SAMPLES = 8          # augmented items shown with their source (more when more target tag x label pairs exist)
MAX_SAMPLES = 24
METRIC_VALUES = 400  # values per metric kept for the realism plots


def _flagged_ids(findings: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    for finding in findings:
        if finding["severity"] == "info" or finding.get("status") == "inherited":
            continue
        for item in finding.get("items", []):
            for key in ("id", "a", "b"):
                if isinstance(item, dict) and isinstance(item.get(key), str):
                    ids.append(item[key])
            if isinstance(item, list):
                ids += [i["id"] for i in item if isinstance(i, dict) and "id" in i]
    return list(dict.fromkeys(ids))


def branch(transform: Any) -> str:
    """The path an augmented item took through its pipeline: the steps that ran, when its transform record shows a
    choice (OneOf and SomeOf record the transforms they did not choose as applied=false, reason "not chosen");
    '' for a pipeline without a choice. `transform` is the record or its JSON text."""
    record = json.loads(transform) if isinstance(transform, str) else transform
    if not isinstance(record, list) or not any(isinstance(s, dict) and s.get("reason") == "not chosen"
                                               for s in record):
        return ""
    return " + ".join(str(s.get("transform")) for s in record if isinstance(s, dict) and s.get("applied"))


def representative(items, size: int, seed: int):
    """A seeded sample of `items` (manifest rows of new augmented items) that represents the change.

    Strata, coarse to fine, taken round-robin:
      1. the target tag (the tag the recipe aimed at, from the item's id: augmented/<recipe>/<tag>/...);
      2. target tag x label;
      3. target tag x label x source group (speaker, font, photo: the leakage group);
      4. target tag x branch: the path through a pipeline with a OneOf/SomeOf step (see `branch`), so that every
         branch of every target's pipeline is seen; level 3 stops early enough to leave one place for each
         branch not seen yet, and every level prefers an item of an unseen branch;
      5. target tag x label x group x branch; then the rest.
    Inside a stratum the item with the lowest sha256 of (seed, id) is taken, so the sample is stable for a seed
    and independent of the manifest's order. The sample grows past `size` (up to MAX_SAMPLES) when more target
    tag x label pairs, or target tag x branch paths, exist, so every one is seen. (The HTML may show fewer: it
    keeps the page under its size budget.)"""
    if items.empty:
        return items
    ids = list(items["id"])
    rank = {i: hashlib.sha256(f"{seed}\0{i}".encode()).hexdigest() for i in ids}
    aimed = [i.split("/")[2] if i.startswith("augmented/") and i.count("/") >= 3 else ",".join(t)
             for i, t in zip(ids, items["tags"])]
    transforms = items["transform"] if "transform" in items.columns else [None] * len(ids)
    keys = list(zip(aimed, items["label"], items["group"].fillna(""), [branch(t) for t in transforms]))
    order = sorted(range(len(ids)), key=lambda n: rank[ids[n]])
    pairs = {k[:2] for k in keys}
    paths = {(k[0], k[3]) for k in keys}
    size = min(max(size, len(pairs), len(paths)), MAX_SAMPLES)
    picked: list[int] = []
    chosen: set[int] = set()

    def path(n: int) -> tuple[str, str]:
        return keys[n][0], keys[n][3]

    def take(key, reserve: bool = False) -> None:
        seen = {key(n) for n in picked}
        shown = {path(n) for n in picked}
        for n in sorted(order, key=lambda n: path(n) in shown):  # stable: unseen paths first, then by rank
            if len(picked) >= size - (len(paths - shown) if reserve else 0):
                break
            if n not in chosen and key(n) not in seen:
                picked.append(n)
                chosen.add(n)
                seen.add(key(n))
                shown.add(path(n))

    take(lambda n: keys[n][:1])
    take(lambda n: keys[n][:2])
    take(lambda n: keys[n][:3], reserve=True)
    take(path)
    take(lambda n: keys[n])
    take(lambda n: n)  # fill with the rest, by rank
    return items.iloc[picked]


def build_report(view, source, gate: "GateResult | None", info: dict[str, Any]) -> dict[str, Any]:
    """Everything the HTML and Markdown show, as JSON. `view` is the (staged or committed) version, `source` the
    version the change was made from (the gate compared with it), `info` its version.json content."""
    from curate import manifest as mf
    from curate.diff import diff_versions
    from curate.report.evidence import evidence

    frame = view.manifest
    counts = info.get("counts") or mf.counts(frame)
    diff = None
    if source is not None:
        full = diff_versions(source, view)
        diff = {"parent": source.ref, "added": len(full["added"]), "removed": len(full["removed"]),
                "changed": len(full["changed"]), "count_deltas": full["count_deltas"]}
    known = set(source.manifest["id"]) if source is not None else set()
    new_augmented = frame[(frame["origin"] == "augmented") & ~frame["id"].isin(known)]
    chosen = representative(new_augmented, SAMPLES, int(info.get("seed") or 0))
    samples = [{"id": r["id"], "source_id": r["source_id"], "label": r["label"], "tags": list(r["tags"]),
                "media": r["media"], "transform": json.loads(r["transform"]) if r["transform"] else None,
                "branch": branch(r["transform"])}
               for r in chosen.to_dict("records")]
    targets = list((info.get("source") or {}).get("targets") or {})
    gate_part = gate.to_dict() if gate is not None else {}
    findings = gate_part.get("findings", [])
    seed = int(info.get("seed") or 0)
    for finding, typed in zip(findings, gate.findings if gate is not None else ()):
        shown = evidence(finding, view, source, seed, found=len(typed.subjects) or None)
        if shown is not None:
            finding["evidence"] = shown
    verdict = {"passed": gate_part.get("passed", True), "forced": bool((info.get("gate") or {}).get("forced")),
               "counts": gate_part.get("counts", {}), "block_on": gate_part.get("block_on", []),
               "reasons": [f"{f['check']}: {f['message']}" for f in findings if f.get("blocking")],
               "warnings": [f"{f['check']}: {f['message']}" for f in findings
                            if f.get("severity") == "warning" and f.get("status") != "inherited" and not f.get("blocking")],
               "status": gate_part.get("status", [])}
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "dataset": info.get("name") or view.dataset.path.name, "version": info.get("version") or view.name,
        "status": info.get("status", "committed"),
        "lineage": {k: info.get(k) for k in ("parent", "created", "fingerprint", "seed", "command",
                                             "package_version")} | {"recipe": (info.get("recipe") or {}).get("name"),
                                                                    "recipe_sha256": (info.get("recipe") or {}).get("sha256"),
                                                                    "source": source.ref if source is not None else None},
        "verdict": verdict, "counts": counts, "diff": diff, "plan": (info.get("source") or {}).get("plan"),
        "findings": [f for f in findings if f.get("status") != "inherited"],
        "known_issues": [f for f in findings if f.get("status") == "inherited"],
        "evaluation": info.get("evaluation"), "targets": targets,
        "realism": _realism_values(view, new_augmented, targets), "samples": samples,
        "flagged": _flagged_ids(findings), "new_augmented": int(len(new_augmented)),
    }


def _realism_values(view, new_augmented, targets: list[str]) -> dict[str, Any]:
    """{target: {metric: {"real": [...], "augmented": [...]}}} for the realism plots (sampled)."""
    if new_augmented.empty:
        return {}
    from curate.features import metrics

    frame = view.manifest
    out: dict[str, Any] = {}
    groups = targets or sorted({t for tags in new_augmented["tags"] for t in tags})[:3]
    for target in groups:
        aug_ids = [i for i, t in zip(new_augmented["id"], new_augmented["tags"]) if target in t][:METRIC_VALUES]
        real_ids = [i for i, o, t in zip(frame["id"], frame["origin"], frame["tags"]) if o == "real" and target in t]
        if len(real_ids) < 2:
            real_ids = list(frame["id"][frame["origin"] == "real"])
        real_ids = real_ids[:METRIC_VALUES]
        if not aug_ids or not real_ids:
            continue
        table = metrics(view, ids=aug_ids + real_ids)
        out[target] = {m: {"real": [float(v) for v in table.loc[real_ids, m]],
                           "augmented": [float(v) for v in table.loc[aug_ids, m]]}
                       for m in table.columns if table[m].notna().all()}
    return out


def write_report(folder: str | Path, report: dict[str, Any], view, parent) -> dict[str, Path]:
    """Write report.json, report.md and report.html into `folder` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = report_files(report, view, parent)
    paths = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths[name] = folder / name
    return paths


def report_files(report: dict[str, Any], view, parent) -> dict[str, bytes]:
    from curate.report.html import render_html
    from curate.report.markdown import render_markdown

    return {"report.json": (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
            "report.md": render_markdown(report).encode("utf-8"),
            "report.html": render_html(report, view, parent).encode("utf-8")}
