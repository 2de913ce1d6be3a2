"""No silent no-ops, in process: unknown query parameters, unknown form fields and seed-style names from
other redaction APIs are 400s that name them (and the Veil equivalent); a spec that masks nothing is 422."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import Api
from veil.api.params import SEED_EQUIVALENTS, equivalent_of


def test_unknown_query_parameters_are_named(api: Api) -> None:
    r = api.submit(api.key(), params={"face": "false", "method": "pixelate", "callbackUrl": "https://x"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "unknown_parameter"
    for name in ("`face`", "`method`", "`callbackUrl`"):
        assert name in error["message"]
    assert '"webhook": {"url"' in error["message"] and "`pixelate`" in error["message"]
    assert "`wait`" in error["message"], "the message lists what the endpoint takes"


def test_a_mask_margin_sent_as_a_query_parameter_points_to_the_spec_field(api: Api) -> None:
    r = api.submit(api.key(), params={"maskMargin": "8"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_parameter"
    assert '`maskMargin` (Veil: spec `"mask_margin": 8` (pixels)' in r.json()["error"]["message"]


def test_unknown_query_parameter_on_a_get_is_refused_and_known_ones_work(api: Api) -> None:
    h = api.key()
    bad = api.client.get("/v1/jobs", headers=h, params={"limit": 5, "page": 2})
    assert bad.status_code == 400 and "`page`" in bad.json()["error"]["message"]
    assert api.client.get("/v1/jobs", headers=h, params={"limit": 5}).status_code == 200


def test_unknown_form_fields_are_all_named(api: Api) -> None:
    r = api.client.post(
        "/v1/jobs",
        headers=api.key(),
        files={
            "blurringKind": (None, "HighBlur"),
            "blacken": (None, "true"),
            "categories[]": (None, "face"),
            "spec": (None, "{}"),
        },
    )
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert r.json()["error"]["code"] == "unknown_parameter"
    assert '`blurringKind` (Veil: spec `"method"`' in message
    assert '`blacken` (Veil: spec `"method": "black"`)' in message
    assert '`categories[]` (Veil: spec `"categories"' in message
    assert "takes: `file`, `spec`" in message


def test_seed_names_inside_the_spec_get_the_equivalent(api: Api) -> None:
    r = api.submit(api.key(), spec=json.dumps({"blurringKind": "HighBlur"}))
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert 'blurringKind: Extra inputs are not permitted (Veil: spec `"method"`' in message


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"categories": {}}, "masks nothing"),
        ({"categories": {"face": {"enabled": False}}}, "masks nothing"),
        ({"mode": "detect", "categories": {}}, "finds nothing"),
    ],
)
def test_a_spec_that_masks_nothing_is_refused(api: Api, spec: dict, fragment: str) -> None:
    r = api.submit(api.key(), spec=json.dumps(spec))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_spec"
    assert fragment in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "masks",
    [
        {"regions": [{"box": [0, 0, 10, 10]}]},
        {"tracked_regions": [{"keyframes": [{"frame": 0, "box": [0, 0, 10, 10]}]}]},
    ],
)
def test_regions_alone_are_a_real_redaction(api: Api, masks: dict) -> None:
    spec = {"categories": {}, **masks}
    assert api.submit(api.key(), spec=json.dumps(spec)).status_code == 202


def test_every_equivalent_names_a_veil_field() -> None:
    assert equivalent_of("BlurringKind") == SEED_EQUIVALENTS["blurringkind"]
    assert equivalent_of("no_such_thing") is None
    for name, hint in SEED_EQUIVALENTS.items():
        assert name == name.lower() and ("spec `" in hint or "`file`" in hint or hint.startswith("none:"))
