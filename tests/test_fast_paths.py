"""The per-call fast paths give the same bytes as the plain numpy / albumentations calls they replace: Generators
(augment.core.generator vs np.random.default_rng), draws (uniform, choose), records, and the albumentations adapter
(a Generator built on first use, a re-seeded random.Random, the summarised params)."""
from __future__ import annotations

import copy
import pickle
import random

import numpy as np
import pytest

from augment import Compose
from augment.audio import AddBackgroundNoise, Gain, LowBandwidth, Shift
from augment.core import (borrow_generator, choose, draw_seed, generator, record_entry, return_generator,
                          to_jsonable, uniform)

from conftest import SAMPLE_MEDIA

ENTROPIES = [0, 1, 7, 2**32 - 1, 2**32, 2**63 - 2, 2**64 + 5, 10**40, np.int64(5), np.uint64(2**63),
             [], [0], [0, 0], [1, 2, 3], [2**64 - 1, 5, 0, 2**40], list(range(12)), (3, 4), range(5),
             np.array([1, 2], np.uint32), np.random.SeedSequence(5), np.random.SeedSequence(5, pool_size=8),
             np.random.SeedSequence([1, 2]).spawn(3)[2]]


def _state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:  # a bool, so a failure does not diff megabytes
    return a.dtype == b.dtype and a.shape == b.shape and a.flags.c_contiguous == b.flags.c_contiguous and \
        a.tobytes() == b.tobytes()


@pytest.mark.parametrize("entropy", ENTROPIES, ids=lambda e: type(e).__name__ + ":" + str(e)[:24])
def test_generator_is_default_rng(entropy):
    fast, plain = generator(entropy), np.random.default_rng(entropy)
    assert _state(fast) == _state(plain)
    assert fast.random(3).tolist() == plain.random(3).tolist()
    assert fast.integers(0, 2**63 - 1) == plain.integers(0, 2**63 - 1)


def test_generator_on_random_entropies():
    pick = random.Random(4)
    for _ in range(300):
        entropy = pick.getrandbits(pick.randint(1, 256))
        words = [pick.getrandbits(pick.randint(1, 96)) for _ in range(pick.randint(1, 9))]
        assert _state(generator(entropy)) == _state(np.random.default_rng(entropy))
        assert _state(generator(words)) == _state(np.random.default_rng(np.random.SeedSequence(words)))


def test_generator_keeps_the_seed_sequence_and_its_errors():
    rng = generator([1, 2])
    seq = rng.bit_generator.seed_seq
    assert seq.entropy == [1, 2] and seq.spawn_key == () and "entropy=[1, 2]" in repr(seq)
    assert seq.generate_state(3).tolist() == np.random.SeedSequence([1, 2]).generate_state(3).tolist()
    assert [_state(c) for c in rng.spawn(2)] == [_state(c) for c in np.random.default_rng([1, 2]).spawn(2)]
    clone = pickle.loads(pickle.dumps(rng))
    assert _state(clone) == _state(rng) and _state(copy.deepcopy(rng)) == _state(rng)
    assert isinstance(clone.bit_generator.seed_seq, np.random.SeedSequence)
    same = np.random.Generator(np.random.PCG64(5))
    assert generator(same) is same and _state(generator(np.random.PCG64(5))) == _state(same)
    for bad in (-1, 1.5, "x", [-1]):
        with pytest.raises((ValueError, TypeError)) as fast:
            generator(bad)
        with pytest.raises((ValueError, TypeError)) as plain:
            np.random.default_rng(bad)
        assert type(fast.value) is type(plain.value) and str(fast.value) == str(plain.value)


def test_borrowed_generators_start_where_default_rng_starts():
    pick = random.Random(5)
    lists = [[pick.getrandbits(64) for _ in range(pick.randint(1, 6))] for _ in range(50)]  # per-item entropy
    for seed in [0, 1, 2**63, 10**30, [], [3, 0, 2**64 - 1]] + lists + \
            [pick.getrandbits(pick.randint(1, 128)) for _ in range(200)]:
        rng = borrow_generator(seed)
        assert _state(rng) == _state(np.random.default_rng(np.random.SeedSequence(seed)))
        rng.integers(0, 7, size=3)  # leaves a buffered 32-bit half and a moved state behind: re-seeding clears both
        return_generator(rng)
    inner = borrow_generator(3)  # nested borrows get distinct Generators
    assert borrow_generator(4) is not inner


def test_draw_seed_is_integers():
    for bit_generator in (np.random.PCG64, np.random.MT19937, np.random.Philox):
        for seed in range(40):
            fast, plain = np.random.Generator(bit_generator(seed)), np.random.Generator(bit_generator(seed))
            for _ in range(20):
                assert draw_seed(fast) == int(plain.integers(0, 2**63 - 1))
                assert fast.integers(0, 5) == plain.integers(0, 5) and fast.random() == plain.random()


def test_uniform_and_choose_draw_what_numpy_draws():
    fast, plain = np.random.default_rng(9), np.random.default_rng(9)
    bounds = np.random.default_rng(1).uniform(-1e3, 1e3, size=(5000, 2))
    for low, high in np.sort(bounds, axis=1).tolist() + [[3.0, 3.0], [-60.0, 120.0], [0.0, 1e-12]]:
        assert uniform(fast, (low, high)) == float(plain.uniform(low, high))
    cumulative = np.cumsum([0.1, 0.0, 0.5, 0.4])
    cumulative[-1] = 1.0
    for _ in range(2000):
        u = plain.random()
        assert choose(fast, cumulative.tolist()) == int(np.searchsorted(cumulative, u, side="right"))
    for edge in (0.0, 0.1, cumulative[2], 1.0 - 2**-53):
        assert choose(_Fixed(edge), cumulative.tolist()) == int(np.searchsorted(cumulative, edge, side="right"))


class _Fixed:
    def __init__(self, value):
        self.value = value

    def random(self):
        return self.value


def test_record_entry_matches_to_jsonable():
    params = {"file": "a.wav", "n": 3, "on": True, "x": 1.5, "nan": float("nan"), "inf": -float("inf"),
              "f32": np.float32(2.5), "i64": np.int64(4), "arr": np.arange(3), "big": np.zeros(40), "none": None,
              "nested": {"a": [1.0, float("nan")], "b": (np.float64(1), "s")}, "_segment": np.zeros(4)}
    entry = record_entry("X", params, True)
    assert entry == {"transform": "X", "applied": True,
                     "params": {k: to_jsonable(v) for k, v in params.items() if not k.startswith("_")}}
    assert entry["params"]["nan"] is None and entry["params"]["inf"] is None and type(entry["params"]["f32"]) is float


@pytest.mark.parametrize("shape", [(1,), (5,), (4001,), (2, 4001), (3, 999)])
def test_resample_filter_and_roll_are_the_library_calls(shape):
    from scipy.signal import sosfilt

    from augment.audio import functional as F
    from curate import signal

    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    for source, target in [(16000, 8000), (8000, 16000), (44100, 8000), (16000, 11025), (22050, 16000)]:
        for data in (x, x.astype(np.float64), x[..., ::2]):
            assert _same_bytes(F.resample(data, source, target), signal.resample(data, source, target))
    for rate, low, high, order in [(8000, 300.0, 3400.0, 4), (16000, 0.0, 3000.0, 6), (11025, 100.0, 3600.0, 2)]:
        sos = F._butter_sos(order, low, high, rate)
        for data in (x, x.astype(np.float64), x[..., ::2]):
            expected = sosfilt(sos, data, axis=-1).astype(np.float32, copy=False)
            assert _same_bytes(F.butter_band_pass(data, rate, low, high, order), expected)
    shift = Shift()
    n = shape[-1]
    for samples in range(-n - 2, n + 3):
        out = shift.apply_params(x, {"shift_samples": samples, "rollover": True}, None)
        assert _same_bytes(out, np.roll(x, samples, axis=-1)) and not np.shares_memory(out, x)


def _audio(seconds=1.0, channels=1):
    t = np.arange(int(seconds * 16000)) / 16000
    mono = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return mono if channels == 1 else np.stack([mono, 0.5 * mono[::-1]])


@pytest.mark.parametrize("channels", [1, 2])
def test_seeded_call_is_the_default_rng_stream(channels):
    """t(x, seed=s) (which builds its Generator with augment.core.generator) gives the bytes and record of
    t.apply(x, rng=np.random.default_rng(s))."""
    chain = Compose([AddBackgroundNoise(SAMPLE_MEDIA / "noise", snr_db=(0, 20), snr_reference="rms"),
                     Gain(gain_db=(-6, 12)), LowBandwidth(), Shift(max_fraction=0.5)], on_clip="allow")
    x = _audio(channels=channels)
    for seed in (0, 1, 2**40 + 3):
        out = chain(x, sample_rate=16000, seed=seed)
        ref, ref_record = chain.apply(x, sample_rate=16000, rng=np.random.default_rng(seed))
        assert _same_bytes(out, ref)
        assert chain.apply(x, sample_rate=16000, rng=generator(seed))[1] == ref_record
    seeded = Gain(gain_db=(-6, 6), seed=5)
    reference, record = seeded.apply(x, sample_rate=16000, rng=np.random.default_rng(5))
    assert _same_bytes(seeded(x, sample_rate=16000), reference)
    default = seeded.apply(x, sample_rate=16000)  # rng defaults to one seeded with the transform's own seed
    assert _same_bytes(default[0], reference) and default[1] == record


# -- the albumentations adapter against albumentations seeded the plain way -----------------------------------------
STEPS = [("RandomBrightnessContrast", {"brightness_limit": 0.2, "contrast_limit": 0.2}),
         ("GaussNoise", {"std_range": (0.02, 0.08)}), ("MotionBlur", {"blur_limit": (3, 7)}),
         ("Affine", {"rotate": (-15, 15)}), ("ImageCompression", {"quality_range": (60, 95)}),
         ("CoarseDropout", {"fill": "random"}), ("ColorJitter", {}), ("HorizontalFlip", {"p": 0.5})]


def _reference_summary(params):
    """The adapter's summary as first written (scalars, short scalar sequences, arrays summarised, type names)."""
    out = {}
    for key, value in params.items():
        if isinstance(value, np.ndarray):
            value = value.item() if value.size == 1 else {"shape": list(value.shape), "dtype": str(value.dtype)}
        elif isinstance(value, (tuple, list)):
            small = len(value) <= 8 and all(isinstance(v, (int, float, str, np.generic)) for v in value)
            value = [v.item() if isinstance(v, np.generic) else v for v in value] if small else \
                f"{type(value).__name__} of {len(value)}"
        elif isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, dict):
            value = _reference_summary(value)
        elif not (value is None or isinstance(value, (str, int, float))):
            value = type(value).__name__
        out[str(key)] = to_jsonable(value)
    return out


@pytest.mark.parametrize("name,params", STEPS, ids=[s[0] for s in STEPS])
def test_albumentations_adapter_draws_as_albumentations_seeded_plainly(name, params):
    from augment.image import Albumentations, albumentations_module, load

    A = albumentations_module()
    image = load(SAMPLE_MEDIA / "inspection" / "wood" / "wood_02.png")
    ours = Albumentations(name, **params)
    for seed in range(4):
        out, record = ours.apply(image, rng=np.random.default_rng(seed))
        transform_seed = record[0]["params"]["transform_seed"]
        plain = getattr(A, name)(**{"p": 1.0, **params})
        plain.save_applied_params = True
        plain.set_random_state(np.random.default_rng(transform_seed), random.Random(transform_seed))
        expected = plain(image=image)["image"]
        assert _same_bytes(out, expected)
        if record[0]["applied"]:
            assert record[0]["params"]["albumentations"] == _reference_summary(plain.params)


def test_summary_matches_the_reference_on_odd_values():
    from augment.image.albu import _summary

    params = {"a": 1.5, "b": float("nan"), "c": np.float32(np.inf), "d": np.array([2.5]), "e": np.array([np.nan]),
              "f": np.zeros((3, 3)), "g": (1, 2.0, np.int64(3), "x"), "h": [float("inf")], "i": list(range(9)),
              "j": {"k": (np.float64(1.0),), 2: None}, "l": object(), "m": True, "n": None, "o": np.bool_(True),
              "p": np.array(["s"]), "q": 10**30, "r": [], "s": np.array([1 + 2j]),
              "t": np.array([(1, 2.0)], dtype=[("a", np.int64), ("b", np.float64)])}
    assert _summary(params) == _reference_summary(params)
