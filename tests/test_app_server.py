"""avzsl-app end to end: a real server (subprocess) on a run trained on packaged-encoder features of real clips.

Over HTTP: the page loads nothing from elsewhere; a request gives the numbers of ``avzsl-predict --json`` for the
same clip (one computation, also behind ``--explain``); bad and too-large files get messages and the server keeps
serving; paths outside ``--videos-root`` are refused; two users at once get their own results. In a real browser
(Debian's chromium through Selenium; skipped where it is not installed): upload, type class names, submit, read the
ranked classes, both branch scores and the window strip; the errors of a non-video and a too-large file; the
README screenshot (written to docs/img/app.png when AVZSL_UPDATE_SCREENSHOT=1).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import urllib.request
from pathlib import Path

import pytest

from avzsl.pipeline.cli import predict as cli_predict
from tests.app_world import MAX_UPLOAD_MB, build_world, get_json, post_form, running_app

CLASSES = "violin, goat, dog, cow, cello"
# "//host" without a scheme in an attribute, a CSS url(), an @import or a fetch: also a fetch from elsewhere.
PROTOCOL_RELATIVE = r"""(?:src|href|action)\s*=\s*["']?//|url\(\s*["']?//|@import|fetch\(\s*["'`]//"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_world(tmp_path_factory.mktemp("app"))


@pytest.fixture(scope="module")
def app(world: dict[str, Path]) -> str:
    with running_app(world, world["root"] / "app.log") as base:
        yield base


def _run_name(base: str) -> str:
    return next(m["name"] for m in get_json(f"{base}/api/info")[1]["models"] if m["kind"] == "run")


def _predict(base: str, classes: str, files: list[tuple[str, bytes]], paths: list[str] = (), model: str = "",
             top: int = 5) -> tuple[int, dict]:
    fields = [("classes", classes), ("top", str(top)), *(("paths", p) for p in paths)]
    if model:
        fields.append(("model", model))
    return post_form(f"{base}/api/predict", fields, [("files", name, data) for name, data in files])


def test_page_loads_nothing_from_elsewhere(app: str) -> None:
    for path in ("/", "/static/app.js", "/static/app.css"):
        with urllib.request.urlopen(app + path, timeout=30) as response:
            text = response.read().decode()
            csp = response.headers["Content-Security-Policy"]
        assert not re.search(r"https?://|wss?://", text), path
        assert not re.search(PROTOCOL_RELATIVE, text), path
        assert "default-src 'self'" in csp, path
    with urllib.request.urlopen(app + "/", timeout=30) as response:
        page = response.read().decode()
    for ref in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert ref.startswith(("/", "#", "data:")), ref
    assert get_json(f"{app}/static/../pyproject.toml")[0] == 404


def test_request_gives_the_numbers_of_avzsl_predict(app: str, world: dict[str, Path], capsys) -> None:
    clip = world["clip"]
    status, answer = _predict(app, CLASSES, [("violin clip.mp4", clip.read_bytes())], model=_run_name(app))
    assert status == 200, answer
    page = answer["document"]["violin clip.mp4"]
    capsys.readouterr()
    assert cli_predict.main(["--run", str(world["run"]), "--classes", CLASSES.replace(" ", ""), "--top", "5",
                             "--json", "--workers", "0", "--device", "cpu", str(clip)]) == 0
    cli = json.loads(capsys.readouterr().out)[str(clip)]
    assert page["windows"] == cli["windows"] == 3 and page["branches"] == cli["branches"] == "softmax"
    assert [r["class"] for r in page["predictions"]] == [r["class"] for r in cli["predictions"]]
    for ours, theirs in zip(page["predictions"], cli["predictions"], strict=True):
        for key in ("score", "p", "log_p", "shift", "visual", "audio"):
            assert ours[key] == pytest.approx(theirs[key], abs=1e-5), key
        assert ours["seen"] == (ours["class"] in ("dog", "cow", "cello"))
    assert [w["top"] for w in page["window_support"]] == [w["top"] for w in cli["window_support"]]
    for ours, theirs in zip(page["window_support"], cli["window_support"], strict=True):
        assert ours["p"] == pytest.approx(theirs["p"], abs=1e-5)
    # Seen classes among the candidates, and the page, like avzsl-predict, applies --seen-calibration auto: no shift.
    assert answer["gamma"] is None and page["score_is"] == cli["score_is"]
    assert page["score_is"].startswith("log p (no calibration shift")
    rows = answer["csv"].splitlines()
    assert rows[0] == "video,rank,class,score,p,seen,saw,heard,windows,error" and len(rows) == 6
    assert rows[1].startswith(f"violin clip.mp4,1,{page['predictions'][0]['class']},")
    # --explain lays out the same computation as text.
    assert cli_predict.main(["--run", str(world["run"]), "--classes", CLASSES.replace(" ", ""), "--explain",
                             "--workers", "0", "--device", "cpu", str(clip)]) == 0
    text = capsys.readouterr().out
    assert "per-second support (3 windows" in text and "saw / heard: the visual and audio branch" in text


def test_bad_files_get_messages_and_the_server_keeps_serving(app: str, world: dict[str, Path]) -> None:
    status, answer = _predict(app, CLASSES, [("notes.mp4", world["notes"].read_bytes()),
                                             ("big.mp4", world["big"].read_bytes()),
                                             ("empty.mkv", b""), ("clip.webm", world["clip"].read_bytes())])
    assert status == 200, answer
    doc = answer["document"]
    assert "not a video: its content is text" in doc["notes.mp4"]["error"]
    big = world["big"].stat().st_size
    assert doc["big.mp4"]["error"] == (f"too large: {big:,} bytes, the limit is {int(MAX_UPLOAD_MB * 2**20):,} bytes "
                                       f"({MAX_UPLOAD_MB:.1f} MiB) per file")
    assert "empty" in doc["empty.mkv"]["error"]
    assert doc["clip.webm"]["windows"] == 3  # the content decides, not the name
    # A body over every limit is refused before it is read; a bad form, a missing class list: a message.
    too_big = int(MAX_UPLOAD_MB * 2**20) * 17 + 2**20
    status, answer = _predict(app, CLASSES, [("huge.mp4", b"\0" * too_big)])
    assert status == 413 and "too large" in answer["error"]
    status, answer = _predict(app, " , \n", [("clip.mp4", world["clip"].read_bytes())])
    assert status == 400 and "class name" in answer["error"]
    status, answer = _predict(app, CLASSES, [])
    assert status == 400 and "choose at least one video" in answer["error"]
    status, answer = _predict(app, "xqzvw violin, goat", [("clip.mp4", world["clip"].read_bytes())],
                              model=_run_name(app))
    assert status == 400 and "xqzvw" in answer["error"]
    assert get_json(f"{app}/api/health") == (200, {"ok": True})
    assert list(world["server_tmp"].iterdir()) == []  # every upload (and the parser's spool files) deleted


def test_nothing_outside_the_videos_root_is_reachable(app: str, world: dict[str, Path]) -> None:
    listed = get_json(f"{app}/api/videos")[1]["videos"]
    assert "violin/00.mp4" in listed and "inside.mp4" in listed and "escape.mp4" not in listed
    for path in ("../outside/secret.mp4", "violin/../../outside/secret.mp4", str(world["root"] / "outside" /
                 "secret.mp4"), "escape.mp4", "violin\\..\\..\\outside\\secret.mp4"):
        status, body = get_json(f"{app}/api/media?path={urllib.request.quote(path)}")
        assert status == 403 and "refused" in body["error"], (path, body)
    status, body = get_json(f"{app}/api/media?path={urllib.request.quote('..%2Foutside%2Fsecret.mp4')}")
    assert status == 403 and body["error"].startswith("not found under the videos folder"), body  # no decoding twice
    with urllib.request.urlopen(f"{app}/api/media?path=inside.mp4", timeout=30) as response:
        assert response.read() == world["clip"].parent.parent.parent.joinpath("videos/violin/00.mp4").read_bytes()
    status, answer = _predict(app, CLASSES, [], paths=["../outside/secret.mp4", "escape.mp4", "violin/00.mp4"])
    assert status == 200
    assert "refused" in answer["document"]["../outside/secret.mp4"]["error"]
    assert "outside the videos folder" in answer["document"]["escape.mp4"]["error"]
    assert answer["document"]["violin/00.mp4"]["windows"] == 1


def test_two_users_at_once_get_their_own_results(app: str, world: dict[str, Path]) -> None:
    clip = world["clip"].read_bytes()
    asks = {"a": "violin, goat", "b": "dog, cow, cello"}
    answers: dict[str, tuple[int, dict]] = {}

    def ask(user: str) -> None:
        answers[user] = _predict(app, asks[user], [(f"{user}.mp4", clip)])

    threads = [threading.Thread(target=ask, args=(user,)) for user in asks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for user, classes in asks.items():
        status, answer = answers[user]
        assert status == 200 and list(answer["document"]) == [f"{user}.mp4"]
        got = {r["class"] for r in answer["document"][f"{user}.mp4"]["predictions"]}
        assert got == {c.strip() for c in classes.split(",")}


def test_zero_shot_towers_answer_with_cosine_branches(app: str, world: dict[str, Path]) -> None:
    models = get_json(f"{app}/api/info")[1]["models"]
    towers = next(m["name"] for m in models if m["kind"] == "zero-shot")
    status, answer = _predict(app, "a violin, a goat, ApplyEyeMakeup", [("c.mp4", world["clip"].read_bytes())],
                              model=towers, top=3)
    assert status == 200, answer
    entry = answer["document"]["c.mp4"]
    assert entry["branches"] == "cosine" and answer["gamma"] is None
    for r in entry["predictions"]:  # the score is the fused cosine; a cosine is no probability
        assert r["p"] is None and r["score"] == pytest.approx(0.5 * r["visual"] + 0.5 * r["audio"], abs=1e-5)
    assert len(entry["window_support"]) == 3


def _browser():
    """Headless Debian chromium through its chromedriver, or a skip saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (test extra)")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if browser is None or driver_path is None:
        pytest.skip("no browser: install Debian's chromium and chromium-driver (apt-get install -y chromium "
                    "chromium-driver; .ci/run does)")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1420",
                "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(arg)
    options.binary_location = browser
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)


def _submit(driver, files: list[Path], classes: str) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.ID, "clear-files").click()
    driver.find_element(By.ID, "files").send_keys("\n".join(str(f) for f in files))
    box = driver.find_element(By.ID, "classes")
    box.clear()
    box.send_keys(classes)
    driver.find_element(By.ID, "submit").click()
    names = {f.name for f in files}
    # The page replaces its cards when the answer comes: a card read during the swap is stale, and read again.
    WebDriverWait(driver, 300, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: {c.get_attribute("data-key") for c in d.find_elements(By.CSS_SELECTOR, ".video-card")} == names)


def test_browser_labels_a_clip_and_shows_errors(app: str, world: dict[str, Path], tmp_path: Path) -> None:
    driver = _browser()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    try:
        driver.get(app)
        WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 2)
        run = _run_name(app)
        Select(driver.find_element(By.ID, "model")).select_by_value(run)
        _submit(driver, [world["clip"]], "violin, goat, dog, cow, cello")
        card = driver.find_element(By.CSS_SELECTOR, ".video-card")
        rows = card.find_elements(By.CSS_SELECTOR, "tr.ranked-row")
        shown = [r.get_attribute("data-class") for r in rows]
        # What the page shows is what the API answers for the same clip and names.
        status, answer = _predict(app, "violin, goat, dog, cow, cello", [("00.mp4", world["clip"].read_bytes())],
                                  model=run)
        expected = answer["document"]["00.mp4"]
        assert status == 200 and shown == [r["class"] for r in expected["predictions"]]
        for row, r in zip(rows, expected["predictions"], strict=True):
            saw = row.find_element(By.CSS_SELECTOR, "td.saw").text
            heard = row.find_element(By.CSS_SELECTOR, "td.heard").text
            assert float(saw) == pytest.approx(r["visual"], abs=6e-4) and float(heard) == pytest.approx(r["audio"],
                                                                                                          abs=6e-4)
            badge = row.find_element(By.CSS_SELECTOR, ".badge").text
            assert badge == ("seen" if r["class"] in ("dog", "cow", "cello") else "unseen")
        strip = card.find_element(By.CSS_SELECTOR, ".strip")
        assert strip.get_attribute("data-windows") == "3"
        cells = strip.find_elements(By.CSS_SELECTOR, ".cell")
        assert len(cells) == 3 * 3  # the 3 first classes x 3 one-second windows
        for t, window in enumerate(expected["window_support"]):
            column = [c for c in cells if c.get_attribute("data-second") == str(t)]
            assert all(c.get_attribute("data-top") == window["top"] for c in column)
            firsts = [c.get_attribute("data-class") for c in column if "first" in c.get_attribute("class")]
            assert firsts == ([window["top"]] if window["top"] in shown[:3] else [])
            for c in column:
                assert float(c.get_attribute("data-p")) == pytest.approx(window["p"][c.get_attribute("data-class")],
                                                                          abs=1e-5)
        assert card.find_element(By.TAG_NAME, "video").get_attribute("src").startswith("blob:")
        assert driver.find_element(By.ID, "csv").get_attribute("href").startswith("blob:")
        shot = tmp_path / "app.png"
        driver.execute_script("window.scrollTo(0, 0)")
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        if os.environ.get("AVZSL_UPDATE_SCREENSHOT") == "1":
            target = Path(__file__).resolve().parents[1] / "docs" / "img" / "app.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, target)
        # A text file named .mp4 and a file over the limit: a message each, on the page.
        _submit(driver, [world["notes"], world["big"]], "violin, goat")
        errors = {c.get_attribute("data-key"): c.find_element(By.CSS_SELECTOR, ".video-error").text
                  for c in driver.find_elements(By.CSS_SELECTOR, ".video-card")}
        assert errors["notes.mp4"].startswith("not a video: its content is text")
        assert errors["big.mp4"].startswith("too large:")
        batch = driver.find_elements(By.CSS_SELECTOR, "#batch-table tr.batch-row")
        assert [r.get_attribute("data-key") for r in batch] == ["notes.mp4", "big.mp4"]
        # The page logged no error (a blocked external fetch or a script error would be here).
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe
    finally:
        driver.quit()
    assert get_json(f"{app}/api/health") == (200, {"ok": True})
