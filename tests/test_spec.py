"""The spec refuses values that would validate and then mask nothing."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from veil.spec import RedactionSpec


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
