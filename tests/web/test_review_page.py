"""The review editor (``/review``) in a real browser against a real ``veil serve``.

Headless Chromium from Debian's ``chromium`` and ``chromium-driver`` packages drives the page, so its
JavaScript modules run exactly as in a user's browser. ``.ci/run`` installs both; on a machine without
them the tests are skipped with the reason. Every check of a rendered video is by pixels of the
downloaded file. Set ``REVIEW_SCREENSHOTS=docs/img`` to refresh the README's screenshots.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from tests.live_server import LiveServer
from tests.media.synthetic import export_clip, loudness
from tests.video import selfie_head
from veil.client import Client

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
SLOW = 900  # seconds: detection of a few hundred frames on a busy 2-core CI box


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,720"):
        options.add_argument(flag)
    options.add_argument("--autoplay-policy=no-user-gesture-required")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(live_server: LiveServer) -> LiveServer:
    """The session's live server; this module's key acts for a tenant of its own."""
    return live_server


@pytest.fixture(scope="module")
def api_key(server: LiveServer) -> str:
    return str(server.create_key(name="review-page", tenant="review")["key"])


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("REVIEW_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- driving the page ------------------------------------------------------------------------------------


def _wait(browser: Any, seconds: float = 60) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds, poll_frequency=0.2)


def _by_id(browser: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, element_id)


def _login(browser: Any, server: LiveServer, key: str) -> None:
    browser.get(f"{server.url}/review#/jobs")
    _wait(browser).until(lambda d: _by_id(d, "key").is_displayed() or _by_id(d, "logout").is_displayed())
    if _by_id(browser, "logout").is_displayed():
        _by_id(browser, "logout").click()
    _by_id(browser, "key").clear()
    _by_id(browser, "key").send_keys(key)
    _by_id(browser, "login-button").click()
    _wait(browser).until(lambda d: _by_id(d, "jobs-view").is_displayed())


def _upload_and_open(browser: Any, path: Path) -> str:
    """Upload on the job list (which starts a detect job) and wait until its page shows the tracks."""
    _by_id(browser, "file").send_keys(str(path))
    _wait(browser, SLOW).until(lambda d: d.current_url.split("#")[-1].startswith("/job/"))
    _wait(browser, 120).until(lambda d: _by_id(d, "stage").get_attribute("data-ready") == "true")
    return str(browser.current_url.split("#/job/")[-1])


def _seek(browser: Any, frame: int) -> None:
    browser.execute_script(
        "const s = document.getElementById('seek'); s.value = arguments[0];"
        "s.dispatchEvent(new Event('input'));",
        frame,
    )
    _wait(browser).until(lambda d: _by_id(d, "frame-label").text.startswith(f"frame {frame} /"))
    _wait(browser).until(
        lambda d: d.execute_script("return document.getElementById('video').seeking") is False
    )


class Keys:
    ARROW_LEFT = "\ue012"
    ARROW_RIGHT = "\ue014"


def _press(browser: Any, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).send_keys(key).perform()


def _draw(browser: Any, box: tuple[float, float, float, float], *, width: int, key: bool = True) -> None:
    """Press ``b`` (or the button) and drag ``box`` (source pixels) on the picture, as a reviewer does."""
    from selenium.webdriver.common.action_chains import ActionChains

    if key:
        browser.execute_script("document.activeElement.blur()")  # a focused <select> keeps its keys
        _press(browser, "b")
    else:
        _by_id(browser, "draw").click()
    overlay = _by_id(browser, "overlay")
    _wait(browser).until(lambda d: "drawing-mode" in (overlay.get_attribute("class") or ""))
    size = overlay.size
    k = size["width"] / width
    cx, cy = size["width"] / 2, size["height"] / 2
    x1, y1, x2, y2 = (
        round(box[0] * k - cx),
        round(box[1] * k - cy),
        round(box[2] * k - cx),
        round(box[3] * k - cy),
    )
    actions = ActionChains(browser)
    actions.move_to_element_with_offset(overlay, x1, y1).click_and_hold()
    actions.move_to_element_with_offset(overlay, (x1 + x2) // 2, (y1 + y2) // 2)
    actions.move_to_element_with_offset(overlay, x2, y2).release().perform()
    _wait(browser).until(lambda d: _by_id(d, "pending").is_displayed())


def _set_method(browser: Any, method: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(_by_id(browser, "sel-method")).select_by_value(method)


def _lane(browser: Any, kind: str, ident: str | int) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, f'.lane[data-type="{kind}"][data-id="{ident}"]')


def _render_and_download(browser: Any) -> bytes:
    _by_id(browser, "render").click()
    link = _wait(browser, SLOW).until(
        lambda d: _by_id(d, "download").is_displayed() and _by_id(d, "download").get_attribute("href")
    )
    # The page now plays the redacted result in the same player.
    _wait(browser, 60).until(lambda d: _by_id(d, "view-toggle").is_selected())
    response = httpx.get(link, timeout=120)
    assert response.status_code == 200
    return response.content


def _no_horizontal_scroll(browser: Any) -> None:
    for width, height in ((1280, 720), (1920, 1080)):
        browser.set_window_size(width, height)
        _wait(browser).until(lambda d, w=width: d.execute_script("return window.innerWidth") > w - 40)
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (width, height, overflow)
    browser.set_window_size(1280, 720)


# --- reading pixels ---------------------------------------------------------------------------------------


def _frames(data: bytes | Path) -> Iterator[np.ndarray]:
    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with av.open(source) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def _crop(rgb: np.ndarray, box: list[float] | tuple[float, ...], inset: int = 0) -> np.ndarray:
    x1, y1, x2, y2 = (round(v) for v in box)
    h, w = rgb.shape[:2]
    return rgb[max(0, y1 + inset) : min(h, y2 - inset), max(0, x1 + inset) : min(w, x2 - inset)].astype(
        np.int16
    )


def _box_at(keyframes: list[dict[str, Any]], frame: int) -> list[float] | None:
    frames = [k["frame"] for k in keyframes]
    if frame < frames[0] or frame > frames[-1]:
        return None
    return [float(np.interp(frame, frames, [k["box"][i] for k in keyframes])) for i in range(4)]


def _black(patch: np.ndarray) -> bool:
    return patch.size > 0 and float(patch.mean()) < 30


def _same(a: np.ndarray, b: np.ndarray, tolerance: float = 6.0) -> bool:
    return float(np.abs(a - b).mean()) < tolerance


# --- the tests --------------------------------------------------------------------------------------------

LOGO = (405.0, 523.0, 452.0, 565.0)
"""The logo on the shirt in selfie_portrait_noaudio.mp4 at frame 100 (source pixels)."""
WALL = (34.0, 34.0, 186.0, 186.0)
"""Plain wall at the top left of the selfie clip, far from the face."""


def test_selfie_keep_the_face_track_a_logo_mask_a_second_and_render(
    browser: Any, server: LiveServer, api_key: str, media_dir: Path, shots: Path, tmp_path: Path
) -> None:
    src = selfie_head(media_dir, tmp_path)  # the whole review loop happens in its first 250 frames
    _login(browser, server, api_key)
    job_id = _upload_and_open(browser, src)
    with Client(server.url, api_key, timeout=60) as client:
        tracks = client.report(job_id)["tracks"]
    faces = [t for t in tracks if t["category"] == "face"]
    assert faces, tracks
    face = max(faces, key=lambda t: len(t["frames"]))

    # 2. unmask the face track from its lane
    _lane(browser, "track", face["id"]).find_element("css selector", ".toggle").click()
    assert "off" in (_lane(browser, "track", face["id"]).get_attribute("class") or "")
    assert browser.execute_script("return window.veilEditor.buildSpec().filter") == {
        "track_ids": [face["id"]],
        "scope": "exclude",
    }

    # 3. a box over the logo at frame 100, followed by the server
    _seek(browser, 100)
    _draw(browser, LOGO, width=608)
    _by_id(browser, "pending-track").click()
    _wait(browser, 180).until(lambda d: d.find_elements("css selector", '.lane[data-type="region"]'))
    _set_method(browser, "black")
    tracked = browser.execute_script("return window.veilEditor.buildSpec().tracked_regions[0].keyframes")
    first, last = tracked[0]["frame"], tracked[-1]["frame"]
    assert first <= 100 <= last and last - first >= 30, (first, last)
    browser.find_element("css selector", ".workspace").screenshot(str(shots / "review-region.png"))

    # 4. a box over the wall for one second only, from frame 200
    _seek(browser, 200)
    _draw(browser, WALL, width=608, key=False)
    end = _by_id(browser, "pending-end")
    end.clear()
    end.send_keys(f"{230 / 30:.4f}")
    _by_id(browser, "pending-until").click()
    _set_method(browser, "black")
    spec = browser.execute_script("return window.veilEditor.buildSpec()")
    second = spec["tracked_regions"][1]["keyframes"]
    assert [k["frame"] for k in second] == [200, 230]
    browser.set_window_size(1440, 1000)  # room for the player and the timeline in one picture
    _wait(browser).until(lambda d: d.execute_script("return window.innerWidth") > 1400)
    browser.execute_script("window.veilEditor.seek(200)")
    browser.save_screenshot(str(shots / "review-job.png"))
    timeline = _by_id(browser, "timeline")
    browser.execute_script("arguments[0].scrollIntoView()", timeline)
    timeline.screenshot(str(shots / "review-timeline.png"))
    _no_horizontal_scroll(browser)

    # 5. render, then check the downloaded result by pixels
    result = _render_and_download(browser)
    wall = second[0]["box"]
    face_boxes = {f["frame"]: f["box"] for f in face["frames"]}
    counted = {"face": 0, "tracked": 0, "second": 0, "outside": 0}
    for index, (out, before) in enumerate(zip(_frames(result), _frames(src), strict=True)):
        if index in face_boxes:
            assert _same(_crop(out, face_boxes[index], 4), _crop(before, face_boxes[index], 4)), index
            counted["face"] += 1
        logo = _box_at(tracked, index)
        if logo is not None:
            assert _black(_crop(out, logo, 3)), (index, logo)
            counted["tracked"] += 1
        if 200 <= index <= 230:
            assert _black(_crop(out, wall, 3)), index
            counted["second"] += 1
        elif index in (199, 231):
            assert _same(_crop(out, wall, 3), _crop(before, wall, 3)), index
        if index < 100:
            keep = np.ones(out.shape[:2], dtype=bool)
            if logo is not None:
                x1, y1, x2, y2 = (round(v) for v in logo)
                keep[max(0, y1 - 6) : y2 + 6, max(0, x1 - 6) : x2 + 6] = False
            diff = np.abs(out.astype(np.int16) - before.astype(np.int16))[keep]
            assert float(diff.mean()) < 3.0, (index, float(diff.mean()))
            counted["outside"] += 1
    assert counted["face"] >= 200 and counted["second"] == 31 and counted["outside"] == 100, counted
    assert counted["tracked"] == last - first + 1


# Centres of the rear plate of the blue car on the right of plates_fisheye_audio.mp4, by hand
# (the detector finds it in 2 of the 24 frames).
PLATE = (1995.0, 1070.0, 2055.0, 1145.0)
PLATE_CENTRES = {
    0: (2025, 1110),
    4: (2135, 1190),
    8: (2455, 1215),
    12: (2443, 1215),
    16: (2365, 1235),
    20: (2478, 1365),
    23: (2490, 1370),
}


def test_fisheye_a_missed_plate_drawn_once_and_tracked_is_masked_in_every_frame(
    browser: Any, server: LiveServer, api_key: str, media_dir: Path
) -> None:
    src = media_dir / "plates_fisheye_audio.mp4"
    _login(browser, server, api_key)
    _upload_and_open(browser, src)
    _seek(browser, 0)
    _draw(browser, PLATE, width=2560)
    _by_id(browser, "pending-track").click()
    _wait(browser, 180).until(lambda d: d.find_elements("css selector", '.lane[data-type="region"]'))
    _set_method(browser, "black")
    keyframes = browser.execute_script("return window.veilEditor.buildSpec().tracked_regions[0].keyframes")
    assert (keyframes[0]["frame"], keyframes[-1]["frame"]) == (0, 23)  # visible in every frame
    # The keyboard alone: arrows step, space plays and pauses, m switches the selected region off and on.
    browser.execute_script("document.activeElement.blur()")
    _press(browser, Keys.ARROW_RIGHT)
    _wait(browser).until(lambda d: _by_id(d, "frame-label").text.startswith("frame 1 /"))
    _press(browser, Keys.ARROW_LEFT)
    _wait(browser).until(lambda d: _by_id(d, "frame-label").text.startswith("frame 0 /"))
    _press(browser, " ")
    _wait(browser).until(lambda d: _by_id(d, "play").text == "Pause")
    _press(browser, " ")
    _wait(browser).until(lambda d: _by_id(d, "play").text == "Play")
    _seek(browser, 0)
    _press(browser, "m")
    assert browser.execute_script("return window.veilEditor.buildSpec().tracked_regions") == []
    _press(browser, "m")
    result = _render_and_download(browser)
    seen = 0
    for index, (out, before) in enumerate(zip(_frames(result), _frames(src), strict=True)):
        if index in PLATE_CENTRES:
            cx, cy = PLATE_CENTRES[index]
            patch = (cx - 8, cy - 8, cx + 8, cy + 8)
            assert float(_crop(before, patch).mean()) > 60, index  # the plate is bright in the source
            assert _black(_crop(out, patch)), index
            seen += 1
        box = _box_at(keyframes, index)
        assert box is not None and _black(_crop(out, box, 3)), index
    assert seen == len(PLATE_CENTRES)


def test_a_photo_gets_the_page_without_a_timeline(
    browser: Any, server: LiveServer, api_key: str, media_dir: Path
) -> None:
    photo = media_dir / "city_crowd.jpg"
    _login(browser, server, api_key)
    job_id = _upload_and_open(browser, photo)
    assert not _by_id(browser, "controls").is_displayed()
    assert not browser.find_elements("css selector", ".lane-bar")
    assert not _by_id(browser, "sound").is_displayed()  # a photo has no sound to silence
    with Client(server.url, api_key, timeout=60) as client:
        tracks = {t["id"]: t for t in client.report(job_id)["tracks"]}
    assert len(tracks) >= 2
    browser.find_element("css selector", '.category[data-category="face"] .keep-all').click()
    ticked = min(tracks)
    _lane(browser, "track", ticked).find_element("css selector", ".toggle").click()
    result = np.asarray(Image.open(io.BytesIO(_render_and_download(browser))).convert("RGB"))
    source = np.asarray(Image.open(photo).convert("RGB"))
    assert result.shape == source.shape

    def change(box: list[float]) -> float:
        return float(np.abs(_crop(result, box) - _crop(source, box)).mean())

    masked = change(tracks[ticked]["frames"][0]["box"])
    others = [change(t["frames"][0]["box"]) for i, t in tracks.items() if i != ticked]
    assert float(np.median(others)) < 5 and masked > 4 * float(np.median(others)), (masked, others)


def test_a_spoken_name_is_silenced_from_the_timeline_and_the_render_is_quiet_there(
    browser: Any, server: LiveServer, api_key: str, media_dir: Path, tmp_path: Path, shots: Path
) -> None:
    """A body-camera clip with sound: the reviewer marks 0.5-1.2 s at two frames, the span shows on the
    timeline, and the rendered file is silent there and keeps its sound on both sides."""
    clip = export_clip(media_dir / "selfie_portrait_noaudio.mp4", tmp_path / "bodycam.mp4", frames=60)
    _login(browser, server, api_key)
    _upload_and_open(browser, clip)
    assert _by_id(browser, "sound").is_displayed()

    _seek(browser, 36)
    _by_id(browser, "silence-start-here").click()
    _seek(browser, 15)
    _by_id(browser, "silence-end-here").click()
    _by_id(browser, "silence-add").click()  # backwards: refused, with the reason
    assert "later end" in _by_id(browser, "sound-status").text
    assert not browser.find_elements("css selector", "#silences li")

    _by_id(browser, "silence-start-here").click()
    _seek(browser, 36)
    _by_id(browser, "silence-end-here").click()
    _by_id(browser, "silence-add").click()
    assert browser.execute_script("return window.veilEditor.buildSpec().audio") == {
        "mute": [{"start": 0.5, "end": 1.2}]
    }
    assert browser.find_elements("css selector", '.lane[data-type="silence"] .span')
    from selenium.webdriver.support.ui import Select

    Select(_by_id(browser, "silence-fill")).select_by_value("bleep")
    assert browser.execute_script("return window.veilEditor.buildSpec().audio.fill") == "bleep"
    Select(_by_id(browser, "silence-fill")).select_by_value("silence")  # the render below checks silence
    assert "fill" not in browser.execute_script("return window.veilEditor.buildSpec().audio")
    browser.set_window_size(1440, 1000)  # the sound panel and the timeline in one picture
    _wait(browser).until(lambda d: d.execute_script("return window.innerWidth") > 1400)
    _seek(browser, 30)
    browser.save_screenshot(str(shots / "review-sound.png"))

    result = tmp_path / "result.mp4"
    result.write_bytes(_render_and_download(browser))
    assert loudness(result, 0.53, 1.17) < 0.002
    assert loudness(result, 0.05, 0.47) > 0.1 and loudness(result, 1.23, 1.9) > 0.1


def test_a_wrong_key_is_shown_as_the_apis_error(browser: Any, server: LiveServer) -> None:
    browser.get(f"{server.url}/review#/jobs")
    _wait(browser).until(lambda d: _by_id(d, "key").is_displayed() or _by_id(d, "logout").is_displayed())
    if _by_id(browser, "logout").is_displayed():
        _by_id(browser, "logout").click()
    _by_id(browser, "key").send_keys("veil_not-a-key")
    _by_id(browser, "login-button").click()
    status = _wait(browser, 30).until(lambda d: _by_id(d, "login-status").text)
    assert status.startswith("unauthorized:") and "error" in (
        _by_id(browser, "login-status").get_attribute("class") or ""
    )
    assert not _by_id(browser, "jobs-view").is_displayed()


def test_drawn_regions_are_adjusted_trimmed_deleted_and_zones_drawn(
    browser: Any, server: LiveServer, api_key: str, media_dir: Path
) -> None:
    """On a video reviewed earlier in this module, opened from the job list."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    _login(browser, server, api_key)
    with Client(server.url, api_key, timeout=60) as client:
        reviewed = [j for j in client.iter_jobs(limit=20) if j.mode == "detect" and j.state == "succeeded"]
    if not any(j.input["media"]["kind"] == "video" for j in reviewed):  # run on its own: make one
        _upload_and_open(browser, media_dir / "plates_fisheye_audio.mp4")
        _login(browser, server, api_key)
    rows = _wait(browser, 30).until(
        lambda d: [
            r
            for r in d.find_elements("css selector", '#job-list tbody tr[data-state="succeeded"]')
            if r.find_elements("css selector", "a.open") and "video" in r.text
        ]
    )
    rows[0].find_element("css selector", "a.open").click()
    _wait(browser, 120).until(lambda d: _by_id(d, "stage").get_attribute("data-ready") == "true")
    width = browser.execute_script("return window.veilEditor.state().width")
    spec = lambda: browser.execute_script("return window.veilEditor.buildSpec()")  # noqa: E731

    # A box from frame 5 to 1 s later, then trimmed to end at frame 8.
    _seek(browser, 5)
    _draw(browser, (100.0, 100.0, 400.0, 300.0), width=width)
    fps = browser.execute_script("return window.veilEditor.state().fps")
    end = _by_id(browser, "pending-end")
    end.clear()
    end.send_keys(f"{(5 + fps) / fps:.4f}")
    _by_id(browser, "pending-until").click()
    assert [k["frame"] for k in spec()["tracked_regions"][0]["keyframes"]] == [5, 5 + round(fps)]
    _seek(browser, 8)
    _by_id(browser, "sel-end").click()
    assert [k["frame"] for k in spec()["tracked_regions"][0]["keyframes"]] == [5, 8]

    # Dragging the box on frame 8 moves it there: a keyframe with the new box.
    box = browser.find_element("css selector", ".box.region.selected")
    k = _by_id(browser, "overlay").size["width"] / width
    ActionChains(browser).click_and_hold(box).move_by_offset(20, 10).move_by_offset(
        20, 10
    ).release().perform()
    moved = spec()["tracked_regions"][0]["keyframes"][-1]
    assert moved["frame"] == 8
    assert (
        abs(moved["box"][0] - (100 + 40 / k)) < 2 / k + 1
        and abs(moved["box"][1] - (100 + 20 / k)) < 2 / k + 1
    )

    # Delete removes the selected region.
    browser.execute_script("document.activeElement.blur()")
    _press(browser, "\ue017")  # Delete
    assert spec()["tracked_regions"] == []
    assert not browser.find_elements("css selector", '.lane[data-type="region"]')

    # An exclusion zone is drawn the same way and has a time span.
    _draw(browser, (10.0, 10.0, 200.0, 200.0), width=width, key=False)
    Select(_by_id(browser, "pending-kind")).select_by_value("zone")
    assert not _by_id(browser, "pending-track").is_enabled()  # zones do not move
    _by_id(browser, "pending-frame").click()
    zones = spec()["exclusion_zones"]
    assert len(zones) == 1 and zones[0]["start"] < 8 / fps < zones[0]["end"] < 9 / fps


def test_a_dvr_export_the_browser_cannot_play_is_reviewed_on_its_preview(
    browser: Any, server: LiveServer, api_key: str, media_dir: Path, tmp_path: Path, shots: Path
) -> None:
    """Last in the module: the earlier tests open the newest video job, and this one's is short and
    loses its preview."""
    selfie = media_dir / "selfie_portrait_noaudio.mp4"
    dvr = export_clip(selfie, tmp_path / "dvr.ts", fmt="mpegts", video="libx264", audio="mp2", options={})
    player = "return document.getElementById('video')"
    _login(browser, server, api_key)
    job_id = _upload_and_open(browser, dvr)
    # the player plays the detect job's H.264 preview of the MPEG-TS file, frame by frame
    assert "plays here as a preview" in _by_id(browser, "job-status").text
    assert browser.execute_script(f"{player}.error") is None
    assert browser.execute_script(f"{player}.src").split("?")[0].endswith(f"/v1/links/{job_id}")
    _seek(browser, 12)
    assert browser.execute_script(f"{player}.readyState") >= 2
    browser.save_screenshot(str(shots / "review-preview.png"))
    assert browser.find_elements("css selector", '.lane[data-type="track"]')

    # without a preview (a job from before them), the page says what it cannot play and stays usable
    (server.data_dir / "blobs" / "jobs" / job_id / "preview.mp4").unlink()
    browser.refresh()
    _wait(browser, 120).until(lambda d: _by_id(d, "stage").get_attribute("data-ready") == "true")
    status = _by_id(browser, "job-status")
    assert "cannot play the source file (ts container)" in status.text
    assert status.get_attribute("class") == "error"
    assert browser.find_elements("css selector", '.lane[data-type="track"]')  # the tracks are there to review

    result = _render_and_download(browser)
    _wait(browser, 60).until(lambda d: d.execute_script(f"{player}.readyState") >= 2)
    assert browser.execute_script(f"{player}.error") is None  # the redacted MP4 plays
    out = tmp_path / "out.mp4"
    out.write_bytes(result)
    assert len(list(_frames(out))) == 30


def test_a_heic_photo_the_browser_cannot_show_is_reviewed_on_its_preview(
    browser: Any, server: LiveServer, api_key: str, media_dir: Path, tmp_path: Path
) -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    photo = tmp_path / "IMG_0003.heic"  # as an iPhone saves it; Chromium shows no HEIC
    with Image.open(media_dir / "city_crowd.jpg") as jpeg:
        jpeg.save(photo, quality=90)
    _login(browser, server, api_key)
    _upload_and_open(browser, photo)
    assert "shows here as a preview" in _by_id(browser, "job-status").text
    assert browser.execute_script("return document.getElementById('still').naturalWidth") == 800
    assert len(browser.find_elements("css selector", '.lane[data-type="track"]')) >= 15
