"""The transform contract: call forms, seeding, records, containers, dict round trip, pickling, clip policies."""
from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import augment
from augment import Compose, OneOf, SomeOf, Sometimes, from_dict
from augment.audio import AddBackgroundNoise, Gain, LowBandwidth, Reverb, Shift, load
from augment.core import Context

from conftest import ROOT, SAMPLE_MEDIA

RATE = 16000
NOISE = SAMPLE_MEDIA / "noise"


def speech(name="espeak_us/four.wav"):
    return load(SAMPLE_MEDIA / "speech" / name)[0]


def pipeline(noise_root=NOISE) -> Compose:
    return Compose([
        OneOf([AddBackgroundNoise(noise_root / "cafe", snr_db=(5, 15)),
               AddBackgroundNoise(noise_root / "car", snr_db=(0, 10))], weights=[2, 1]),
        Sometimes(0.5, LowBandwidth()),
        Gain(gain_db=(-3, 3)),
    ], seed=11)


def digest(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


def test_call_forms_agree_and_seed_is_reproducible():
    x = speech()
    p = pipeline()
    out = p(x, sample_rate=RATE, seed=5)
    again, record = p.apply(x, sample_rate=RATE, rng=np.random.default_rng(5))
    assert np.array_equal(out, again) and out.dtype == np.float32
    assert not np.array_equal(out, p(x, sample_rate=RATE, seed=6))
    assert np.array_equal(p(x, sample_rate=RATE), p(x, sample_rate=RATE, seed=11))  # the pipeline's own seed
    json.dumps(record)


def test_same_seed_same_bytes_in_a_fresh_process():
    x = speech()
    here = digest(pipeline()(x, sample_rate=RATE, seed=123))
    code = (
        "import sys, hashlib, numpy as np; sys.path.insert(0, 'tests');"
        "from test_transform_core import pipeline, speech;"
        "y = pipeline()(speech(), sample_rate=16000, seed=123);"
        "print(hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest())"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == here


def test_record_names_exactly_what_was_applied():
    x = speech()
    seen = set()
    for seed in range(40):
        _, record = pipeline().apply(x, sample_rate=RATE, rng=np.random.default_rng(seed))
        record = [r for r in record if r["transform"] != "ClipPolicy"]
        assert len(record) == 4  # both OneOf children, the Sometimes child, Gain
        noise = [r for r in record if r["transform"] == "AddBackgroundNoise"]
        assert sum(r["applied"] for r in noise) == 1
        assert [r.get("reason") for r in noise if not r["applied"]] == ["not chosen"]
        chosen = next(r for r in noise if r["applied"])
        assert "/cafe/" in chosen["params"]["file"] or "/car/" in chosen["params"]["file"]
        band = record[2]
        assert band["transform"] == "LowBandwidth" and (band["applied"] or band["reason"] == "p")
        assert record[3]["transform"] == "Gain" and record[3]["applied"]
        seen.add((chosen["params"]["file"].split("/")[-2], band["applied"]))
        json.dumps(record)
    assert seen == {("cafe", True), ("cafe", False), ("car", True), ("car", False)}


def test_the_record_reproduces_the_output():
    """Each applied entry re-applied with its recorded params (no hidden state) gives the same audio."""
    x = speech()
    p = Compose([AddBackgroundNoise(NOISE / "people", snr_db=(0, 5)), Gain(gain_db=(-6, -1)), Shift(), Reverb()])
    out, record = p.apply(x, sample_rate=RATE, rng=np.random.default_rng(9))
    y = x
    context = Context(sample_rate=RATE)
    for transform, entry in zip(p.transforms, record):
        y = transform.apply_params(y, dict(entry["params"]), context)
    assert [r["transform"] for r in record] == ["AddBackgroundNoise", "Gain", "Shift", "Reverb"]
    assert np.allclose(y, out, atol=1e-6)


def test_dict_round_trip_gives_identical_output():
    x = speech()
    p = pipeline()
    spec = p.to_dict()
    assert json.loads(json.dumps(spec)) == spec
    rebuilt = from_dict(spec)
    assert rebuilt == p and rebuilt.seed == 11
    assert np.array_equal(rebuilt(x, sample_rate=RATE, seed=77), p(x, sample_rate=RATE, seed=77))
    assert np.array_equal(rebuilt(x, sample_rate=RATE), p(x, sample_rate=RATE))


def test_pickle_round_trip_for_dataloader_workers():
    x = speech()
    p = pipeline()
    clone = pickle.loads(pickle.dumps(p))
    assert np.array_equal(clone(x, sample_rate=RATE, seed=3), p(x, sample_rate=RATE, seed=3))


def test_thread_safe_same_results_in_parallel():
    x = speech()
    p = pipeline()
    serial = [digest(p(x, sample_rate=RATE, seed=s)) for s in range(24)]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda s: digest(p(x, sample_rate=RATE, seed=s)), range(24)))
    assert parallel == serial


def test_someof_applies_n_in_order():
    x = speech()
    p = SomeOf([Gain(gain_db=-1), Gain(gain_db=-2), Gain(gain_db=-3)], n=(1, 2))
    counts = set()
    for seed in range(30):
        _, record = p.apply(x, sample_rate=RATE, rng=np.random.default_rng(seed))
        applied = [r["params"]["gain_db"] for r in record if r["applied"] and r["transform"] == "Gain"]
        assert applied == sorted(applied, reverse=True)
        counts.add(len(applied))
    assert counts == {1, 2}
    with pytest.raises(ValueError, match=r"n: must lie in \[0, 3\]"):
        SomeOf([Gain(), Gain(), Gain()], n=4)


@pytest.mark.parametrize("policy", ["limit", "normalize", "error", "allow"])
def test_clip_policies(policy):
    x = speech()
    loud = Gain(gain_db=24, on_clip=policy)
    peak_in = np.abs(x).max() * 10 ** (24 / 20)
    assert peak_in > 1.5
    if policy == "error":
        with pytest.raises(ValueError, match="on_clip: output peak .* exceeds full scale"):
            loud(x, sample_rate=RATE, seed=0)
        return
    y, record = loud.apply(x, sample_rate=RATE, rng=np.random.default_rng(0))
    clip = record[-1]
    assert clip["transform"] == "ClipPolicy" and clip["params"]["policy"] == policy
    assert abs(clip["params"]["peak_before"] - peak_in) < 1e-3
    if policy == "allow":
        assert not clip["applied"] and np.abs(y).max() > 1.5
    elif policy == "normalize":
        assert abs(np.abs(y).max() - 1.0) < 1e-6
        assert np.allclose(y, x * 10 ** (24 / 20) / peak_in, atol=1e-6)  # shape kept
    else:
        scaled = x * np.float32(10 ** (24 / 20))
        quiet = np.abs(scaled) <= 0.9
        assert np.abs(y).max() <= 1.0 and np.array_equal(y[quiet], scaled[quiet])
        assert clip["params"]["samples_limited"] == int((~quiet).sum())


def clip_entries(record):
    return [r["params"]["policy"] for r in record if r["transform"] == "ClipPolicy"]


def test_a_nested_allow_keeps_its_overs():
    """The recipe case: a step says allow inside a pipeline that sets no policy; the default limit must not undo it."""
    x = speech()
    y, record = Compose([Gain(gain_db=-1), Gain(gain_db=(30, 40), on_clip="allow")], seed=2).apply(
        x, sample_rate=RATE)
    assert np.abs(y).max() > 10 and clip_entries(record) == ["allow"]  # checked once, right after the step
    later, record = Compose([Gain(gain_db=30, on_clip="allow"), Reverb()]).apply(x, sample_rate=RATE)
    assert np.abs(later).max() > 10 and clip_entries(record) == ["allow", "allow"]  # still in force after Reverb


def test_the_outermost_policy_has_the_last_word():
    x = speech()
    y, record = Compose([Gain(gain_db=30, on_clip="allow")], on_clip="limit").apply(x, sample_rate=RATE)
    assert np.abs(y).max() <= 1.0 and clip_entries(record) == ["allow", "limit"]


def test_a_nested_policy_applies_right_after_its_step():
    x = speech()
    y, record = Compose([Gain(gain_db=30, on_clip="normalize"), Gain(gain_db=-6)]).apply(x, sample_rate=RATE)
    assert abs(np.abs(y).max() - 10 ** (-6 / 20)) < 1e-3 and clip_entries(record) == ["normalize"]
    with pytest.raises(ValueError, match="policy 'error'"):  # a later step would bring it down: too late
        Compose([Gain(gain_db=30, on_clip="error"), Gain(gain_db=-40)])(x, sample_rate=RATE, seed=0)
    # a step that did not run sets no policy: the default limit applies to the loud one
    picked = OneOf([Gain(gain_db=30), Gain(gain_db=30, on_clip="allow")], weights=[1, 0])
    y, record = picked.apply(x, sample_rate=RATE, rng=np.random.default_rng(0))
    assert np.abs(y).max() <= 1.0 and clip_entries(record) == ["limit"]


@pytest.mark.parametrize("build,param", [
    (lambda: Compose([Gain(seed=1)]), "transforms[0].Gain.seed"),
    (lambda: Sometimes(0.5, Gain(seed=1)), "transform.Gain.seed"),
    (lambda: OneOf([Gain(), Compose([Gain()], seed=2)]), "transforms[1].Compose.seed"),
    (lambda: from_dict({"SomeOf": {"transforms": [{"Gain": {"seed": 4}}]}}), "transforms[0].Gain.seed"),
])
def test_only_the_outermost_pipeline_takes_a_seed(build, param):
    from augment.core import ParameterError

    with pytest.raises(ParameterError, match="only the outermost pipeline takes a seed") as info:
        build()
    assert info.value.param == param


def test_quiet_output_has_no_clip_entry():
    _, record = Gain(gain_db=-6).apply(speech(), sample_rate=RATE, rng=np.random.default_rng(0))
    assert [r["transform"] for r in record] == ["Gain"]


@pytest.mark.parametrize("spec,param,message", [
    ({"Gian": {}}, None, "unknown transform 'Gian' .did you mean Gain"),
    ({"Gain": {"gain": 3}}, "gain", r"unknown parameter 'gain' \(did you mean gain_db\?\)"),
    ({"Gain": {"gain_db": [6, -6]}}, "gain_db", "expected"),
    ({"OneOf": {"transforms": [{"Gain": {}}], "weights": [1, 2]}}, "weights", "2 weights for 1 transforms"),
    ({"Sometimes": {"p": 1.5, "transform": {"Gain": {}}}}, "p", r"1.5 is outside \[0.0, 1.0\]"),
    ({"Sometimes": {"p": 0.5}}, "transform", "required"),
    ({"Compose": {"transforms": []}}, "transforms", "a container needs at least one transform"),
    ({"Gain": {}, "Shift": {}}, None, "one-key mapping"),
    ({"Gain": {"seed": -1}}, "seed", "expected a non-negative integer"),
    ({"Gain": {"on_clip": "wrap"}}, "on_clip", "'wrap' is not one of"),
    ({"Scratch": {"count": 1.5}}, "count", "expected an integer"),
    ({"LowBandwidth": {"rate": float("inf")}}, "rate", "must be finite"),
    ({"OneOf": {"transforms": [{"Gain": {"gain_db": "loud"}}]}}, "transforms[0].Gain.gain_db", "expected"),
    ({"Compose": {"transforms": [{"Sometimes": {"p": 1, "transform": {"Gian": {}}}}]}},
     "transforms[0].Sometimes.transform.Gian", "unknown transform 'Gian'"),
    ({"Compose": {"transforms": [{"Gain": {}}, 3]}}, "transforms[1]", "expected a transform or its dict form"),
])
def test_bad_specs_name_the_problem(spec, param, message):
    from augment.core import ParameterError

    with pytest.raises(ValueError, match=message) as info:
        from_dict(spec)
    if param is None:
        assert not isinstance(info.value, ParameterError)
    else:
        assert isinstance(info.value, ParameterError) and info.value.param == param
        assert str(info.value) == f"{param}: {info.value.message}"


def test_parameter_errors_survive_pickling():
    from augment.core import ParameterError

    error = pickle.loads(pickle.dumps(ParameterError("transforms[0].Gain.gain_db", "bad")))
    assert (error.param, error.message, str(error)) == ("transforms[0].Gain.gain_db", "bad",
                                                         "transforms[0].Gain.gain_db: bad")
    assert error.loc == ("transforms", 0, "Gain", "gain_db")


def test_rng_must_be_a_generator():
    with pytest.raises(ValueError, match="rng: expected a numpy.random.Generator"):
        Gain().apply(speech(), sample_rate=RATE, rng=42)


def test_catalogue_lists_every_audio_transform_with_defaults():
    rows = {r["name"]: r for r in augment.catalogue()}
    for name in ("AddBackgroundNoise", "AddColoredNoise", "Gain", "NormalizeLoudness", "LowBandwidth",
                 "PadSilence", "TrimSilence", "Shift", "PitchShift", "TimeStretch", "Reverb", "Compose", "OneOf",
                 "SomeOf", "Sometimes"):
        assert name in rows
    noise = {p["name"]: p for p in rows["AddBackgroundNoise"]["params"]}
    assert noise["noise"]["required"] and noise["snr_db"]["default"] == [5.0, 20.0]
    assert noise["snr_db"]["accepts"] == "number or [low, high], within [-60, 120]"
    assert noise["snr_reference"]["accepts"] == "rms | active" and "on_clip" in noise


def test_augment_transforms_cli(capsys):
    from augment.cli import main

    assert main(["transforms", "--json", "--media", "audio"]) == 0
    names = {r["name"] for r in json.loads(capsys.readouterr().out)}
    assert "AddBackgroundNoise" in names and "Compose" not in names
    assert main(["transforms", "--media", "video"]) == 2
    assert "not one of audio, image, any" in capsys.readouterr().err


def test_importing_augment_audio_stays_light():
    code = ("import sys, augment.audio; "
            "print([m for m in ('albumentations', 'sklearn', 'pandas', 'matplotlib', 'librosa', 'scipy') "
            "if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
