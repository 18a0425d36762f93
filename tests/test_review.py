"""radimt review: the page driven in a real headless browser (Chromium through Selenium) over a
batch run of the sample studies: keyboard, accept, reject, re-seed by clicking; review.csv, the
revised manifest and a rerun that recomputes exactly the re-seeded lesion; the server's guards
(token, host, paths under OUT, POST only); 500 lesions listed while one view is loaded."""

from __future__ import annotations

import csv
import http.client
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from radimt.classify import ModelConfig
from radimt.classify.data import load_table
from radimt.pipeline import run_batch
from radimt.review import REVIEW_CSV, REVISED_MANIFEST, ReviewError, ReviewRun, ReviewServer
from tests.conftest import REPO, SAMPLE_DICOM

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


PIPELINE = REPO / "pipelines" / "multimodal.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """The sample studies through the multimodal pipeline (DCE reference, ADC, T2, CT; the IMT
    case also on ultrasound and both mammographic views)."""
    folder = tmp_path_factory.mktemp("review")
    manifest = folder / "manifest.csv"
    with open(SAMPLE_DICOM / "manifest.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        columns, rows = list(reader.fieldnames or []), list(reader)
    with open(manifest, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "path": os.path.relpath(SAMPLE_DICOM / row["path"], folder)})
    out = folder / "out"
    run_batch(manifest, PIPELINE, out)
    return out


def _fresh(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(run, copy, symlinks=True)
    return copy


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromedriver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _wait(driver, condition, timeout: float = 20.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _current(driver) -> str:
    return driver.execute_script("return state.lesion ? state.lesion.study_id : null")


def _drawn(driver) -> bool:
    return bool(driver.execute_script("return state.image !== null && state.lesion !== null"))


def _press(driver, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


@pytest.mark.slow
def test_review_by_keyboard_and_click_then_rerun_recomputes_only_the_reseeded(run, tmp_path, browser):
    out = _fresh(run, tmp_path)
    server = ReviewServer(out, reviewer="dr tester")
    server.serve_in_thread()
    try:
        browser.get(server.url)
        _wait(browser, lambda d: len(d.find_elements("css selector", "#rows tr")) == 3 and _drawn(d))
        order = browser.execute_script("return state.shown.map(l => l.study_id)")
        assert _current(browser) == order[0]
        _press(browser, "n")
        _wait(browser, lambda d: _current(d) == order[1] and _drawn(d))
        _press(browser, "p")
        _wait(browser, lambda d: _current(d) == order[0] and _drawn(d))
        # the mask contour toggles with M
        _press(browser, "m")
        assert browser.execute_script("return state.showMask") is False
        _press(browser, "m")
        # accept the first (the page goes on to the next), reject the second with a reason
        _press(browser, "a")
        _wait(browser, lambda d: _current(d) == order[1] and _drawn(d))
        browser.find_element("id", "why").send_keys("not a lesion: vessel")
        browser.find_element("id", "reject").click()
        _wait(browser, lambda d: _current(d) == order[2] and _drawn(d))
        # re-seed the third by clicking on its axial plane, 2 pixels right of and 1 below the middle
        view = json.loads((out / "lesions" / order[2] / "1" / "view.json").read_text())
        canvas = browser.find_element("css selector", ".plane[data-plane=axial] canvas")
        size = browser.execute_script(
            "const c = arguments[0], r = c.getBoundingClientRect();"
            "return [c.width, c.height, r.width, r.height]",
            canvas,
        )
        col, row = size[0] // 2 + 2, size[1] // 2 + 1
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(browser).move_to_element_with_offset(
            canvas,
            int((col + 0.5) * size[2] / size[0] - size[2] / 2),
            int((row + 0.5) * size[3] / size[1] - size[3] / 2),
        ).click().perform()
        k = browser.execute_script("return state.cursor[2]")
        direction = np.asarray(view["direction"]).reshape(3, 3)
        expected = np.asarray(view["origin"]) + direction @ (np.asarray(view["spacing"]) * [col, row, k])
        shown = browser.find_element("id", "pending").text
        assert np.allclose([float(v) for v in shown.split(",")], expected, atol=0.06), (shown, expected)
        _press(browser, "s")
        _wait(browser, lambda d: d.execute_script("return state.lesions[2].review_status") == "re-seeded")
        browser.save_screenshot(str(tmp_path / "review.png"))
    finally:
        server.shutdown()
        server.server_close()

    decisions = list(csv.DictReader(open(out / REVIEW_CSV, newline="")))
    assert [(d["study_id"], d["decision"]) for d in decisions] == [
        (order[0], "accepted"),
        (order[1], "rejected"),
        (order[2], "re-seeded"),
    ]
    assert all(d["reviewer"] == "dr tester" and d["time"] for d in decisions)
    assert decisions[1]["why"] == "not a lesion: vessel"
    reseed = [float(decisions[2][f"seed_{a}"]) for a in "xyz"]
    assert np.allclose(reseed, expected, atol=0.01)
    revised = {r["study_id"]: r for r in csv.DictReader(open(out / REVISED_MANIFEST, newline=""))}
    assert [revised[s]["review_status"] for s in order] == ["accepted", "rejected", "re-seeded"]
    assert [float(revised[order[2]][f"seed_{a}"]) for a in "xyz"] == reseed
    assert (out / revised[order[0]]["path"]).resolve().is_dir()  # paths relative to OUT

    before = {s: (out / "lesions" / s / "1" / "result.json").stat().st_mtime_ns for s in order}
    time.sleep(0.05)
    summary = run_batch(out / REVISED_MANIFEST, PIPELINE, out)
    after = {s: (out / "lesions" / s / "1" / "result.json").stat().st_mtime_ns for s in order}
    assert summary.skipped == 2
    assert [after[s] != before[s] for s in order] == [False, False, True]
    table = {r["study_id"]: r for r in csv.DictReader(open(out / "features.csv", newline=""))}
    assert [table[s]["review_status"] for s in order] == ["accepted", "rejected", "re-seeded"]
    assert table[order[1]]["status"] == "done"  # a rejected lesion stays in the table
    dataset = load_table(out / "features.csv", ModelConfig())
    assert [e["study_id"] for e in dataset.excluded] == [order[1]]
    assert "rejected" in dataset.excluded[0]["reason"]


def test_the_static_report_is_legible_and_links_to_the_review(run, browser):
    """Units on the numbers, the 2D sizes, the DWI panel, and a table that fits 900 px."""
    text = (run / "report.html").read_text()
    assert "radimt review" in text
    assert "US 113 mm², 12.4 mm" in text and "MG CC 113 mm², 13.5 mm" in text
    assert "µm²/ms" in text and "1.00 cm³" in text
    assert (run / "lesions" / "imt_case" / "1" / "overlay_dwi.png").is_file()  # the DWI panel
    assert 'alt="overlay_dwi"' in text
    browser.set_window_size(900, 1000)
    browser.get((run / "report.html").as_uri())
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 900
    heights = browser.execute_script(
        "return [...document.querySelectorAll('.figures img')].map(i => i.getBoundingClientRect().height)"
    )
    assert len(heights) >= 15 and min(heights) >= 250  # figures at a size their titles can be read


def _get(
    server: ReviewServer, path: str, host: str | None = None, method: str = "GET", headers=None, body=None
):
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    connection.putrequest(method, path, skip_host=host is not None)
    if host is not None:
        connection.putheader("Host", host)
    for name, value in (headers or {}).items():
        connection.putheader(name, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    return response.status, response.read()


def test_the_server_refuses_what_it_must(run, tmp_path):
    out = _fresh(run, tmp_path)
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the page")
    os.symlink(outside, out / "lesions" / "link.txt")
    server = ReviewServer(out)
    server.serve_in_thread()
    token = server.token
    try:
        assert _get(server, f"/?token={token}")[0] == 200
        assert _get(server, "/")[0] == 403  # no token
        assert _get(server, "/?token=wrong")[0] == 403
        assert _get(server, "/api/lesions")[0] == 403
        assert _get(server, f"/?token={token}", host="attacker.example:80")[0] == 403  # DNS rebinding
        assert _get(server, f"/files/run.json?token={token}")[0] == 200
        for path in (
            "../secret.txt",
            "%2e%2e/secret.txt",
            "lesions/link.txt",
            "/etc/passwd",
            "..%2f..%2fetc%2fpasswd",
        ):
            status, body = _get(server, f"/files/{path}?token={token}")
            assert status in (403, 404) and b"not for the page" not in body, path
        decision = json.dumps({"study_id": "imt_case", "lesion_id": "1", "decision": "accepted"}).encode()
        # state changes only by POST, with the token in its header (not in the URL)
        assert _get(server, f"/api/decision?token={token}")[0] == 404
        assert _get(server, f"/api/decision?token={token}", method="POST", body=decision)[0] == 403
        status, _ = _get(
            server, "/api/decision", method="POST", headers={"X-Radimt-Token": token}, body=decision
        )
        assert status == 200
        bad = json.dumps(
            {"study_id": "imt_case", "lesion_id": "1", "decision": "re-seeded", "seed": [1, "x"]}
        )
        assert (
            _get(
                server, "/api/decision", method="POST", headers={"X-Radimt-Token": token}, body=bad.encode()
            )[0]
            == 400
        )
    finally:
        server.shutdown()
        server.server_close()
    assert len(list(csv.DictReader(open(out / REVIEW_CSV)))) == 1


def test_decisions_are_checked_and_the_last_one_counts(run, tmp_path):
    out = _fresh(run, tmp_path)
    review = ReviewRun(out)
    with pytest.raises(ReviewError, match="unknown decision"):
        review.decide("imt_case", "1", "maybe", reviewer="x")
    with pytest.raises(ReviewError, match="no lesion"):
        review.decide("nobody", "1", "accepted", reviewer="x")
    with pytest.raises(ReviewError, match="finite"):
        review.decide("imt_case", "1", "re-seeded", reviewer="x", seed=[float("nan"), 0, 0])
    review.decide("imt_case", "1", "rejected", reviewer="x")
    review.decide("imt_case", "1", "accepted", reviewer="y", why="looked again")
    again = ReviewRun(out)  # read back from review.csv
    item = again.item("imt_case", "1")
    assert item.review_status == "accepted" and [h["reviewer"] for h in item.history] == ["x", "y"]
    with pytest.raises(ReviewError, match="no finished radimt batch"):
        ReviewRun(tmp_path / "nothing")


def test_a_failed_lesion_can_be_seen_and_reseeded(run, tmp_path):
    """A seed in plain tissue fails; the view around the seed is still written, to re-seed from."""
    out = tmp_path / "out"
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "study_id,path,seed_x,seed_y,seed_z\n"
        f"imt_case,{os.path.relpath(SAMPLE_DICOM / 'imt_case', tmp_path)},80.0,-20.0,-10.0\n"
    )
    summary = run_batch(manifest, PIPELINE, out)
    assert summary.failed == 1
    folder = out / "lesions" / "imt_case" / "1"
    view = json.loads((folder / "view.json").read_text())
    assert view["has_mask"] is False and view["seed"] == [80.0, -20.0, -10.0]
    assert (folder / "view_image.nii.gz").is_file() and not (folder / "view_mask.nii.gz").exists()
    item = ReviewRun(out).decide("imt_case", "1", "re-seeded", reviewer="x", seed=[108.0, 0.0, -10.0])
    assert item.seed == [108.0, 0.0, -10.0]
    summary = run_batch(out / REVISED_MANIFEST, PIPELINE, out)
    assert summary.failed == 0 and summary.done == 1


@pytest.mark.slow
def test_five_hundred_lesions_are_listed_and_only_the_open_one_is_loaded(run, tmp_path, browser):
    out = _fresh(run, tmp_path)
    rows = list(csv.DictReader(open(out / "features.csv", newline="")))
    columns = list(rows[0])
    many = [{**rows[k % len(rows)], "study_id": f"s{k:03d}"} for k in range(500)]
    with open(out / "features.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(many)
    for k in range(500):
        target = out / "lesions" / f"s{k:03d}" / "1"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(out / "lesions" / rows[k % len(rows)]["study_id"] / "1", target)
    server = ReviewServer(out)
    server.serve_in_thread()
    try:
        browser.get(server.url)
        _wait(browser, lambda d: len(d.find_elements("css selector", "#rows tr")) == 500 and _drawn(d))
        assert server.view_requests == 2  # the first lesion's image and mask, nothing else
        for _ in range(3):
            _press(browser, "n")
        _wait(browser, lambda d: _current(d) == "s003" and _drawn(d))
        # s003's image and mask; s001 and s002 only if their answers came before the next key
        assert 4 <= server.view_requests <= 8
    finally:
        server.shutdown()
        server.server_close()
