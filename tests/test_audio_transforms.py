"""Level, bandwidth, timing and room transforms, and audio I/O, measured on the real sample speech."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from augment.audio import (Gain, LowBandwidth, NormalizeLoudness, PadSilence, PitchShift, Reverb, Shift, TimeStretch,
                           TrimSilence, load, save)
from augment.audio import functional as F

from conftest import SAMPLE_MEDIA

RATE = 16000


def speech(name="flite_slt/six.wav"):
    return load(SAMPLE_MEDIA / "speech" / name)[0]


def share_above(x: np.ndarray, hz: float, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    return float(spectrum[np.fft.rfftfreq(len(x), 1 / rate) > hz].sum() / spectrum.sum())


def test_gain_is_exact_in_db():
    x = speech()
    y, record = Gain(gain_db=(-12, -3)).apply(x, sample_rate=RATE, rng=np.random.default_rng(1))
    measured = 10 * np.log10(F.power(y) / F.power(x))
    assert abs(measured - record[0]["params"]["gain_db"]) < 1e-4


@pytest.mark.parametrize("reference", ["rms", "active"])
def test_normalize_loudness_hits_the_target(reference):
    x = speech()
    y, record = NormalizeLoudness(target_dbfs=-26, reference=reference).apply(x, sample_rate=RATE,
                                                                            rng=np.random.default_rng(0))
    if reference == "rms":
        level = F.power(y)
    else:
        mask, frame, _ = F.active_mask(y, RATE)
        level = F.masked_power(y, mask, frame)
    assert abs(10 * np.log10(level) + 26) < 0.01
    assert record[0]["params"]["level_before_dbfs"] > -40


def test_normalize_loudness_leaves_silence_alone():
    silent = np.zeros(8000, np.float32)
    y, record = NormalizeLoudness().apply(silent, sample_rate=RATE, rng=np.random.default_rng(0))
    assert np.array_equal(y, silent) and record[0]["reason"] == "silent" and not record[0]["applied"]


def test_low_bandwidth_sounds_like_a_telephone():
    """Wideband TTS through LowBandwidth ends up as band-limited as the real 8 kHz telephone recordings."""
    x = load(SAMPLE_MEDIA / "speech" / "flite_kal16" / "seven.wav")[0]
    assert share_above(x, 4200) > 1e-3
    y = LowBandwidth()(x, sample_rate=RATE, seed=0)
    assert y.shape == x.shape and y.dtype == np.float32
    assert share_above(y, 4200) < 1e-6
    spectrum = np.abs(np.fft.rfft(y.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / RATE)
    assert spectrum[freqs < 100].sum() / spectrum.sum() < 1e-3
    narrow = load(SAMPLE_MEDIA / "speech" / "allison" / "seven.wav")[0]
    assert share_above(narrow, 4200) < 1e-6


def test_low_bandwidth_rejects_a_band_above_nyquist():
    with pytest.raises(ValueError, match="band: upper edge 5000.0 Hz must be below rate/2"):
        LowBandwidth(band=(300, 5000), rate=8000)


def test_pad_then_trim_restores_the_speech():
    x = speech()
    padded, record = PadSilence(before_ms=250, after_ms=(100, 300)).apply(x, sample_rate=RATE,
                                                                          rng=np.random.default_rng(2))
    after_ms = record[0]["params"]["after_ms"]
    assert len(padded) == len(x) + 4000 + round(after_ms * 16)
    assert not padded[:4000].any() and np.array_equal(padded[4000: 4000 + len(x)], x)
    trimmed, trim_record = TrimSilence(top_db=40).apply(padded, sample_rate=RATE, rng=np.random.default_rng(0))
    start, end = F.trim_bounds(x, RATE, 40)
    assert len(trimmed) == end - start
    assert trim_record[0]["params"]["start_s"] == pytest.approx((4000 + start) / RATE)


def test_trim_keeps_the_margin_and_skips_silence():
    x = np.concatenate([np.zeros(8000, np.float32), speech(), np.zeros(8000, np.float32)])
    tight = TrimSilence(top_db=40)(x, sample_rate=RATE, seed=0)
    loose = TrimSilence(top_db=40, keep_ms=100)(x, sample_rate=RATE, seed=0)
    assert len(loose) == len(tight) + 3200
    _, record = TrimSilence().apply(np.zeros(800, np.float32), sample_rate=RATE, rng=np.random.default_rng(0))
    assert record[0]["reason"] == "silent"


@pytest.mark.parametrize("rollover", [True, False])
def test_shift(rollover):
    x = speech()
    y, record = Shift(max_fraction=0.3, rollover=rollover).apply(x, sample_rate=RATE, rng=np.random.default_rng(5))
    shift = record[0]["params"]["shift_samples"]
    assert 0 < abs(shift) <= 0.3 * len(x) + 1
    if rollover:
        assert np.array_equal(y, np.roll(x, shift))
    elif shift > 0:
        assert not y[:shift].any() and np.array_equal(y[shift:], x[:-shift])
    else:
        assert not y[shift:].any() and np.array_equal(y[:shift], x[-shift:])


def median_f0(x: np.ndarray) -> float:
    """YIN f0, median over the loud frames."""
    import librosa

    f0 = librosa.yin(x.astype(np.float64), fmin=60, fmax=500, sr=RATE, frame_length=1024, hop_length=256)
    rms = librosa.feature.rms(y=x, frame_length=1024, hop_length=256)[0]
    n = min(len(f0), len(rms))
    return float(np.median(f0[:n][rms[:n] > 0.3 * rms.max()]))


@pytest.mark.parametrize("steps", [4, -3])
def test_pitch_shift_moves_f0_by_the_semitones(steps):
    x = speech("flite_awb/five.wav")
    y, record = PitchShift(semitones=steps).apply(x, sample_rate=RATE, rng=np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == np.float32 and record[0]["params"]["semitones"] == steps
    assert abs(12 * np.log2(median_f0(y) / median_f0(x)) - steps) < 0.5


def test_time_stretch_changes_duration_by_the_rate():
    x = speech()
    y, record = TimeStretch(rate=(1.2, 1.25)).apply(x, sample_rate=RATE, rng=np.random.default_rng(0))
    rate = record[0]["params"]["rate"]
    assert abs(len(y) - len(x) / rate) <= 512


def test_reverb_adds_a_decaying_tail_and_keeps_the_level():
    x = np.concatenate([speech(), np.zeros(RATE, np.float32)])
    y, record = Reverb(rt60_s=0.6, drr_db=0).apply(x, sample_rate=RATE, rng=np.random.default_rng(0))
    assert y.shape == x.shape
    assert abs(10 * np.log10(F.power(y) / F.power(x))) < 0.01
    tail = y[len(x) - RATE:]
    early, late = F.power(tail[:1600]), F.power(tail[4800:6400])
    assert early > 1e-6 and 10 * np.log10(early / late) > 10  # decays after the speech ends


def test_io_round_trip_and_resampling(tmp_path):
    stereo, rate = load(SAMPLE_MEDIA / "noise" / "cafe" / "MarketFull1.wav")
    assert (rate, stereo.shape[0]) == (44100, 2) and stereo.dtype == np.float32
    mono16, rate16 = load(SAMPLE_MEDIA / "noise" / "cafe" / "MarketFull1.wav", sample_rate=16000, mono=True)
    assert rate16 == 16000 and mono16.ndim == 1 and abs(len(mono16) - stereo.shape[1] * 16000 / 44100) < 2
    save(tmp_path / "out.wav", stereo, rate)
    again, _ = load(tmp_path / "out.wav")
    assert again.shape == stereo.shape and np.abs(again - stereo).max() < 1 / 32767
    assert sf.info(tmp_path / "out.wav").subtype == "PCM_16"
    loud = stereo * np.float32(2 / np.abs(stereo).max())
    with pytest.raises(ValueError, match="exceeds full scale and subtype PCM_16 would clip"):
        save(tmp_path / "loud.wav", loud, rate)
    save(tmp_path / "loud.wav", loud, rate, subtype="FLOAT")
    assert np.abs(load(tmp_path / "loud.wav")[0]).max() > 1


def test_io_names_a_bad_file(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    with pytest.raises(ValueError, match=r"bad\.wav: not a readable audio file"):
        load(tmp_path / "bad.wav")


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_transforms_work_at_any_sample_rate(rate):
    x = load(SAMPLE_MEDIA / "speech" / "espeak_us" / "two.wav", sample_rate=rate)[0]
    from augment import Compose

    p = Compose([Gain(gain_db=-3), LowBandwidth(band=(300, 3400), rate=8000), Shift(), Reverb(rt60_s=0.3)])
    y = p(x, sample_rate=rate, seed=1)
    assert y.shape == x.shape and share_above(y, 4200, rate) < 1e-4


@pytest.mark.parametrize("transform", [
    Gain(gain_db=(-6, 0)), NormalizeLoudness(target_dbfs=-30), LowBandwidth(), PadSilence(), TrimSilence(),
    Shift(), TimeStretch(rate=1.1), PitchShift(semitones=1), Reverb(),
], ids=lambda t: t.name)
def test_every_transform_handles_multichannel_like_mono(transform):
    """Two identical channels come out identical, and equal to the mono result for the same seed."""
    x = speech()
    mono = transform(x, sample_rate=RATE, seed=4)
    stereo = transform(np.stack([x, x]), sample_rate=RATE, seed=4)
    assert stereo.shape == (2, mono.shape[-1]) and stereo.dtype == np.float32
    assert np.allclose(stereo[0], stereo[1], atol=1e-6)
    assert np.allclose(stereo[0], mono, atol=1e-4)
