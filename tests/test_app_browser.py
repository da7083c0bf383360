"""`gemo-clap app` in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright through its
`executable_path`) uploads an EmoDB recording and sees the pipeline's label, segments and the rendered timeline; a
non-audio upload shows a one-line message; Chromium's fake microphone plays a WAV into the live tab and labels
arrive. Screenshots are kept as test artefacts in $GEMO_CLAP_SCREENSHOTS (default: <tmp>/gemo-clap-app-screenshots), their
paths printed (`pytest -s` shows them)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import soundfile as sf
from app_server import EMODB_CLIPS, EMODB_WAV, conversation, serving

pytest.importorskip("gradio", reason="the app needs gradio (pip install 'gemo-clap[app]')")
playwright = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (pip install playwright)")

from gemo_clap.app.model import load_model
from gemo_clap.app.ui import build_app
from gemo_clap.timeline.result import predict_file

CHROMIUM = Path(os.environ.get("GEMO_CLAP_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(os.environ.get("GEMO_CLAP_SCREENSHOTS", Path(tempfile.gettempdir()) / "gemo-clap-app-screenshots"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
TIMEOUT_MS = 180_000  # a slow shared CI machine: generous, and nothing is asserted about time
pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no browser: {CHROMIUM} is absent (apt-get install chromium)"),
]
needs_emodb = pytest.mark.skipif(not EMODB_WAV.is_dir(), reason=f"needs real speech: {EMODB_WAV} is absent")


@pytest.fixture(scope="module")
def served(tiny_checkpoint):
    return load_model(str(tiny_checkpoint("wavlm", variant="ml")))


@pytest.fixture(scope="module")
def url(served):
    with serving(build_app(served)) as address:
        yield address


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium whose fake microphone plays two EmoDB utterances between silences (looped)."""
    microphone = tmp_path_factory.mktemp("microphone") / "conversation.wav"
    arguments = CHROMIUM_ARGS
    if EMODB_WAV.is_dir():
        arguments = [*arguments, f"--use-file-for-fake-audio-capture={conversation(microphone)}"]
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=arguments)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, url):
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, permissions=["microphone"])
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    yield page
    context.close()


def table_rows(page, selector: str, columns: int) -> list[list[str]]:
    """The rows a Gradio table shows, as its text reads (header cells first)."""
    cells = [line.strip() for line in page.locator(selector).inner_text().splitlines() if line.strip()]
    body = cells[cells.index("gender") + 1 :] if columns == 5 else cells[cells.index("score") + 1 :]
    return [body[start : start + columns] for start in range(0, len(body), columns)]


def screenshot(page, name: str) -> None:
    """The whole page as a PNG named `name` in `SCREENSHOTS`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")


@needs_emodb
def test_upload_shows_the_pipelines_label_segments_and_timeline(served, page, tmp_path):
    clip = EMODB_WAV / EMODB_CLIPS[1]
    want, _ = predict_file(served.classifier, str(clip), 8, return_gender=True)
    page.locator("#file-audio input[type=file]").set_input_files(str(clip))
    page.click("#analyse")
    picture = page.locator("#timeline img")
    picture.wait_for()
    page.wait_for_function("image => image.complete && image.naturalWidth > 600", arg=picture.element_handle())
    for kind in ("json", "csv", "srt"):
        page.locator(f'#downloads a[download="{clip.name}.{kind}"]').wait_for()
    screenshot(page, "file-tab.png")

    label = page.locator("#scores")
    assert label.locator("h2").inner_text().strip() == want["scores"][0]["label"]
    shown = label.inner_text()
    for entry in want["scores"]:
        assert f"{entry['label']}\n{round(100 * entry['score'])}%" in shown
    assert page.locator("#gender h2").inner_text().strip() == want["gender"]
    rows = table_rows(page, "#segments", 5)
    assert [[float(start), float(end), label, float(score), gender] for start, end, label, score, gender in rows] == [
        [round(s["start"], 2), round(s["end"], 2), s["label"], round(s["score"], 3), s["gender"]]
        for s in want["segments"]
    ]


def test_non_audio_upload_shows_one_line_and_the_app_goes_on(page, make_clip, tmp_path):
    notes = tmp_path / "notes.wav"
    notes.write_text("these are notes, not audio")
    page.locator("#file-audio input[type=file]").set_input_files(str(notes))
    page.click("#analyse")
    toast = page.get_by_text("notes.wav is not a readable audio file (WAV, FLAC, OGG, MP3, ...)")
    toast.wait_for()
    screenshot(page, "bad-upload.png")
    assert toast.count() == 1
    clip = tmp_path / "tone.wav"  # the app goes on: a good file in the same page is analysed
    sf.write(clip, make_clip(2.0), 16000)
    page.locator("#file-audio").get_by_role("button", name="Clear").click()
    page.locator("#file-audio input[type=file]").set_input_files(str(clip))
    page.click("#analyse")
    page.locator('#downloads a[download="tone.wav.json"]').wait_for()


@needs_emodb
def test_fake_microphone_feeds_the_live_tab(served, page, tmp_path):
    page.get_by_role("tab", name="Live").click()
    page.locator("#live-audio").get_by_role("button", name="Record").click()
    page.locator("#live-lane .segment").first.wait_for()  # a provisional label within a hop of speech
    current = page.locator("#live-label h2").inner_text().strip()
    assert current in served.labels
    page.locator("#live-lane .segment.final").first.wait_for()  # the first utterance's segment, final
    screenshot(page, "live-tab.png")
    rows = table_rows(page, "#live-table", 5)  # the final segments, updated with the lane
    assert rows and {row[2] for row in rows} <= set(served.labels) and {row[4] for row in rows} <= {"female", "male"}
    page.locator("#live-audio").get_by_role("button", name="Stop").click()
    page.locator("#live-audio").get_by_role("button", name="Record").wait_for()
    page.locator("#live-lane .segment.partial").wait_for(state="detached")  # the open segment became final
    lane = [bar.get_attribute("data-label") for bar in page.locator("#live-lane .segment").all()]
    assert len(lane) >= len(rows) and set(lane) <= set(served.labels)
    screenshot(page, "live-tab-stopped.png")
