"""The contract every registered transform keeps, checked the same way for each (after scikit-learn's
check_estimator): same seed -> same bytes, pickling and to_dict/from_dict round trips, no global RNG, the input left
unchanged, bad parameters named by a ParameterError, bad input refused, the shapes and rates each media promises,
and the nesting rules (no nested seed; a nested on_clip is honoured).

A new transform fails `test_every_registered_transform_has_a_case` until it gets a row in CASES and BAD."""
from __future__ import annotations

import json
import pickle
import random

import numpy as np
import pytest

import augment.audio  # noqa: F401  (registers the audio transforms)
import augment.image  # noqa: F401
from augment.audio import Gain
from augment.core import (REGISTRY, REQUIRED, Compose, OneOf, ParameterError, SomeOf, Sometimes, catalogue, defaults,
                          from_dict)
from augment.image import load as load_image

from conftest import SAMPLE_MEDIA

NOISE = str(SAMPLE_MEDIA / "noise" / "car" / "TraficHigh1.wav")
AUDIO_CHILDREN = [{"Gain": {"gain_db": [-3, 3]}}, {"Shift": {"max_fraction": 0.1}}]
IMAGE_CHILDREN = [{"Dust": {"count": [2, 4]}}, {"Scratch": {"count": 1}}]

# (name, media, a working configuration); containers appear once with audio and once with image children
CASES = [
    ("AddBackgroundNoise", "audio", {"noise": NOISE, "snr_db": [0, 10]}),
    ("AddColoredNoise", "audio", {"color": "pink", "snr_reference": "rms"}),
    ("Gain", "audio", {"gain_db": [-6, 6]}),
    ("NormalizeLoudness", "audio", {"target_dbfs": [-30, -20]}),
    ("LowBandwidth", "audio", {}),
    ("PadSilence", "audio", {"before_ms": [0, 20], "after_ms": 5}),
    ("TrimSilence", "audio", {"top_db": 30, "keep_ms": 5}),
    ("Shift", "audio", {"rollover": False}),
    ("TimeStretch", "audio", {"rate": [0.8, 1.25]}),
    ("PitchShift", "audio", {"semitones": [-1, 1]}),
    ("Reverb", "audio", {"rt60_s": [0.05, 0.1]}),
    ("Codec", "audio", {"codec": ["gsm", "mp3"], "compression": [0.5, 0.9]}),
    ("Audiomentations", "audio", {"name": "BandPassFilter", "min_center_freq": 300, "max_center_freq": 1500}),
    ("Albumentations", "image", {"name": "GaussNoise", "std_range": [0.02, 0.05]}),
    ("Scratch", "image", {}),
    ("Discoloration", "image", {}),
    ("Dust", "image", {"count": [3, 6]}),
]
for _media, _children in (("audio", AUDIO_CHILDREN), ("image", IMAGE_CHILDREN)):
    CASES += [("Compose", _media, {"transforms": _children}),
              ("OneOf", _media, {"transforms": _children, "weights": [1, 2]}),
              ("SomeOf", _media, {"transforms": _children, "n": [1, 2]}),
              ("Sometimes", _media, {"p": 0.7, "transform": _children[0]})]

# one known-bad value per transform: (parameter, value); the error must name that parameter
BAD = {
    "AddBackgroundNoise": ("snr_db", [20, 5]), "AddColoredNoise": ("color", "purple"), "Gain": ("gain_db", [6, -6]),
    "NormalizeLoudness": ("reference", "peak"), "LowBandwidth": ("rate", 500), "PadSilence": ("before_ms", -1),
    "TrimSilence": ("top_db", 0), "Shift": ("rollover", "yes"), "TimeStretch": ("rate", 10),
    "PitchShift": ("semitones", [2, 1]), "Reverb": ("drr_db", "wet"), "Codec": ("codec", "amr"),
    "Audiomentations": ("min_center_freq", "low"), "Albumentations": ("std_range", [0.5, 0.1]),
    "Scratch": ("count", 0), "Discoloration": ("radius", 2), "Dust": ("darkness", [0.9, 0.1]),
    "Compose": ("transforms", []), "OneOf": ("weights", [1, -1]), "SomeOf": ("n", 5), "Sometimes": ("p", 1.5),
}


def _audio(rate: int, channels: int) -> np.ndarray:
    """A harmonic burst between two short silences (so trimming and voice activity have something to find)."""
    t = np.arange(int(0.25 * rate)) / rate
    burst = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 660 * t)
    gap = np.zeros(int(0.04 * rate))
    mono = np.concatenate([gap, burst * np.hanning(len(burst)) ** 0.1, gap]).astype(np.float32)
    return mono if channels == 1 else np.stack([mono, 0.5 * mono[::-1]])


_RGB = load_image(SAMPLE_MEDIA / "inspection" / "wood" / "wood_04.png")[:48, :48]
AUDIO_INPUTS = {f"{'mono' if c == 1 else 'stereo'}@{r}": (_audio(r, c), r) for r in (8000, 44100) for c in (1, 2)}
_GRAY = _RGB.mean(axis=2).astype(np.uint8)
IMAGE_INPUTS = {"gray": (_GRAY, None), "gray HxWx1": (_GRAY[..., None], None), "rgb": (_RGB, None),
                "rgba": (np.dstack([_RGB, np.full(_RGB.shape[:2], 200, np.uint8)]), None),
                "28x28": (_RGB[:28, :28].copy(), None)}


def inputs(media: str) -> dict[str, tuple[np.ndarray, int | None]]:
    return AUDIO_INPUTS if media == "audio" else IMAGE_INPUTS


def policies(record: list[dict]) -> list[str]:
    return [r["params"]["policy"] for r in record if r["transform"] == "ClipPolicy"]


def run(t, data, rate, seed):
    return t.apply(data, sample_rate=rate, rng=np.random.default_rng(seed))


@pytest.fixture(params=CASES, ids=[f"{n}-{m}" if n in ("Compose", "OneOf", "SomeOf", "Sometimes") else n
                                   for n, m, _ in CASES])
def case(request):
    name, media, config = request.param
    return name, media, config, from_dict({name: config})


def test_every_registered_transform_has_a_case():
    assert {name for name, _, _ in CASES} == set(REGISTRY) == set(BAD)


def test_runs_on_every_promised_shape_and_rate(case):
    name, media, _, t = case
    for label, (data, rate) in inputs(media).items():
        before = data.copy()
        out, record = run(t, data, rate, seed=3)
        assert np.array_equal(data, before), f"{label}: the caller's array was changed in place"
        assert out.dtype == data.dtype, label
        if media == "audio":
            assert out.shape[:-1] == data.shape[:-1] and out.shape[-1] > 0 and np.isfinite(out).all(), label
        else:
            assert out.shape == data.shape, label
        assert json.loads(json.dumps(record)) == record
        assert all({"transform", "params", "applied"} <= set(entry) for entry in record)


def test_same_seed_same_bytes(case):
    name, media, config, t = case
    data, rate = next(iter(inputs(media).values()))
    first = run(t, data, rate, seed=11)
    again = run(from_dict({name: config}), data, rate, seed=11)  # a second object, not just a second call
    assert first[0].tobytes() == again[0].tobytes() and first[1] == again[1]


def test_pickle_and_dict_round_trips_give_the_same_output(case):
    name, media, config, t = case
    data, rate = inputs(media)["stereo@8000" if media == "audio" else "rgb"]
    clone = pickle.loads(pickle.dumps(t))
    rebuilt = from_dict(json.loads(json.dumps(t.to_dict())))
    assert clone == t and rebuilt == t and rebuilt.to_dict() == t.to_dict() == clone.to_dict()
    expected = run(t, data, rate, seed=5)
    for other in (clone, rebuilt):
        out, record = run(other, data, rate, seed=5)
        assert out.tobytes() == expected[0].tobytes() and record == expected[1]
    outer = from_dict({name: {**config, "seed": 21}})
    assert outer.to_dict()[name]["seed"] == 21 and pickle.loads(pickle.dumps(outer)).seed == 21
    assert outer(data, sample_rate=rate).tobytes() == run(t, data, rate, seed=21)[0].tobytes()


def test_leaves_the_global_random_state_alone(case):
    name, media, _, t = case
    data, rate = next(iter(inputs(media).values()))
    run(t, data, rate, seed=0)  # first call: lazy imports may touch the global state; the contract is per call
    np.random.seed(1234)
    random.seed(1234)
    numpy_state, python_state = np.random.get_state(), random.getstate()
    for seed in range(3):
        run(t, data, rate, seed=seed)
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]
    assert random.getstate() == python_state


def test_a_bad_parameter_is_named(case):
    name, _, config, _ = case
    param, value = BAD[name]
    cls = REGISTRY[name]
    with pytest.raises(ParameterError) as info:
        from_dict({name: {**config, param: value}})
    assert info.value.param == param and str(info.value) == f"{param}: {info.value.message}"
    with pytest.raises(ParameterError) as direct:
        cls(**{**config, param: value})
    assert direct.value.param == param
    with pytest.raises(ParameterError) as unknown:
        from_dict({name: {**config, "bogus_param": 1}})
    assert unknown.value.param == "bogus_param" and "unknown parameter" in unknown.value.message
    with pytest.raises(ParameterError) as nested:  # inside a container the name says where, down to the value
        from_dict({"OneOf": {"transforms": [{name: config}, {name: {**config, param: value}}]}})
    assert nested.value.param == f"transforms[1].{name}.{param}"


def test_bad_input_is_refused(case):
    _, media, _, t = case
    if media == "audio":
        clip, rate = AUDIO_INPUTS["mono@8000"]
        for bad in (np.nan, np.inf, -np.inf):
            broken = clip.copy()
            broken[len(broken) // 2] = bad
            with pytest.raises(ValueError, match="NaN or infinite"):
                t(broken, sample_rate=rate, seed=0)
        with pytest.raises(ValueError, match="sample_rate"):
            t(clip, seed=0)
    else:
        image = IMAGE_INPUTS["rgb"][0]
        for bad in (image.astype(np.float32), np.zeros((8, 8, 5), np.uint8), np.zeros(64, np.uint8)):
            with pytest.raises(ValueError, match="data: "):
                t(bad, seed=0)


def test_nesting_rules(case):
    """A nested seed is refused (it would give every item the same draws); a nested on_clip is kept (audio) or
    refused (image: nothing to clip)."""
    name, media, config, t = case
    with pytest.raises(ParameterError) as info:
        Compose([from_dict({name: {**config, "seed": 1}})])
    assert info.value.param == f"transforms[0].{name}.seed" and "outermost" in info.value.message
    with pytest.raises(ParameterError) as info:
        from_dict({"Sometimes": {"p": 0.5, "transform": {name: {**config, "seed": 1}}}})
    assert info.value.param == f"transform.{name}.seed"
    if media == "audio":
        nested = Compose([from_dict({name: {**config, "on_clip": "allow"}})])
        assert nested.to_dict()["Compose"]["transforms"][0][name]["on_clip"] == "allow"
        assert from_dict(nested.to_dict()) == nested
        clip, rate = AUDIO_INPUTS["stereo@8000"]
        for wrap in (lambda step: step, lambda step: Sometimes(1.0, step), lambda step: OneOf([step]),
                     lambda step: SomeOf([step], n=1)):
            # after a +40 dB step, the step's own policy decides: it raises, or the step itself brought the level
            # down; the pipeline's default limit never gets to act on it
            loud = Compose([Gain(gain_db=40), wrap(from_dict({name: {**config, "on_clip": "error"}}))])
            try:
                out, record = run(loud, clip, rate, seed=0)
            except ValueError as exc:
                assert "policy 'error'" in str(exc)
            else:
                assert np.abs(out).max() <= 1.0 and not policies(record)
            # a step that allows overs keeps them (one entry says so), whatever the pipeline's default
            kept, record = run(Compose([Gain(gain_db=40), wrap(from_dict({name: {**config, "on_clip": "allow"}}))]),
                               clip, rate, seed=0)
            assert policies(record) == (["allow"] if np.abs(kept).max() > 1.0 else [])
    else:
        with pytest.raises(ParameterError) as info:
            from_dict({name: {**config, "on_clip": "limit"}})
        assert info.value.param == "on_clip"


def test_the_catalogue_is_the_declaration():
    """What `augment transforms` prints comes from each class's `params`; every default passes its own check."""
    rows = {row["name"]: row for row in catalogue()}
    assert set(rows) == set(REGISTRY)
    for name, cls in REGISTRY.items():
        listed = [p["name"] for p in rows[name]["params"]]
        assert listed == list(cls.params) + (["on_clip"] if cls.media != "image" else []), name
        assert all(p["accepts"] for p in rows[name]["params"]), name
        for key, default in defaults(cls).items():
            if cls.params[key].kind != "child" and default is not REQUIRED:
                cls.params[key].check(key, default)
