"""End to end in headless Chromium: draw a wall with the mouse and watch the leakage readout move."""
import os
import shutil

import pytest

from camlab.bench.app_latency import free_port, start_server
from tests.hostile import HOSTILE_CLASS_NAMES, hostile_checkpoint
from tests.paths import ROOT

ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed (make test installs it)")


@pytest.fixture(scope="module")
def server():
    port = free_port()
    process = start_server(port)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        yield chromium
        chromium.close()


def _metric(page, label: str) -> str:
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_text(label, exact=True))
    return metric.locator('[data-testid="stMetricValue"]').inner_text(timeout=120_000)


def _choose(page, label: str) -> None:
    page.get_by_test_id("stSidebar").get_by_text(label, exact=True).click()


def _canvas_box(page) -> dict:
    """The box of fabric.js's drawing layer (the component renders inline) once the page shows one: a rerun
    keeps the previous model's or image's canvas on screen until the new one replaces it."""
    canvas = page.locator("canvas.upper-canvas")
    for _ in range(120):
        if canvas.count() == 1:
            break
        page.wait_for_timeout(500)
    return canvas.bounding_box(timeout=60_000)


def test_each_kind_of_wall_drawn_with_the_mouse_gets_its_own_readout(server, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1500, "height": 2200})
    page.goto(f"{server}/Walls", timeout=60_000)  # the server's first visitor
    assert float(_metric(page, "hirescam leakage")) < 0.01 < float(_metric(page, "gradcam leakage"))
    # icons are font ligatures, so their names are in the text too; keep the titles
    links = page.get_by_test_id("stSidebar").get_by_test_id("stPageLink")
    titles = [w for w in " ".join(links.all_inner_texts()).split() if w[0].isupper()]
    assert titles == ["Explore", "Walls", "Benchmark", "Training", "Theory", "Audit"]  # not the file names
    assert page.get_by_test_id("stSidebarNav").count() == 0  # Streamlit's own list would say "app"

    box = _canvas_box(page)
    page.mouse.move(box["x"] + 40, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 400, box["y"] + 200, steps=12)  # over the top tile's object
    page.mouse.up()
    page.get_by_text("cannot be read downstream").first.wait_for(timeout=120_000)
    table = page.get_by_test_id("stTable").first
    rows = {name: table.locator("tr", has=page.get_by_text(name, exact=True)).inner_text(timeout=60_000).split()
            for name in ("gradcam", "hirescam")}
    assert rows["hirescam"][1] == "0.0000" and float(rows["gradcam"][1]) > 0  # walled cells: HiRes exactly 0
    page.wait_for_timeout(2000)
    page.screenshot(path=str(ARTIFACTS / "walls_feature_wall.png"), full_page=True)

    _choose(page, "occlusion")
    drop = float(_metric(page, "Drop, region 1"))
    assert 0 <= drop <= 100
    page.get_by_text("Map share inside a region vs Drop").first.wait_for(timeout=60_000)

    _choose(page, "measure only")
    share = float(_metric(page, "gradcam attention share"))
    assert 0 < share <= 1
    assert page.get_by_test_id("stException").count() == 0


def _run_benchmark(page) -> None:
    page.get_by_role("button", name="Run the benchmark").click()
    page.get_by_text("Download CSV").wait_for(timeout=180_000)


def _drawn(plotly: int = 0, images: int = 0, vega: int = 0) -> str:
    """A page-side condition: this many plotly charts, decoded images and Vega-Lite charts drawn."""
    return (f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {2 * plotly}"  # two svg layers each
            f" && [...document.querySelectorAll('[data-testid=stImage] img')].filter(i => i.naturalWidth > 0).length"
            f" >= {images}"
            f" && document.querySelectorAll('[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg')"
            f".length >= {vega}")


# (url path, text that shows the page finished its work, action before the screenshot, what must be drawn)
PAGES = [
    ("", "overlay PNG", None, _drawn(images=4, vega=1)),  # maps as pictures: no plotly on Explore's first render
    ("Benchmark", "Press Run the benchmark", _run_benchmark, _drawn(plotly=3)),
    ("Training", "Train a short run yourself", None, _drawn()),
    ("Theory", "Mean Grad-CAM mass below the wall", None, _drawn(plotly=1)),
]


@pytest.mark.parametrize("path, ready, action, drawn", PAGES, ids=[p[0] or "Explore" for p in PAGES])
def test_every_page_renders_in_chromium(server, browser, path, ready, action, drawn):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1500, "height": 1900})  # Streamlit scrolls inside the page
    page.goto(f"{server}/{path}", timeout=60_000)
    page.get_by_text(ready).first.wait_for(timeout=180_000)
    if action is not None:
        action(page)
    page.wait_for_function(drawn, timeout=120_000)
    page.wait_for_timeout(2000)  # data grids draw on a canvas after their data arrives
    assert page.get_by_test_id("stException").count() == 0
    page.screenshot(path=str(ARTIFACTS / f"page_{path or 'Explore'}.png"), full_page=True)


def test_hostile_names_are_plain_text_in_the_rendered_page(server, browser, tmp_path):
    """An uploaded checkpoint whose class names are Markdown images, links, colours and LaTeX: the
    browser fetches nothing, and the page holds no link, image, coloured text or formula from them."""
    path = tmp_path / "![x](http:127.0.0.1:9 p).pt"
    hostile_checkpoint(path)
    fetched = []
    page = browser.new_page(viewport={"width": 1500, "height": 1900})
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(server, timeout=60_000)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stRadio").filter(has_text="Model source").get_by_text("upload", exact=True).click()
    sidebar.locator("input[type=file]").set_input_files(str(path))
    caption = page.get_by_test_id("stCaptionContainer").filter(has_text="predicts").first
    text = caption.inner_text(timeout=120_000).replace("\u2060", "")
    assert any(f"predicts {name} (" in text for name in HOSTILE_CLASS_NAMES), text  # the name, character for character
    main = page.get_by_test_id("stMain")
    assert main.locator("a[href*='127.0.0.1:9'], a[href^='javascript'], img[src*='127.0.0.1:9']").count() == 0
    assert main.locator(".stMarkdownColoredText, .katex, [data-testid=stMarkdownContainer] em").count() == 0
    assert not [url for url in fetched if "127.0.0.1:9/" in url]
    assert page.get_by_test_id("stException").count() == 0


def test_a_polygon_walls_where_it_is_drawn(server, browser):
    """Clicked corners over the top-left, closed on the first corner: the walled cells lie there, so
    the masked model, which can see the top of the image, changes its answer (a polygon placed at the
    bottom-right, in the model's own unseen band, left it unchanged)."""
    page = browser.new_page(viewport={"width": 1500, "height": 2200})
    page.goto(f"{server}/Walls", timeout=60_000)
    float(_metric(page, "hirescam leakage"))  # the page has settled
    page.get_by_test_id("stSidebar").get_by_test_id("stRadio").filter(has_text="Draw").get_by_text(
        "polygon", exact=True).click()
    page.wait_for_timeout(1500)
    box = _canvas_box(page)
    for x, y in [(10, 10), (210, 10), (210, 170), (10, 170), (10, 10)]:  # the last click closes it
        page.mouse.click(box["x"] + x, box["y"] + y)
        page.wait_for_timeout(300)
    page.get_by_text("cannot be read downstream").first.wait_for(timeout=120_000)
    walled = page.get_by_text("cannot be read downstream").first.inner_text()
    cells = int(walled.split(": ", 1)[1].split(" of ")[0])
    assert 20 <= cells <= 40  # about 6 x 5 of the 14 x 14 cells under the top-left polygon
    delta = page.get_by_test_id("stMetric").filter(has_text="after walling").get_by_test_id("stMetricDelta")
    assert float(delta.inner_text(timeout=60_000).replace("−", "-")) != 0
    page.screenshot(path=str(ARTIFACTS / "walls_polygon.png"), full_page=True)


def test_an_audit_of_an_uploaded_zip_downloads_a_report_that_opens_offline(server, browser, tmp_path):
    """Upload a zip of 20 images, run the audit, download report.html, open that file with the
    network cut off and check it shows its verdicts and gallery."""
    import zipfile

    import cv2

    from camlab.study.data import CLASSES, generate_image

    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for index in range(20):
            image, label = generate_image("stack-shapes", "test", 100 + index)
            ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            bundle.writestr(f"photos/{CLASSES[label]}/{index:02d}.png", png.tobytes())
    page = browser.new_page(viewport={"width": 1500, "height": 2000}, accept_downloads=True)
    page.goto(f"{server}/Audit", timeout=60_000)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stRadio").filter(has_text="Images").get_by_text("zip upload", exact=True).click()
    page.locator("input[type=file]").set_input_files(str(archive))
    page.get_by_role("button", name="Run the audit").click(timeout=60_000)
    with page.expect_download(timeout=300_000) as download:
        page.get_by_role("button", name="Download report.html").click(timeout=300_000)
    saved = tmp_path / "report.html"
    download.value.save_as(saved)
    assert page.get_by_text("Audited 20 images").count() == 1
    assert page.get_by_test_id("stException").count() == 0
    page.screenshot(path=str(ARTIFACTS / "audit_page.png"), full_page=True)

    offline = browser.new_context(offline=True, viewport={"width": 1300, "height": 1000})
    report = offline.new_page()
    fetched = []
    report.on("request", lambda request: fetched.append(request.url))
    report.goto(saved.as_uri())
    assert report.get_by_role("heading", name="Does each method beat its controls?").count() == 1
    assert report.locator("td.ok, td.no").count() >= 6
    assert report.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert report.locator("img").count() >= 8  # the gallery: originals and overlays
    assert [url for url in fetched if not url.startswith(("file:", "data:"))] == []
    report.screenshot(path=str(ARTIFACTS / "audit_report.png"), full_page=True)
    offline.close()


_DISC = """(canvas, points) => {
    const context = canvas.getContext('2d');
    const scale = canvas.width / canvas.clientWidth;
    return points.map(([x, y]) => Array.from(context.getImageData(Math.round(x * scale), Math.round(y * scale), 1, 1).data)
                                       .slice(0, 3));
}"""


def test_drawn_regions_are_numbered_on_the_canvas_itself(server, browser):
    """Two occlusion regions: the canvas's background then carries each one's number on a dark disc
    at its centre (a pixel beside the digit, inside the disc, turns near black)."""
    page = browser.new_page(viewport={"width": 1500, "height": 2200})
    page.goto(f"{server}/Walls", timeout=60_000)
    float(_metric(page, "hirescam leakage"))
    _choose(page, "occlusion")
    page.get_by_text("Draw one or more regions").first.wait_for(timeout=60_000)
    box = _canvas_box(page)
    rectangles = [(40, 40, 160, 160), (260, 250, 400, 390)]
    beside = [((x0 + x1) / 2 + 7, (y0 + y1) / 2) for x0, y0, x1, y1 in rectangles]
    background = page.locator("canvas.dc-background-canvas")  # the component's own layer (in a shadow root)
    background.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)  # the background image loads after the element
    before = background.evaluate(_DISC, beside)
    for x0, y0, x1, y1 in rectangles:
        page.mouse.move(box["x"] + x0, box["y"] + y0)
        page.mouse.down()
        page.mouse.move(box["x"] + x1, box["y"] + y1, steps=8)
        page.mouse.up()
        page.get_by_text("Drop, region 1").first.wait_for(timeout=120_000)
        page.wait_for_timeout(1500)
    for _ in range(60):  # the new background loads a moment after the readouts
        after = background.evaluate(_DISC, beside)
        if all(all(v < 60 for v in rgb) for rgb in after):
            break
        page.wait_for_timeout(1000)
    assert all(all(v < 60 for v in rgb) for rgb in after), after
    assert not all(all(v < 60 for v in rgb) for rgb in before)  # the discs are new, not the image's own dark
    assert page.get_by_test_id("stException").count() == 0
    page.screenshot(path=str(ARTIFACTS / "walls_numbered_canvas.png"), full_page=True)


def test_a_slow_method_shows_a_progress_bar_while_it_runs(server, browser):
    page = browser.new_page(viewport={"width": 1500, "height": 1900})
    page.goto(server, timeout=60_000)
    page.get_by_text("overlay PNG").first.wait_for(timeout=180_000)
    methods = page.get_by_test_id("stSidebar").get_by_test_id("stMultiSelect").first
    methods.click()
    page.keyboard.type("scorecam")  # the list is virtualised: with every method, Score-CAM is below its fold
    page.get_by_role("option", name="scorecam (slow)").first.click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Compute scorecam").click(timeout=120_000)
    bar = page.get_by_test_id("stProgress")
    bar.first.wait_for(timeout=60_000)  # at once: "Running scorecam (…)", then the count after each chunk
    bar.filter(has_text="passes done").first.wait_for(timeout=120_000)
    page.get_by_role("button", name="Compute scorecam").wait_for(state="detached", timeout=300_000)
    bar.first.wait_for(state="detached", timeout=300_000)  # the bar goes once the maps are shown
    assert page.get_by_test_id("stException").count() == 0


@pytest.mark.parametrize("arch", ["swin_t", "vit_b_16"])
def test_a_wall_drawn_on_a_transformer_walls_its_grid_or_tokens(server, browser, arch):
    """A random-weight Swin (channels-last grid) or ViT (patch tokens) on the Walls page: the default
    wall and a drawn one give HiRes-CAM exactly 0 on the walled cells and Grad-CAM more."""
    page = browser.new_page(viewport={"width": 1500, "height": 2200})
    page.goto(f"{server}/Walls", timeout=60_000)
    float(_metric(page, "hirescam leakage"))
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stRadio").filter(has_text="Model source").get_by_text("torchvision", exact=True).click()
    sidebar.get_by_test_id("stCheckbox").filter(has_text="random weights").click()  # before the model: no download
    sidebar.get_by_test_id("stSelectbox").filter(has_text="torchvision model").click(timeout=60_000)
    page.get_by_role("option", name=arch, exact=True).click()
    sidebar.get_by_test_id("stRadio").filter(has_text="Image").get_by_text("photograph", exact=True).click()
    page.get_by_text("has random weights").first.wait_for(timeout=120_000)
    walled = page.get_by_text("cannot be read downstream").first

    def leakage() -> dict[str, float]:
        table = page.get_by_test_id("stTable").first
        return {name: float(table.locator("tr", has=page.get_by_text(name, exact=True)).inner_text(
            timeout=120_000).split()[1]) for name in ("gradcam", "hirescam")}

    default = walled.inner_text(timeout=180_000)  # the paper's wall, before any stroke
    assert leakage()["hirescam"] == 0 < leakage()["gradcam"]
    box = _canvas_box(page)
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 300, box["y"] + 250, steps=10)
    page.mouse.up()
    for _ in range(120):
        if walled.inner_text(timeout=120_000) != default:
            break
        page.wait_for_timeout(1000)
    assert walled.inner_text() != default  # the drawn wall replaced the default one
    assert leakage()["hirescam"] == 0 < leakage()["gradcam"]
    assert page.get_by_test_id("stException").count() == 0
    page.wait_for_timeout(2000)  # the canvas's background (the drawn wall's outline) loads after the readouts
    page.screenshot(path=str(ARTIFACTS / f"walls_{arch}.png"), full_page=True)
