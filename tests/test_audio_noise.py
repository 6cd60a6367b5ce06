"""AddBackgroundNoise / AddColoredNoise on real speech and real noise beds: measured SNR, looping, silence, errors."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from augment.audio import AddBackgroundNoise, AddColoredNoise, load
from augment.audio import functional as F
from augment.audio import noise as noise_module

from conftest import SAMPLE_MEDIA

NOISE = SAMPLE_MEDIA / "noise"
RATE = 16000


def speech(name="flite_awb/three.wav") -> np.ndarray:
    x, sr = load(SAMPLE_MEDIA / "speech" / name)
    assert sr == RATE
    return x


def measured_snr(x: np.ndarray, y: np.ndarray, region=slice(None)) -> float:
    x, y = x.astype(np.float64), y.astype(np.float64)
    noise = (y - x)[..., region]
    return 10 * np.log10(np.mean(x[..., region] ** 2) / np.mean(noise**2))


@pytest.mark.parametrize("kind", ["cafe", "car", "people"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rms_snr_is_exact(kind, seed):
    x = speech()
    t = AddBackgroundNoise(NOISE / kind, snr_db=(0, 20), snr_reference="rms", on_clip="allow")
    y, record = t.apply(x, sample_rate=RATE, rng=np.random.default_rng(seed))
    entry = record[0]
    assert entry["applied"] and y.dtype == np.float32 and y.shape == x.shape
    assert abs(measured_snr(x, y) - entry["params"]["snr_db"]) < 0.01
    assert abs(entry["params"]["achieved_snr_db"] - entry["params"]["snr_db"]) < 0.01
    assert entry["params"]["file"].startswith(str(NOISE / kind))


def test_active_snr_ignores_silence():
    """A clip that is 70 % digital silence: 'active' puts the requested SNR on the speech; 'rms' (the peers'
    whole-clip measure) puts about 10*log10(1/0.3) = 5.2 dB too much noise on it."""
    x = speech("allison/seven.wav")
    start, end = F.trim_bounds(x, RATE, top_db=30)
    voiced = x[start:end]
    clip = np.concatenate([np.zeros(int(len(voiced) * 0.7 / 0.3), np.float32), voiced])
    region = slice(len(clip) - len(voiced), len(clip))
    for seed in range(5):
        active = AddBackgroundNoise(NOISE / "car", snr_db=10, on_clip="allow")
        y, record = active.apply(clip, sample_rate=RATE, rng=np.random.default_rng(seed))
        assert record[0]["params"]["snr_reference"] == "active"
        assert abs(measured_snr(clip, y, region) - 10) < 0.5
    whole = AddBackgroundNoise(NOISE / "car", snr_db=10, snr_reference="rms", on_clip="allow")
    y = whole(clip, sample_rate=RATE, seed=0)
    assert measured_snr(clip, y, region) > 10 + 4


def smooth_bed() -> np.ndarray:
    """One second of the real traffic recording, low-passed at 100 Hz: its own sample-to-sample steps are small,
    so any hard seam where it restarts stands out."""
    bed, _ = load(NOISE / "car" / "TraficLow2.wav", sample_rate=RATE, mono=True)
    return F.butter_band_pass(bed, RATE, 0, 100)[30000: 30000 + RATE]


def test_a_hard_seam_would_be_caught():
    bed = smooth_bed()
    own = np.max(np.abs(np.diff(bed)))
    assert np.max(np.abs(np.diff(np.tile(bed, 3)))) > 5 * own


def test_a_short_bed_loops_without_a_seam(tmp_path):
    one_second = smooth_bed()
    own = np.max(np.abs(np.diff(one_second)))
    sf.write(tmp_path / "short.wav", one_second, RATE, subtype="FLOAT")
    x = speech()
    clip = np.tile(x, int(np.ceil(3 * RATE / len(x))))[: 3 * RATE]
    t = AddBackgroundNoise(tmp_path / "short.wav", snr_db=0, snr_reference="rms", on_clip="allow")
    for seed in range(8):
        y, record = t.apply(clip, sample_rate=RATE, rng=np.random.default_rng(seed))
        added = (y.astype(np.float64) - clip) / F.db_to_amplitude(record[0]["params"]["gain_db"])
        assert len(added) == 3 * RATE
        assert np.max(np.abs(np.diff(added))) <= own * 1.01


def test_noise_at_44k_stereo_is_resampled_once_and_cached():
    noise_module._BEDS.clear()
    x = speech()
    t = AddBackgroundNoise(NOISE / "cafe" / "MarketFull1.wav", snr_db=5, snr_reference="rms", on_clip="allow")
    first = t(x, sample_rate=RATE, seed=1)
    cached = dict(noise_module._BEDS)
    assert list(cached) == [(str(NOISE / "cafe" / "MarketFull1.wav"), RATE)]
    bed = next(iter(cached.values()))
    assert bed.ndim == 1 and bed.dtype == np.float32
    assert abs(len(bed) - sf.info(NOISE / "cafe" / "MarketFull1.wav").duration * RATE) < 2
    second = t(x, sample_rate=RATE, seed=1)
    assert next(iter(noise_module._BEDS.values())) is bed
    assert np.array_equal(first, second)


def test_beds_are_picked_in_proportion_to_duration():
    t = AddBackgroundNoise(NOISE / "people", snr_db=10)
    durations = {f.name: sf.info(f).duration for f in sorted((NOISE / "people").glob("*.wav"))}
    x = speech()
    rng = np.random.default_rng(0)
    picks = [t.apply(x, sample_rate=RATE, rng=rng)[1][0]["params"]["file"] for _ in range(1000)]
    share = np.mean([p.endswith("School1.wav") for p in picks])
    expected = durations["School1.wav"] / sum(durations.values())
    assert abs(share - expected) < 0.05


def test_multichannel_gets_the_same_noise_in_every_channel():
    x = speech()
    stereo = np.stack([x, 0.5 * x])
    t = AddBackgroundNoise(NOISE / "cafe", snr_db=3, snr_reference="rms", on_clip="allow")
    y, record = t.apply(stereo, sample_rate=RATE, rng=np.random.default_rng(4))
    added = y - stereo
    assert y.shape == stereo.shape
    assert np.allclose(added[0], added[1], atol=1e-6)
    snr = 10 * np.log10(np.mean(stereo.astype(np.float64) ** 2) / np.mean(added.astype(np.float64) ** 2))
    assert abs(snr - record[0]["params"]["snr_db"]) < 0.01


def test_silent_input_is_left_alone_and_says_so():
    silent = np.zeros(RATE, np.float32)
    y, record = AddBackgroundNoise(NOISE / "car", snr_db=5).apply(silent, sample_rate=RATE,
                                                                   rng=np.random.default_rng(0))
    assert np.array_equal(y, silent)
    assert record == [{"transform": "AddBackgroundNoise", "params": record[0]["params"], "applied": False,
                       "reason": "silent"}]


@pytest.mark.parametrize("color,slope", [("white", 0.0), ("pink", -3.0), ("brown", -6.0)])
def test_colored_noise_snr_and_spectral_slope(color, slope):
    x = speech()
    y, record = AddColoredNoise(snr_db=12, color=color, snr_reference="rms", on_clip="allow").apply(
        x, sample_rate=RATE, rng=np.random.default_rng(3))
    assert abs(measured_snr(x, y) - 12) < 0.01
    noise = (y.astype(np.float64) - x)
    spectrum = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(len(noise), 1 / RATE)
    low = spectrum[(freqs > 250) & (freqs < 500)].mean()
    high = spectrum[(freqs > 2000) & (freqs < 4000)].mean()
    octaves = np.log2(3000 / 375)
    assert abs(10 * np.log10(high / low) / octaves - slope) < 1.0


@pytest.mark.parametrize("kwargs,message", [
    ({"noise": NOISE / "car", "snr_db": (20, 5)}, r"snr_db: expected \[low, high\] with low <= high"),
    ({"noise": NOISE / "nothing_here"}, "noise: .*nothing_here does not exist"),
    ({"noise": SAMPLE_MEDIA / "ocr"}, "noise: .*ocr holds no audio files"),
    ({"noise": NOISE / "car", "snr_reference": "peak"}, "snr_reference: 'peak'"),
    ({"noise": NOISE / "car", "snr_db": float("nan")}, "snr_db: must be finite"),
    ({"noise": NOISE / "car", "crossfade_ms": -1}, "crossfade_ms"),
])
def test_bad_parameters_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AddBackgroundNoise(**kwargs)


def test_a_corrupt_noise_file_is_named(tmp_path):
    (tmp_path / "good.wav").write_bytes((NOISE / "car" / "TraficLow2.wav").read_bytes())
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(ValueError, match=r"noise: .*broken\.wav is not a readable audio file"):
        AddBackgroundNoise(tmp_path, snr_db=5)


@pytest.mark.parametrize("data,message", [
    (np.array([0.1, np.nan, 0.2] * 100, np.float32), "data: audio contains NaN"),
    ((np.ones(1000) * 1000).astype(np.int16), "data: expected float32 audio"),
    (np.zeros((16000, 2), np.float32), r"looks like \(samples, channels\)"),
    (np.zeros((2, 3, 4), np.float32), "data: expected audio of shape"),
    (np.zeros(0, np.float32), "data: audio has no samples"),
    ([0.1, 0.2], "data: expected a numpy array"),
])
def test_bad_input_names_data(data, message):
    with pytest.raises(ValueError, match=message):
        AddBackgroundNoise(NOISE / "car", snr_db=5)(data, sample_rate=RATE, seed=0)


def test_sample_rate_is_required():
    with pytest.raises(ValueError, match="sample_rate: required"):
        AddBackgroundNoise(NOISE / "car", snr_db=5)(speech(), seed=0)
    with pytest.raises(ValueError, match="sample_rate: expected a positive integer"):
        AddBackgroundNoise(NOISE / "car", snr_db=5)(speech(), sample_rate=-8000, seed=0)
