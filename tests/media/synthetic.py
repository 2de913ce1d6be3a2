"""Tiny synthetic clips, made with PyAV in a few milliseconds, for the cases real footage lacks
(variable frame rate, rotation, odd sizes, other containers and audio codecs, identifying tags)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.container
import numpy as np
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

AUDIO_RATE = 48000


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """A moving gradient with some noise: compresses like real content, differs on every frame."""
    yy, xx = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(index)
    rgb = np.stack(
        [(xx * 2 + index * 5) % 256, (yy * 3 + index * 3) % 256, ((xx + yy) // 2 + index * 7) % 256], axis=-1
    )
    return np.clip(rgb + rng.integers(-12, 12, rgb.shape), 0, 255).astype(np.uint8)


def make_clip(
    path: Path,
    *,
    fmt: str | None = None,
    codec: str = "libx264",
    size_wh: tuple[int, int] = (64, 48),
    frames: int = 30,
    pts: Sequence[int] | None = None,
    time_base: Fraction = Fraction(1, 1000),
    rate: int = 30,
    audio: str | None = None,
    container_tags: Mapping[str, str] | None = None,
    stream_tags: Mapping[str, str] | None = None,
    display_rotation: float | None = None,
    hflip: bool = False,
    pix_fmt: str = "yuv420p",
    picture: Callable[[int, int, int], np.ndarray] = pattern,
    encoder_options: Mapping[str, str] | None = None,
    container_options: Mapping[str, str] | None = None,
) -> Path:
    """Write a clip of ``picture`` (frame index, width, height -> RGB); ``pts`` (in ``time_base`` units)
    gives irregular timing, else ``rate`` fps."""
    width, height = size_wh
    stamps = list(pts) if pts is not None else [round(i / rate / time_base) for i in range(frames)]
    out = av.open(str(path), "w", format=fmt, container_options=dict(container_options or {}))
    try:
        if container_tags:
            out.metadata.update(container_tags)
        video = cast(VideoStream, out.add_stream(codec, rate=rate, options=dict(encoder_options or {})))
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = time_base
        video.codec_context.time_base = time_base
        if stream_tags:
            video.metadata.update(stream_tags)
        if display_rotation is not None:
            video.set_display_rotation(display_rotation, hflip=hflip)
        sound: AudioStream | None = None
        if audio is not None:
            sound = cast(AudioStream, out.add_stream(audio, rate=AUDIO_RATE))
            sound.layout = "stereo"
        for index, stamp in enumerate(stamps):
            frame = av.VideoFrame.from_ndarray(picture(index, width, height), format="rgb24").reformat(
                format=pix_fmt
            )
            frame.pts = stamp
            frame.time_base = time_base
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is not None:
            seconds = float(stamps[-1] * time_base) + 1 / rate
            _write_tone(out, sound, seconds)
    finally:
        out.close()
    return path


def _write_tone(
    out: av.container.OutputContainer, sound: av.audio.stream.AudioStream, seconds: float
) -> None:
    total = int(seconds * AUDIO_RATE)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(total) / AUDIO_RATE)).astype(np.float32)
    sample_fmt = sound.codec_context.format.name if sound.codec_context.format else "fltp"
    step = sound.codec_context.frame_size or 1024
    for start in range(0, total, step):
        chunk = tone[start : start + step]
        if sample_fmt == "s16":
            interleaved = (np.stack([chunk, chunk], axis=1).reshape(1, -1) * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout="stereo")
        elif sample_fmt == "u8":  # unsigned: silence is 128
            interleaved = (np.stack([chunk, chunk], axis=1).reshape(1, -1) * 127 + 128).astype(np.uint8)
            frame = av.AudioFrame.from_ndarray(interleaved, format="u8", layout="stereo")
        else:
            frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        out.mux(sound.encode(frame))
    out.mux(sound.encode())


def top_level_boxes(path: Path) -> list[str]:
    """MP4 top-level box names in file order (faststart puts moov before mdat)."""
    data = path.read_bytes()
    names = []
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        names.append(data[offset + 4 : offset + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        if size < 8:
            break
        offset += size
    return names


def export_clip(
    src: Path,
    dst: Path,
    *,
    fmt: str | None = None,
    video: str = "libx264",
    audio: str = "aac",
    options: Mapping[str, str] | None = None,
    frames: int = 30,
    gop: int | None = None,
    layout: str = "stereo",
) -> Path:
    """The first ``frames`` frames of real footage ``src`` at 304x540, 30 fps, with a tone as long, as
    ``fmt`` (else by ``dst``'s suffix) with ``video`` and ``audio`` codecs: how cameras and DVRs export it.
    ``gop``: a keyframe every ``gop`` frames exactly (x264), for tests that split at keyframes."""
    keyframes = f"keyint={gop}:min-keyint={gop}:scenecut=0"
    encoder = {"preset": "ultrafast", "x264-params": keyframes} if gop is not None else {}
    channels = 1 if layout == "mono" else 2
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=fmt, options=dict(options or {})) as out:
        stream = out.add_stream(video, rate=30, options=encoder)
        stream.width, stream.height, stream.pix_fmt = 304, 540, "yuv420p"
        sound = out.add_stream(audio, rate=48000, layout=layout)
        sound.bit_rate = 128_000
        for i, frame in enumerate(inp.decode(video=0)):
            if i >= frames:
                break
            small = frame.reformat(width=304, height=540, format="yuv420p")
            small.pts, small.time_base = i, Fraction(1, 30)
            out.mux(stream.encode(small))
        out.mux(stream.encode())
        size = sound.codec_context.frame_size or 1152
        for pos in range(0, 48000 * frames // 30, size):
            t = np.arange(pos, pos + size, dtype=np.float32) / 48000
            wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            tone = np.repeat(wave[None, :], channels, axis=0)
            chunk = av.AudioFrame.from_ndarray(tone, format="fltp", layout=layout)
            chunk.sample_rate, chunk.pts = 48000, pos
            out.mux(sound.encode(chunk))
        out.mux(sound.encode())
    return dst


def loudness(path: Path, start_s: float, end_s: float) -> float:
    """RMS (0..1) of the first sound track's first channel of ``path`` between two times: a silenced
    span measures near 0, the tone of these clips about 0.14 (``export_clip``) or 0.21 (``make_clip``)."""
    with av.open(str(path)) as container:
        rate = container.streams.audio[0].sample_rate
        samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    window = samples[int(start_s * rate) : int(end_s * rate)].astype(np.float64)
    return float(np.sqrt((window**2).mean()))
