"""The review page (``/review``) in a real browser against a real ``veil serve``: upload, detect,
look at the thumbnails, untick tracks, render, and download through the signed link.

Headless Chromium from Debian's ``chromium`` and ``chromium-driver`` packages drives the page, so
its JavaScript runs exactly as in a user's browser. ``.ci/run`` installs both; on a machine without
them the test is skipped with the reason.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.live_server import LiveServer, create_key, live_server
from veil.client import Client

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,2000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("review-server")) as running:
        yield running


@pytest.fixture(scope="module")
def api_key(server: LiveServer) -> str:
    return create_key(server, name="review-page")


def _box_change(result: np.ndarray, source: np.ndarray, box: list[float]) -> float:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return float(np.abs(result[y1:y2, x1:x2].astype(int) - source[y1:y2, x1:x2].astype(int)).mean())


def test_detect_review_and_render_only_the_ticked_face(
    browser: object, server: LiveServer, api_key: str, media_dir: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    photo = media_dir / "city_crowd.jpg"
    wait = WebDriverWait(browser, 180)
    browser.get(f"{server.url}/review")
    browser.find_element(By.ID, "key").send_keys(api_key)
    browser.find_element(By.ID, "file").send_keys(str(photo))
    browser.find_element(By.ID, "detect").click()

    wait.until(lambda d: d.find_element(By.ID, "review").is_displayed())
    items = browser.find_elements(By.CSS_SELECTOR, "#tracks li")
    assert len(items) >= 2, browser.find_element(By.ID, "status").text
    wait.until(  # every thumbnail arrived through the API and decoded as an image
        lambda d: all(
            d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
            for img in d.find_elements(By.CSS_SELECTOR, "#tracks img")
        )
    )
    browser.find_element(By.ID, "none").click()
    first = items[0].find_element(By.CSS_SELECTOR, "input[type=checkbox]")
    first.click()
    ticked = int(first.get_attribute("value") or 0)
    assert "off" in (items[1].get_attribute("class") or "")  # unticked tracks are greyed out
    browser.find_element(By.ID, "redact").click()
    link = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#result a"))[0].get_attribute("href")

    # The signed link works without a key and serves the rendered photo.
    response = httpx.get(link or "", timeout=30)
    assert response.status_code == 200
    result = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
    source = np.asarray(Image.open(photo).convert("RGB"))
    assert result.shape == source.shape

    # The page asked for exactly the ticked track: it is masked, the others are not.
    with Client(server.url, api_key, timeout=60) as client:
        detect_id = browser.find_element(By.ID, "job").get_attribute("value") or ""
        tracks = {t["id"]: t for t in client.report(detect_id)["tracks"]}
        redact = next(j for j in client.iter_jobs(limit=5) if j.id != detect_id)
        assert [t["id"] for t in client.report(redact.id)["tracks"]] == [ticked]
    masked = _box_change(result, source, tracks[ticked]["frames"][0]["box"])
    others = [_box_change(result, source, t["frames"][0]["box"]) for i, t in tracks.items() if i != ticked]
    # Unticked faces change only by JPEG re-encoding (a neighbour may overlap the masked ellipse a little).
    assert float(np.median(others)) < 5 and masked > 4 * float(np.median(others)), (masked, others)


def test_a_wrong_key_is_shown_as_the_apis_error(browser: object, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    browser.get(f"{server.url}/review")
    key = browser.find_element(By.ID, "key")
    key.clear()
    key.send_keys("veil_not-a-key")
    browser.find_element(By.ID, "job").send_keys("job_missing")
    browser.find_element(By.ID, "load").click()
    status = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "status").text)
    assert status.startswith("unauthorized:") and "error" in (
        browser.find_element(By.ID, "status").get_attribute("class") or ""
    )
