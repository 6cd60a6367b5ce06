"""Curation reports: JSON/Markdown/HTML for committed and rejected runs, checked in headless Chromium."""
from __future__ import annotations

import base64
import html as html_module
import io
import json
import os
import re
import shutil
import time

import numpy as np
import pytest
from markupsafe import escape as html_escape
from PIL import Image

import curate
import curate.verify
from curate.report.html import PAGE_LIMIT

from conftest import ROOT, SAMPLE_MEDIA

EVIL = "<script>window.__pwned = 1</script>"
ARTIFACTS = ROOT / "test-artifacts"

RECIPE = """\
name: report_test
dataset: {dataset}
seed: 2
target: {{tags: [cafe_noise]}}
pipeline:
  - AddBackgroundNoise: {{noise: {noise}, snr_db: [0, 10]}}
sources: {{where: {{split: train, tags_any: [clean]}}}}
budget: 6
remove_tags: [clean]
curation: {{checks: [realism, consistency, ambiguity, leakage]}}   # the injected label exists in train only
"""


@pytest.fixture(scope="module")
def evil_speech_report(tmp_path_factory):
    """A speech dataset whose labels, tags and metadata carry an injected <script>, augmented by a recipe."""
    from augment.recipe import load_recipe
    from augment.run import run_recipe

    tmp = tmp_path_factory.mktemp("report")
    src = tmp / "speech"
    shutil.copytree(SAMPLE_MEDIA / "speech", src)
    text = (src / "labels.csv").read_text().replace("allison/zero.wav,zero,", f'allison/zero.wav,"{EVIL}",')
    text = text.replace("human;", "")  # keep the file's own columns
    (src / "labels.csv").write_text(text.replace(",asterisk,", f',"{EVIL}",', 3))
    recipe = tmp / "recipe.yaml"
    recipe.write_text(RECIPE.format(dataset=src, noise=SAMPLE_MEDIA / "noise" / "cafe"))
    result = run_recipe(load_recipe(recipe), output=str(tmp / "ds"), workers=1)
    assert result.status == "committed"
    return result.version


def test_report_files_are_written_into_the_version(evil_speech_report):
    folder = evil_speech_report.path
    report = json.loads((folder / "report.json").read_text())
    assert report["schema"] == "rubbersheet.report" and report["verdict"]["passed"] is True
    assert report["new_augmented"] == 6 and report["lineage"]["recipe"] == "report_test"
    assert report["diff"]["added"] == 6 and report["counts"]["origin"]["augmented"] == 6
    assert "cafe_noise" in report["realism"] and len(report["samples"]) == 6
    markdown = (folder / "report.md").read_text()
    assert markdown.startswith("# ds@v0002: gate PASSED") and "| cafe_noise | 56 | +6 |" in markdown
    html = (folder / "report.html").read_text()
    assert EVIL not in html and "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert (folder / "report.html").stat().st_size <= PAGE_LIMIT
    assert "http://" not in html and "https://" not in html
    # every sample: a parameter table of its transform record, the raw JSON behind <details>, and (audio) the
    # applied SNR and gain under the spectrogram, which is a WebP picture
    samples = html.split('<h2 id="samples">')[1]
    tables = re.findall(r'<table class="params">(.*?)</table>', samples, re.S)
    raw = re.findall(r'<details class="raw-transform"><summary>transform record \(JSON\)</summary>'
                     r'<pre class="items">(.*?)</pre></details>', samples, re.S)
    assert len(tables) == len(raw) == len(report["samples"])
    for table, text, sample in zip(tables, raw, report["samples"]):
        assert json.loads(html_module.unescape(text)) == sample["transform"]
        snr = sample["transform"][0]["params"]["achieved_snr_db"]
        assert re.search(r"<td>1\. AddBackgroundNoise</td><td>snr_db</td><td class=\"n\">[-0-9.]+</td><td>dB</td>",
                         table) and "<td>file</td>" in table
        assert f"applied: AddBackgroundNoise: SNR {snr:.1f} dB, noise " in samples
    assert samples.count('class="caption spectrogram-caption"') == len(report["samples"])
    kinds = re.findall(r'<img class="spectrogram" alt="[^"]*" src="data:(image/\w+);base64,', html)
    assert len(kinds) >= 2 * len(report["samples"]) and set(kinds) == {"image/webp"}


@pytest.fixture(scope="module")
def image_runs(tmp_path_factory):
    """The inspection demo (committed) and the refused OCR run, as a reviewer would open them."""
    from augment.recipe import load_recipe
    from augment.run import run_recipe

    folder = tmp_path_factory.mktemp("image-runs")
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        images = run_recipe(load_recipe(ROOT / "recipes" / "inspection_defects.yaml"), output=str(folder / "insp"),
                            workers=1)
        refused = run_recipe(load_recipe(ROOT / "recipes" / "ocr_unbalanced.yaml"), output=str(folder / "ocr"),
                             workers=1)
    finally:
        os.chdir(cwd)
    return folder, images, refused


def test_reports_for_inspection_and_a_rejected_ocr_run(image_runs, tmp_path, curate_cli):
    folder, images, refused = image_runs
    assert images.status == "committed"
    html = (images.version.path / "report.html").read_text()
    thumbnails = re.findall(r'alt="(?:source|augmented|difference for) [^"]*" src="data:(image/\w+);base64,', html)
    assert len(thumbnails) >= 3 * 8 and set(thumbnails) == {"image/webp"}  # source | augmented | changed pixels
    assert refused.status == "rejected"
    report = json.loads((refused.rejected_dir / "report.json").read_text())
    assert report["status"] == "rejected" and report["verdict"]["passed"] is False
    assert any("prior shift on confusable pair 1/I" in r for r in report["verdict"]["reasons"])
    assert "gate FAILED" in (refused.rejected_dir / "report.md").read_text()
    # the top of the page: every check in the status table, each linking to a section that exists; warnings named
    for shown in (images.version.path, refused.rejected_dir):
        page = (shown / "report.html").read_text()
        data = json.loads((shown / "report.json").read_text())
        checks = [row["check"] for row in data["verdict"]["status"]]
        assert {"realism", "consistency", "splits", "ambiguity", "leakage", "change"} <= set(checks)
        for check in checks:
            assert f'<a href="#check-{check}">{check}</a>' in page and f'id="check-{check}"' in page
        for target in re.findall(r'<nav id="contents">(.*?)</nav>', page)[0].split('href="#')[1:]:
            assert f'id="{target.split(chr(34))[0]}"' in page
        for warning in data["verdict"]["warnings"]:
            assert str(html_escape(warning)) in page.split('<nav id="contents">')[0]  # in the verdict box
        markdown = (shown / "report.md").read_text()
        assert "## Checks" in markdown and all(f"| {check} |" in markdown for check in checks)
    # samples represent the change: every target tag and every label; changed pixels as a heatmap with its scale
    inspection = json.loads((images.version.path / "report.json").read_text())
    assert {s["id"].split("/")[2] for s in inspection["samples"]} == {"scratch", "discoloration", "photometric"}
    assert {s["label"] for s in inspection["samples"]} == {"defect", "ok"}
    page = (images.version.path / "report.html").read_text()
    maps = re.findall(r'alt="difference for [^"]*" src="data:image/webp;base64,([^"]*)"', page)
    assert len(maps) == len(inspection["samples"]) and "changed pixels: black unchanged, yellow the largest" in page
    for encoded in maps:
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"), float)
        assert pixels.std() > 1  # a magnitude map, not a solid block
    assert "Not plotted, the same value for every item: width, height" in page  # constant metrics said, not drawn
    glyphs = re.findall(r'alt="augmented [^"]*" src="data:image/webp;base64,([^"]*)"',
                        (refused.rejected_dir / "report.html").read_text())
    assert glyphs and min(Image.open(io.BytesIO(base64.b64decode(g))).size[0] for g in glyphs) >= 160
    warned = json.loads((images.version.path / "report.json").read_text())["verdict"]["warnings"]
    assert any(w.startswith("realism:") and "AUC" in w for w in warned)  # passed, but not silently
    out = tmp_path / "again"
    result = curate_cli("report", f"{folder / 'insp'}@v0002", "--out", out)
    assert result.code == 0 and (out / "report.html").is_file()
    assert result.out.splitlines()[-1] == f"report: {out / 'report.html'}"


def _sections(page: str) -> list[str]:
    """The page's findings, in order (new ones, then the known issues), one HTML chunk each."""
    return page.split('<div class="finding"')[1:]


def _cards(chunk: str) -> list[str]:
    return re.findall(r'<figure class="card[^"]*" data-item="[^"]*">.*?</figure>', chunk, re.S)


def test_refused_ocr_report_shows_the_flagged_items(image_runs):
    """Each finding's flagged items as cards (picture, id, label, tags, reason), pairs side by side, both labels
    of a confusable pair side by side, and the rejected run's full lineage."""
    _, images, refused = image_runs
    folder = refused.rejected_dir
    report = json.loads((folder / "report.json").read_text())
    page = (folder / "report.html").read_text()
    assert len(page.encode()) <= PAGE_LIMIT and (images.version.path / "report.html").stat().st_size <= PAGE_LIMIT
    findings = report["findings"] + report["known_issues"]
    chunks = _sections(page)
    assert len(chunks) == len(findings)
    by_key = {(f["check"], f["message"][:40]): (f, c) for f, c in zip(findings, chunks)}

    # single items: the label-kept error shows 12 of its items with their picture and the neighbours' labels
    kept, chunk = next(v for k, v in by_key.items() if k[0] == "realism" and "label kept" in k[1])
    cards = _cards(chunk)
    assert kept["evidence"]["kind"] == "items" and len(cards) == 12
    for card, entry in zip(cards, kept["evidence"]["entries"]):
        assert f'data-item="{entry["id"]}"' in card and "src=\"data:image/webp;base64," in card
        assert "label <strong>I</strong>" in card and re.search(r"<br>tags [^<]*degraded", card)
        assert f'<div class="reason">{html_escape(entry["reason"])}</div>' in card
        assert entry["reason"].startswith("labelled I; nearest real neighbours: ")
    assert f"Showing 12 of {kept['evidence']['found']}" in chunk

    # pairs: near-duplicates with different labels, and identical inputs labelled I and l (a known issue)
    near, chunk = next(v for k, v in by_key.items() if k[0] == "consistency" and "near-duplicate" in k[1])
    pairs = re.findall(r'<div class="side evidence-pair">.*?<div class="reason">(.*?)</div></div>', chunk, re.S)
    assert near["evidence"]["kind"] == "pairs" and len(pairs) == len(near["evidence"]["entries"]) == 8
    for entry, side in zip(near["evidence"]["entries"], chunk.split('<div class="side evidence-pair">')[1:]):
        cards = _cards(side)
        assert len(cards) == 2 and all(f'data-item="{i}"' in c for i, c in zip(entry["ids"], cards))
        assert {re.search(r"label <strong>(\w)</strong>", c).group(1) for c in cards} == {"I", "l"}
        assert f"distance / typical nearest-neighbour distance = {entry['score']:.3f}" in side
    same, chunk = next(v for k, v in by_key.items() if k[0] == "consistency" and "identical" in k[1])
    assert same["status"] == "inherited" and chunk.count('<div class="side evidence-pair">') == 4
    assert chunk.count("identical content (the same stored object), labels I / l") == 4

    # the ambiguity guard: real examples of both labels side by side, then the added items
    for pair in (["1", "I"], ["I", "l"]):
        shift, chunk = next(v for k, v in by_key.items() if k[0] == "ambiguity" and f"pair {'/'.join(pair)}" in k[1])
        contrast = shift["evidence"]
        assert contrast["kind"] == "contrast" and contrast["labels"] == pair
        real = [e for e in contrast["entries"] if e["role"] == "real"]
        added = [e for e in contrast["entries"] if e["role"] == "augmented"]
        labels = dict(zip(refused_manifest(refused)["id"], refused_manifest(refused)["label"]))
        groups = dict(zip(refused_manifest(refused)["id"], refused_manifest(refused)["group"]))
        assert len(real) == 4 and all(e["group"] for e in real)  # every font has both: one font per column
        for entry in real:
            assert [labels[i] for i in entry["ids"]] == pair and groups[entry["ids"][0]] == groups[entry["ids"][1]]
        assert added and all(labels[i] == "I" for e in added for i in e["ids"] if i)
        table = re.search(r'<table class="contrast">(.*?)</table>', chunk, re.S).group(1)
        rows = table.split("<tr>")[2:]
        assert [re.match(r"<th>label (\w)", r).group(1) for r in rows] == pair
        for row, label in zip(rows, pair):
            cards = _cards(row)
            assert len(cards) >= 4 and all(f"label <strong>{label}</strong>" in c for c in cards)
            assert all('src="data:image/webp;base64,' in c for c in cards)
    assert "real 1 / I side by side: `" in (folder / "report.md").read_text()
    flood, chunk = next(v for k, v in by_key.items() if k[0] == "change" and "floods" in k[1])
    assert flood["evidence"]["kind"] == "table" and not _cards(chunk)  # labels, not items: a table
    assert "<tr><th>label</th><th>before</th><th>after</th><th>ratio</th></tr><tr><td>I</td><td>0.2</td>" in chunk

    # a refused run carries its full lineage, like a committed one
    lineage = report["lineage"]
    for key in ("created", "fingerprint", "command", "package_version", "parent", "recipe", "seed"):
        assert lineage[key] not in (None, "", "-"), key
        assert f"<tr><th>{key}</th><td>{html_escape(str(lineage[key]))}</td></tr>" in page
    version = json.loads((folder / "version.json").read_text())
    assert version["fingerprint"] == lineage["fingerprint"] and version["status"] == "rejected"


def test_evidence_of_each_kind_of_finding():
    """Every shape of a finding's items becomes cards with a reason, pairs, or a table."""
    import pandas as pd

    from curate.report.evidence import evidence

    class View:
        manifest = pd.DataFrame({"id": ["x", "y", "z"]})

    def shown(items, **extra):
        return evidence({"check": "consistency", "items": items, "figures": extra.pop("figures", {})}, View(), None,
                        0, **extra)

    near = shown([{"a": "x", "b": "y", "labels": ["1", "7"], "score": 0.02}])
    assert near["kind"] == "pairs" and near["entries"] == [
        {"ids": ["x", "y"], "score": 0.02, "reason": "distance / typical nearest-neighbour distance = 0.020"}]
    pair = shown([{"a": "x", "b": "y", "labels": ["1", "7"], "score": 0.02, "why": "rotated 3 deg"}])
    assert pair["kind"] == "pairs" and pair["entries"] == [   # a derived copy: its own measurement, not the ratio
        {"ids": ["x", "y"], "score": 0.02, "reason": "rotated 3 deg"}]
    group = shown([[{"id": "x", "split": "train"}, {"id": "y", "split": "dev"}]], figures={"objects": 3})
    assert group["entries"][0]["reason"] == "identical content (the same stored object), in splits dev and train"
    assert group["found"] == 3 and group["listed"] == 1
    copy = shown([{"id": "y", "source_id": "x", "why": "byte-identical to its source"}])["entries"][0]
    assert copy == {"ids": ["x", "y"], "score": None, "reason": "byte-identical to its source"}
    cards = shown([{"id": "y", "annotations": ["a", "b", "b"], "agreement": 0.667},
                   {"id": "x", "label": "I", "suggested": "1", "p_label": 0.1234},
                   {"id": "z", "metrics": [{"metric": "rms_dbfs", "value": -3.2, "real_range": [-40.0, -0.0]}]}],
                  found=40)
    assert cards["kind"] == "items" and cards["found"] == 40 and [e["reason"] for e in cards["entries"]] == [
        "annotators said a, b, b (agreement 67%)", "labelled I; the model suggests 1 (p(label) = 0.1234)",
        "rms_dbfs = -3.2 (real range -40 to 0)"]
    assert shown(["x", "y"])["kind"] == "items" and shown(["1", "I"])["kind"] == "table"  # ids vs labels
    many = shown([{"id": "x", "why": f"{n}"} for n in range(30)])
    assert many["shown"] == len(many["entries"]) == 12 and many["listed"] == many["found"] == 30
    assert shown([]) is None


def refused_manifest(refused):
    from curate.manifest import read_parquet

    return read_parquet(refused.rejected_dir / "manifest.parquet")


def _refused_view(image_runs):
    from curate.view import MemoryView

    folder, _, refused = image_runs
    dataset = curate.open(folder / "ocr")
    return MemoryView(dataset, refused_manifest(refused)), dataset.load("v0001")


def test_the_page_keeps_to_its_size_budget(image_runs, monkeypatch):
    """Under a tight limit the page drops media, never the text, says so, and still shows a few flagged items
    of each blocking finding before samples (a refused run) or samples first (a passed one)."""
    from curate.report import html as html_report
    from curate.report.html import render_html

    _, images, refused = image_runs
    dataset = curate.open(images.version.dataset.path)
    report = json.loads((images.version.path / "report.json").read_text())
    full = (images.version.path / "report.html").read_text()  # rendered by the run, under the default limit
    limit = 300_000
    small = render_html(report, images.version, dataset.load("v0001"), limit=limit)
    assert len(small.encode()) <= limit < len(full.encode())
    shown = small.count('<div class="grid3 sample">')
    assert 1 <= shown < len(report["samples"])
    assert f"Showing {shown} of the {len(report['samples'])} sampled items" in small
    assert 'id="size-budget"' in small and "to keep the page under 0.3 MB" in small
    assert small.split('<nav id="contents">')[0] == full.split('<nav id="contents">')[0]  # the top is all there
    view, source = _refused_view(image_runs)
    report = json.loads((refused.rejected_dir / "report.json").read_text())
    report["findings"][0]["evidence"]["entries"][0]["reason"] = EVIL  # user text in a card is escaped too
    small = render_html(report, view, source, limit=limit - 100_000)
    assert len(small.encode()) <= limit - 100_000 and EVIL not in small and str(html_escape(EVIL)) in small
    blocking = [c for f, c in zip(report["findings"], _sections(small))
                if f.get("blocking") and f.get("evidence", {}).get("kind") in ("items", "pairs", "contrast")]
    assert len(blocking) == 3 and all(_cards(c) for c in blocking)  # a refused run: its evidence first, a few of each
    assert "left out to keep the page under" in small
    monkeypatch.setattr(html_report, "TEXT_PER_CARD", 0)  # the estimate of the cards' markup misses it all:
    monkeypatch.setattr(html_report, "MARGIN", 0)         # the page is rendered again with less media
    assert len(render_html(report, view, source, limit=limit - 100_000).encode()) <= limit - 100_000


def test_representative_shows_every_oneof_branch():
    """One target tag and label, ten source groups, three OneOf branches (one of them rare): a sample of four
    holds every branch, is stable for a seed and does not depend on the manifest's order."""
    import pandas as pd

    from curate.report import branch, representative

    def record(chosen):
        return json.dumps([{"transform": name, "params": {}, "applied": name == chosen,
                            **({} if name == chosen else {"reason": "not chosen"})} for name in ("Gain", "Reverb", "Hiss")]
                          + [{"transform": "Trim", "params": {}, "applied": True}])

    rows = [{"id": f"augmented/r/noise/g{g}/x{n}.wav", "tags": ["noise"], "label": "yes", "group": f"g{g}",
             "transform": record("Gain" if n else "Reverb")} for g in range(10) for n in range(3)]
    rows.append({"id": "augmented/r/noise/g3/rare.wav", "tags": ["noise"], "label": "yes", "group": "g3",
                 "transform": record("Hiss")})
    frame = pd.DataFrame(rows)
    assert branch(frame["transform"].iloc[-1]) == "Hiss + Trim" and branch(json.dumps([{"transform": "Gain",
                                                                                        "applied": True}])) == ""
    for seed in range(5):
        picked = representative(frame, 4, seed)
        assert len(picked) == 4 and {branch(t) for t in picked["transform"]} == {"Gain + Trim", "Reverb + Trim",
                                                                                 "Hiss + Trim"}
        again = representative(frame.iloc[::-1].reset_index(drop=True), 4, seed)
        assert list(again["id"]) == list(picked["id"])
    plain = frame.assign(transform=None)  # no choice in the pipeline: groups first, as before
    assert len(set(representative(plain, 4, 0)["group"])) == 4


def test_spectrogram_axes_and_the_transform_table():
    from curate.report.media import audio_caption, transform_rows
    from curate.report.spectrogram import PLOT, spectrogram

    rate = 16000
    tone = (0.1 * np.sin(2 * np.pi * 1000 * np.arange(rate * 3 // 2) / rate)).astype(np.float32)
    drawn = spectrogram(tone, rate)
    assert (drawn.xlabel, drawn.ylabel, drawn.bar_label) == ("time (s)", "frequency (kHz)", "dBFS")
    assert (drawn.seconds, drawn.top_khz) == pytest.approx((1.5, 8))
    assert drawn.xticks[0] == "0" and drawn.xticks[-1] == "1.5" and drawn.yticks == ["0", "2", "4", "6", "8"]
    assert drawn.bar_ticks == ["-100", "-80", "-60", "-40", "-20", "0"]
    level = drawn.level
    assert abs(np.unravel_index(np.argmax(level), level.shape)[0] * 8 / level.shape[0] - 1.0) < 0.1  # 1 kHz
    assert level.max() == pytest.approx(-20, abs=1.5)  # a 0.1 sine is -20 dB re full scale
    pixels = np.asarray(drawn.picture)
    left, upper, right, lower = PLOT
    row = lower - round((lower - upper) * 1.0 / 8)  # the 1 kHz line is the brightest row of the plot
    brightness = pixels[upper:lower, left + 5:right - 5].astype(int).sum(axis=2).mean(axis=1)
    assert abs(upper + int(np.argmax(brightness)) - row) <= 3
    assert (pixels[lower + 15:, :, :] < 100).any()  # tick labels and the axis label are drawn below the plot
    record = [{"transform": "AddBackgroundNoise", "applied": True,
               "params": {"snr_db": 5.447, "achieved_snr_db": 5.43, "file": "noise/cafe/MarketMed1.wav",
                          "gain_db": 5.36, "offset_s": 3.05}},
              {"transform": "Gain", "applied": True, "params": {"gain_db": -2.279}},
              {"transform": "Reverb", "applied": False, "params": {}, "reason": "not chosen"},
              {"transform": "albumentations.Affine", "applied": True,
               "params": {"albumentations": {"matrix": {"dtype": "float64", "shape": [3, 3]}, "rotate": 1.5}}}]
    assert audio_caption(record) == "AddBackgroundNoise: SNR 5.4 dB, noise MarketMed1.wav; Gain: -2.3 dB"
    rows = {(r["step"], r["parameter"]): (r["value"], r["unit"]) for r in transform_rows(record)}
    assert rows[("1. AddBackgroundNoise", "snr_db")] == ("5.447", "dB")
    assert rows[("1. AddBackgroundNoise", "offset_s")] == ("3.05", "s")
    assert rows[("2. Gain", "gain_db")] == ("-2.279", "dB")
    assert rows[("3. Reverb", "-")] == ("not applied (not chosen)", "")
    assert rows[("4. albumentations.Affine", "matrix")] == ("array 3 x 3 (float64)", "")
    assert rows[("4. albumentations.Affine", "rotate")] == ("1.5", "")


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


def _browser_available() -> bool:
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


@pytest.mark.skipif(not _browser_available() and not os.environ.get("CI"),
                    reason="needs Debian chromium + chromium-driver (.ci/run installs them; CI never skips)")
def test_report_in_a_real_browser(evil_speech_report):
    driver = _driver()
    try:
        page = _open(driver, evil_speech_report.path / "report.html")
        durations = driver.execute_script("return [...document.querySelectorAll('audio')].map(a => a.duration)")
        assert len(durations) >= 12 and all(d > 0 for d in durations), durations
        body = driver.find_element("tag name", "body").text
        assert "Gate passed" in driver.find_element("id", "verdict").text
        assert EVIL in body  # shown as text...
        assert driver.execute_script("return window.__pwned === undefined")  # ...and never run
        _check_page(driver, page, evil_speech_report.path / "report.json", "report-speech.png")
    finally:
        driver.quit()


@pytest.mark.skipif(not _browser_available() and not os.environ.get("CI"),
                    reason="needs chromium and chromedriver (.ci/run installs them; CI never skips)")
def test_image_reports_in_a_real_browser(image_runs):
    _, images, refused = image_runs
    driver = _driver()
    try:
        for folder, name, verdict in ((images.version.path, "report-inspection.png", "Gate passed"),
                                      (refused.rejected_dir, "report-ocr-refused.png", "Gate failed")):
            page = _open(driver, folder / "report.html")
            assert driver.find_element("id", "verdict").text.startswith(verdict)
            if folder == refused.rejected_dir:  # the confusable pairs side by side, on screen
                glyphs = driver.find_elements("css selector", "table.contrast figure.card img")
                assert len(glyphs) >= 2 * 2 * 4 and all(g.is_displayed() and g.size["width"] >= 90 for g in glyphs)
                pairs = driver.find_elements("css selector", "div.evidence-pair")
                assert pairs and all(len(p.find_elements("css selector", "figure.card img")) == 2 for p in pairs)
                left, right = pairs[0].find_elements("css selector", "figure.card img")
                assert left.location["y"] == right.location["y"] and left.location["x"] < right.location["x"]
            _check_page(driver, page, folder / "report.json", name)
    finally:
        driver.quit()


def _open(driver, path):
    page = path.resolve()
    driver.get(page.as_uri())
    deadline = time.time() + 20
    while time.time() < deadline:
        if driver.execute_script("return [...document.querySelectorAll('audio')].every(a => a.readyState >= 1) && "
                                 "[...document.querySelectorAll('img')].every(i => i.complete)"):
            break
        time.sleep(0.2)
    return page


def _check_page(driver, page, report_json, screenshot: str) -> None:
    """Every image decodes to non-uniform pixels; every check is in the status table; nothing on the console; no
    request leaves the page; a full-page screenshot goes to test-artifacts/."""
    spreads = driver.execute_script("""
        return [...document.querySelectorAll('img')].map(function (img) {
            var c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
            var g = c.getContext('2d'); g.drawImage(img, 0, 0);
            var d = g.getImageData(0, 0, c.width, c.height).data, lo = 255, hi = 0;
            for (var i = 0; i < d.length; i += 4) { var v = d[i] + d[i + 1] + d[i + 2]; lo = Math.min(lo, v); hi = Math.max(hi, v); }
            return hi - lo;
        });""")
    assert spreads and all(s > 0 for s in spreads), spreads
    checks = [row["check"] for row in json.loads(report_json.read_text())["verdict"]["status"]]
    table = driver.find_element("css selector", "table.checks").text
    assert all(check in table for check in checks), table
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    assert [u for u in requests if not (u.startswith("data:") or u == page.as_uri())] == []
    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1280, min(height + 100, 16000))
    driver.save_screenshot(str(ARTIFACTS / screenshot))
    assert (ARTIFACTS / screenshot).stat().st_size > 10_000
    driver.set_window_size(1280, 1000)


def test_curate_open_on_report_version_still_verifies(evil_speech_report):
    problems, _ = curate.verify.verify(curate.open(evil_speech_report.dataset.path))
    assert problems == []


@pytest.mark.skipif(not _browser_available() and not os.environ.get("CI"),
                    reason="needs Debian chromium + chromium-driver (.ci/run installs them; CI never skips)")
def test_review_in_the_browser_then_apply(evil_speech_report, tmp_path, curate_cli):
    from selenium.webdriver.support.ui import Select

    page = (evil_speech_report.path / "report.html").resolve()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = _driver()
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        driver.get(page.as_uri())
        sets = driver.find_elements("css selector", "div.sample fieldset.review")  # the augmented samples
        assert len(sets) >= 3
        chosen = [fs.get_attribute("data-item") for fs in sets[:3]]
        for fs in sets[:2]:
            fs.find_element("css selector", "input[value=reject]").click()
        third = sets[2]
        new_label = "one" if third.get_attribute("data-label") == "nine" else "nine"
        third.find_element("css selector", "input[value=relabel]").click()
        Select(third.find_element("tag name", "select")).select_by_value(new_label)
        third.find_element("css selector", "input[type=text]").send_keys(f"sounds like {new_label}")
        driver.refresh()  # decisions survive a reload (localStorage, keyed by fingerprint)
        assert driver.find_element("id", "review-count").text == "3"
        driver.find_element("id", "download-review").click()
        deadline = time.time() + 15
        while time.time() < deadline and not (downloads / "review.json").is_file():
            time.sleep(0.2)
    finally:
        driver.quit()
    review = json.loads((downloads / "review.json").read_text())
    assert review["fingerprint"] == evil_speech_report.info["fingerprint"]
    # in page order: an item that is also a flagged card further up shows (and lists) the decision there first
    assert sorted(d["id"] for d in review["decisions"]) == sorted(chosen)
    summary = curate_cli("review", "summary", downloads / "review.json", "--dataset", evil_speech_report.ref)
    assert summary.code == 0 and "remove 2 augmented item(s)" in summary.out
    applied = curate_cli("review", "apply", evil_speech_report.ref, downloads / "review.json")
    assert applied.code == 0, applied.err
    dataset = curate.open(evil_speech_report.dataset.path)
    new = dataset.load()
    assert new.info["parent"] == evil_speech_report.name and new.info["source"]["kind"] == "review"
    ids = set(new.manifest["id"])
    assert chosen[0] not in ids and chosen[1] not in ids
    row = new.manifest.set_index("id").loc[chosen[2]]
    assert row["label"] == new_label and json.loads(row["review"])["note"] == f"sounds like {new_label}"
    assert curate_cli("verify", dataset.path).code == 0
    diff = json.loads(curate_cli("diff", evil_speech_report.ref, f"{dataset.path}@latest", "--json").out)
    assert sorted(diff["removed"]) == sorted(chosen[:2]) and diff["added"] == []
    assert diff["changed"] == {chosen[2]: ["label", "review"]}


def test_bad_reviews_are_refused(speech_dataset, tmp_path, curate_cli):
    version = curate.open(speech_dataset).load()
    cases = {
        "wrong.json": {"fingerprint": "0" * 64, "decisions": []},
        "unknown.json": {"fingerprint": version.info["fingerprint"],
                         "decisions": [{"id": "nope.wav", "decision": "reject"}]},
        "newlabel.json": {"fingerprint": version.info["fingerprint"],
                          "decisions": [{"id": "allison/one.wav", "decision": "relabel", "label": "eleven"}]},
    }
    messages = {"wrong.json": "does not match", "unknown.json": "id 'nope.wav' is not in",
                "newlabel.json": "label 'eleven'", "broken.json": "not valid JSON"}
    for name, content in cases.items():
        (tmp_path / name).write_text(json.dumps(content))
    (tmp_path / "broken.json").write_text("{decisions: [")
    for name, message in messages.items():
        result = curate_cli("review", "apply", speech_dataset, tmp_path / name)
        lines = result.err.strip().splitlines()
        assert result.code == 2 and len(lines) == 1 and message in lines[0], (name, result.err)
    assert curate.open(speech_dataset).versions() == ["v0001"]
