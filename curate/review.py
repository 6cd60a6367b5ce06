"""A reviewer's decisions (downloaded from report.html as review.json) applied as the next version.

review.json: {"schema": "rubbersheet.review", "schema_version": 1, "version": "name@vNNNN", "fingerprint": "...",
              "decisions": [{"id", "decision": accept|reject|relabel, "label"?, "note"?}]}

Applying it drops rejected items, sets relabelled items' labels, and records each decision on its item (column
`review`: JSON with the decision, the previous label, the note and the review's sha256). The new version's
version.json carries the review's sha256 and counts as its source.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from curate.exceptions import BadInput

DECISIONS = ("accept", "reject", "relabel")
MAX_REVIEW_BYTES = 20_000_000   # a review of 100k items with notes is a few MB
MAX_TEXT = 4_000                # characters of a note or a label: a reviewer's remark, not a document


def read_review(path: str | Path) -> tuple[dict[str, Any], str]:
    """(review, sha256 of the file); every problem is one BadInput line naming the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: review file does not exist")
    if path.stat().st_size > MAX_REVIEW_BYTES:
        raise BadInput(f"{path}: {path.stat().st_size:,} bytes; a review file is at most {MAX_REVIEW_BYTES:,}")
    raw = path.read_bytes()

    def not_a_number(name: str):
        raise ValueError(f"{name} is not a JSON number")

    try:
        review = json.loads(raw, parse_constant=not_a_number)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not valid JSON ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise BadInput(f"{path}: nested too deeply to be a review file") from None
    if not isinstance(review, dict) or not isinstance(review.get("decisions"), list):
        raise BadInput(f"{path}: expected an object with a 'decisions' list (download it from report.html)")
    if not isinstance(review.get("fingerprint"), str) or not review["fingerprint"]:
        raise BadInput(f"{path}: fingerprint is missing")
    seen = set()
    for index, decision in enumerate(review["decisions"]):
        where = f"{path}: decisions[{index}]"
        if not isinstance(decision, dict) or not isinstance(decision.get("id"), str):
            raise BadInput(f"{where}: expected {{id, decision, label?, note?}}")
        if decision.get("decision") not in DECISIONS:
            raise BadInput(f"{where}.decision: {decision.get('decision')!r} is not one of {', '.join(DECISIONS)}")
        if decision["decision"] == "relabel" and not (isinstance(decision.get("label"), str) and decision["label"]):
            raise BadInput(f"{where}.label: a relabel needs the new label")
        for key in ("note", "label"):
            value = decision.get(key)
            if value is not None and not isinstance(value, str):
                raise BadInput(f"{where}.{key}: expected text, got {type(value).__name__}")
            if value is not None and len(value) > MAX_TEXT:
                raise BadInput(f"{where}.{key}: {len(value):,} characters; at most {MAX_TEXT:,}")
        if decision["id"] in seen:
            raise BadInput(f"{where}.id: {decision['id']!r} is decided twice")
        seen.add(decision["id"])
    return review, hashlib.sha256(raw).hexdigest()


def plan(version, review: dict[str, Any], allow_new_labels: bool = False, source: str = "review",
         check_fingerprint: bool = True) -> dict[str, Any]:
    """Check a review against a version and say what applying it would do (nothing is written)."""
    if check_fingerprint and review["fingerprint"] != version.info.get("fingerprint"):
        raise BadInput(f"{source}: fingerprint {review['fingerprint'][:12]}... does not match {version.ref} "
                       f"({str(version.info.get('fingerprint'))[:12]}...): the review was made on another version")
    frame = version.manifest.set_index("id")
    labels = set(frame["label"])
    for decision in review["decisions"]:
        if decision["id"] not in frame.index:
            raise BadInput(f"{source}: id {decision['id']!r} is not in {version.ref}")
        if decision["decision"] == "relabel" and decision["label"] not in labels and not allow_new_labels:
            raise BadInput(f"{source}: label {decision['label']!r} for {decision['id']!r} is not one of the dataset's "
                           "labels (pass --allow-new-labels to add it)")
    origin = {d["id"]: frame.at[d["id"], "origin"] for d in review["decisions"]}
    rejects = [d["id"] for d in review["decisions"] if d["decision"] == "reject"]
    relabels = [d for d in review["decisions"] if d["decision"] == "relabel" and d["label"] != frame.at[d["id"], "label"]]
    return {"counts": dict(Counter(d["decision"] for d in review["decisions"])),
            "reject_augmented": [i for i in rejects if origin[i] == "augmented"],
            "reject_real": [i for i in rejects if origin[i] == "real"],
            "relabel": [{"id": d["id"], "from": frame.at[d["id"], "label"], "to": d["label"]} for d in relabels],
            "new_labels": sorted({d["label"] for d in relabels} - labels)}


def base_version(version, target, onto_latest: bool, source: str):
    """The version the decisions are applied to: the reviewed one, which must be the latest of the dataset written
    to (a version made from an older one would drop what the newer ones added), or @latest with `onto_latest`."""
    if target is not None and target.path.resolve() != version.dataset.path.resolve():
        return version
    latest = version.dataset.latest()
    if version.name == latest:
        return version
    if onto_latest:
        return version.dataset.load(latest)
    names = version.dataset.versions()
    newer = ", ".join(names[names.index(version.name) + 1:])
    raise BadInput(f"{source}: the review was made on {version.ref}, but {version.dataset.path}@latest is {latest} "
                   f"(newer: {newer}); applying it there would drop what they added. Pass --onto-latest to apply "
                   f"the decisions to {latest}")


def applied_as(version, sha256: str):
    """The version of the reviewed dataset's lineage (from @latest back) that already applied this review, if any:
    re-running an apply that was interrupted after its commit must not fail or apply twice."""
    dataset = version.dataset
    names = dataset.versions()
    name = dataset.latest()
    while name in names:
        candidate = dataset.load(name)
        if (candidate.info.get("source") or {}).get("review_sha256") == sha256:
            return candidate
        name = candidate.info.get("parent")
    return None


def reviewed_manifest(version, review: dict[str, Any], sha256: str, changes: dict[str, Any]):
    """The version's manifest with rejected items removed, relabels applied and each decision recorded."""
    import pandas as pd

    frame = version.manifest.copy()
    decided = {d["id"]: d for d in review["decisions"]}
    rejected = set(changes["reject_augmented"]) | set(changes["reject_real"])
    previous = dict(zip(frame["id"], frame["label"]))
    frame = frame[~frame["id"].isin(rejected)].reset_index(drop=True)
    for d in decided.values():
        if d["decision"] == "relabel":
            frame.loc[frame["id"] == d["id"], "label"] = d["label"]
    records = []
    existing = frame["review"] if "review" in frame.columns else pd.Series([None] * len(frame))
    for item, old in zip(frame["id"], existing):
        d = decided.get(item)
        records.append(json.dumps({"decision": d["decision"], "previous_label": previous[item],
                                   "note": d.get("note"), "review_sha256": sha256}, sort_keys=True) if d else old)
    frame["review"] = records
    return frame


def apply_review(version, review: dict[str, Any], sha256: str, target=None, allow_new_labels: bool = False,
                 source: str = "review", onto_latest: bool = False, force: bool = False):
    """Gate and write the reviewed version (into `target`, a Dataset, default the version's own); returns
    (curate.publish.Outcome, plan). Nothing is written when the decisions change nothing."""
    from curate.checks.gate import run_gate
    from curate.publish import publish
    from curate.view import MemoryView

    base = base_version(version, target, onto_latest, source)
    if base is not version:  # the review must still be of the version it names, wherever it is applied
        plan(version, review, allow_new_labels, source)
    changes = plan(base, review, allow_new_labels, source, check_fingerprint=base is version)
    frame = reviewed_manifest(base, review, sha256, changes)
    dataset = target or base.dataset
    with dataset.lock():
        dataset.bring_objects(base)
        gate = run_gate(MemoryView(dataset, frame), base)
        return publish(dataset, frame, source=base, gate=gate, info=_record(version, base, sha256, changes),
                       label="review", force=force), changes


def _record(version, base, sha256: str, changes: dict[str, Any]) -> dict[str, Any]:
    return {"source": {"kind": "review", "review_sha256": sha256, "reviewed_version": version.ref,
                       "applied_to": base.ref, "counts": changes["counts"],
                       "rejected_real": len(changes["reject_real"]),
                       "rejected_augmented": len(changes["reject_augmented"]), "relabelled": len(changes["relabel"]),
                       "rejected_ids": changes["reject_augmented"] + changes["reject_real"]}}
