"""Planted-harm benchmark for the curation gate: does it refuse harmful changes and pass good ones?

    python bench/gate.py [--cases SUBSTRING] [--list] [--json PATH] [--keep DIR]

Every case runs in a fresh temporary folder holding a copy of sample_media/ (and, where a case needs it, a
generated data set), exactly as a user would run it: `augment run recipe.yaml` with the default gate config and
never --force (a recipe case), or `curate import FOLDER --to DATASET` then `curate check DATASET` (a leakage case:
derived copies imported as real items, where no recipe is involved). Exit 0 = passed (a version was written or the
check passed), 1 = refused by the gate, 2 = bad input, which is an ERROR of the case and counts as neither.
`--workers 1` is passed to `augment run` to keep the load low; the gate and the fingerprint do not depend on it.

Cases (recipes in bench/gate_cases/, plus recipes/ocr_balanced, inspection_defects and ocr_unbalanced verbatim)
    good          speech cafe noise 0-10 dB from clean sources; speech +-3 dB gain; OCR balanced degradation;
                  inspection defects; mild geometry (rotate +-3, 1 px shift) on OCR, balanced; mild geometry on the
                  generated digits; the two leakage folders without planted copies (controls)
    wrong_label   (a) copies of nine classes all relabelled to one class that is in no confusable pair (speech:
                  "six"; digits: "1"; the pairs are those of the ambiguity check's INFO line on the source)
    distortion    (b) speech at -25..-20 dB SNR; OCR glyphs and inspection patches at gamma 8-10 plus noise of
                  std 0.5-0.8 of the grey range (balanced over the classes)
    no_op         (c) a 0 dB gain (speech) or a transform with p=0 (digits), 10 copies per source, one class
    saturation    (d) speech +30..+40 dB with `on_clip: allow`
    prior_shift   (e) recipes/ocr_unbalanced.yaml (the I/1/l pairs) and a flood of the non-confusable "six"
    leakage       (f) train items that are derived copies of dev items (speech: cafe noise at 0-15 dB, gain,
                  16k->8k->16k resampling, an Ogg Vorbis round trip; digits: rotation up to 5 degrees, a 1 px
                  shift, brightness), imported as real items with their own groups and checked with `curate check`

The generated data set ("digits") is 300 28 x 28 grey images of digit-like strokes drawn with PIL, 10 classes,
train/dev only (no test split), written with its labels.csv into the work folder.

Reading the output
    one line per case: family, case, expected, outcome, seconds, and the first blocking finding (a new ERROR line)
    when refused, the first two new warnings when passed (the gate line when there are none), or the last output
    line of an exit 2. --json keeps every ERROR and WARNING line and the whole output of each case.
    Then the confusion matrix, the share of harmful cases refused and the number of good ones blocked, against the
    target "0 good blocked, >= 90 % harmful refused" (an errored case counts as not refused / not passed).
    Derived-copy detection: for each leakage folder, `curate check --json` is run a second time with only
    `max_items` raised (it caps how many pairs a finding lists; it changes no decision) and every pair of items a
    finding names is sorted into: a planted (copy, its dev original) pair (recall, per kind of copy), or a false
    match: two distinct real items, a copy and an unrelated item, or a copy and a sibling of its original (an item
    of the original's group, e.g. the same utterance in another noise condition: leaked content all the same).
Everything is deterministic: fixed recipe seeds, and the generated data draws only from numpy.random.default_rng.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CASE_TIMEOUT_S = 600
DIGITS_SEED, LEAK_SEED = 2024, 2025
DIGITS_PER_CLASS, DIGITS_DEV_PER_CLASS = 30, 9
PLANTED_PER_KIND = 10
LISTING_CONFIG = "max_items: 100000\n"   # lists every pair a finding has; decides nothing differently


@dataclass(frozen=True)
class Case:
    family: str
    name: str
    expected: str                 # good | harmful
    recipe: str = ""              # recipe file relative to the repository root (a recipe case)
    digits: bool = False          # the recipe reads the generated digits set
    leak: str = ""                # speech | digits: an import case on a leakage folder
    planted: bool = True          # leakage folders: with the derived copies (harmful) or without (control)


CASES = [
    Case("good", "speech_good_cafe_noise", "good", "bench/gate_cases/speech_good_cafe_noise.yaml"),
    Case("good", "speech_good_gain", "good", "bench/gate_cases/speech_good_gain.yaml"),
    Case("good", "ocr_balanced", "good", "recipes/ocr_balanced.yaml"),
    Case("good", "inspection_defects", "good", "recipes/inspection_defects.yaml"),
    Case("good", "ocr_good_geometry", "good", "bench/gate_cases/ocr_good_geometry.yaml"),
    Case("good", "digits_good", "good", "bench/gate_cases/digits_good.yaml", digits=True),
    Case("leakage", "leak_control_speech", "good", leak="speech", planted=False),
    Case("leakage", "leak_control_digits", "good", leak="digits", planted=False),
    Case("wrong_label", "speech_wrong_labels", "harmful", "bench/gate_cases/speech_wrong_labels.yaml"),
    Case("wrong_label", "digits_wrong_labels", "harmful", "bench/gate_cases/digits_wrong_labels.yaml", digits=True),
    Case("distortion", "speech_distortion_snr", "harmful", "bench/gate_cases/speech_distortion_snr.yaml"),
    Case("distortion", "ocr_distortion", "harmful", "bench/gate_cases/ocr_distortion.yaml"),
    Case("distortion", "inspection_distortion", "harmful", "bench/gate_cases/inspection_distortion.yaml"),
    Case("no_op", "speech_noop_gain0", "harmful", "bench/gate_cases/speech_noop_gain0.yaml"),
    Case("no_op", "digits_noop", "harmful", "bench/gate_cases/digits_noop.yaml", digits=True),
    Case("saturation", "speech_saturation", "harmful", "bench/gate_cases/speech_saturation.yaml"),
    Case("prior_shift", "ocr_unbalanced", "harmful", "recipes/ocr_unbalanced.yaml"),
    Case("prior_shift", "speech_flood_six", "harmful", "bench/gate_cases/speech_flood_six.yaml"),
    Case("leakage", "leak_speech", "harmful", leak="speech"),
    Case("leakage", "leak_digits", "harmful", leak="digits"),
]


@dataclass
class Result:
    family: str
    name: str
    expected: str
    outcome: str = "error"        # passed | refused | error
    seconds: float = 0.0
    exit_codes: list = field(default_factory=list)
    blocking: list = field(default_factory=list)   # new ERROR lines
    errors: list = field(default_factory=list)     # every ERROR line, inherited ones included
    warnings: list = field(default_factory=list)   # new WARNING lines
    note: str = ""                # the case's one-line summary
    output: str = ""
    detection: dict = field(default_factory=dict)


# -- generated digits --------------------------------------------------------------------------------------------

def _arc(cx, cy, rx, ry, start, stop, n):
    angles = np.radians(np.linspace(start, stop, n))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in angles]


# Strokes in a unit box (x right, y down); jittered per item so no two drawings are the same.
STROKES = {
    "0": [_arc(0.5, 0.5, 0.28, 0.4, 0, 360, 24)],
    "1": [[(0.32, 0.25), (0.52, 0.1), (0.52, 0.9)]],
    "2": [_arc(0.5, 0.32, 0.26, 0.22, 180, 390, 12) + [(0.22, 0.9), (0.8, 0.9)]],
    "3": [_arc(0.48, 0.3, 0.24, 0.2, 200, 450, 12) + _arc(0.48, 0.7, 0.27, 0.2, 270, 520, 12)],
    "4": [[(0.66, 0.9), (0.66, 0.1), (0.2, 0.64), (0.82, 0.64)]],
    "5": [[(0.76, 0.1), (0.32, 0.1), (0.29, 0.46)] + _arc(0.48, 0.66, 0.27, 0.24, 225, 500, 14)],
    "6": [_arc(0.52, 0.45, 0.3, 0.35, 290, 160, 10) + _arc(0.5, 0.68, 0.25, 0.22, 180, 540, 18)],
    "7": [[(0.2, 0.1), (0.8, 0.1), (0.42, 0.9)]],
    "8": [_arc(0.5, 0.3, 0.21, 0.19, 0, 360, 18), _arc(0.5, 0.7, 0.26, 0.21, 0, 360, 18)],
    "9": [_arc(0.5, 0.32, 0.25, 0.22, 0, 360, 18), [(0.75, 0.32), (0.7, 0.6), (0.55, 0.9)]],
}


def draw_digit(digit: str, rng: np.random.Generator, side: int = 28, scale: int = 4) -> np.ndarray:
    """A white digit on black, drawn 4x larger and downsampled (anti-aliased strokes), with sensor noise."""
    from PIL import Image, ImageDraw

    big = side * scale
    angle, zoom, slant = np.radians(rng.uniform(-12, 12)), rng.uniform(0.75, 0.95), rng.uniform(-0.2, 0.2)
    shift = rng.uniform(-0.06, 0.06, 2)
    width = round(rng.uniform(2.0, 3.4) * scale)
    image = Image.new("L", (big, big), 0)
    pen = ImageDraw.Draw(image)
    for stroke in STROKES[digit]:
        points = np.asarray(stroke) + rng.normal(0, 0.025, (len(stroke), 2))
        x, y = points[:, 0] - 0.5 - slant * (points[:, 1] - 0.5), points[:, 1] - 0.5
        xr, yr = np.cos(angle) * x - np.sin(angle) * y, np.sin(angle) * x + np.cos(angle) * y
        px, py = (0.5 + shift[0] + zoom * xr) * big, (0.5 + shift[1] + zoom * yr) * big
        pen.line(list(zip(px.tolist(), py.tolist())), fill=255, width=width, joint="curve")
    small = np.asarray(image.resize((side, side), Image.LANCZOS), dtype=np.float32)
    small = small * rng.uniform(0.8, 1.0) + rng.normal(0, 6, small.shape)
    return np.clip(np.round(small), 0, 255).astype(np.uint8)


def write_digits(folder: Path) -> list[dict]:
    """The digits set (train/dev only, stratified by class) as PNGs + labels.csv; returns its rows."""
    from PIL import Image

    rng = np.random.default_rng(DIGITS_SEED)
    rows = []
    for digit in sorted(STROKES):
        (folder / digit).mkdir(parents=True, exist_ok=True)
        for k in range(DIGITS_PER_CLASS):
            path = f"{digit}/{digit}_{k:02d}.png"
            Image.fromarray(draw_digit(digit, rng)).save(folder / path)
            split = "dev" if k < DIGITS_DEV_PER_CLASS else "train"
            rows.append({"path": path, "label": digit, "tags": "drawn", "split": split, "group": ""})
    write_labels(folder, rows)
    return rows


def write_labels(folder: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(c for row in rows for c in row))
    with (folder / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


# -- leakage folders: derived copies of dev items in train ------------------------------------------------------

def pick_dev(rows: list[dict], kinds: tuple[str, ...], rng) -> dict[str, list[dict]]:
    """PLANTED_PER_KIND distinct dev rows per kind of copy (no dev item is copied twice)."""
    dev = [r for r in rows if r["split"] == "dev"]
    chosen = rng.choice(len(dev), size=PLANTED_PER_KIND * len(kinds), replace=False)
    return {kind: [dev[i] for i in chosen[n * PLANTED_PER_KIND:(n + 1) * PLANTED_PER_KIND]]
            for n, kind in enumerate(kinds)}


def copy_row(original: dict, path: str) -> dict:
    """A planted copy's row: same label and tags, in train, in its own group (nobody recorded where it came
    from); the metadata columns are kept, only the noise fields are cleared."""
    return {**original, "path": path, "split": "train", "group": "", "snr_db": "", "noise_file": ""} \
        if "snr_db" in original else {**original, "path": path, "split": "train", "group": ""}


def write_speech_leak(folder: Path, planted: bool) -> list[dict]:
    """Sample speech (its own train/dev/test split) plus, when planted, cafe-noise, gain, resampled and Ogg Vorbis
    round-trip copies."""
    shutil.copytree(ROOT / "sample_media" / "speech", folder, ignore=shutil.ignore_patterns("cache"))
    with (folder / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    records = []
    if planted:
        (folder / "planted").mkdir()
        rng = np.random.default_rng(LEAK_SEED)
        for kind, originals in pick_dev(rows, ("noise", "gain", "resample", "codec"), rng).items():
            for n, original in enumerate(originals):
                path = f"planted/{kind}_{n:02d}.wav"
                param = derive_audio(folder / original["path"], folder / path, kind, rng)
                rows.append(copy_row(original, path))
                records.append({"copy": path, "original": original["path"], "kind": kind, "param": param})
    write_labels(folder, rows)
    return records


def derive_audio(src: Path, dst: Path, kind: str, rng) -> str:
    import soundfile as sf

    audio, rate = sf.read(src, dtype="float32")
    if kind == "noise":
        from augment.audio import AddBackgroundNoise

        snr = float(rng.uniform(0, 15))
        noise = AddBackgroundNoise(str(ROOT / "sample_media" / "noise" / "cafe"), snr_db=(snr, snr))
        out, _ = noise.apply(audio, sample_rate=rate, rng=rng)
        param = f"snr {snr:.1f} dB"
    elif kind == "gain":
        peak = float(np.abs(audio).max()) or 1.0
        gain = float(rng.choice([-1, 1]) * rng.uniform(3, 9))
        gain = min(gain, 20 * np.log10(0.98 / peak))   # no clipping: a level change, nothing else
        out, param = audio * np.float32(10 ** (gain / 20)), f"gain {gain:+.1f} dB"
    elif kind == "codec":
        import io

        encoded = io.BytesIO()
        sf.write(encoded, audio, rate, format="OGG", subtype="VORBIS")
        encoded.seek(0)
        out, param = sf.read(encoded, dtype="float32")[0], "Ogg Vorbis round trip"
    else:
        from scipy.signal import resample_poly

        out, param = resample_poly(resample_poly(audio, 1, 2), 2, 1).astype(np.float32), f"{rate}->{rate // 2}->{rate}"
    sf.write(dst, np.clip(out, -1, 1), rate, subtype="PCM_16")
    return param


def write_digits_leak(folder: Path, planted: bool) -> list[dict]:
    """The digits set plus, when planted, rotated, 1 px shifted and brightness-changed copies of dev digits."""
    from PIL import Image

    rows = write_digits(folder)
    records = []
    if planted:
        (folder / "planted").mkdir()
        rng = np.random.default_rng(LEAK_SEED)
        for kind, originals in pick_dev(rows, ("rotate", "shift", "brightness"), rng).items():
            for n, original in enumerate(originals):
                path = f"planted/{kind}_{n:02d}.png"
                pixels = np.asarray(Image.open(folder / original["path"]))
                out, param = derive_image(pixels, kind, rng)
                Image.fromarray(out).save(folder / path)
                rows.append(copy_row(original, path))
                records.append({"copy": path, "original": original["path"], "kind": kind, "param": param})
        write_labels(folder, rows)
    return records


def derive_image(pixels: np.ndarray, kind: str, rng) -> tuple[np.ndarray, str]:
    from PIL import Image

    if kind == "rotate":
        angle = float(rng.choice([-1, 1]) * rng.uniform(2, 5))
        out = Image.fromarray(pixels).rotate(angle, resample=Image.BILINEAR, fillcolor=0)
        return np.asarray(out), f"rotate {angle:+.1f} deg"
    if kind == "shift":
        moves = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
        dy, dx = moves[int(rng.integers(len(moves)))]
        height, width = pixels.shape
        moved = np.pad(pixels, 1)[1 - dy:1 - dy + height, 1 - dx:1 - dx + width].copy()   # black enters the edge
        return moved, f"shift {dy:+d},{dx:+d} px"
    delta = int(rng.choice([-1, 1]) * rng.integers(15, 31))
    return np.clip(pixels.astype(np.int16) + delta, 0, 255).astype(np.uint8), f"brightness {delta:+d}"


# -- running a case ----------------------------------------------------------------------------------------------

def tool(name: str) -> str:
    """The console script of this interpreter's environment (the one the benchmark runs in)."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        sys.exit(f"bench/gate.py: `{name}` not found; install the package (pip install -e .)")
    return found


def run(command: list[str], work: Path) -> tuple[int, str]:
    """(exit code, stdout + stderr); a command past CASE_TIMEOUT_S counts as exit 2 (an error of the case)."""
    try:
        done = subprocess.run(command, check=False, cwd=work, capture_output=True, text=True,
                              timeout=CASE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return 2, f"{' '.join(command[1:])}: timed out after {CASE_TIMEOUT_S} s"
    return done.returncode, done.stdout + done.stderr


def prepare(case: Case, work: Path) -> list[dict]:
    """Fill the work folder; returns the planted copies (leakage folders) or []."""
    shutil.copytree(ROOT / "sample_media", work / "sample_media", ignore=shutil.ignore_patterns("cache"))
    if case.digits:
        write_digits(work / "digits")
    if case.recipe:
        shutil.copy(ROOT / case.recipe, work / "recipe.yaml")
        return []
    writer = write_speech_leak if case.leak == "speech" else write_digits_leak
    planted = writer(work / "leak_src", case.planted)
    (work / "list_all.yaml").write_text(LISTING_CONFIG)
    return planted


def run_case(case: Case, work: Path) -> Result:
    result = Result(case.family, case.name, case.expected)
    start = time.perf_counter()
    planted = prepare(case, work)
    if case.recipe:
        steps = [[tool("augment"), "run", "recipe.yaml", "--workers", "1"]]
    else:
        steps = [[tool("curate"), "import", "leak_src", "--to", "datasets/leak"],
                 [tool("curate"), "check", "datasets/leak", "--json-out", "verdict.json"]]
    outputs = []
    for command in steps:
        code, output = run(command, work)
        result.exit_codes.append(code)
        outputs.append(output)
        if code != 0:
            break
    result.output = "\n".join(outputs)
    verdict = result.exit_codes[-1]
    result.outcome = {0: "passed", 1: "refused"}.get(verdict, "error") if len(result.exit_codes) == len(steps) \
        else "error"
    read_findings(result)
    if case.leak and result.outcome != "error":
        result.detection = detect_copies(work, planted)
    result.seconds = time.perf_counter() - start
    return result


def read_findings(result: Result) -> None:
    lines = [line.strip() for line in result.output.splitlines()]
    result.errors = [line for line in lines if line.startswith("ERROR")]
    result.blocking = [line for line in result.errors if "(inherited)" not in line.split(":")[0]]
    result.warnings = [line for line in lines if line.startswith("WARNING") and "(inherited)" not in line.split(":")[0]]
    if result.outcome == "error":
        result.note = next((l for l in reversed(lines) if l), "no output")
    elif result.outcome == "refused":
        result.note = result.blocking[0] if result.blocking else "refused without a new ERROR line"
    else:
        result.note = " | ".join(result.warnings[:2]) or "no new warning; " + \
            (next((l for l in lines if l.startswith("gate ")), "") or "no gate line")


# -- derived-copy detection --------------------------------------------------------------------------------------

def detect_copies(work: Path, planted: list[dict]) -> dict:
    """Which pairs the check's findings name, against the planted (copy, dev original) pairs."""
    code, output = run([tool("curate"), "check", "datasets/leak", "--config", "list_all.yaml",
                        "--json-out", "pairs.json"], work)
    if code not in (0, 1):
        return {"error": output.strip().splitlines()[-1] if output.strip() else f"exit {code}"}
    named = named_pairs(json.loads((work / "pairs.json").read_text()))
    with (work / "leak_src" / "labels.csv").open(newline="") as f:
        group = {row["path"]: row.get("group") or row["path"] for row in csv.DictReader(f)}
    original_of = {p["copy"]: p["original"] for p in planted}
    found, false_matches = {}, []
    for (a, b), seen in sorted(named.items()):
        copy = a if a in original_of else b if b in original_of else None
        other = b if copy == a else a
        if copy is not None and original_of[copy] == other:
            found[copy] = seen
            continue
        # A copy can also match a sibling of its original (the same utterance in another noise condition, a
        # group-mate): still leaked content, so it is listed apart from a match with an unrelated item.
        kind = "real_real" if copy is None else \
            "copy_sibling" if group[other] == group[original_of[copy]] else "copy_unrelated"
        false_matches.append({"pair": [a, b], "kind": kind, "checks": sorted(seen["checks"]), "score": seen["score"]})
    per_kind = {}
    for p in planted:
        entry = per_kind.setdefault(p["kind"], {"planted": 0, "found": 0, "warning_only": 0, "scores": [],
                                                "named": [], "missed": []})
        entry["planted"] += 1
        if p["copy"] in found:
            entry["found"] += 1
            entry["warning_only"] += all("(warning)" in c for c in found[p["copy"]]["checks"])
            entry["scores"].append(found[p["copy"]]["score"])
            entry["named"].append(f"{p['copy']} ({p['param']})")
        else:
            entry["missed"].append(f"{p['copy']} ({p['param']})")
    return {"planted": len(planted), "found": len(found), "per_kind": per_kind, "false_matches": false_matches,
            "verdict_exit": code}


def named_pairs(gate: dict) -> dict[tuple[str, str], dict]:
    """{(a, b): {"checks", "score"}} for every pair of items a finding lists: near-duplicate pairs ({a, b, score})
    and the items of an identical-input group (every pair in it, score 0)."""
    pairs: dict[tuple[str, str], dict] = {}
    for finding in gate["findings"]:
        for item in finding.get("items") or []:
            if isinstance(item, dict) and "a" in item and "b" in item:
                members, score = [item["a"], item["b"]], item.get("score")
            elif isinstance(item, list) and all(isinstance(x, dict) and "id" in x for x in item):
                members, score = [x["id"] for x in item], 0.0
            else:
                continue
            for n, a in enumerate(members):
                for b in members[n + 1:]:
                    entry = pairs.setdefault(tuple(sorted((a, b))), {"checks": set(), "score": score})
                    entry["checks"].add(finding["check"] + ("" if finding["severity"] == "error"
                                                            else f" ({finding['severity']})"))
                    if score is not None and (entry["score"] is None or score < entry["score"]):
                        entry["score"] = score
    return pairs


# -- report --------------------------------------------------------------------------------------------------------

def print_case(result: Result) -> None:
    print(f"{result.family:12s} {result.name:24s} {result.expected:8s} {result.outcome:8s} {result.seconds:6.1f}s  "
          f"{result.note}", flush=True)


def print_summary(results: list[Result]) -> None:
    def count(expected: str, outcome: str) -> int:
        return sum(r.expected == expected and r.outcome == outcome for r in results)

    good = [r for r in results if r.expected == "good"]
    harmful = [r for r in results if r.expected == "harmful"]
    print("\nconfusion matrix (rows: what the case is; columns: what the gate did)")
    print(f"{'':10s} {'passed':>8s} {'refused':>8s} {'error':>8s}")
    for expected in ("good", "harmful"):
        print(f"{expected:10s} {count(expected, 'passed'):8d} {count(expected, 'refused'):8d} "
              f"{count(expected, 'error'):8d}")
    refused = count("harmful", "refused")
    blocked = count("good", "refused")
    share = refused / len(harmful) if harmful else float("nan")
    met = blocked == 0 and share >= 0.9 and not any(r.outcome == "error" for r in results)
    print(f"\nharmful refused: {refused} of {len(harmful)} ({share:.0%}); good blocked: {blocked} of {len(good)}")
    print(f"target: 0 good blocked, >= 90 % harmful refused -> {'MET' if met else 'MISSED'}")
    missed = [r.name for r in harmful if r.outcome != "refused"]
    if missed:
        print(f"harmful not refused: {', '.join(missed)}")
    if blocked:
        print(f"good blocked: {', '.join(r.name for r in good if r.outcome == 'refused')}")


def print_detection(results: list[Result]) -> None:
    shown = [r for r in results if r.detection]
    if not shown:
        return
    print("\nderived-copy detection (pairs named by the findings of `curate check --json`, every pair listed; score:"
          "\nnear-duplicates and image copies: distance / typical (near-duplicate <= 0.25, image copy <= 0.4);"
          "\naudio copies: waveform correlation (copy >= 0.97; a possible copy, a warning, >= 0.5))")
    for r in shown:
        d = r.detection
        if "error" in d:
            print(f"  {r.name}: could not read the pairs: {d['error']}")
            continue
        kinds = ", ".join(f"{k} {v['found']}/{v['planted']}" + (f" ({v['warning_only']} as a warning only)"
                                                                 if v["warning_only"] else "")
                          for k, v in d["per_kind"].items())
        recall = f"planted pairs named {d['found']}/{d['planted']} ({kinds})" if d["planted"] else "no planted copies"
        tally = {k: sum(m["kind"] == k for m in d["false_matches"]) for k in ("real_real", "copy_unrelated",
                                                                                "copy_sibling")}
        print(f"  {r.name:20s} {recall}\n  {'':20s} false matches: distinct real items {tally['real_real']}, "
              f"copy ~ unrelated item {tally['copy_unrelated']}, copy ~ sibling of its original "
              f"{tally['copy_sibling']}")
        for kind, v in d["per_kind"].items():
            if v["scores"]:
                print(f"    {kind:10s} found at score {min(v['scores']):.3f}-{max(v['scores']):.3f}"
                      + (f": {', '.join(v['named'])}" if v["missed"] else ""))
            if v["missed"]:
                print(f"    {kind:10s} missed: {', '.join(v['missed'])}")
        for m in d["false_matches"][:8]:
            score = f"{m['score']:.3f}" if m["score"] is not None else "-"
            print(f"    {m['kind']}: {' ~ '.join(m['pair'])} (score {score}, {', '.join(m['checks'])})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="", help="run only the cases whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--json", type=Path, help="write the per-case results to this file")
    parser.add_argument("--keep", type=Path, help="keep each case's work folder under this directory")
    args = parser.parse_args()
    cases = [c for c in CASES if args.cases in c.name]
    if args.list:
        for c in cases:
            print(f"{c.family:12s} {c.name:24s} {c.expected:8s} {c.recipe or 'leakage folder: ' + c.leak}")
        return
    if not cases:
        sys.exit(f"bench/gate.py: no case name contains {args.cases!r} (--list shows them)")
    clashes = [str(args.keep / c.name) for c in cases if args.keep and (args.keep / c.name).exists()]
    if clashes:   # never delete what an earlier run (or anyone) left there
        sys.exit(f"bench/gate.py: --keep: {clashes[0]} exists; pick an empty directory")
    print(f"{'family':12s} {'case':24s} {'expected':8s} {'outcome':8s} {'time':>7s}  first blocking finding / "
          "warnings when passed")
    started = time.perf_counter()
    results = [run_in_folder(c, args.keep) for c in cases]
    print_summary(results)
    print_detection(results)
    print(f"\n{len(results)} case(s) in {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


def run_in_folder(case: Case, keep: Path | None) -> Result:
    if keep is not None:
        work = keep / case.name
        work.mkdir(parents=True)
        result = run_case(case, work)
    else:
        with tempfile.TemporaryDirectory(prefix=f"gate-{case.name}-") as tmp:
            result = run_case(case, Path(tmp))
    print_case(result)
    return result


if __name__ == "__main__":
    main()
