"""Input metrics and drift against production data (PSI, KS), on real speech and images."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import curate
from curate.drift import MIN_ITEMS, compare, n_bins, psi

from conftest import SAMPLE_MEDIA


def test_psi_known_values():
    rng = np.random.default_rng(0)
    a = rng.normal(size=5000)
    assert psi(a, rng.normal(size=5000)) < 0.02
    assert psi(a, rng.normal(loc=1.0, size=5000)) > 0.25
    assert (n_bins(250, 25), n_bins(250, 30), n_bins(250, 12), n_bins(5000, 5000)) == (5, 6, 2, 10)
    assert psi(np.zeros(40), np.zeros(25)) == 0.0


def test_a_large_psi_on_few_items_is_not_significant_without_the_test():
    """PSI 0.2-0.4 is what 25 same-source items give by chance; without a significant KS test it stays stable."""
    import pandas as pd

    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"level": rng.normal(size=250)})
    values = [psi(reference["level"], rng.choice(reference["level"], 25, replace=False)) for _ in range(200)]
    assert np.mean(np.array(values) > 0.25) > 0.05  # the old rule's false alarms: PSI alone on 25 items
    assert 0.08 < np.mean(values) < 0.17  # 5 pooled bins; 10 bins on 25 items would average about 0.27
    production = reference.iloc[rng.choice(250, 25, replace=False)]
    result = compare(reference, production)
    assert result["judged"] and result["passed"] and result["metrics"]["level"]["verdict"] == "stable"
    two = compare(reference.assign(other=reference["level"] ** 2), production.assign(other=production["level"] ** 2))
    assert two["metrics"]["level"]["p_adjusted"] == pytest.approx(min(1.0, 2 * two["metrics"]["level"]["p_value"]))
    assert two["thresholds"]["correction"] == "bonferroni over 2 test(s)"
    shifted = compare(reference, production + 1.0)
    level = shifted["metrics"]["level"]
    assert not shifted["passed"] and level["verdict"] == "significant" and level["p_adjusted"] < 1e-4
    few = compare(reference, production.iloc[:MIN_ITEMS - 1] + 1.0)
    assert few["passed"] and not few["judged"] and few["metrics"]["level"]["verdict"] == "too few"
    assert "too few items to judge" in few["findings"][0]["message"]


def test_a_version_against_itself_has_no_drift(speech_dataset, tmp_path, curate_cli):
    out = tmp_path / "drift.json"
    result = curate_cli("drift", speech_dataset, "--against", f"{speech_dataset}@v0001", "--json-out", out)
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
    result = curate_cli("drift", speech_dataset, "--against", production, "--json-out", out, "--report", tmp_path / "rep")
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
    result = curate_cli("drift", version.dataset.path, "--against", dark, "--json-out", out)
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


SPEECH_FILES = sorted((SAMPLE_MEDIA / "speech").glob("*/*.wav"))


def subset(folder, seed, n, shift=None):
    """n clips of the sample speech picked with `seed`, copied (or shifted: +12 dB, or resampled to 8 kHz)."""
    folder.mkdir()
    for i in np.random.default_rng(seed).choice(len(SPEECH_FILES), n, replace=False):
        path = SPEECH_FILES[i]
        target = folder / f"{path.parent.name}__{path.name}"
        if shift is None:
            shutil.copyfile(path, target)
            continue
        audio, rate = sf.read(path, dtype="float32")
        if shift == "gain":
            audio = np.clip(audio * np.float32(10 ** (12 / 20)), -1, 1)
        else:
            import soxr

            audio, rate = soxr.resample(audio, rate, 8000), 8000
        sf.write(target, audio, rate, subtype="PCM_16")
    return folder


@pytest.mark.parametrize("n", [25, 30])
def test_same_source_subsets_are_stable(n, speech_dataset, tmp_path, curate_cli):
    """The issue's false alarm: a few dozen of the sample clips against the sample dataset. Five seeds each."""
    for seed in range(5):
        out = tmp_path / f"drift-{seed}.json"
        result = curate_cli("drift", speech_dataset, "--against", subset(tmp_path / f"s{seed}", seed, n),
                            "--json-out", out)
        data = json.loads(out.read_text())
        assert result.code == 0 and data["judged"] and data["counts"]["production"] == n, (seed, result.out)
        assert all(m["verdict"] == "stable" for m in data["metrics"].values()), (seed, data["metrics"])
        assert data["thresholds"]["min_items"] == 20 and data["metrics"]["rms_dbfs"]["bins"] == n // 5


@pytest.mark.parametrize("shift,metric", [("gain", "rms_dbfs"), ("8k", "high_band_db")])
def test_a_real_shift_of_25_clips_is_flagged(shift, metric, speech_dataset, tmp_path, curate_cli):
    out = tmp_path / "drift.json"
    result = curate_cli("drift", speech_dataset, "--against", subset(tmp_path / "p", 0, 25, shift), "--json-out", out)
    m = json.loads(out.read_text())["metrics"][metric]
    assert result.code == 1 and "SIGNIFICANT DRIFT" in result.out
    assert m["verdict"] == "significant" and m["p_adjusted"] < 1e-6 and m["psi"] > 1.0
    if shift == "gain":
        assert m["production_median"] - m["reference_median"] == pytest.approx(12, abs=1.5)
    else:
        assert m["reference_median"] > -30 and m["production_median"] < -50


def test_too_few_production_items_is_not_judged(speech_dataset, tmp_path, curate_cli):
    out = tmp_path / "drift.json"
    result = curate_cli("drift", speech_dataset, "--against", subset(tmp_path / "p", 0, 12, "gain"), "--json-out", out)
    data = json.loads(out.read_text())
    assert result.code == 0 and "too few items to judge drift: 250 reference and 12 production" in result.out
    assert not data["judged"] and {m["verdict"] for m in data["metrics"].values()} == {"too few"}
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = curate_cli("drift", speech_dataset, "--against", empty)
    assert refused.code == 2 and "no audio or image files" in refused.err and len(refused.err.strip().splitlines()) == 1


def test_the_reference_is_real_items_unless_asked(tmp_path, curate_cli):
    """A dataset whose augmented half is 12 dB louder: by default they are left out of the reference."""
    from curate.importer import import_folder

    src = tmp_path / "src"
    src.mkdir()
    lines = ["path,id,label,split,group,origin,source_id"]
    for path in SPEECH_FILES:
        name, label = f"{path.parent.name}__{path.name}", path.stem.split("_")[0]
        shutil.copyfile(path, src / name)
        audio, rate = sf.read(path, dtype="float32")
        sf.write(src / f"loud__{name}", np.clip(audio * np.float32(4.0), -1, 1), rate, subtype="PCM_16")
        lines += [f"{name},{name},{label},train,{name},real,", f"loud__{name},loud__{name},{label},train,{name},"
                  f"augmented,{name}"]
    (src / "labels.csv").write_text("\n".join(lines) + "\n")
    dataset = import_folder(src, tmp_path / "ds").version.dataset.path
    production = subset(tmp_path / "p", 1, 30)
    out = tmp_path / "real.json"
    result = curate_cli("drift", dataset, "--against", production, "--json-out", out)
    data = json.loads(out.read_text())
    assert result.code == 0 and data["counts"]["reference"] == 250
    assert data["counts"]["augmented_excluded"]["reference"] == 250
    out = tmp_path / "all.json"
    result = curate_cli("drift", dataset, "--against", production, "--include-augmented", "--json-out", out)
    data = json.loads(out.read_text())
    assert data["counts"]["reference"] == 500 and data["counts"]["augmented_excluded"]["reference"] == 0
    assert data["metrics"]["rms_dbfs"]["reference_median"] > json.loads((tmp_path / "real.json").read_text())[
        "metrics"]["rms_dbfs"]["reference_median"] + 3
    assert result.code == 1 and data["metrics"]["rms_dbfs"]["verdict"] == "significant"
