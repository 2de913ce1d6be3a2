"""The API the review editor uses: the source media with Range, track ids checked in filters, and
following a drawn box through a video."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np

from tests.api.conftest import Api
from veil.jobs import blobs


def _moving_square_clip(path: Path, *, frames: int = 24) -> Path:
    """A textured 48 px square moving 4 px right per frame over a static textured background."""
    rng = np.random.default_rng(3)
    background = cv2.resize(rng.integers(60, 256, (30, 40, 3), dtype=np.uint8), (320, 240))
    square = cv2.resize(
        rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), (48, 48), interpolation=cv2.INTER_NEAREST
    )
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(frames):
            rgb = background.copy()
            rgb[80:128, 20 + 4 * i : 68 + 4 * i] = square
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_the_source_streams_with_ranges(api: Api) -> None:
    h = api.key()
    job = api.submit(h, spec='{"mode": "detect"}', params={"wait": 10}).json()
    source = (api.media / "street.jpg").read_bytes()
    whole = api.client.get(f"/v1/jobs/{job['id']}/source", headers=h)
    assert whole.status_code == 200 and whole.content == source
    assert whole.headers["content-type"] == "image/jpeg" and whole.headers["accept-ranges"] == "bytes"
    part = api.client.get(f"/v1/jobs/{job['id']}/source", headers={**h, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == source[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(source)}"
    other = api.key(tenant="other")
    assert api.client.get(f"/v1/jobs/{job['id']}/source", headers=other).status_code == 404
    assert api.client.get(f"/v1/jobs/{job['id']}/source").status_code == 401
    paths = api.client.get("/openapi.json").json()["paths"]
    assert "/v1/jobs/{job_id}/source" in paths and "/v1/jobs/{job_id}/track" in paths


def test_the_preview_streams_with_ranges_and_links_and_its_absence_says_why(api: Api, tmp_path: Path) -> None:
    """The detect job's preview (the pipeline makes it: tests/test_pipeline_containers.py), as served."""
    h = api.key()
    clip = _moving_square_clip(tmp_path / "square.mp4")
    files = {"file": ("square.mp4", clip.read_bytes(), "video/mp4"), "spec": (None, '{"mode": "detect"}')}
    with_preview = api.client.post("/v1/jobs", headers=h, files=files, params={"wait": 10}).json()
    without = api.client.post("/v1/jobs", headers=h, files=files, params={"wait": 10}).json()
    api.storage.put_file(blobs.preview_key(with_preview["id"]), clip)
    preview = clip.read_bytes()

    whole = api.client.get(f"/v1/jobs/{with_preview['id']}/preview", headers=h)
    assert whole.status_code == 200 and whole.content == preview
    assert whole.headers["content-type"] == "video/mp4" and whole.headers["accept-ranges"] == "bytes"
    part = api.client.get(f"/v1/jobs/{with_preview['id']}/preview", headers={**h, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == preview[10:20]
    made = api.client.post(f"/v1/jobs/{with_preview['id']}/links", headers=h, json={"file": "preview"})
    assert made.status_code == 201, made.text
    assert api.client.get(made.json()["url"]).content == preview  # a <video> needs no key
    other = api.key(tenant="other")
    assert api.client.get(f"/v1/jobs/{with_preview['id']}/preview", headers=other).status_code == 404
    assert api.client.get(f"/v1/jobs/{with_preview['id']}/preview").status_code == 401

    missing = api.client.get(f"/v1/jobs/{without['id']}/preview", headers=h)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert "browsers cannot show" in missing.json()["error"]["message"]
    refused = api.client.post(f"/v1/jobs/{without['id']}/links", headers=h, json={"file": "preview"})
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    assert "/v1/jobs/{job_id}/preview" in api.client.get("/openapi.json").json()["paths"]

    still = api.submit(h, spec='{"mode": "detect"}', params={"wait": 10}).json()
    api.storage.put_file(blobs.preview_key(still["id"], ".jpg"), api.media / "street.jpg")
    shown = api.client.get(f"/v1/jobs/{still['id']}/preview", headers=h)
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert shown.content == (api.media / "street.jpg").read_bytes()


def test_unknown_track_ids_in_a_filter_are_named(api: Api) -> None:
    h = api.key()
    detect = api.submit(h, spec='{"mode": "detect"}', params={"wait": 10}).json()
    spec = {"source_job": detect["id"], "filter": {"track_ids": [1, 77, 78], "scope": "exclude"}}
    refused = api.submit(h, spec=json.dumps(spec), file=None)
    assert refused.status_code == 422, refused.text
    message = refused.json()["error"]["message"]
    assert "77, 78" in message and "1," not in message
    styled = {"source_job": detect["id"], "track_styles": [{"track_id": 5, "method": "black"}]}
    refused = api.submit(h, spec=json.dumps(styled), file=None)
    assert refused.status_code == 422 and "unknown track ids 5" in refused.json()["error"]["message"]


def test_a_drawn_box_is_followed_through_the_video(api: Api, tmp_path: Path) -> None:
    h = api.key()
    clip = _moving_square_clip(tmp_path / "square.mp4")
    files = {"file": ("square.mp4", clip.read_bytes(), "video/mp4"), "spec": (None, '{"mode": "detect"}')}
    job = api.client.post("/v1/jobs", headers=h, files=files, params={"wait": 10}).json()
    response = api.client.post(
        f"/v1/jobs/{job['id']}/track", headers=h, json={"frame": 10, "box": [60, 80, 108, 128]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["first_frame"], body["last_frame"], body["frames_followed"]) == (0, 23, 24)
    assert body["stopped"] == {"backward": "video_end", "forward": "video_end"}
    # Linear motion needs only the two ends as keyframes; they sit on the square.
    frames = [k["frame"] for k in body["keyframes"]]
    assert frames[0] == 0 and frames[-1] == 23 and len(frames) <= 4
    for key in body["keyframes"]:
        x = 20 + 4 * key["frame"]
        assert np.abs(np.array(key["box"]) - [x, 80, x + 48, 128]).max() <= 2, key

    bad = api.client.post(f"/v1/jobs/{job['id']}/track", headers=h, json={"frame": 99, "box": [0, 0, 10, 10]})
    assert bad.status_code == 422 and "24 frames" in bad.json()["error"]["message"]
    outside = api.client.post(
        f"/v1/jobs/{job['id']}/track", headers=h, json={"frame": 1, "box": [400, 0, 410, 10]}
    )
    assert outside.status_code == 422
    extra = api.client.post(
        f"/v1/jobs/{job['id']}/track", headers=h, json={"frame": 1, "box": [0, 0, 10, 10], "speed": 2}
    )
    assert extra.status_code in (400, 422)
    image = api.submit(h, spec='{"mode": "detect"}', params={"wait": 10}).json()
    on_image = api.client.post(
        f"/v1/jobs/{image['id']}/track", headers=h, json={"frame": 0, "box": [0, 0, 9, 9]}
    )
    assert on_image.status_code == 409


def test_a_signed_link_plays_the_source_without_a_key(api: Api) -> None:
    h = api.key()
    job = api.submit(h, spec='{"mode": "detect"}', params={"wait": 10}).json()
    link = api.client.post(f"/v1/jobs/{job['id']}/links", headers=h, json={"file": "source"}).json()["url"]
    source = (api.media / "street.jpg").read_bytes()
    part = api.client.get(link, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == source[:10]
    # The signature covers the file: the same link made to point at the result is refused.
    assert api.client.get(link.replace("file=source&", "")).status_code == 403
    assert api.client.post(f"/v1/jobs/{job['id']}/links", headers=h).status_code == 409  # detect: no result


def test_the_page_and_its_modules_load_nothing_from_outside(api: Api) -> None:
    import re

    page = api.client.get("/review").text
    assets = re.findall(r'(?:src|href)="/review/([^"]+)"', page)
    seen: set[str] = set()
    while assets:
        name = assets.pop()
        if name in seen:
            continue
        seen.add(name)
        response = api.client.get(f"/review/{name}")
        assert response.status_code == 200, name
        assert not re.search(r"https?://", response.text), name  # no CDN, no third party
        assets += re.findall(r'from "\./([^"]+)"', response.text)
    assert {"review.js", "api.js", "jobs.js", "editor.js", "review.css"} <= seen
