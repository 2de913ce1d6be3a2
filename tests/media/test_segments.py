"""Keyframe splitting and stream-copy joining, checked frame by frame on decoded pixels."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.frame import PictureType

from veil.errors import MediaError, UnsupportedMedia
from veil.media import probe
from veil.media.segments import Segment, concat_segments, split_at_keyframes

SELFIE = "selfie_portrait_noaudio.mp4"


# -- helpers --------------------------------------------------------------------


def _make_clip(
    path: Path,
    *,
    seconds: int = 10,
    fps: int = 30,
    keyint: int = 30,
    size_wh: tuple[int, int] = (160, 96),
    audio: bool = True,
    audio_codec: str = "aac",
    rotation: int | None = None,
    open_gop: bool = False,
    tags: dict[str, str] | None = None,
    first_pts: int = 0,
) -> None:
    """An H.264 clip whose every frame differs, with B-frames, and optionally a tone (AAC, or
    ``audio_codec``: ``pcm_s16le`` in a MOV, as many cameras record)."""
    w, h = size_wh
    out = av.open(str(path), "w")
    try:
        params = "open-gop=1:b-adapt=0" if open_gop else "open-gop=0"
        video = out.add_stream(
            "libx264",
            rate=fps,
            options={
                "g": str(keyint),
                "keyint_min": str(keyint),
                "bf": "3",
                "preset": "ultrafast",
                "sc_threshold": "0",
                "x264-params": params,
            },
        )
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        if rotation is not None:
            video.set_display_rotation(rotation)
        if tags:
            out.metadata.update(tags)
        sound = out.add_stream(audio_codec, rate=48000, layout="mono") if audio else None
        rng = np.random.default_rng(7)
        noise = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        for i in range(seconds * fps):
            img = noise.copy()
            img[:, :, 0] = (i * 7) % 256
            x = (i * 3) % (w - 20)
            img[10:30, x : x + 20] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = first_pts + i
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is not None:
            rate, total, pos = 48000, 48000 * seconds, 0
            while pos < total:
                k = min(1024, total - pos)
                t = np.arange(pos, pos + k, dtype=np.float32) / rate
                samples = (0.2 * np.sin(2 * np.pi * 440 * t))[None, :]
                if audio_codec == "pcm_s16le":
                    pcm = (samples * 32767).astype(np.int16)
                    chunk = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
                else:
                    chunk = av.AudioFrame.from_ndarray(
                        samples.astype(np.float32), format="fltp", layout="mono"
                    )
                chunk.sample_rate, chunk.pts = rate, pos
                out.mux(sound.encode(chunk))
                pos += k
            out.mux(sound.encode())
    finally:
        out.close()


def _reencode(src: Path, dst: Path) -> None:
    """What a segment worker does: decode, (mask), encode with libx264, first frame forced to a keyframe."""
    inp = av.open(str(src))
    out = av.open(str(dst), "w")
    try:
        stream = inp.streams.video[0]
        video = out.add_stream(
            "libx264", rate=stream.average_rate, options={"preset": "ultrafast", "bf": "2"}
        )
        video.width, video.height, video.pix_fmt = stream.width, stream.height, "yuv420p"
        video.time_base = stream.time_base
        rotation = None
        for n, frame in enumerate(inp.decode(stream)):
            if n == 0:
                rotation = frame.rotation
                if rotation:
                    video.set_display_rotation(rotation)
            frame.pict_type = PictureType.I if n == 0 else PictureType.NONE
            out.mux(video.encode(frame))
        out.mux(video.encode())
    finally:
        out.close()
        inp.close()


def _reencode_all(segments: list[Segment], work: Path) -> list[Path]:
    """Every segment re-encoded as a worker would, to ``work/enc-<index>.mp4``, in order."""
    encoded = []
    for seg in segments:
        encoded.append(work / f"enc-{seg.index}.mp4")
        _reencode(seg.path, encoded[-1])
    return encoded


def _frame_hashes(path: Path) -> list[str]:
    """One digest per decoded frame, in presentation order; asserts pts strictly increase."""
    container = av.open(str(path))
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        out: list[str] = []
        last = None
        for frame in container.decode(stream):
            assert frame.pts is not None and (last is None or frame.pts > last)
            last = frame.pts
            out.append(
                hashlib.blake2b(frame.to_ndarray(format="yuv420p").tobytes(), digest_size=16).hexdigest()
            )
        return out
    finally:
        container.close()


@dataclass(frozen=True)
class VideoFacts:
    frames: int
    increasing: bool
    steps: set[int]
    duration_s: float
    start_s: float
    rotation: int
    audio_streams: int
    metadata: dict[str, str]


def _video_facts(path: Path) -> VideoFacts:
    """Decoded frame count, pts spacing, duration and rotation of the video; audio stream count."""
    container = av.open(str(path))
    try:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        tb = Fraction(stream.time_base)
        pts: list[int] = []
        rotation = 0
        for frame in container.decode(stream):
            assert frame.pts is not None
            pts.append(frame.pts)
            rotation = frame.rotation
        steps = set(np.diff(pts).tolist())
        end = pts[-1] + (next(iter(steps)) if len(steps) == 1 else 0)
        return VideoFacts(
            frames=len(pts),
            increasing=all(b > a for a, b in zip(pts, pts[1:], strict=False)),
            steps=steps,
            duration_s=float((end - pts[0]) * tb),
            start_s=float(pts[0] * tb),
            rotation=rotation,
            audio_streams=len(container.streams.audio),
            metadata=dict(container.metadata),
        )
    finally:
        container.close()


def _stream_seconds(path: Path) -> float:
    """Duration of the first audio stream, as its container header says."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.duration is not None and stream.time_base is not None
        return float(stream.duration * stream.time_base)


def _audio_packets(path: Path) -> list[tuple[int | None, bytes]]:
    container = av.open(str(path))
    try:
        return [(p.pts, bytes(p)) for p in container.demux(container.streams.audio[0]) if p.size]
    finally:
        container.close()


def _keyframe_indices(path: Path) -> list[int]:
    container = av.open(str(path))
    try:
        packets = [p for p in container.demux(container.streams.video[0]) if p.size]
        return [i for i, p in enumerate(packets) if p.is_keyframe]
    finally:
        container.close()


def _check_split(src_hashes: list[str], segments: list[Segment], fps: int) -> None:
    """Segments tile the source: contiguous frame ranges, each decoding alone to exactly its frames."""
    assert segments[0].start_frame == 0
    for prev, seg in zip(segments, segments[1:], strict=False):
        assert seg.start_frame == prev.start_frame + prev.frame_count
    assert sum(s.frame_count for s in segments) == len(src_hashes)
    joined: list[str] = []
    for seg in segments:
        assert _keyframe_indices(seg.path)[0] == 0
        hashes = _frame_hashes(seg.path)
        assert len(hashes) == seg.frame_count
        assert hashes == src_hashes[seg.start_frame : seg.start_frame + seg.frame_count]
        assert seg.start_time_s == pytest.approx(seg.start_frame / fps, abs=1e-6)
        joined += hashes
    assert joined == src_hashes


# -- synthetic clip: 10 s, 30 fps, keyframe every second, AAC, rotated ------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    _make_clip(path, rotation=90, tags={"title": "private title", "location": "+48.8583+002.2944/"})
    return path


def test_split_synthetic_clip_is_frame_exact(clip: Path, tmp_path: Path) -> None:
    segments = split_at_keyframes(clip, tmp_path, target_seconds=2.5)
    # Keyframes every 1 s: cuts at the first keyframe at or after 2.5, 5.0 and 7.5 s.
    assert [s.start_frame for s in segments] == [0, 90, 150, 240]
    assert [s.index for s in segments] == [0, 1, 2, 3]
    _check_split(_frame_hashes(clip), segments, fps=30)
    facts = _video_facts(segments[2].path)
    assert facts.audio_streams == 0
    assert facts.start_s == 0.0
    assert facts.rotation == _video_facts(clip).rotation != 0
    assert facts.metadata.get("title") is None


def test_reencoded_segments_join_with_source_audio(clip: Path, tmp_path: Path) -> None:
    segments = split_at_keyframes(clip, tmp_path / "split", target_seconds=2.5)
    encoded = _reencode_all(segments, tmp_path)
    out = tmp_path / "joined.mp4"
    concat_segments(encoded, out, audio_from=clip)

    src, got = _video_facts(clip), _video_facts(out)
    assert got.frames == src.frames == 300
    assert got.increasing and got.steps == src.steps  # no gap or overlap at the joins
    assert got.duration_s == pytest.approx(src.duration_s) == pytest.approx(10.0)
    assert got.start_s == src.start_s
    assert got.rotation == src.rotation != 0
    # The audio is the source's, packet for packet, on the same timeline.
    assert _audio_packets(out) == _audio_packets(clip)
    assert _stream_seconds(out) == pytest.approx(_stream_seconds(clip)) == pytest.approx(10.0, abs=0.03)
    # Identifying container tags are dropped unless asked for.
    assert "location" not in got.metadata and "title" not in got.metadata
    kept = tmp_path / "kept.mp4"
    concat_segments(encoded, kept, audio_from=clip, keep_metadata=True)
    assert _video_facts(kept).metadata["title"] == "private title"


def test_join_converts_audio_the_output_cannot_hold_to_aac(tmp_path: Path) -> None:
    """A camera's MOV with PCM sound, redacted to MP4: the join converts the sound, as a whole run does."""
    src = tmp_path / "camera.mov"
    _make_clip(src, seconds=4, audio_codec="pcm_s16le")
    segments = split_at_keyframes(src, tmp_path / "split", target_seconds=1.0)
    assert len(segments) == 4
    encoded = _reencode_all(segments, tmp_path)
    out = tmp_path / "joined.mp4"
    concat_segments(encoded, out, audio_from=src)

    before, after = probe(src), probe(out)
    assert [a.codec for a in before.audio] == ["pcm_s16le"]
    assert [a.codec for a in after.audio] == ["aac"]
    assert after.audio[0].duration == pytest.approx(before.audio[0].duration, abs=0.05)
    assert _video_facts(out).frames == 120


def test_join_keeps_a_late_video_start_in_sync_with_the_audio(tmp_path: Path) -> None:
    """The video starts 0.5 s after the audio; the joined file must keep that offset."""
    src = tmp_path / "late.mp4"
    _make_clip(src, seconds=4, first_pts=15)
    segments = split_at_keyframes(src, tmp_path / "split", target_seconds=1.5)
    assert [s.start_time_s for s in segments] == pytest.approx([0.0, 2.0, 3.0])
    encoded = _reencode_all(segments, tmp_path)
    out = tmp_path / "joined.mp4"
    concat_segments(encoded, out, audio_from=src)
    src_facts, got = _video_facts(src), _video_facts(out)
    assert src_facts.start_s == pytest.approx(0.5)
    assert got.start_s == pytest.approx(src_facts.start_s)
    assert got.frames == src_facts.frames == 120
    assert _audio_packets(out) == _audio_packets(src)


def test_join_without_audio_source(clip: Path, tmp_path: Path) -> None:
    segments = split_at_keyframes(clip, tmp_path, target_seconds=4)
    out = tmp_path / "joined.mp4"
    concat_segments([s.path for s in segments], out, audio_from=None)
    facts = _video_facts(out)
    assert facts.frames == 300 and facts.audio_streams == 0
    assert _frame_hashes(out) == _frame_hashes(clip)  # stream copy both ways: pixels unchanged


def test_join_refuses_segments_with_different_parameters(clip: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.mp4"
    _make_clip(other, seconds=1, size_wh=(128, 96), audio=False)
    out = tmp_path / "joined.mp4"
    with pytest.raises(MediaError, match="different parameters"):
        concat_segments([clip, other], out, audio_from=None)
    assert not out.exists()


def test_open_gop_keyframes_are_not_cut(tmp_path: Path) -> None:
    """Open-GOP keyframes have leading B-frames that need the previous GOP; cutting there
    would break frames, so the splitter keeps such a video whole."""
    src = tmp_path / "open.mp4"
    _make_clip(src, seconds=4, audio=False, open_gop=True)
    assert len(_keyframe_indices(src)) > 1
    segments = split_at_keyframes(src, tmp_path / "split", target_seconds=1)
    assert len(segments) == 1
    _check_split(_frame_hashes(src), segments, fps=30)


def test_short_target_never_cuts_between_keyframes(clip: Path, tmp_path: Path) -> None:
    segments = split_at_keyframes(clip, tmp_path, target_seconds=0.4)
    assert [s.start_frame for s in segments] == list(range(0, 300, 30))


def test_split_refuses_what_is_not_video(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 100)
    with pytest.raises(UnsupportedMedia):
        split_at_keyframes(text, tmp_path / "out", target_seconds=5)
    with pytest.raises(ValueError):
        split_at_keyframes(text, tmp_path / "out", target_seconds=0)


# -- real footage: the EgoBlur selfie clip (20 s, 30 fps, keyframe every 250 frames) -------


@pytest.mark.slow
def test_selfie_split_reencode_join(media_dir: Path, tmp_path: Path) -> None:
    """The worker round trip on real footage; frame-exactness of the split is checked below."""
    src = media_dir / SELFIE
    assert _keyframe_indices(src) == [0, 250, 500]  # so at most 3 segments
    segments = split_at_keyframes(src, tmp_path / "split", target_seconds=5)
    assert [(s.start_frame, s.frame_count) for s in segments] == [(0, 250), (250, 250), (500, 100)]

    encoded = _reencode_all(segments, tmp_path)
    out = tmp_path / "joined.mp4"
    concat_segments(encoded, out, audio_from=src)
    facts = _video_facts(out)
    assert facts.frames == 600 and facts.increasing and facts.steps == {512}
    assert facts.duration_s == pytest.approx(20.0)
    assert facts.audio_streams == 0


@pytest.mark.slow
def test_selfie_extended_splits_into_four_exact_segments(media_dir: Path, tmp_path: Path) -> None:
    """The selfie clip alone has only 3 keyframes (0, 250, 500). Followed by its own first
    250 frames it is 850 frames with 4, and splits into 4 segments on real footage."""
    src = media_dir / SELFIE
    head = split_at_keyframes(src, tmp_path / "head", target_seconds=5)[0]
    assert (head.start_frame, head.frame_count) == (0, 250)
    longer = tmp_path / "selfie-850.mp4"
    concat_segments([src, head.path], longer, audio_from=None)
    assert _keyframe_indices(longer) == [0, 250, 500, 600]
    segments = split_at_keyframes(longer, tmp_path / "split", target_seconds=5)
    assert [(s.start_frame, s.frame_count) for s in segments] == [
        (0, 250),
        (250, 250),
        (500, 100),
        (600, 250),
    ]
    source = _frame_hashes(src)
    _check_split(source + source[:250], segments, fps=30)
