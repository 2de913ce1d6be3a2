"""Make the labelled text dev set: lines of text with known boxes, on real photos and synthetic
badges and documents, plus hard negatives. Deterministic: the same seed gives the same files.

    python tools/make_text_set.py OUT_DIR [--seed 7] [--media ../shared/data/media]

writes ``OUT_DIR/images/*.jpg`` and two COCO label files for ``veil eval --format coco``:

* ``text.json``: every line of text (its box is the upright bounding box of the rotated line);
* ``text_pii.json``: only the lines holding personal data under Veil's default ``only: pii``
  patterns (e-mail, phone, IBAN, card number, national ID). Names alone are not in it: they count
  only when a request lists them.

Scenes (``--count`` of each kind, default 16):

* ``doc``: a printed page (letter, invoice, form) photographed at a slant on top of a photo;
* ``badge``: a name badge (name, role, company, e-mail, phone) on a photo, tilted up to 30 degrees;
* ``scene``: signs and captions written straight onto a photo, tilted up to 40 degrees, some with an
  outline, some on a plate;
* ``neg``: hard negatives, no text added: crops of the photos, stripes, grids, brick and bar patterns.

The photos are the media stills in ``../shared/data/media``. ``city_crowd.jpg`` shows real text
(a sweater print and a kiosk sign): those lines are labelled by eye below (``_REAL_TEXT``) wherever a
crop keeps them. Fonts are the one scalable font bundled with Pillow and OpenCV's Hershey fonts, so
the output does not depend on the fonts a machine has. Every line is one run of words with single
spaces: a line is what a reader sees as one line.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

Quad = npt.NDArray[np.float64]
RGBA = npt.NDArray[np.uint8]

_MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media"
_PHOTOS = ("city_crowd.jpg", "faces_2560.png", "plates_fisheye.png", "street.jpg")
_REAL_TEXT: dict[str, list[tuple[float, float, float, float, bool]]] = {
    # x1, y1, x2, y2, is personal data; labelled by eye on the full photo.
    "city_crowd.jpg": [(47, 213, 99, 242, False), (516, 31, 555, 39, False), (503, 39, 571, 49, False)],
}
_HERSHEY = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
)

FIRST = ["Anna", "Jonas", "Maria", "Lukas", "Sofia", "Pieter", "Elena", "Tomasz", "Claire", "Ahmed",
         "Ingrid", "Marco", "Julia", "David", "Nora", "Felix", "Lea", "Samuel", "Ines", "Oskar"]  # fmt: skip
LAST = ["Schmidt", "de Vries", "Rossi", "Kowalski", "Dubois", "Jensen", "Garcia", "Novak", "Becker",
        "Lindqvist", "Moreau", "Janssen", "Fischer", "Costa", "Meyer", "Horvat", "Silva"]  # fmt: skip
COMPANY = ["Nordlicht GmbH", "Acme Logistics", "Blue Harbour BV", "Kestrel Systems", "Vantaa Oy",
           "Meridian Labs", "Atlas Freight", "Orchid Health"]  # fmt: skip
ROLE = ["Visitor", "Engineer", "Site Manager", "Security", "Nurse", "Contractor", "Reception", "Driver"]
WORDS = (
    "the of and to delivery report meeting schedule invoice order project total please note room "
    "floor building access valid until service customer account reference payment due amount "
    "contract period monthly annual review approved signature date page summary"
).split()
STREETS = ["Hauptstrasse", "Kerkstraat", "Via Roma", "Rue de la Paix", "High Street", "Storgatan"]
CITIES = [
    "10115 Berlin",
    "1012 Amsterdam",
    "00184 Roma",
    "75002 Paris",
    "SW1A 1AA London",
    "111 22 Stockholm",
]


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def _iban(rng: random.Random) -> str:
    country, bban = rng.choice(
        [
            ("DE", "".join(rng.choice("0123456789") for _ in range(18))),
            ("NL", "ABNA" + "".join(rng.choice("0123456789") for _ in range(10))),
            ("GB", "NWBK" + "".join(rng.choice("0123456789") for _ in range(14))),
            ("FR", "".join(rng.choice("0123456789") for _ in range(23))),
        ]
    )
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    iban = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def _card(rng: random.Random) -> str:
    body = rng.choice(["4", "51", "52", "37"]) + "".join(rng.choice("0123456789") for _ in range(13))
    body = body[:15]
    number = body + _luhn_digit(body)
    return " ".join(number[i : i + 4] for i in range(0, 16, 4))


def _phone(rng: random.Random) -> str:
    d = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
    return rng.choice(
        [
            f"+49 30 {d(7)}",
            f"+31 20 {d(3)} {d(4)}",
            f"0170 {d(7)}",
            f"+44 20 {d(4)} {d(4)}",
            f"(555) {d(3)}-{d(4)}",
            f"+46 8 {d(3)} {d(2)} {d(2)}",
        ]
    )


def _person(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    domain = rng.choice(["example.com", "mail.example.org", "nordlicht.de", "acme.co.uk"])
    return f"{first} {last}", f"{first.lower()}.{last.lower().replace(' ', '')}@{domain}"


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return text[0].upper() + text[1:]


def _plain_line(rng: random.Random) -> str:
    return rng.choice(
        [
            lambda: _sentence(rng, rng.randint(3, 8)),
            lambda: f"Order No. {rng.randint(1000, 9999)}",
            lambda: f"Date {rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{rng.randint(2019, 2026)}",
            lambda: f"Total EUR {rng.randint(10, 9999)},{rng.randint(0, 99):02d}",
            lambda: f"{rng.choice(STREETS)} {rng.randint(1, 120)}",
            lambda: rng.choice(CITIES),
            lambda: f"Room {rng.randint(1, 5)}.{rng.randint(1, 40):02d}",
            lambda: f"Page {rng.randint(1, 3)} of 3",
        ]
    )()


# --- drawing --------------------------------------------------------------------------------------


@dataclass
class Layer:
    """An RGBA picture and the quads (its own pixels) of the lines drawn on it."""

    rgba: RGBA
    quads: list[Quad] = field(default_factory=list)
    pii: list[bool] = field(default_factory=list)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def draw_line(
    layer: Layer,
    text: str,
    xy: tuple[int, int],
    *,
    size: int,
    color: tuple[int, int, int],
    pii: bool,
    hershey: int | None = None,
    stroke: tuple[int, int, int] | None = None,
) -> tuple[int, int]:
    """Write ``text`` with its top-left ink corner near ``xy``; records its ink box. Returns (w, h)."""
    x, y = xy
    if hershey is None:
        image = Image.fromarray(layer.rgba)
        draw = ImageDraw.Draw(image)
        font = _font(size)
        width = max(1, size // 12) if stroke else 0
        fill = (*stroke, 255) if stroke else None
        draw.text((x, y), text, font=font, fill=(*color, 255), stroke_width=width, stroke_fill=fill)
        x1, y1, x2, y2 = draw.textbbox((x, y), text, font=font, stroke_width=width)
        layer.rgba[...] = np.asarray(image)
    else:
        scale = size / 30.0
        thick = max(1, round(size / 16))
        (w, h), base = cv2.getTextSize(text, hershey, scale, thick)
        origin = (x, y + h)
        if stroke is not None:
            cv2.putText(layer.rgba, text, origin, hershey, scale, (*stroke, 255), thick + 2, cv2.LINE_AA)
        cv2.putText(layer.rgba, text, origin, hershey, scale, (*color, 255), thick, cv2.LINE_AA)
        x1, y1, x2, y2 = x - thick, y - thick, x + w + thick, y + h + base // 2 + thick
    layer.quads.append(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64))
    layer.pii.append(pii)
    return x2 - x1, y2 - y1


def place(
    background: npt.NDArray[np.uint8],
    layer: Layer,
    *,
    centre: tuple[float, float],
    angle_deg: float,
    scale: float,
) -> list[Quad]:
    """Composite ``layer`` onto ``background`` (in place), rotated and scaled about its centre and
    moved to ``centre``; returns its line quads in background pixels."""
    h, w = layer.rgba.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, scale)
    matrix[:, 2] += np.array(centre) - np.array([w / 2, h / 2])
    bh, bw = background.shape[:2]
    warped = cv2.warpAffine(layer.rgba, matrix, (bw, bh), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
    alpha = warped[:, :, 3:4].astype(np.float32) / 255.0
    blended = background.astype(np.float32) * (1 - alpha) + warped[:, :, :3].astype(np.float32) * alpha
    background[...] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return [np.hstack([q, np.ones((4, 1))]) @ matrix.T for q in layer.quads]


def photo(
    rng: random.Random, media: Path, size: tuple[int, int]
) -> tuple[npt.NDArray[np.uint8], list[Quad], list[bool]]:
    """A crop of a media still resized to ``size`` (w, h), with the real text lines it keeps."""
    name = rng.choice(_PHOTOS)
    with Image.open(media / name) as im:
        full = np.asarray(im.convert("RGB"))
    fh, fw = full.shape[:2]
    tw, th = size
    crop_scale = rng.uniform(0.6, 1.0) * min(fw / tw, fh / th)
    cw, ch = int(tw * crop_scale), int(th * crop_scale)
    x0, y0 = rng.randint(0, fw - cw), rng.randint(0, fh - ch)
    crop = cv2.resize(full[y0 : y0 + ch, x0 : x0 + cw], (tw, th), interpolation=cv2.INTER_AREA)
    quads: list[Quad] = []
    pii: list[bool] = []
    for x1, y1, x2, y2, is_pii in _REAL_TEXT.get(name, []):
        if x1 >= x0 and y1 >= y0 and x2 <= x0 + cw and y2 <= y0 + ch:
            box = (np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]) - [x0, y0]) / crop_scale
            quads.append(box)
            pii.append(is_pii)
    return np.ascontiguousarray(crop), quads, pii


def _choose_font(rng: random.Random) -> int | None:
    return None if rng.random() < 0.6 else rng.choice(_HERSHEY)


# --- scenes ---------------------------------------------------------------------------------------


def document(rng: random.Random) -> Layer:
    width, height = 900, 1200
    paper = (rng.randint(235, 255), rng.randint(235, 255), rng.randint(225, 250), 255)
    layer = Layer(np.zeros((height, width, 4), dtype=np.uint8))
    layer.rgba[...] = paper
    ink = rng.choice([(20, 20, 20), (30, 30, 90), (60, 20, 20)])
    y = 70
    name, email = _person(rng)
    hershey = _choose_font(rng)
    _, h = draw_line(layer, rng.choice(COMPANY), (70, y), size=44, color=ink, pii=False, hershey=hershey)
    y += h + 50
    entries: list[tuple[str, bool]] = [
        (name, False),
        (f"{rng.choice(STREETS)} {rng.randint(1, 99)}", False),
        (rng.choice(CITIES), False),
        (f"E-mail {email}", True),
        (f"Phone {_phone(rng)}", True),
        (f"IBAN {_iban(rng)}", True),
    ]
    if rng.random() < 0.4:
        entries.append((f"Card {_card(rng)}", True))
    entries += [(_plain_line(rng), False) for _ in range(rng.randint(3, 5))]
    rng.shuffle(entries)
    size = rng.randint(24, 34)
    for text, pii in entries:
        if y > height - 80:
            break
        _, h = draw_line(layer, text, (70, y), size=size, color=ink, pii=pii, hershey=_choose_font(rng))
        y += h + rng.randint(int(size * 0.7), int(size * 1.4))
    return layer


def badge(rng: random.Random) -> Layer:
    width, height = 560, 360
    layer = Layer(np.zeros((height, width, 4), dtype=np.uint8))
    layer.rgba[...] = (250, 250, 250, 255)
    band = (rng.randint(0, 120), rng.randint(40, 140), rng.randint(100, 200), 255)
    layer.rgba[:90] = band
    name, email = _person(rng)
    draw_line(layer, rng.choice(COMPANY), (28, 26), size=34, color=(255, 255, 255), pii=False)
    draw_line(layer, name, (28, 112), size=46, color=(20, 20, 20), pii=False, hershey=_choose_font(rng))
    draw_line(layer, rng.choice(ROLE), (28, 180), size=28, color=(70, 70, 70), pii=False)
    draw_line(layer, email, (28, 240), size=24, color=(20, 20, 20), pii=True, hershey=_choose_font(rng))
    draw_line(layer, _phone(rng), (28, 295), size=24, color=(20, 20, 20), pii=True)
    return layer


def _sign(rng: random.Random) -> Layer:
    plate = rng.random() < 0.5
    text, pii = rng.choice(
        [
            (_sentence(rng, rng.randint(1, 4)), False),
            (f"Call {_phone(rng)}", True),
            (_person(rng)[1], True),
            (rng.choice(COMPANY), False),
            (f"Exit {rng.randint(1, 9)}", False),
        ]
    )
    size = rng.randint(28, 60)
    width = int(size * 0.62 * len(text)) + 80
    layer = Layer(np.zeros((size * 3, width, 4), dtype=np.uint8))
    if plate:
        layer.rgba[...] = (*rng.choice([(240, 240, 240), (20, 90, 40), (20, 40, 120), (250, 200, 0)]), 255)
        color = (20, 20, 20) if layer.rgba[0, 0, :3].mean() > 128 else (255, 255, 255)
        stroke = None
    else:
        color = rng.choice([(255, 255, 255), (255, 230, 0), (20, 20, 20)])
        stroke = (0, 0, 0) if color != (20, 20, 20) else (255, 255, 255)
    w, _ = draw_line(
        layer,
        text,
        (30, size // 2),
        size=size,
        color=color,
        pii=pii,
        hershey=_choose_font(rng),
        stroke=stroke,
    )
    layer.rgba = np.ascontiguousarray(layer.rgba[:, : min(width, w + 70)])
    return layer


def _negative(rng: random.Random, media: Path, size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    kind = rng.choice(["photo", "stripes", "grid", "bricks", "bars"])
    w, h = size
    if kind == "photo":
        image, quads, _ = photo(rng, media, size)
        if quads:  # keep negatives free of real text
            image = _negative(rng, media, size)
        return image
    base = np.full((h, w, 3), rng.randint(90, 200), dtype=np.uint8)
    dark = tuple(int(v) for v in rng.choice([(30, 30, 30), (80, 40, 20), (20, 60, 90)]))
    if kind == "stripes":
        step = rng.randint(8, 30)
        for x in range(0, w + h, step * 2):
            cv2.line(base, (x, 0), (x - h, h), dark, max(2, step // 2))
    elif kind == "grid":
        step = rng.randint(20, 60)
        for x in range(0, w, step):
            cv2.line(base, (x, 0), (x, h), dark, 2)
        for y in range(0, h, step):
            cv2.line(base, (0, y), (w, y), dark, 2)
    elif kind == "bricks":
        bh, bw = rng.randint(20, 40), rng.randint(60, 120)
        for row, y in enumerate(range(0, h, bh)):
            cv2.line(base, (0, y), (w, y), dark, 3)
            for x in range((row % 2) * bw // 2, w, bw):
                cv2.line(base, (x, y), (x, y + bh), dark, 3)
    else:  # a barcode-like block and vertical bars
        x = rng.randint(50, 200)
        while x < w - 50:
            bar = rng.randint(2, 9)
            cv2.rectangle(base, (x, h // 4), (x + bar, 3 * h // 4), dark, -1)
            x += bar + rng.randint(2, 12)
    return base


# --- the set --------------------------------------------------------------------------------------


Scene = Callable[[random.Random, Path, int], tuple[npt.NDArray[np.uint8], list[Quad], list[bool]]]


def _doc_scene(
    rng: random.Random, media: Path, _i: int
) -> tuple[npt.NDArray[np.uint8], list[Quad], list[bool]]:
    background, quads, pii = photo(rng, media, (1280, 1280))
    page = document(rng)
    placed = place(background, page, centre=(640 + rng.uniform(-40, 40), 640 + rng.uniform(-40, 40)),
                    angle_deg=rng.uniform(-12, 12), scale=rng.uniform(0.85, 1.0))  # fmt: skip
    return background, quads + placed, pii + page.pii


def _badge_scene(
    rng: random.Random, media: Path, _i: int
) -> tuple[npt.NDArray[np.uint8], list[Quad], list[bool]]:
    size = rng.choice([(1920, 1080), (1280, 720), (1080, 1350)])
    background, quads, pii = photo(rng, media, size)
    card = badge(rng)
    scale = rng.uniform(0.6, 1.2) * size[0] / 1920
    centre = (rng.uniform(0.3, 0.7) * size[0], rng.uniform(0.35, 0.65) * size[1])
    placed = place(background, card, centre=centre, angle_deg=rng.uniform(-30, 30), scale=max(scale, 0.55))
    return background, quads + placed, pii + card.pii


def _sign_scene(
    rng: random.Random, media: Path, _i: int
) -> tuple[npt.NDArray[np.uint8], list[Quad], list[bool]]:
    size = rng.choice([(1920, 1080), (1280, 720)])
    background, quads, pii = photo(rng, media, size)
    boxes: list[tuple[float, float, float, float]] = []
    for _ in range(rng.randint(2, 4)):
        sign = _sign(rng)
        for _attempt in range(20):
            centre = (rng.uniform(0.15, 0.85) * size[0], rng.uniform(0.15, 0.85) * size[1])
            angle = rng.uniform(-40, 40)
            h, w = sign.rgba.shape[:2]
            reach = np.hypot(w, h) / 2
            box = (centre[0] - reach, centre[1] - reach, centre[0] + reach, centre[1] + reach)
            inside = box[0] >= 0 and box[1] >= 0 and box[2] <= size[0] and box[3] <= size[1]
            apart = all(box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3] for b in boxes)
            if inside and apart:
                boxes.append(box)
                quads += place(background, sign, centre=centre, angle_deg=angle, scale=1.0)
                pii += sign.pii
                break
    return background, quads, pii


def _neg_scene(
    rng: random.Random, media: Path, _i: int
) -> tuple[npt.NDArray[np.uint8], list[Quad], list[bool]]:
    return _negative(rng, media, rng.choice([(1920, 1080), (1280, 720)])), [], []


SCENES: dict[str, Scene] = {"doc": _doc_scene, "badge": _badge_scene, "scene": _sign_scene, "neg": _neg_scene}


def generate(out_dir: Path, *, seed: int = 7, count: int = 16, media: Path = _MEDIA) -> dict[str, int]:
    """Write the set to ``out_dir``; returns how many images and lines (all, personal data) it holds."""
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    coco_all: dict[str, list[dict[str, object]]] = {
        "images": [],
        "annotations": [],
        "categories": [{"id": 1, "name": "text"}],
    }
    coco_pii: dict[str, list[dict[str, object]]] = {
        "images": [],
        "annotations": [],
        "categories": [{"id": 1, "name": "text"}],
    }
    lines = pii_lines = 0
    image_id = 0
    for kind, scene in SCENES.items():
        for i in range(count):
            rng = random.Random(f"{seed}-{kind}-{i}")
            image, quads, pii = scene(rng, media, i)
            image_id += 1
            name = f"{kind}{i:02d}.jpg"
            Image.fromarray(image).save(images_dir / name, quality=92)
            h, w = image.shape[:2]
            entry = {"id": image_id, "file_name": name, "width": w, "height": h}
            coco_all["images"].append(entry)
            coco_pii["images"].append(entry)
            for quad, is_pii in zip(quads, pii, strict=True):
                x1, y1 = np.clip(quad.min(axis=0), 0, [w, h])
                x2, y2 = np.clip(quad.max(axis=0), 0, [w, h])
                ann = {
                    "id": lines + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [
                        round(float(x1), 1),
                        round(float(y1), 1),
                        round(float(x2 - x1), 1),
                        round(float(y2 - y1), 1),
                    ],
                    "segmentation": [[round(float(v), 1) for v in quad.reshape(-1)]],
                    "area": round(float((x2 - x1) * (y2 - y1)), 1),
                    "iscrowd": 0,
                }
                lines += 1
                coco_all["annotations"].append(ann)
                if is_pii:
                    pii_lines += 1
                    coco_pii["annotations"].append(ann)
    (out_dir / "text.json").write_text(json.dumps(coco_all) + "\n", encoding="utf-8")
    (out_dir / "text_pii.json").write_text(json.dumps(coco_pii) + "\n", encoding="utf-8")
    return {"images": image_id, "lines": lines, "pii_lines": pii_lines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--count", type=int, default=16, help="Images of each scene kind.")
    parser.add_argument("--media", type=Path, default=_MEDIA, help="Directory of the media stills.")
    args = parser.parse_args()
    print(json.dumps(generate(args.out_dir, seed=args.seed, count=args.count, media=args.media)))


if __name__ == "__main__":
    main()
