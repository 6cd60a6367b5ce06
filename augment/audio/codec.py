"""Codec: a round trip through a speech or music codec of this machine's libsndfile (GSM 6.10, G.721, mu-law,
A-law, IMA ADPCM, MP3, Ogg Vorbis, Ogg Opus), for telephone and streaming realism.

The clip is resampled to the codec's `rate` (8 kHz by default: narrowband telephony), clipped to full scale (the
encoders take integer PCM), encoded and decoded in memory with soundfile, resampled back, and cut or zero-padded
to the input's length. Delay: libsndfile 1.2.2 decodes every one of these codecs with zero lag against its input
(it drops the MP3 encoder delay and padding through the LAME header, and Opus's pre-skip); block codecs (GSM,
G.721, IMA ADPCM) only pad the end to a whole block, which the cut removes. tests/test_audio_adapters.py measures
the lag by cross-correlation and fails if a libsndfile version brings one.

Encoders are deterministic, so the output depends only on the input and the drawn parameters (the codec, when a
list is given, and the compression), which the record keeps with the encoded bit rate.
"""
from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from augment.audio import functional as F
from augment.core import (Param, ParameterError, Transform, check_list, check_number, check_range, choose,
                          cumulative_weights, uniform)

MPEG_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


@dataclass(frozen=True)
class CodecSpec:
    format: str                   # libsndfile container
    subtype: str                  # libsndfile encoding
    max_channels: int             # more channels are encoded one by one
    rates: tuple[int, ...] = ()   # the rates the encoder takes (empty: any)
    tunable: bool = False         # takes libsndfile's compression_level
    bitrate_mode: str | None = None


CODECS = {
    "gsm": CodecSpec("WAV", "GSM610", 1),           # GSM 06.10 full rate, 13 kbit/s at 8 kHz
    "g721": CodecSpec("WAV", "G721_32", 1),         # G.721 ADPCM, 32 kbit/s at 8 kHz
    "ulaw": CodecSpec("WAV", "ULAW", 8),            # G.711 mu-law
    "alaw": CodecSpec("WAV", "ALAW", 8),            # G.711 A-law
    "ima_adpcm": CodecSpec("WAV", "IMA_ADPCM", 8),
    "mp3": CodecSpec("MP3", "MPEG_LAYER_III", 2, MPEG_RATES, True, "CONSTANT"),
    "vorbis": CodecSpec("OGG", "VORBIS", 8, (), True),
    "opus": CodecSpec("OGG", "OPUS", 8, OPUS_RATES, True),
}
# Telephone- and streaming-like bit rates when `compression` is not given. libsndfile 1.2.2 maps compression_level
# linearly onto each encoder's own scale (measured at 8 kHz mono, bit rates with container overhead):
#   mp3 (constant bit rate, MPEG-2.5 table 8..64 kbit/s): 0 -> ~71, 0.5 -> ~36, 0.95 -> ~9 kbit/s
#   vorbis (quality, VBR): 0 -> ~49, 0.5 -> ~39, 1 -> ~30 kbit/s
#   opus (bit rate 256 -> 6 kbit/s per channel): 0.5 -> ~137, 0.92 -> ~26, 0.99 -> ~11 kbit/s
DEFAULT_COMPRESSION = {"mp3": (0.5, 0.95), "vorbis": (0.5, 1.0), "opus": (0.92, 0.99)}
# libsndfile refuses compression_level 1.0 for MP3; 0.99 already gives its lowest constant bit rate
_MP3_MAX_LEVEL = 0.99


@functools.lru_cache(maxsize=None)
def codec_available(codec: str) -> bool:
    """Whether this machine's libsndfile encodes `codec` (its container and subtype are both built in)."""
    import soundfile

    spec = CODECS[codec]
    return spec.format in soundfile.available_formats() and soundfile.check_format(spec.format, spec.subtype)


def _check_codecs(name: str, value: Any) -> str | list[str]:
    names = [value] if isinstance(value, str) else check_list(name, value)
    if not names:
        raise ParameterError(name, "give a codec or a non-empty list of codecs")
    for codec in names:
        if codec not in CODECS:
            import difflib

            close = difflib.get_close_matches(str(codec), CODECS, n=1)
            hint = f"did you mean {close[0]}?" if close else f"codecs: {', '.join(CODECS)}"
            raise ParameterError(name, f"unknown codec {codec!r} ({hint})")
        if not codec_available(codec):
            import soundfile

            spec = CODECS[codec]
            have = [c for c in CODECS if codec_available(c)]
            raise ParameterError(name, f"{codec!r} ({spec.format}/{spec.subtype}) is not in this machine's "
                                       f"libsndfile {soundfile.__libsndfile_version__}; available: {', '.join(have)}")
    if len(set(names)) != len(names):
        raise ParameterError(name, f"lists a codec twice: {names}")
    return value if isinstance(value, str) else list(names)


def _check_compression(name: str, value: Any) -> list[float] | None:
    return None if value is None else list(check_range(name, value, low=0.0, high=1.0))


def _check_weights(name: str, value: Any) -> list[float] | None:
    if value is None:
        return None
    weights = [check_number(name, w) for w in check_list(name, value)]
    cumulative_weights(weights, name)
    return weights


class Codec(Transform):
    """Round trip through a speech or music codec (libsndfile), keeping the input's rate and length.

    Resample to `rate`, encode and decode in memory, resample back. `codec` is one of gsm, g721, ulaw, alaw, ima_adpcm, mp3, vorbis, opus, or a list to draw from
    (with `weights`); `compression` (0 best .. 1 smallest, libsndfile's compression_level; default: a telephone-like
    range per codec) is drawn per call for mp3 (constant bit rate), vorbis and opus."""

    media = "audio"
    params = {"codec": Param.other(_check_codecs, f"{' | '.join(CODECS)}, or a list of them to draw from"),
              "compression": Param.other(_check_compression, "number or [low, high] within [0, 1], libsndfile's "
                                                             "compression_level (default: per codec)"),
              "rate": Param.number(4000, 48000, integer=True),
              "weights": Param.other(_check_weights, "list of numbers >= 0, one per codec (default: equal)")}

    def __init__(self, codec: str | Sequence[str] = "gsm", compression: float | Sequence[float] | None = None,
                 rate: int = 8000, weights: Sequence[float] | None = None, **kwargs: Any):
        super().__init__(codec=codec, compression=compression, rate=rate, weights=weights, **kwargs)
        codecs = self.codecs
        weights = self.config.get("weights")
        if weights is not None and len(weights) != len(codecs):
            raise ParameterError("weights", f"{len(weights)} weights for {len(codecs)} codecs")
        self._cumulative = cumulative_weights(weights or [1.0] * len(codecs), "weights")
        for codec in codecs:
            allowed = CODECS[codec].rates
            if allowed and self.config["rate"] not in allowed:
                raise ParameterError("rate", f"{self.config['rate']} Hz is not a {codec} rate "
                                             f"({', '.join(map(str, allowed))})")

    @property
    def codecs(self) -> list[str]:
        codec = self.config["codec"]
        return [codec] if isinstance(codec, str) else codec

    def sample(self, rng, data, context):
        codec = self.codecs[choose(rng, self._cumulative)]  # one draw even for a single codec: aligned streams
        compression = uniform(rng, self.config.get("compression") or DEFAULT_COMPRESSION.get(codec, (0.0, 0.0)))
        params: dict[str, Any] = {"codec": codec, "rate": self.config["rate"]}
        if CODECS[codec].tunable:
            params["compression"] = compression
        return params

    def apply_params(self, data, params, context):
        sample_rate, n = context.sample_rate, data.shape[-1]
        spec = CODECS[params["codec"]]
        narrow = np.clip(F.resample(data, sample_rate, params["rate"]), -1.0, 1.0)
        level = params.get("compression")
        if level is not None and spec.format == "MP3":
            level = min(level, _MP3_MAX_LEVEL)
        channels = narrow.reshape(1, -1) if narrow.ndim == 1 else narrow
        groups = [channels] if channels.shape[0] <= spec.max_channels else [c[None] for c in channels]
        decoded, size = [], 0
        for group in groups:
            out, nbytes = round_trip(group, params["rate"], spec, level)
            decoded.append(out)
            size += nbytes
        length = min(d.shape[-1] for d in decoded)
        out = np.concatenate([d[:, :length] for d in decoded])
        out = F.resample(out, params["rate"], sample_rate)
        params["encoded_kbps"] = round(size * 8 / (narrow.shape[-1] / params["rate"]) / 1000, 1)
        out = out[:, :n] if out.shape[-1] >= n else np.pad(out, [(0, 0), (0, n - out.shape[-1])])
        return np.ascontiguousarray(out[0] if data.ndim == 1 else out, dtype=np.float32)


def round_trip(channels: np.ndarray, rate: int, spec: CodecSpec, level: float | None) -> tuple[np.ndarray, int]:
    """Encode (channels, n) float audio in memory and decode it; (decoded (channels, m), encoded bytes)."""
    import soundfile

    options: dict[str, Any] = {}
    if spec.tunable and level is not None:
        options["compression_level"] = float(level)
        if spec.bitrate_mode:
            options["bitrate_mode"] = spec.bitrate_mode
    buffer = io.BytesIO()
    soundfile.write(buffer, channels.T, rate, format=spec.format, subtype=spec.subtype, **options)
    size = buffer.tell()
    buffer.seek(0)
    decoded, _ = soundfile.read(buffer, dtype="float32", always_2d=True)
    return decoded.T, size
