"""Image I/O: pixels in stored orientation, and outputs that carry no identifying metadata unless asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

from veil.errors import CorruptMedia, UnsupportedMedia
from veil.media import ImageFormat, image_orientation, probe, read_image, write_image

GPS = ExifTags.IFD.GPSInfo
EXIF = ExifTags.IFD.Exif
MAKE, MODEL, ORIENTATION, SOFTWARE = 0x010F, 0x0110, 0x0112, 0x0131
BODY_SERIAL, MAKER_NOTE = 0xA431, 0x927C
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>'
    b'<rdf:Description creator="Jane Doe"/></rdf:RDF></x:xmpmeta>'
)
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def camera_jpeg(tmp_path: Path) -> Path:
    """A 60x40 (stored) photo as a phone writes it.

    Portrait via Orientation 6, plus GPS, serial, maker note, XMP, comment and an ICC profile.
    """
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, :30] = (200, 30, 30)
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[MAKE], exif[MODEL], exif[SOFTWARE], exif[ORIENTATION] = "Apple", "iPhone 15", "17.1", 6
    exif[EXIF] = {BODY_SERIAL: "SN-0042", MAKER_NOTE: b"Apple iOS\x00secret"}
    exif[GPS] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    path = tmp_path / "phone.jpg"
    image.save(path, "JPEG", exif=exif.tobytes(), xmp=XMP, comment=b"taken at home", icc_profile=SRGB_ICC)
    return path


@pytest.mark.parametrize("name", ["city_crowd.jpg", "street.jpg", "faces_2560.png", "plates_fisheye.png"])
def test_read_real_images_as_rgb(media_dir: Path, name: str) -> None:
    rgb = read_image(media_dir / name)
    info = probe(media_dir / name)
    assert rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    assert rgb.shape == (info.height, info.width, 3)
    assert rgb.std() > 10  # real picture content, not a blank frame


def test_greyscale_wider_than_8_bits_reads_as_its_8_bit_picture(media_dir: Path, tmp_path: Path) -> None:
    with Image.open(media_dir / "city_crowd.jpg") as photo:
        grey = np.asarray(photo.convert("L"))
    full_range = tmp_path / "full.png"  # 0..65535, as cameras and scanners write 16 bits
    Image.fromarray(grey.astype(np.uint16) * 257).save(full_range)
    eight_in_sixteen = tmp_path / "eight.png"  # 0..255 in a 16-bit file, as some tools convert
    Image.fromarray(grey.astype(np.uint16)).save(eight_in_sixteen)
    floats = tmp_path / "float.tiff"  # 0.0..1.0, as scientific tools write
    Image.fromarray(grey.astype(np.float32) / 255).save(floats)

    for path, mode in ((full_range, "I;16"), (eight_in_sixteen, "I;16"), (floats, "F")):
        with Image.open(path) as stored:
            assert stored.mode == mode
        rgb = read_image(path)
        assert rgb.shape == (*grey.shape, 3)
        # the same picture, not one scaled into black (where no face would be found either)
        assert np.array_equal(rgb[:, :, 0], grey) and np.array_equal(rgb[:, :, 2], grey), path.name


def test_16_bit_colour_reads_as_its_8_bit_picture(media_dir: Path, tmp_path: Path) -> None:
    """Pillow reads 48-bit PNGs and 16-bit TIFFs by their high bytes: 8-bit values kept in such a file (as
    numpy code writes them) would all be 0, a black picture with no face found."""
    import cv2

    with Image.open(media_dir / "city_crowd.jpg") as photo:
        rgb = np.asarray(photo.convert("RGB"))
    bgr16 = rgb[:, :, ::-1].astype(np.uint16)
    cases = {
        "full.png": bgr16 * 257,  # 0..65535, as cameras and raw converters write
        "eight.png": bgr16,  # 0..255 in a 16-bit file
        "full.tiff": bgr16 * 257,
        "alpha.png": np.dstack([bgr16 * 257, np.full(rgb.shape[:2], 65535, np.uint16)]),
    }
    for name, samples in cases.items():
        assert cv2.imwrite(str(tmp_path / name), samples)
        assert np.array_equal(read_image(tmp_path / name), rgb), name


def test_a_rotated_heic_reads_upright_and_asks_for_no_more_rotation(media_dir: Path, tmp_path: Path) -> None:
    """An iPhone stores the camera's rotation in the HEIC; the decoder applies it to the pixels, so the
    output must not carry an EXIF rotation on top (it would turn the picture twice)."""
    from pillow_heif import register_heif_opener

    register_heif_opener()
    with Image.open(media_dir / "city_crowd.jpg") as photo:
        exif = photo.getexif()
        exif[ExifTags.Base.Orientation] = 6  # rotated 90 degrees clockwise for display
        photo.save(tmp_path / "IMG_0002.heic", quality=90, exif=exif.tobytes())
    rgb = read_image(tmp_path / "IMG_0002.heic")
    assert rgb.shape == (800, 564, 3)  # upright: the 800x564 photo stands on its side
    assert image_orientation(tmp_path / "IMG_0002.heic") == 1
    assert probe(tmp_path / "IMG_0002.heic").rotation == 0


def test_read_keeps_stored_orientation(camera_jpeg: Path) -> None:
    rgb = read_image(camera_jpeg)
    assert rgb.shape == (40, 60, 3)  # not transposed to the displayed 40x60
    assert rgb[:, :30, 0].mean() > 150 and rgb[:, 30:, 0].mean() < 50
    assert image_orientation(camera_jpeg) == 6
    assert probe(camera_jpeg).rotation == 90


def test_orientation_defaults_to_1(media_dir: Path) -> None:
    assert image_orientation(media_dir / "city_crowd.jpg") == 1


def test_read_refuses_video_and_text(media_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia):
        read_image(media_dir / "selfie_portrait_noaudio.mp4")
    text = tmp_path / "a.jpg"
    text.write_text("not an image")
    with pytest.raises(UnsupportedMedia):
        read_image(text)


def test_read_truncated_png_is_corrupt(media_dir: Path, tmp_path: Path) -> None:
    data = (media_dir / "faces_2560.png").read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptMedia):
        read_image(cut)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_output_is_stripped_except_orientation_and_icc(
    camera_jpeg: Path, tmp_path: Path, fmt: ImageFormat
) -> None:
    out = tmp_path / f"out.{fmt}"
    write_image(out, read_image(camera_jpeg), fmt=fmt, quality=90, source=camera_jpeg, keep_metadata=False)
    with Image.open(out) as image:
        exif = image.getexif()
        assert dict(exif) == {ORIENTATION: 6}  # displays as the input did; nothing else
        assert not exif.get_ifd(GPS) and not exif.get_ifd(EXIF)
        assert image.info.get("icc_profile") == SRGB_ICC
        assert "xmp" not in image.info and "comment" not in image.info
        assert image.size == (60, 40)
    raw = out.read_bytes()
    for secret in (b"iPhone", b"SN-0042", b"Jane Doe", b"taken at home", b"secret"):
        assert secret not in raw


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_keep_metadata_copies_exif_xmp_and_icc(camera_jpeg: Path, tmp_path: Path, fmt: ImageFormat) -> None:
    out = tmp_path / f"out.{fmt}"
    write_image(out, read_image(camera_jpeg), fmt=fmt, quality=90, source=camera_jpeg, keep_metadata=True)
    with Image.open(out) as image:
        exif = image.getexif()
        assert (exif[MAKE], exif[MODEL], exif[ORIENTATION]) == ("Apple", "iPhone 15", 6)
        assert exif.get_ifd(GPS)[1] == "N"
        assert exif.get_ifd(EXIF)[BODY_SERIAL] == "SN-0042"
        assert image.info.get("icc_profile") == SRGB_ICC
        xmp = image.info.get("xmp")
        assert xmp is not None and b"Jane Doe" in (xmp if isinstance(xmp, bytes) else xmp.encode())


def test_write_without_source_has_no_metadata(tmp_path: Path) -> None:
    out = tmp_path / "plain.jpg"
    write_image(
        out, np.full((10, 12, 3), 128, np.uint8), fmt="jpeg", quality=80, source=None, keep_metadata=False
    )
    with Image.open(out) as image:
        assert not image.getexif() and "icc_profile" not in image.info


def test_png_round_trip_is_lossless_and_jpeg_quality_matters(media_dir: Path, tmp_path: Path) -> None:
    rgb = read_image(media_dir / "city_crowd.jpg")
    write_image(tmp_path / "a.png", rgb, fmt="png", quality=90, source=None, keep_metadata=False)
    assert np.array_equal(read_image(tmp_path / "a.png"), rgb)
    write_image(tmp_path / "hi.jpg", rgb, fmt="jpeg", quality=95, source=None, keep_metadata=False)
    write_image(tmp_path / "lo.jpg", rgb, fmt="jpeg", quality=30, source=None, keep_metadata=False)
    assert (tmp_path / "hi.jpg").stat().st_size > 2 * (tmp_path / "lo.jpg").stat().st_size


@pytest.mark.parametrize(
    ("array", "fmt", "quality"),
    [
        (np.zeros((4, 4), np.uint8), "png", 90),
        (np.zeros((4, 4, 3), np.float32), "png", 90),
        (np.zeros((4, 4, 3), np.uint8), "gif", 90),
        (np.zeros((4, 4, 3), np.uint8), "jpeg", 0),
    ],
)
def test_write_rejects_bad_arguments(tmp_path: Path, array: np.ndarray, fmt: str, quality: int) -> None:
    out = tmp_path / "x.img"
    with pytest.raises(ValueError):
        write_image(out, array, fmt=fmt, quality=quality, source=None, keep_metadata=False)  # type: ignore[arg-type]
    assert not out.exists()
