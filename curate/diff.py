"""What changed between two dataset versions: items added, removed and changed (by id), and count deltas."""
from __future__ import annotations

from typing import Any

from curate.manifest import jsonable


def diff_versions(a, b) -> dict[str, Any]:
    """Compare versions `a` (before) and `b` (after). Changed items list the columns that differ."""
    left = {r["id"]: r for r in a.manifest.to_dict("records")}
    right = {r["id"]: r for r in b.manifest.to_dict("records")}
    changed = {}
    for item in sorted(left.keys() & right.keys()):
        columns = sorted(set(left[item]) | set(right[item]))
        fields = [c for c in columns if jsonable(left[item].get(c)) != jsonable(right[item].get(c))]
        if fields:
            changed[item] = fields
    before, after = a.info.get("counts", {}), b.info.get("counts", {})
    deltas = {}
    for kind in ("label", "tag", "split", "origin"):
        keys = sorted(set(before.get(kind, {})) | set(after.get(kind, {})))
        rows = {k: (before.get(kind, {}).get(k, 0), after.get(kind, {}).get(k, 0)) for k in keys}
        deltas[kind] = {k: {"before": x, "after": y, "delta": y - x} for k, (x, y) in rows.items() if x != y}
    return {
        "a": a.ref,
        "b": b.ref,
        "same_fingerprint": a.info.get("fingerprint") == b.info.get("fingerprint"),
        "added": sorted(right.keys() - left.keys()),
        "removed": sorted(left.keys() - right.keys()),
        "changed": changed,
        "count_deltas": deltas,
    }
