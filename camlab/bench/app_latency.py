"""The app's latency as a user meets it, in headless Chromium against ``streamlit run`` on a free port.

    camlab-bench-app                   # 20 strokes on Walls, 20 widget changes and 5 new images on Explore
    camlab-bench-app --strokes 40 --changes 40 --images 10 --out docs/results/app_latency.json

Measured per action: from the end of a stroke (mouse up on the Walls canvas), a widget change
(Explore's colour-scale radio, which reruns only the maps' fragment) or a new image (Explore's next
test image: every map, readout and control computed afresh) until the app's script state is back
to "not running" with no stale element left, i.e. every readout settled. First render:
from navigation until the page's readouts are on screen, once the server has the model cached
(a first visit warms it up and is reported apart). Prints p50/p95 and writes every sample as
JSON. Needs the test extras (playwright) and Debian's chromium.
"""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..app.launch import server_command

if TYPE_CHECKING:  # playwright is a dev extra, imported where the browser starts
    from playwright.sync_api import Page

SETTLED = ("document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state') === 'notRunning'"
           " && document.querySelectorAll('[data-stale=true]').length === 0")


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    """The app as ``camlab-app`` serves it, on 127.0.0.1:port, once it accepts connections."""
    process = subprocess.Popen(server_command("--server.port", str(port), "--server.address", "127.0.0.1"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("streamlit did not start within 60 s")


def _settle(page: Page, started: float, timeout_ms: int = 120_000) -> float:
    """Seconds from ``started`` until the rerun the action caused has finished."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:  # the rerun may start and end before we look; then the state is already settled
        page.wait_for_function("document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state')"
                               " === 'running'", timeout=1500, polling=5)
    except PlaywrightTimeout:
        pass  # the rerun was quicker than the poll
    page.wait_for_function(SETTLED, timeout=timeout_ms, polling=5)
    return time.perf_counter() - started


def _first_render(page: Page, url: str, ready_text: str) -> float:
    started = time.perf_counter()
    page.goto(url, timeout=120_000)
    page.get_by_text(ready_text).first.wait_for(timeout=180_000)
    return _settle(page, started)


def _strokes(page: Page, count: int) -> list[float]:
    canvas = page.locator("canvas.upper-canvas")
    box = canvas.bounding_box(timeout=60_000)
    if box is None:
        raise RuntimeError("the Walls canvas is not on screen")
    samples = []
    for i in range(count):
        x, y = 20 + (i * 37) % 300, 20 + (i * 53) % 300  # walls all over the image, growing the union
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        page.mouse.move(box["x"] + x + 60, box["y"] + y + 40, steps=6)
        page.mouse.up()
        samples.append(_settle(page, time.perf_counter()))
    return samples


def _changes(page: Page, count: int) -> list[float]:
    radio = page.get_by_test_id("stRadio").filter(has=page.get_by_text("Colour scale"))
    samples = []
    for i in range(count):
        option = ("shared", "per map")[i % 2]
        radio.get_by_text(option, exact=True).click()
        samples.append(_settle(page, time.perf_counter()))
    return samples


def _new_images(page: Page, count: int) -> list[float]:
    step_up = page.get_by_test_id("stNumberInput").filter(has_text="Test image").get_by_test_id("stNumberInputStepUp")
    samples = []
    for _ in range(count):
        step_up.click()
        samples.append(_settle(page, time.perf_counter()))
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"n": len(samples), "p50": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], "max": ordered[-1]}


def main(argv: Sequence[str] | None = None) -> None:
    """``camlab-bench-app``: the app's latency in headless Chromium (see the module docstring)."""
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strokes", type=int, default=20)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--images", type=int, default=5, help="new images on Explore (a full recomputation each)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--out", default=None, help="write every sample as JSON here")
    args = parser.parse_args(argv)

    port = free_port()
    server = start_server(port)
    url = f"http://127.0.0.1:{port}"
    report: dict[str, Any] = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium,
                                                 args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            warm = browser.new_page(viewport={"width": 1500, "height": 2000})
            report["cold_first_render_walls_s"] = _first_render(warm, f"{url}/Walls", "The model's own unseen region")
            warm.close()
            for name, path, ready in (("walls", "/Walls", "The model's own unseen region"), ("explore", "/", "overlay PNG")):
                page = browser.new_page(viewport={"width": 1500, "height": 2000})
                report[f"first_render_{name}_s"] = _first_render(page, url + path, ready)
                if name == "walls":
                    report["strokes"] = _strokes(page, args.strokes)
                else:
                    report["changes"] = _changes(page, args.changes)
                    report["new_images"] = _new_images(page, args.images)
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"first render after warm-up: Walls {report['first_render_walls_s']:.2f} s, "
          f"Explore {report['first_render_explore_s']:.2f} s (server's first visit, Walls: "
          f"{report['cold_first_render_walls_s']:.2f} s)")
    for key, label in (("strokes", "stroke on Walls → readouts settled"), ("changes", "widget change on Explore → settled"),
                       ("new_images", "new image on Explore → every map and readout settled")):
        stats = _summary(report[key])
        report[f"{key}_summary"] = stats
        print(f"{label}: n={stats['n']} p50 {stats['p50']:.3f} s, p95 {stats['p95']:.3f} s, max {stats['max']:.3f} s")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
