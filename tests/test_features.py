"""The audio features' mel spectrogram is librosa's (same filters, framing and window) computed in numpy, so a fresh
process computes features without importing librosa (whose first call costs ~2 s of lazy imports)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SAMPLE_MEDIA
from curate import signal
from curate.media import read_audio


@pytest.mark.parametrize("bands", [24, 32])
def test_the_filterbank_is_librosas(bands):
    librosa = pytest.importorskip("librosa")
    ours = signal.mel_filterbank(16000, 512, bands, 50, 7600)
    theirs = librosa.filters.mel(sr=16000, n_fft=512, n_mels=bands, fmin=50, fmax=7600)
    assert ours.shape == theirs.shape and np.abs(ours - theirs).max() < 1e-8


@pytest.mark.parametrize("clip,length", [("allison/zero.wav", None), ("flite_slt/four_cafe.wav", None),
                                         ("flite_slt/four_cafe.wav", 512), ("flite_slt/four_cafe.wav", 513),
                                         ("espeak_us/two.wav", 1000)])
def test_the_mel_power_is_librosas(clip, length):
    librosa = pytest.importorskip("librosa")
    audio, _ = read_audio(SAMPLE_MEDIA / "speech" / clip, sample_rate=16000, mono=True)
    audio = audio[:length] if length else audio
    ours = signal.mel_power(audio, 16000, 512, 160, 32, 50, 7600)
    theirs = librosa.feature.melspectrogram(y=audio, sr=16000, n_fft=512, hop_length=160, n_mels=32, fmin=50,
                                            fmax=7600, power=2.0)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max()


def test_features_do_not_import_librosa():
    code = ("import sys\nfrom curate.features import audio_embedding, audio_fingerprint, audio_logmel_stats\n"
            f"p = {str(SAMPLE_MEDIA / 'speech' / 'allison' / 'zero.wav')!r}\n"
            "audio_embedding(p); audio_fingerprint(p); audio_logmel_stats(p)\n"
            "print('librosa' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "False", done.stderr


def test_the_gates_features_come_from_one_decode_per_object(tmp_path, monkeypatch):
    """Embeddings first: metrics, thumbnails and saturation of the same objects are then already cached, and every
    image was decoded once in colour and once in grey (not once per feature)."""
    import curate.features as features
    from curate.importer import import_folder

    version = import_folder(SAMPLE_MEDIA / "ocr", tmp_path / "ocr").version
    decodes = []
    monkeypatch.setattr(features, "read_image", lambda path, mode: decodes.append((path, mode)) or read(path, mode))
    from curate.media import read_image as read

    _, matrix = features.embeddings(version)
    objects = version.manifest["object"].nunique()
    assert len(decodes) == 2 * objects and len(set(decodes)) == 2 * objects
    table = features.metrics(version)
    features.pixel_thumbnails(version)
    saturation = features.saturation(version)
    assert len(decodes) == 2 * objects                      # nothing decoded again
    assert table.loc[version.manifest["id"], "width"].notna().all() and len(saturation) == len(version.manifest)
    fresh = features.image_metrics(version.dataset.object_path(version.manifest["object"].iloc[0],
                                                               version.manifest["ext"].iloc[0]))
    assert table.loc[version.manifest["id"].iloc[0]].to_dict() == pytest.approx(fresh)   # the same numbers


def test_the_packs_kept_in_memory_stay_within_their_budget_and_a_pack_read_again_is_the_same(tmp_path, monkeypatch):
    """The feature packs read last stay in memory up to _Pack.MEMO_BYTES in all: before, every pack ever read stayed
    for the life of the process (0.6 GB for a 200k-item dataset). A pack over the budget is read from disk again."""
    import curate.features as features
    from curate.importer import import_folder

    version = import_folder(SAMPLE_MEDIA / "ocr", tmp_path / "ocr").version
    features._Pack._memo.clear()
    _, first = features.embeddings(version)
    features.pixel_thumbnails(version)
    memo = features._Pack._memo
    assert {p.parent.name for p in memo} == {"metrics-saturation-v1", "metrics-v1", "thumb32-v1",
                                             "embedding-image-v1"}   # the gate's four packs, each read once
    kept = {p.parent.name: entry[2] for p, entry in memo.items()}
    monkeypatch.setattr(features._Pack, "MEMO_BYTES", kept["embedding-image-v1"] - 1)   # embeddings no longer fit
    features._Pack._memo.clear()
    reads = []
    load = np.load
    monkeypatch.setattr(features.np, "load", lambda *a, **k: reads.append(a[0]) or load(*a, **k))
    _, again = features.embeddings(version)
    _, third = features.embeddings(version)
    assert len(reads) == 2 and all(p.parent.name == "embedding-image-v1" for p in reads)   # read each time
    assert first.tobytes() == again.tobytes() == third.tobytes()
    assert sum(entry[2] for entry in memo.values()) <= features._Pack.MEMO_BYTES
    features.pixel_thumbnails(version)
    features.pixel_thumbnails(version)
    assert [p.parent.name for p in reads].count("thumb32-v1") == 1   # a pack within the budget is read once


def test_a_new_dataset_gets_the_parents_cached_features_with_its_objects(tmp_path, monkeypatch):
    """Objects brought from a parent bring its cached features (keyed by object hash): the new dataset's gate
    computes none of them again. Before, a run into a new dataset recomputed every parent object's features."""
    import curate.features as features
    from curate.importer import import_folder
    from curate.store import open_dataset
    from curate.view import MemoryView

    parent = import_folder(SAMPLE_MEDIA / "ocr", tmp_path / "parent").version
    ids, expected = features.embeddings(parent)
    table = features.metrics(parent)
    target = open_dataset(tmp_path / "new", create=True)
    target.bring_objects(parent)
    computed = []
    monkeypatch.setattr(features, "image_embedding", lambda path: computed.append(path))
    monkeypatch.setattr(features, "_metrics_of", lambda media, path: computed.append(path))
    view = MemoryView(target, parent.manifest)
    again_ids, again = features.embeddings(view)
    assert computed == [] and again_ids == ids and again.tobytes() == expected.tobytes()
    assert features.metrics(view).loc[ids].equals(table.loc[ids])
    assert computed == []
    packs = sorted(p.parent.name for p in (tmp_path / "new" / "cache" / "features").glob("*/pack.*"))
    assert packs == sorted(p.parent.name for p in (tmp_path / "parent" / "cache" / "features").glob("*/pack.*"))
