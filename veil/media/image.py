"""Still images in and out, with identifying metadata stripped by default.

Frames are read in stored orientation (no EXIF transpose) so that boxes line
up with the pixels; the output gets the source's EXIF Orientation back, so a
viewer turns it exactly as it turned the input. Everything else that can
identify a person or a device (GPS, serial numbers, maker notes, XMP, IPTC,
comments, the EXIF thumbnail, which would show the unmasked picture) is left
out unless the caller asks to keep metadata; even then the EXIF thumbnail is
never copied, since it would leak the unredacted image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFile, PngImagePlugin

from veil.errors import CorruptMedia, MediaError, UnsupportedMedia
from veil.frames import RGBFrame, as_rgb_frame
from veil.media.orientation import ORIENTATION_TAG, orientation_of
from veil.media.probe import open_image
from veil.media.sniff import Sniffed, sniff

__all__ = ["ImageFormat", "image_orientation", "orientation_of", "read_image", "write_image"]

ImageFormat = Literal["jpeg", "png", "webp"]

_PIL_FORMAT: dict[str, str] = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


def read_image(path: Path) -> RGBFrame:
    """Decode an image to an RGB frame in stored orientation (EXIF Orientation is not applied).

    Alpha is dropped, 16-bit and floating-point samples are scaled to 8 bits (8-bit samples in a
    16-bit file are kept as they are), palettes and greyscale are expanded. Raises
    ``UnsupportedMedia``, ``CorruptMedia`` or ``MediaTooLarge`` (Pillow's decompression-bomb guard).
    """
    sniffed = sniff(path)
    if sniffed.kind != "image":
        raise UnsupportedMedia("expected an image, got a video")
    image = open_image(path, sniffed)
    with image:
        if _has_16_bit_colour(image):
            return _read_16_bit_colour(path, sniffed)
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise CorruptMedia(f"{sniffed.container} image data is truncated or damaged") from exc
        return _to_rgb(image)


def _has_16_bit_colour(image: Image.Image) -> bool:
    """Colour with 16 bits a sample (48-bit PNG, 16-bit TIFF), which Pillow reads by its high bytes only."""
    if image.mode not in ("RGB", "RGBA") or not isinstance(image, ImageFile.ImageFile) or not image.tile:
        return False
    args = image.tile[0][3]
    rawmode = args[0] if isinstance(args, tuple) and args else args
    return isinstance(rawmode, str) and ";16" in rawmode


def _read_16_bit_colour(path: Path, sniffed: Sniffed) -> RGBFrame:
    """Decode all 16 bits with OpenCV (the size was checked when Pillow opened the header), then scale as
    for greyscale: 8-bit samples kept in a 16-bit file stay as they are instead of rounding to black."""
    data = np.fromfile(path, dtype=np.uint8)
    samples = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if samples is None or samples.ndim != 3 or samples.shape[2] not in (3, 4):
        raise CorruptMedia(f"{sniffed.container} image data is truncated or damaged")
    wide = samples[:, :, 2::-1].astype(np.float64)  # BGR(A) to RGB, alpha dropped
    rgb = np.clip(np.rint(wide * (255 / _white_level(wide))), 0, 255).astype(np.uint8)
    return as_rgb_frame(np.ascontiguousarray(rgb))


def image_orientation(path: Path) -> int:
    """The EXIF Orientation (1..8) of an image; 1 when it has none or it is malformed."""
    sniffed = sniff(path)
    if sniffed.kind != "image":
        raise UnsupportedMedia("expected an image, got a video")
    with open_image(path, sniffed) as image:
        return orientation_of(image)


def write_image(
    dst: Path,
    rgb: RGBFrame,
    *,
    fmt: ImageFormat,
    quality: int,
    source: Path | None,
    keep_metadata: bool,
) -> None:
    """Encode ``rgb`` to ``dst`` as ``fmt``.

    ``quality`` (1..100) applies to JPEG and WebP. From ``source`` the output
    always takes the ICC profile (colours) and EXIF Orientation (display);
    with ``keep_metadata`` it also takes the rest of the EXIF and the XMP.
    A partly written file is removed on failure.
    """
    if fmt not in _PIL_FORMAT:
        raise ValueError(f"unknown image format {fmt!r}; expected one of {sorted(_PIL_FORMAT)}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be within 1..100, got {quality}")
    frame = as_rgb_frame(rgb)
    meta = _read_source_metadata(source) if source is not None else _SourceMetadata()
    params: dict[str, object] = {}
    if meta.icc_profile:
        params["icc_profile"] = meta.icc_profile
    exif = meta.exif if keep_metadata and meta.exif is not None else Image.Exif()
    if meta.orientation != 1:
        exif[ORIENTATION_TAG] = meta.orientation
    else:
        exif.pop(ORIENTATION_TAG, None)
    if len(exif):
        params["exif"] = exif.tobytes()
    if keep_metadata and meta.xmp:
        if fmt == "png":
            info = PngImagePlugin.PngInfo()
            info.add_itxt("XML:com.adobe.xmp", meta.xmp.decode("utf-8", "replace"))
            params["pnginfo"] = info
        else:
            params["xmp"] = meta.xmp
    if fmt in ("jpeg", "webp"):
        params["quality"] = quality
    image = Image.fromarray(frame)
    try:
        image.save(dst, format=_PIL_FORMAT[fmt], **params)
    except BaseException as exc:
        dst.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise MediaError(f"could not write the {fmt} output") from exc
        raise


@dataclass(slots=True)
class _SourceMetadata:
    orientation: int = 1
    exif: Image.Exif | None = None
    xmp: bytes | None = None
    icc_profile: bytes | None = None


def _read_source_metadata(source: Path) -> _SourceMetadata:
    sniffed = sniff(source)
    if sniffed.kind != "image":
        return _SourceMetadata()
    with open_image(source, sniffed) as image:
        try:
            exif: Image.Exif | None = image.getexif()
        except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError):
            exif = None
        xmp = image.info.get("xmp")
        if isinstance(xmp, str):
            xmp = xmp.encode("utf-8")
        icc = image.info.get("icc_profile")
        return _SourceMetadata(
            orientation=orientation_of(image),
            exif=exif if exif is not None and len(exif) else None,
            xmp=xmp if isinstance(xmp, bytes) and xmp else None,
            icc_profile=icc if isinstance(icc, bytes) and icc else None,
        )


def _to_rgb(image: Image.Image) -> RGBFrame:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        samples = np.nan_to_num(np.asarray(image, dtype=np.float64))
        white = _white_level(samples, floating=image.mode == "F")
        grey = np.clip(np.rint(samples * (255 / white)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    converted = image if image.mode == "RGB" else image.convert("RGB")
    return np.ascontiguousarray(np.asarray(converted, dtype=np.uint8))


def _white_level(samples: npt.NDArray[np.float64], *, floating: bool = False) -> float:
    """The white level of samples wider than 8 bits: 65535, or 255 for 8-bit values stored in a 16-bit
    file (as some tools write them; scaled as 16-bit they would all round to black, and so would the
    output), or 1.0 for floating-point samples in 0..1."""
    top = float(samples.max(initial=0.0))
    if floating and top <= 1.0:
        return 1.0
    return 255.0 if top <= 255 else 65535.0
