"""`veil redact --categories text` end to end on a rendered document: every line masked, the page
around it left alone; and the spec's rules for the category."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError
from typer.testing import CliRunner

from tests.textset import text_set_tool
from veil.cli import app
from veil.media import read_image
from veil.spec import RedactionSpec


def _document_photo(media_dir: Path, path: Path, seed: int = 11) -> list[np.ndarray]:
    """A page photographed at a slant, written to ``path``; returns each line's quad."""
    tool = text_set_tool()
    rng = random.Random(seed)
    background, _, _ = tool.photo(rng, media_dir, (1280, 1280))
    page = tool.document(rng)
    quads = tool.place(background, page, centre=(640, 640), angle_deg=8.0, scale=0.9)
    Image.fromarray(background).save(path)
    return [np.asarray(q, dtype=np.float32) for q in quads]


def _share_changed(before: np.ndarray, after: np.ndarray, quad: np.ndarray) -> float:
    inside = np.zeros(before.shape[:2], np.uint8)
    cv2.fillPoly(inside, [quad.round().astype(np.int32)], 1)
    changed = np.any(before != after, axis=2)
    return float(changed[inside.astype(bool)].mean())


def test_every_line_of_a_document_is_masked(media_dir: Path, tmp_path: Path) -> None:
    src, out = tmp_path / "doc.png", tmp_path / "out.png"
    quads = _document_photo(media_dir, src)
    result = CliRunner().invoke(
        app, ["redact", str(src), "-o", str(out), "--categories", "text", "--method", "black"]
    )
    assert result.exit_code == 0, result.output
    before, after = read_image(src), read_image(out)
    shares = [_share_changed(before, after, q) for q in quads]
    assert min(shares) > 0.9, shares
    page_margin = np.zeros(before.shape[:2], bool)
    page_margin[1150:1200, 300:900] = True  # the bottom of the page, below the last line: blank paper
    assert not np.any(before != after, axis=2)[page_margin].any()


def test_text_is_off_by_default() -> None:
    assert "text" not in RedactionSpec().enabled_categories()
    spec = RedactionSpec.model_validate({"categories": {"face": {}, "text": {"only": "pii"}}})
    assert spec.enabled_categories() == ["face", "text"]


@pytest.mark.parametrize(
    "data",
    [
        {"categories": {"face": {"only": "pii"}}},
        {"categories": {"text": {}}, "personal_data": {"names": ["Anna"]}},
        {"categories": {"text": {"only": "pii"}}, "personal_data": {"id_formats": ["xx_id"]}},
    ],
)
def test_text_settings_that_would_do_nothing_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RedactionSpec.model_validate(data)


def test_text_only_without_the_text_category_is_an_error(media_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["redact", str(media_dir / "street.jpg"), "-o", str(tmp_path / "o.jpg"), "--text-only", "pii"]
    )
    assert result.exit_code != 0
    assert "--text-only needs the text category" in result.output


def _badge_photo(media_dir: Path, path: Path, seed: int = 5) -> tuple[list[np.ndarray], list[bool]]:
    tool = text_set_tool()
    rng = random.Random(seed)
    background, _, _ = tool.photo(rng, media_dir, (1280, 720))
    card = tool.badge(rng)
    quads = tool.place(background, card, centre=(640, 360), angle_deg=-12.0, scale=1.0)
    Image.fromarray(background).save(path)
    return [np.asarray(q, dtype=np.float32) for q in quads], card.pii


def test_text_only_pii_masks_email_phone_and_iban_and_leaves_the_rest_readable(
    media_dir: Path, tmp_path: Path
) -> None:
    tool = text_set_tool()
    rng = random.Random(11)
    background, _, _ = tool.photo(rng, media_dir, (1280, 1280))
    page = tool.document(rng)
    doc_quads = [
        np.asarray(q, np.float32)
        for q in tool.place(background, page, centre=(640, 640), angle_deg=6.0, scale=0.9)
    ]
    Image.fromarray(background).save(tmp_path / "doc.png")
    badge_quads, badge_pii = _badge_photo(media_dir, tmp_path / "badge.png")
    assert sum(page.pii) >= 3 and sum(badge_pii) == 2, "the document holds an e-mail, a phone and an IBAN"

    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        ["redact", str(tmp_path / "doc.png"), str(tmp_path / "badge.png"), "-o", str(tmp_path / "out"),
         "--categories", "text", "--text-only", "pii", "--method", "black", "--report", str(report)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name, quads, pii in (("doc", doc_quads, page.pii), ("badge", badge_quads, badge_pii)):
        before = read_image(tmp_path / f"{name}.png")
        after = read_image(tmp_path / "out" / f"{name}.png")
        for quad, is_pii in zip(quads, pii, strict=True):
            share = _share_changed(before, after, quad)
            if is_pii:
                assert share > 0.9, f"{name}: a personal-data line is left readable ({share:.2f} masked)"
            else:
                assert share < 0.1, f"{name}: an ordinary line is masked ({share:.2f})"
    text = report.read_text(encoding="utf-8")
    assert "@" not in text and "+49" not in text and "IBAN" not in text, "no recognised text in the report"
    labels = [t["label"] for doc in _report_documents(text) for t in doc["tracks"]]
    assert {"email", "phone", "iban"} <= set(labels) <= {"email", "phone", "iban", "card"}


def _report_documents(text: str) -> list[dict[str, Any]]:
    data = json.loads(text)
    return data if isinstance(data, list) else data.get("files", [data])  # type: ignore[no-any-return]
