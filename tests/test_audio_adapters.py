"""Audio breadth through the peer: the audiomentations adapter, the Codec round trip, and LUFS loudness.

Measured, not assumed: bytes across processes, loudness with pyloudnorm, codec lag by cross-correlation, energy
above 4 kHz after a narrowband codec."""
from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import threading

import numpy as np
import pytest

from augment.audio import Audiomentations, Codec, NormalizeLoudness, load
from augment.audio import codec as codec_module
from augment.core import Compose, ParameterError, from_dict

from conftest import SAMPLE_MEDIA

SPEECH = SAMPLE_MEDIA / "speech" / "allison" / "eight.wav"
PEER_PIPELINE = {"Compose": {"transforms": [
    {"Audiomentations": {"name": "BandPassFilter", "min_center_freq": 300, "max_center_freq": 2000}},
    {"Audiomentations": {"name": "AddGaussianNoise", "min_amplitude": 0.001, "max_amplitude": 0.02}},  # np.random
    {"Audiomentations": {"name": "TimeMask", "min_band_part": 0.05, "max_band_part": 0.2}},
]}}


def speech() -> tuple[np.ndarray, int]:
    return load(SPEECH)


def noise(rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(rate * seconds))).astype(np.float32)


# -- the audiomentations adapter --------------------------------------------------------------------------------
_DIGEST = f"""
import hashlib, json, random, sys
import numpy as np
from augment.core import from_dict
from augment.audio import load
random.seed(int(sys.argv[1])); np.random.seed(int(sys.argv[1]))   # a different global state in each process
x, sr = load({str(SPEECH)!r})
out, record = from_dict(json.loads(sys.argv[2])).apply(x, sample_rate=sr, rng=np.random.default_rng(int(sys.argv[3])))
print(hashlib.sha256(out.tobytes()).hexdigest(), json.dumps(record, sort_keys=True))
"""


def _digest_in_a_process(global_seed: int, seed: int) -> str:
    done = subprocess.run([sys.executable, "-c", _DIGEST, str(global_seed), json.dumps(PEER_PIPELINE), str(seed)],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_audiomentations_same_seed_same_bytes_in_two_processes():
    first, second = _digest_in_a_process(1, seed=7), _digest_in_a_process(2, seed=7)
    assert first == second
    x, sr = speech()
    out, record = from_dict(PEER_PIPELINE).apply(x, sample_rate=sr, rng=np.random.default_rng(7))
    assert first == f"{hashlib.sha256(out.tobytes()).hexdigest()} {json.dumps(record, sort_keys=True)}"
    other, _ = from_dict(PEER_PIPELINE).apply(x, sample_rate=sr, rng=np.random.default_rng(8))
    assert other.tobytes() != out.tobytes()


def test_audiomentations_output_does_not_depend_on_the_global_state_and_leaves_it_alone():
    x, sr = speech()
    t = from_dict(PEER_PIPELINE)
    outputs = []
    for global_seed in (1, 2):
        random.seed(global_seed)
        np.random.seed(global_seed)
        python_state, numpy_state = random.getstate(), np.random.get_state()
        outputs.append(t.apply(x, sample_rate=sr, rng=np.random.default_rng(3))[0].tobytes())
        assert random.getstate() == python_state and np.array_equal(np.random.get_state()[1], numpy_state[1])
    assert outputs[0] == outputs[1]


def test_audiomentations_records_the_parameters_it_applied():
    x, sr = speech()
    t = Audiomentations("Gain", min_gain_db=-12, max_gain_db=-3)
    out, record = t.apply(x, sample_rate=sr, rng=np.random.default_rng(5))
    (entry,) = record
    assert entry["transform"] == "audiomentations.Gain" and entry["applied"]
    ratio = entry["params"]["audiomentations"]["amplitude_ratio"]
    assert -12 <= 20 * np.log10(ratio) <= -3
    assert np.allclose(out, x * ratio, atol=1e-7)  # the recorded ratio is the one applied
    band = Audiomentations("BandPassFilter", min_center_freq=300, max_center_freq=2000, min_rolloff=12,
                           max_rolloff=12)
    applied = band.apply(x, sample_rate=sr, rng=np.random.default_rng(5))[1][0]["params"]["audiomentations"]
    assert 300 <= applied["center_freq"] <= 2000 and applied["rolloff"] == 12
    before = x.copy()
    padded, _ = Audiomentations("Padding", mode="silence", min_fraction=0.2, max_fraction=0.3).apply(
        x, sample_rate=sr, rng=np.random.default_rng(5))  # the caller's array is never worked on in place
    assert np.array_equal(x, before) and 0.2 <= np.mean(padded == 0) <= 0.35
    never = Audiomentations("Gain", p=0.0).apply(x, sample_rate=sr, rng=np.random.default_rng(5))
    assert never[0].tobytes() == x.tobytes() and never[1][0]["applied"] is False and never[1][0]["reason"] == "p"


def test_audiomentations_threads_get_the_serial_bytes():
    x, sr = speech()
    t = from_dict(PEER_PIPELINE)
    def one(s):
        out, record = t.apply(x, sample_rate=sr, rng=np.random.default_rng(s))
        return hashlib.sha256(out.tobytes()).hexdigest(), record

    serial = [one(s) for s in range(16)]
    threaded: dict[int, tuple] = {}

    def work(seeds):
        for s in seeds:
            threaded[s] = one(s)

    threads = [threading.Thread(target=work, args=(range(i, 16, 4),)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert [threaded[s] for s in range(16)] == serial


@pytest.mark.parametrize("spec, param, words", [
    ({"name": "BandPasFilter"}, "name", "did you mean BandPassFilter?"),
    ({"name": "BandPassFilter", "min_center_frq": 200}, "min_center_frq", "did you mean min_center_freq?"),
    ({"name": "BandPassFilter", "zero_phase": "yes"}, "zero_phase", "expected true or false"),
    ({"name": "BandPassFilter", "min_rolloff": 12.5}, "min_rolloff", "expected an integer"),
    ({"name": "TimeMask", "mask_location": "middle"}, "mask_location", "start | end | random"),
    ({"name": "Gain", "min_gain_db": 6, "max_gain_db": -6}, "min_gain_db", "audiomentations.Gain"),
    ({"name": "Compose"}, "name", "not an audiomentations waveform transform"),
])
def test_audiomentations_refuses_bad_names_and_parameters_in_one_line(spec, param, words):
    with pytest.raises(ParameterError) as info:
        from_dict({"Audiomentations": spec})
    assert info.value.param == param and words in info.value.message and "\n" not in str(info.value)


def test_audiomentations_in_a_recipe_is_checked_at_load_with_the_line(tmp_path):
    from augment.recipe import BadInput, load_recipe

    text = ("name: peer\ndataset: {data}\noutput: {out}\nseed: 3\ntarget:\n  tags: [clean]\npipeline:\n"
            "  - Audiomentations: {{name: BandPassFilter, {param}: 200, max_center_freq: 2000}}\n"
            "sources:\n  where:\n    split: train\nbudget: 2\n")
    recipe = tmp_path / "peer.yaml"
    recipe.write_text(text.format(data=SAMPLE_MEDIA / "speech", out=tmp_path / "ds", param="min_center_fre"))
    with pytest.raises(BadInput) as info:
        load_recipe(recipe)
    assert str(info.value) == (f"{recipe}:8: pipeline[0].Audiomentations.min_center_fre: unknown parameter "
                               "'min_center_fre' of audiomentations.BandPassFilter (did you mean min_center_freq?)")
    recipe.write_text(text.format(data=SAMPLE_MEDIA / "speech", out=tmp_path / "ds", param="min_center_freq"))
    pipeline = load_recipe(recipe).pipelines["*"]
    assert pipeline.to_dict()["Compose"]["transforms"] == [{"Audiomentations": {
        "name": "BandPassFilter", "min_center_freq": 200, "max_center_freq": 2000}}]


def test_audiomentations_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "audiomentations", None)  # import audiomentations -> ImportError
    with pytest.raises(ParameterError) as info:
        from_dict({"Audiomentations": {"name": "Gain"}})
    assert info.value.param == "name" and 'pip install -e ".[audiomentations]"' in info.value.message


# -- Codec ------------------------------------------------------------------------------------------------------
def _lag(reference: np.ndarray, decoded: np.ndarray) -> int:
    full = np.correlate(decoded, reference, "full")
    return int(np.argmax(full)) - (len(reference) - 1)


@pytest.mark.parametrize("codec", list(codec_module.CODECS))
def test_codec_keeps_the_length_and_adds_no_delay(codec):
    x, sr = speech()
    rate = 8000
    for n in (len(x), len(x) - 123, 37):  # a clip, an odd length, a clip shorter than one codec block
        clip = x[:n]
        out, record = Codec(codec=codec, rate=rate).apply(clip, sample_rate=sr, rng=np.random.default_rng(0))
        assert out.shape == clip.shape and out.dtype == np.float32 and np.isfinite(out).all()
    # no lag: the decoded narrowband clip lines up with its input sample for sample
    narrow = codec_module.F.resample(x, sr, rate)
    decoded, _ = codec_module.round_trip(narrow[None], rate, codec_module.CODECS[codec],
                                         0.5 if codec_module.CODECS[codec].tunable else None)
    assert _lag(narrow, decoded[0, :len(narrow)]) == 0
    assert record[0]["params"]["codec"] == codec and record[0]["params"]["encoded_kbps"] > 0


def test_codec_output_lines_up_with_its_input_at_the_input_rate():
    x, sr = speech()
    through_8k = codec_module.F.resample(codec_module.F.resample(x, sr, 8000), 8000, sr)  # the band it can keep
    for codec, rate, reference in (("ulaw", sr, x), ("ulaw", 8000, through_8k), ("vorbis", 8000, through_8k)):
        out = Codec(codec=codec, rate=rate, compression=0.0)(x, sample_rate=sr, seed=0)
        snr = 10 * np.log10(np.sum(reference**2) / np.sum((out - reference) ** 2))
        assert _lag(reference, out) == 0 and snr > 20, (codec, rate, snr)


def test_codec_narrowband_removes_the_energy_above_4_khz():
    sr = 16000
    x = noise(sr, 1.0)
    spectrum = lambda a: np.abs(np.fft.rfft(a)) ** 2  # noqa: E731
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    high = freqs > 4200
    for codec in ("gsm", "ulaw", "mp3"):
        out = Codec(codec=codec, rate=8000)(x, sample_rate=sr, seed=1)
        drop_db = 10 * np.log10(spectrum(x)[high].sum() / spectrum(out)[high].sum())
        assert drop_db > 30, (codec, drop_db)
    wideband = Codec(codec="ulaw", rate=16000)(x, sample_rate=sr, seed=1)  # same codec, no narrowing: no drop
    assert 10 * np.log10(spectrum(x)[high].sum() / spectrum(wideband)[high].sum()) < 1


def test_codec_distortion_is_measurable_and_follows_compression():
    x, sr = speech()
    narrow = codec_module.F.resample(x, sr, 8000)

    def snr_db(codec, compression=None):
        out = Codec(codec=codec, rate=8000, compression=compression)(narrow, sample_rate=8000, seed=0)
        return 10 * np.log10(np.sum(narrow**2) / np.sum((out - narrow) ** 2))

    assert snr_db("ulaw") > 30 > 20 > snr_db("gsm") > 5  # G.711 is near-transparent; GSM full rate is not
    assert snr_db("mp3", 0.0) > snr_db("mp3", 0.9) + 3
    rates = [Codec(codec="opus", compression=c).apply(narrow, sample_rate=8000, rng=np.random.default_rng(0))[1]
             for c in (0.5, 0.95)]
    assert rates[0][0]["params"]["encoded_kbps"] > 4 * rates[1][0]["params"]["encoded_kbps"]


def test_codec_random_choices_are_seeded_and_recorded():
    x, sr = speech()
    t = Codec(codec=["gsm", "mp3", "opus"], compression=[0.5, 0.95])
    runs = [t.apply(x, sample_rate=sr, rng=np.random.default_rng(s)) for s in range(12)]
    again = [Codec(codec=["gsm", "mp3", "opus"], compression=[0.5, 0.95]).apply(
        x, sample_rate=sr, rng=np.random.default_rng(s)) for s in range(12)]
    assert all(a[0].tobytes() == b[0].tobytes() and a[1] == b[1] for a, b in zip(runs, again))
    chosen = [r[1][0]["params"]["codec"] for r in runs]
    assert set(chosen) == {"gsm", "mp3", "opus"}
    levels = [r[1][0]["params"].get("compression") for r in runs]
    assert all((lv is None) == (c == "gsm") for c, lv in zip(chosen, levels))
    assert all(0.5 <= lv <= 0.95 for lv in levels if lv is not None) and len(set(levels) - {None}) > 1
    only_gsm = Codec(codec=["gsm", "mp3"], weights=[1, 0])
    assert {only_gsm.apply(x, sample_rate=sr, rng=np.random.default_rng(s))[1][0]["params"]["codec"]
            for s in range(10)} == {"gsm"}


def test_codec_refuses_what_this_machine_cannot_encode(monkeypatch):
    with pytest.raises(ParameterError) as info:
        Codec(codec="amr")
    assert info.value.param == "codec" and "unknown codec 'amr'" in info.value.message
    with pytest.raises(ParameterError) as info:
        Codec(codec="opus", rate=44100)
    assert info.value.param == "rate" and "not a opus rate" in info.value.message
    with pytest.raises(ParameterError) as info:
        Codec(codec=["gsm", "mp3"], weights=[1])
    assert info.value.param == "weights"
    monkeypatch.setattr(codec_module, "codec_available", lambda name: name != "opus")
    with pytest.raises(ParameterError) as info:
        Codec(codec=["gsm", "opus"])
    assert info.value.param == "codec" and "'opus' (OGG/OPUS) is not in this machine's libsndfile" in str(info.value)
    assert "available: gsm" in info.value.message and "\n" not in str(info.value)


# -- NormalizeLoudness in LUFS ----------------------------------------------------------------------------------
def _lufs(x: np.ndarray, sr: int) -> float:
    import pyloudnorm

    return pyloudnorm.Meter(sr).integrated_loudness(np.asarray(x.T if x.ndim == 2 else x, dtype=np.float64))


@pytest.mark.parametrize("channels", [1, 2])
def test_lufs_normalisation_measures_minus_23(channels):
    x, sr = speech()
    x = x * np.float32(0.3) if channels == 1 else np.stack([x * np.float32(0.3), x * np.float32(0.1)])
    assert abs(_lufs(x, sr) + 23) > 3  # the input is not already there
    out, record = NormalizeLoudness(mode="lufs", target_lufs=-23).apply(x, sample_rate=sr,
                                                                        rng=np.random.default_rng(0))
    assert abs(_lufs(out, sr) + 23) < 0.1
    params = record[0]["params"]
    assert params["mode"] == "lufs" and abs(params["loudness_before_lufs"] - _lufs(x, sr)) < 1e-6
    drawn = NormalizeLoudness(mode="lufs", target_lufs=[-30, -16]).apply(x, sample_rate=sr,
                                                                          rng=np.random.default_rng(4))
    assert abs(_lufs(drawn[0], sr) - drawn[1][0]["params"]["target_lufs"]) < 0.1


def test_lufs_on_a_clip_shorter_than_one_block_and_on_silence():
    import pyloudnorm

    sr = 16000
    short = noise(sr, 0.25)  # 250 ms < the 400 ms block
    out, record = NormalizeLoudness(mode="lufs", target_lufs=-20).apply(short, sample_rate=sr,
                                                                       rng=np.random.default_rng(0))
    assert record[0]["params"]["block_s"] == pytest.approx(0.25)
    whole = pyloudnorm.Meter(sr, block_size=0.25).integrated_loudness(out.astype(np.float64))
    assert abs(whole + 20) < 0.1
    with pytest.raises(ValueError):  # pyloudnorm itself refuses it; the transform measures it as one block
        pyloudnorm.Meter(sr).integrated_loudness(short.astype(np.float64))
    silent, record = NormalizeLoudness(mode="lufs").apply(np.zeros(sr, np.float32), sample_rate=sr,
                                                          rng=np.random.default_rng(0))
    assert not silent.any() and record[0]["applied"] is False and record[0]["reason"] == "silent"


def test_rms_stays_the_default_and_keeps_its_dict_form():
    """Existing specs keep their dict form, hence their item ids and fingerprints; rms behaviour is unchanged."""
    assert NormalizeLoudness().to_dict() == {"NormalizeLoudness": {"target_dbfs": [-23.0, -23.0],
                                                                   "reference": "active"}}
    assert NormalizeLoudness(mode="rms") == NormalizeLoudness()
    lufs = NormalizeLoudness(mode="lufs", target_lufs=[-26, -20])
    assert from_dict(json.loads(json.dumps(lufs.to_dict()))) == lufs
    x, sr = speech()
    out = NormalizeLoudness(target_dbfs=-26, reference="rms")(x, sample_rate=sr, seed=0)
    assert 10 * np.log10(np.mean(out.astype(np.float64) ** 2)) == pytest.approx(-26, abs=0.01)
    with pytest.raises(ParameterError) as info:
        NormalizeLoudness(target_lufs=-23)
    assert info.value.param == "target_lufs" and "mode: lufs" in info.value.message
    with pytest.raises(ParameterError) as info:
        NormalizeLoudness(mode="lkfs")
    assert info.value.param == "mode"


def test_the_new_steps_compose_in_one_seeded_pipeline():
    x, sr = speech()
    spec = {"Compose": {"transforms": [{"NormalizeLoudness": {"mode": "lufs", "target_lufs": -26}},
                                       {"Codec": {"codec": ["gsm", "opus"]}},
                                       {"Audiomentations": {"name": "SevenBandParametricEQ"}}], "seed": 9}}
    t = from_dict(spec)
    assert isinstance(t, Compose) and from_dict(t.to_dict()) == t
    out, record = t.apply(x, sample_rate=sr)
    assert out.shape == x.shape and [r["transform"] for r in record][:3] == [
        "NormalizeLoudness", "Codec", "audiomentations.SevenBandParametricEQ"]
    assert from_dict(spec)(x, sample_rate=sr).tobytes() == out.tobytes()
