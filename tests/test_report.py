"""Curation reports: JSON/Markdown/HTML for committed and rejected runs, checked in headless Chromium."""
from __future__ import annotations

import base64
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
    assert (folder / "report.html").stat().st_size < 20 * 1024 * 1024
    assert "http://" not in html and "https://" not in html


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
    assert html.count("data:image/png;base64,") >= 3 * 8  # source | augmented | changed pixels per sample
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
    maps = re.findall(r'alt="difference for [^"]*" src="data:image/png;base64,([^"]*)"', page)
    assert len(maps) == len(inspection["samples"]) and "changed pixels: black unchanged, yellow the largest" in page
    for encoded in maps:
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"), float)
        assert pixels.std() > 1  # a magnitude map, not a solid block
    assert "Not plotted, the same value for every item: width, height" in page  # constant metrics said, not drawn
    glyphs = re.findall(r'alt="augmented [^"]*" src="data:image/png;base64,([^"]*)"',
                        (refused.rejected_dir / "report.html").read_text())
    assert glyphs and min(Image.open(io.BytesIO(base64.b64decode(g))).size[0] for g in glyphs) >= 160
    warned = json.loads((images.version.path / "report.json").read_text())["verdict"]["warnings"]
    assert any(w.startswith("realism:") and "AUC" in w for w in warned)  # passed, but not silently
    out = tmp_path / "again"
    result = curate_cli("report", f"{folder / 'insp'}@v0002", "--out", out)
    assert result.code == 0 and (out / "report.html").is_file()


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
        sets = driver.find_elements("css selector", "fieldset.review")
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
    assert [d["id"] for d in review["decisions"]] == chosen
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
