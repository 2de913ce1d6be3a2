"""``RedactionSpec``, the request a CLI user or API client writes: sensible defaults, per-category
settings that fall back to the spec's, and a clear refusal of anything malformed, unknown, or that would
validate and then mask nothing."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from veil.spec import BUILTIN_CATEGORIES, CategorySpec, RedactionSpec


def _with(path: str, value: Any) -> dict[str, Any]:
    """A valid spec with ``value`` put at ``path`` (dots between keys, ``[i]`` for list items)."""
    spec: dict[str, Any] = {
        "categories": {"face": {}},
        "regions": [{"box": [0, 0, 10, 10], "start": 0.0, "end": 1.0}],
        "exclusion_zones": [{"box": [0, 0, 10, 10]}],
    }
    *parents, last = path.split(".")
    node: Any = spec
    for part in parents:
        name, _, index = part.partition("[")
        node = node.setdefault(name, {})
        if index:
            node = node[int(index.rstrip("]"))]
    name, _, index = last.partition("[")
    if index:
        node[name][int(index.rstrip("]"))] = value
    else:
        node[name] = value
    return spec


FLOAT_FIELDS = [
    "regions[0].box[0]",
    "regions[0].box[3]",
    "regions[0].start",
    "regions[0].end",
    "exclusion_zones[0].box[1]",
    "mask_scale",
    "categories.face.threshold",
    "categories.face.mask_scale",
    "mask_margin",
    "categories.face.mask_margin",
    "detection.detect_scale",
    "tracking.smooth",
]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("path", FLOAT_FIELDS)
def test_non_finite_numbers_are_refused_everywhere(path: str, value: float) -> None:
    text = json.dumps(_with(path, value))  # json.dumps writes NaN/Infinity, as a client would
    with pytest.raises(ValidationError, match="finite"):
        RedactionSpec.model_validate_json(text)
    with pytest.raises(ValidationError, match="finite"):
        RedactionSpec.model_validate(json.loads(text))


def test_the_spec_with_finite_numbers_is_valid() -> None:
    assert RedactionSpec.model_validate(_with("regions[0].box[0]", 1.5)).regions[0].box[0] == 1.5


def test_the_empty_spec_blurs_faces_and_plates() -> None:
    spec = RedactionSpec.model_validate({})
    assert spec.mode == "redact" and spec.method == "blur"
    assert spec.enabled_categories() == ["face", "license_plate"]
    assert set(spec.enabled_categories()) <= set(BUILTIN_CATEGORIES)
    assert spec.source_job is None and spec.regions == [] and spec.webhook is None
    assert spec.output.format == "auto" and not spec.output.keep_metadata, "metadata is dropped by default"


@pytest.mark.parametrize(
    ("spec", "category", "method", "shape", "mask_scale"),
    [
        ({}, "face", "blur", "ellipse", 1.3),
        ({}, "license_plate", "blur", "rect", 1.3),
        ({}, "my_logo", "blur", "rect", 1.3),  # a custom category: rect by default
        ({"method": "black", "shape": "rect", "mask_scale": 2.0}, "face", "black", "rect", 2.0),
        (
            {
                "method": "black",
                "categories": {"face": {"method": "pixelate", "shape": "rect", "mask_scale": 1.1}},
            },
            "face",
            "pixelate",
            "rect",
            1.1,
        ),
        ({"shape": "ellipse", "categories": {"license_plate": {}}}, "license_plate", "blur", "ellipse", 1.3),
    ],
    ids=["face-defaults", "plate-defaults", "custom-defaults", "spec-wide", "per-category", "spec-shape"],
)
def test_a_category_inherits_what_it_does_not_set(
    spec: dict[str, Any], category: str, method: str, shape: str, mask_scale: float
) -> None:
    parsed = RedactionSpec.model_validate(spec)
    assert parsed.method_for(category) == method
    assert parsed.shape_for(category) == shape
    assert parsed.mask_scale_for(category) == mask_scale


@pytest.mark.parametrize(
    ("spec", "margins"),
    [
        ({}, {"face": 8.0, "license_plate": 0.0, "my_logo": 0.0}),  # faces' boxes are the imprecise ones
        ({"mask_margin": 2}, {"face": 2.0, "license_plate": 2.0, "my_logo": 2.0}),
        (
            {"mask_margin": 0, "categories": {"license_plate": {"mask_margin": 3}}},
            {"face": 0.0, "license_plate": 3.0},
        ),
    ],
)
def test_mask_margin_defaults_to_eight_pixels_for_faces_only(
    spec: dict[str, Any], margins: dict[str, float]
) -> None:
    parsed = RedactionSpec.model_validate(spec)
    assert {c: parsed.mask_margin_for(c) for c in margins} == margins


def test_disabled_categories_are_left_out_in_the_order_written() -> None:
    spec = RedactionSpec.model_validate(
        {"categories": {"qr_code": {}, "face": {"enabled": False}, "license_plate": {}}}
    )
    assert spec.enabled_categories() == ["qr_code", "license_plate"]


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"methd": "blur"}, "methd"),
        ({"method": "smudge"}, "method"),
        ({"shape": "circle"}, "shape"),
        ({"mode": "review"}, "mode"),
        ({"mask_scale": 0.5}, "mask_scale"),
        ({"mask_scale": 3.5}, "mask_scale"),
        ({"mask_margin": -1}, "mask_margin"),
        ({"categories": {"face": {"mask_margin": 65}}}, "mask_margin"),
        ({"categories": {"face": {"threshold": 0}}}, "threshold"),
        ({"categories": {"face": {"threshold": 1.0}}}, "threshold"),
        ({"categories": {"face": {"treshold": 0.5}}}, "treshold"),
        ({"categories": {"Face": {}}}, "Face"),
        ({"categories": {"1face": {}}}, "1face"),
        ({"categories": {f"c{i}": {} for i in range(33)}}, "categories"),
        ({"detection": {"detect_every": 0}}, "detect_every"),
        ({"detection": {"detect_every": 31}}, "detect_every"),
        ({"detection": {"detect_scale": 0}}, "detect_scale"),
        ({"detection": {"image_search": "quick"}}, "image_search"),
        ({"tracking": {"smooth": 1.0}}, "smooth"),
        ({"output": {"format": "gif"}}, "format"),
        ({"output": {"crf": 52}}, "crf"),
        ({"output": {"jpeg_quality": 5}}, "jpeg_quality"),
        ({"webhook": {"url": "not a url"}}, "url"),
        ({"webhook": {"url": "ftp://example.org/hook"}}, "url"),
        ({"source_job": "j" * 65}, "source_job"),
    ],
)
def test_malformed_or_unknown_fields_are_refused_by_name(spec: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as info:
        RedactionSpec.model_validate(spec)
    assert where in str(info.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"regions": [{"box": [10, 10, 5, 20]}]}, "x1 < x2 and y1 < y2"),
        ({"regions": [{"box": [10, 10, 20, 10]}]}, "x1 < x2 and y1 < y2"),
        ({"regions": [{"box": [0, 0, 10, 10], "start": 5, "end": 2}]}, "end must not be before start"),
        ({"regions": [{"box": [0, 0, 10, 10], "start": -1}]}, "greater than or equal to 0"),
        ({"regions": [{"box": [0, 0, 10]}]}, "box"),
        ({"exclusion_zones": [{"box": [5, 5, 5, 9]}]}, "x1 < x2 and y1 < y2"),
        ({"filter": {"track_ids": [1]}}, "filter needs source_job"),
        ({"mode": "detect", "source_job": "job_1"}, "a detect job cannot take source_job"),
        ({"audio": {"mute": [{"start": 3, "end": 3}]}}, "end must be after start"),
        ({"audio": {"mute": [{"start": -1, "end": 3}]}}, "greater than or equal to 0"),
        ({"audio": {"remove": True, "mute": [{"start": 1, "end": 2}]}}, "mute needs the sound kept"),
        ({"mode": "detect", "audio": {"remove": True}}, "audio applies to redact jobs"),
        ({"audio": {"mute": [{"start": 1}]}}, "end"),
        ({"audio": {"silence": []}}, "silence"),
    ],
)
def test_inconsistent_requests_say_what_is_wrong(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RedactionSpec.model_validate(spec)


def test_a_spec_that_only_changes_the_sound_does_something() -> None:
    """Every category off and no regions masks nothing, unless the sound is removed or silenced: muting
    a spoken name is a redaction of its own."""
    quiet = {"categories": {"face": {"enabled": False}, "license_plate": {"enabled": False}}}
    assert RedactionSpec.model_validate(quiet).masks_nothing() is not None
    for audio in ({"remove": True}, {"mute": [{"start": 1.5, "end": 2.25}]}):
        assert RedactionSpec.model_validate({**quiet, "audio": audio}).masks_nothing() is None
    assert RedactionSpec().audio.changes_sound() is False  # by default the sound is kept


def test_a_review_render_with_regions_and_zones() -> None:
    spec = RedactionSpec.model_validate(
        {
            "source_job": "job_1",
            "filter": {"track_ids": [3, 4], "scope": "include"},
            "regions": [{"box": [0, 0, 40, 40], "start": 1.5, "end": 2.0, "method": "black"}],
            "exclusion_zones": [{"box": [100, 100, 200, 200]}],
        }
    )
    assert spec.filter is not None and spec.filter.scope == "include" and spec.filter.track_ids == [3, 4]
    assert spec.regions[0].shape == "rect" and spec.regions[0].box == (0.0, 0.0, 40.0, 40.0)
    assert RedactionSpec.model_validate({"source_job": "job_1", "filter": {}}).filter.scope == "exclude"  # type: ignore[union-attr]


def test_a_spec_survives_a_json_round_trip_and_is_immutable() -> None:
    spec = RedactionSpec.model_validate(
        {"categories": {"face": {"threshold": 0.4}}, "webhook": {"url": "https://example.org/hook"}}
    )
    again = RedactionSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    with pytest.raises(ValidationError):
        spec.method = "black"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        CategorySpec(threshold=0.5).threshold = 0.1  # type: ignore[misc]


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    seen.add(model)
    for field in model.model_fields.values():
        for arg in (field.annotation, *getattr(field.annotation, "__args__", ())):
            for inner in (arg, *getattr(arg, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in seen:
                    _models(inner, seen)


def test_every_field_a_client_reads_in_the_schema_is_described() -> None:
    models: set[type[BaseModel]] = set()
    _models(RedactionSpec, models)
    assert len(models) >= 9
    undocumented = [
        f"{model.__name__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if not field.description
        and not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel))
    ]
    assert not undocumented, undocumented
