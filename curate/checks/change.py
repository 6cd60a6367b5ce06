"""Change: what the new augmented items add, judged against their own sources and the real items.

Three harms that realism cannot tell from good augmentation (a harmless realistic recipe and a harmful one can
score alike there), each measured on the items this change adds (augmented, not in the source version):

  no-op copies     a new item byte-identical to its source, perceptually identical to it (audio: the difference
                   is more than `noop_db` dB below the source, same length; images: same size and no pixel
                   differs by more than `noop_pixel` levels of 255), or byte-identical to another new item. Such
                   items add weight to a class or tag, not information. More than `max_noop_share` of the new
                   items: an error; fewer: a warning.
  saturation       the share of saturated samples of an item (audio: |x| >= 0.999 at 16 kHz mono; images: pixels
                   within 2 levels of 0 or 255 in every channel). An item is saturated when its share exceeds the
                   largest share among the real items by more than `saturation_margin`. More than
                   `max_saturated_share` of the new items: an error (the recipe clips or blows out its output).
  class flooding   a class's share of the train items changing by more than a factor `max_prior_ratio` (up or
                   down) from the source to the candidate: an error. Confusable pairs keep their stricter ratio
                   guard (curate.checks.ambiguity).

Defaults (curate.checks.gate, section `change`): noop_db 50, noop_pixel 1, max_noop_share 0.05,
saturation_margin 0.02, max_saturated_share 0.05, max_prior_ratio 2.0. The bounds are where the planted-harm
benchmark (bench/gate.py) separates: its good recipes make no no-op copy, at most 1 in 80 items beyond the
saturation bound (a dark scratch: 2.8 % crushed pixels; a warning), and keep class priors (they sample sources in
label proportion), while its harmful ones clip 70-92 % of samples, crush 13 % of pixels, or move a prior 2.6-3.2x.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from curate.checks import Finding, train_mask

CHECK = "change"
SHARED = frozenset()   # memoised computations it reads (curate.checks.similarity.forget)


def _finding(severity: str, message: str, **fields) -> Finding:
    """Every finding here is about the items this change adds: new by construction."""
    return Finding(CHECK, severity, message, relative=True, **fields)


def new_items(candidate, source):
    """The candidate's augmented rows that the source version does not have."""
    frame = candidate.manifest
    known = set(source.manifest["id"]) if source is not None else set()
    return frame[(frame["origin"] == "augmented") & ~frame["id"].isin(known)]


def check(candidate, source, config) -> list[Finding]:
    new = new_items(candidate, source)
    findings = []
    if len(new):
        findings += _noop(candidate, new, config)
        findings += _saturation(candidate, new, config)
    findings += _flooding(candidate, source, config)
    if not findings:
        findings.append(_finding("info", f"the {len(new)} new item(s) all differ from their sources; no saturation; "
                                 "no class prior moved beyond the bound", figures={"new": len(new)}))
    return findings


def _noop(candidate, new, config) -> list[Finding]:
    frame = candidate.manifest.set_index("id")
    copies = []
    digests = Counter(new["object"])
    for item, digest, source_id in zip(new["id"], new["object"], new["source_id"]):
        if digests[digest] > 1:
            copies.append({"id": item, "source_id": source_id, "why": "byte-identical to another new item"})
        elif source_id in frame.index and frame.at[source_id, "object"] == digest:
            copies.append({"id": item, "source_id": source_id, "why": "byte-identical to its source"})
        elif source_id in frame.index and _same(candidate, item, source_id, frame.at[source_id, "media"], config):
            copies.append({"id": item, "source_id": source_id, "why": "perceptually identical to its source"})
    if not copies:
        return []
    share = len(copies) / len(new)
    severity = "error" if share > config.max_noop_share else "warning"
    kinds = Counter(c["why"] for c in copies)
    return [_finding(severity, f"{len(copies)} of {len(new)} new item(s) ({share:.0%}) are copies that change "
                     f"nothing ({', '.join(f'{n} {why}' for why, n in kinds.most_common())}; bound "
                     f"{config.max_noop_share:.0%}): they add weight, not information",
                     items=copies[: config.max_items], key="change.noop",
                     subjects=frozenset(c["id"] for c in copies), measure=share,
                     figures={"noop": len(copies), "new": len(new), "share": share, "bound": config.max_noop_share})]


def _same(view, item: str, source_id: str, media: str, config) -> bool:
    from curate.media import read_audio, read_image

    try:
        if media == "audio":
            a, rate_a = read_audio(view.media_path(item))
            b, rate_b = read_audio(view.media_path(source_id))
            if rate_a != rate_b or a.shape != b.shape:
                return False
            signal = float(np.mean(np.square(b, dtype=np.float64)))
            residual = float(np.mean(np.square(a.astype(np.float64) - b)))
            return signal > 0 and residual <= signal * 10 ** (-config.noop_db / 10)
        a, b = read_image(view.media_path(item)), read_image(view.media_path(source_id))
        return a.shape == b.shape and int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) <= config.noop_pixel
    except (ValueError, OSError):  # unreadable media is the consistency check's business
        return False


def _saturation(candidate, new, config) -> list[Finding]:
    from curate.features import saturation

    frame = candidate.manifest
    real = frame[frame["origin"] == "real"]
    if real.empty:
        return []
    shares = saturation(candidate, list(real["id"]) + list(new["id"]))
    findings = []
    for media in sorted(set(new["media"])):
        mine = [i for i, m in zip(new["id"], new["media"]) if m == media]
        reference = [shares[i] for i, m in zip(real["id"], real["media"]) if m == media and np.isfinite(shares[i])]
        if not reference or not mine:
            continue
        ceiling = max(reference) + config.saturation_margin
        over = [{"id": i, "saturated": round(shares[i], 4)} for i in mine if shares[i] > ceiling]
        if not over:
            continue
        share = len(over) / len(mine)
        severity = "error" if share > config.max_saturated_share else "warning"
        what = "clipped samples" if media == "audio" else "blown-out or crushed pixels"
        findings.append(_finding(
            severity, f"{len(over)} of {len(mine)} new {media} item(s) ({share:.0%}) have more {what} than any real "
            f"item (real maximum {max(reference):.2%} of samples; worst new item "
            f"{max(o['saturated'] for o in over):.2%}; bound {config.max_saturated_share:.0%} of the new items)",
            items=sorted(over, key=lambda o: -o["saturated"])[: config.max_items], key=f"change.saturation.{media}",
            subjects=frozenset(o["id"] for o in over), measure=share,
            figures={"saturated": len(over), "new": len(mine), "real_max": max(reference)}))
    return findings


def _flooding(candidate, source, config) -> list[Finding]:
    if source is None:
        return []

    def priors(view) -> dict[str, float]:
        labels = view.manifest["label"][train_mask(view.manifest)]
        counts = Counter(labels)
        total = sum(counts.values())
        return {label: n / total for label, n in counts.items()} if total else {}

    before, after = priors(source), priors(candidate)
    moved, appeared = [], []
    for label in sorted(set(before) | set(after)):
        b, a = before.get(label, 0.0), after.get(label, 0.0)
        if b == 0.0 or a == 0.0:
            appeared.append({"label": label, "before": round(b, 4), "after": round(a, 4)})
        elif max(a / b, b / a) > config.max_prior_ratio:
            moved.append({"label": label, "before": round(b, 4), "after": round(a, 4),
                          "ratio": round(max(a / b, b / a), 3)})
    findings = []
    if moved:
        worst = max(moved, key=lambda m: m["ratio"])
        listing = ", ".join(f"{m['label']!r} {m['before']:.1%} -> {m['after']:.1%}" for m in moved[:5])
        findings.append(_finding(
            "error", f"the change floods the train split: {len(moved)} class prior(s) move by more than a factor "
            f"{config.max_prior_ratio:g} ({listing}); a model trained on it learns the new priors",
            items=moved[: config.max_items], key="change.prior", subjects=frozenset(m["label"] for m in moved),
            measure=worst["ratio"], figures={"classes": len(moved), "worst": worst}))
    if appeared:  # a class made or emptied on purpose (set_label) is worth a look, not a refusal
        listing = ", ".join(f"{m['label']!r} {m['before']:.1%} -> {m['after']:.1%}" for m in appeared[:5])
        findings.append(_finding("warning", f"{len(appeared)} class(es) appear in or vanish from the train split "
                                 f"({listing})", items=appeared[: config.max_items], key="change.classes",
                                 subjects=frozenset(m["label"] for m in appeared)))
    return findings
