"""Audio transforms (float32, (n,) or (channels, n), sample_rate required) and audio I/O.

Importing this package loads numpy only; soundfile, soxr, scipy, librosa, pyloudnorm and audiomentations load when
first needed."""
from augment.audio.adapter import Audiomentations
from augment.audio.bandwidth import LowBandwidth
from augment.audio.codec import Codec
from augment.audio.level import Gain, NormalizeLoudness
from augment.audio.noise import AddBackgroundNoise, AddColoredNoise
from augment.audio.room import Reverb
from augment.audio.timing import PadSilence, PitchShift, Shift, TimeStretch, TrimSilence
from curate.media import read_audio as load
from curate.media import write_audio as save

__all__ = ["AddBackgroundNoise", "AddColoredNoise", "Gain", "NormalizeLoudness", "LowBandwidth", "PadSilence",
           "TrimSilence", "Shift", "TimeStretch", "PitchShift", "Reverb", "Codec", "Audiomentations", "load", "save"]
