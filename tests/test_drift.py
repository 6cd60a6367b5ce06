"""Input metrics and drift against production data (PSI, KS), on real speech and images."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import curate
from curate.drift import psi

from conftest import SAMPLE_MEDIA


def test_psi_known_values():
    rng = np.random.default_rng(0)
    a = rng.normal(size=5000)
    assert psi(a, rng.normal(size=5000)) < 0.02
    assert psi(a, rng.normal(loc=1.0, size=5000)) > 0.25


def test_a_version_against_itself_has_no_drift(speech_dataset, tmp_path, curate_cli):
    out = tmp_path / "drift.json"
    result = curate_cli("drift", speech_dataset, "--against", f"{speech_dataset}@v0001", "--json", out)
    assert result.code == 0 and "no significant drift" in result.out
    data = json.loads(out.read_text())
    assert all(m["verdict"] == "stable" and m["psi"] < 1e-6 for m in data["metrics"].values())
    assert data["distributions"]["label"]["psi"] < 1e-6


def quieter_speech(folder, gain_db=-12.0):
    folder.mkdir()
    for path in sorted((SAMPLE_MEDIA / "speech").glob("*/*.wav")):
        audio, rate = sf.read(path, dtype="float32")
        sf.write(folder / f"{path.parent.name}_{path.name}", audio * np.float32(10 ** (gain_db / 20)), rate,
                 subtype="PCM_16")


def test_quieter_production_speech_is_significant_rms_drift(speech_dataset, tmp_path, curate_cli):
    production = tmp_path / "production"
    quieter_speech(production)
    out = tmp_path / "drift.json"
    result = curate_cli("drift", speech_dataset, "--against", production, "--json", out, "--report", tmp_path / "rep")
    assert result.code == 1 and "SIGNIFICANT DRIFT" in result.out
    metrics = json.loads(out.read_text())["metrics"]
    assert metrics["rms_dbfs"]["verdict"] == "significant" and metrics["rms_dbfs"]["p_value"] < 1e-6
    assert metrics["rms_dbfs"]["reference_median"] - metrics["rms_dbfs"]["production_median"] == pytest.approx(12,
                                                                                                               abs=0.5)
    assert metrics["duration_s"]["verdict"] == "stable"
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Significant drift" in html and "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html


def test_darkened_images_are_brightness_drift_and_a_corrupt_file_is_listed(tmp_path, curate_cli):
    from curate.importer import import_folder

    version = import_folder(SAMPLE_MEDIA / "inspection", tmp_path / "ds").version
    same, dark = tmp_path / "same", tmp_path / "dark"
    same.mkdir()
    dark.mkdir()
    for path in sorted((SAMPLE_MEDIA / "inspection").glob("*/*.png")):
        shutil.copyfile(path, same / f"{path.parent.name}_{path.name}")
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
        Image.fromarray((255 * pixels**2.2).round().astype(np.uint8)).save(dark / f"{path.parent.name}_{path.name}")
    (same / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    result = curate_cli("drift", version.dataset.path, "--against", same)
    assert result.code == 0  # the corrupt file is counted and listed; the exit code comes from the metrics
    assert "unreadable: broken.png" in result.out and "1 unreadable production file(s)" in result.out
    out = tmp_path / "dark.json"
    result = curate_cli("drift", version.dataset.path, "--against", dark, "--json", out)
    metrics = json.loads(out.read_text())["metrics"]
    assert result.code == 1 and metrics["brightness"]["verdict"] == "significant"
    assert metrics["width"]["verdict"] == "stable"


def test_metrics_table_by_tag(speech_dataset, curate_cli):
    result = curate_cli("metrics", speech_dataset, "--by", "tag", "--json")
    assert result.code == 0
    rows = {r["slice"]: r for r in json.loads(result.out)}
    assert rows["clean"]["n"] == 100 and rows["cafe_noise"]["n"] == 50 and rows["clean"]["unreadable"] == 0
    assert rows["clean"]["snr_db"] > rows["cafe_noise"]["snr_db"] + 20
    assert rows["low_bandwidth"]["spectral_rolloff_hz"] < rows["clean"]["spectral_rolloff_hz"]
    bad = curate_cli("metrics", speech_dataset, "--by", "colour")
    assert bad.code == 2 and "--by: 'colour'" in bad.err


def test_an_unreadable_object_is_counted_not_fatal(speech_copy, curate_cli):
    shutil.rmtree(speech_copy / "cache", ignore_errors=True)  # metrics are cached by content hash
    version = curate.open(speech_copy).load()
    target = version.media_path("allison/one.wav")
    target.chmod(0o644)
    target.write_bytes(b"RIFF garbage")
    result = curate_cli("metrics", speech_copy, "--json")
    assert result.code == 0 and json.loads(result.out)[0]["unreadable"] == 1
