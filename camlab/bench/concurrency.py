"""Several visitors on one server, in headless Chromium: does one visitor's slow method stall the others?

    camlab-bench-concurrency                       # the figures README shows
    camlab-bench-concurrency --images 3 --sessions 8 --out docs/results/concurrency.json

Three measurements, each on a fresh ``streamlit run`` (empty result caches, so every view is
computed, never read back from an earlier phase):

1. **Alone.** One visitor on Explore with torchvision's resnet18 (random weights: nothing to
   download) steps through ``--images`` new test images (every map, readout and control computed
   afresh) and the seconds until each settles are recorded with its readouts table; then the shipped
   masked_vgg's default view on test images 0 … sessions-1, one after another, tables recorded;
   and Score-CAM on resnet18's image 0, timed alone.
2. **Beside a slow method.** Visitor A asks for Score-CAM on resnet18 (512 channels: one forward
   each); while it runs, visitor B steps through the same new images as in 1. Each B sample counts
   only if A's Score-CAM was still running when it started and when it settled. Ratio: B's median
   time beside Score-CAM over its median alone (target ≤ 1.5); B's tables must equal phase 1's.
3. **Many sessions.** ``--sessions`` browser sessions open masked_vgg's Explore at once, each on
   its own test image; every page must settle without an exception and show exactly the table its
   image had alone in phase 1.

The server's resident memory (VmRSS now, VmHWM peak, from /proc) is read after each phase.
Needs the test extras (playwright) and Debian's chromium.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .app_latency import _settle, free_port, start_server

if TYPE_CHECKING:  # playwright is a dev extra, imported where the browser starts
    from playwright.sync_api import Browser, Page

RUNNING = "document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state') === 'running'"


def _memory_mib(pid: int) -> dict[str, float]:
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields


def _settled_page(browser: Browser, url: str) -> Page:
    page = browser.new_page(viewport={"width": 1500, "height": 2000})
    page.goto(url, timeout=120_000)
    page.get_by_text("overlay PNG").first.wait_for(timeout=300_000)
    _settle(page, time.perf_counter(), 300_000)
    return page


def _resnet18(page: Page) -> None:
    """Switch an Explore page to torchvision's resnet18 with random weights."""
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stRadio").filter(has_text="Model source").get_by_text("torchvision", exact=True).click()
    _settle(page, time.perf_counter(), 300_000)
    sidebar.get_by_test_id("stSelectbox").filter(has_text="torchvision model").click()
    page.get_by_role("option", name="resnet18", exact=True).click()
    _settle(page, time.perf_counter(), 300_000)
    sidebar.get_by_test_id("stCheckbox").filter(has_text="random weights").click()
    page.get_by_text("overlay PNG").first.wait_for(timeout=300_000)
    _settle(page, time.perf_counter(), 300_000)


def _table(page: Page) -> str:
    return page.get_by_test_id("stTable").first.inner_text(timeout=300_000)


def _set_image(page: Page, index: int) -> float:
    box = page.get_by_test_id("stNumberInput").filter(has_text="Test image").locator("input")
    box.fill(str(index))
    started = time.perf_counter()
    box.press("Enter")
    return _settle(page, started, 300_000)


def _start_scorecam(page: Page) -> float:
    """Add Score-CAM to an Explore page's methods and press its button; returns the time pressed."""
    methods = page.get_by_test_id("stSidebar").get_by_test_id("stMultiSelect").filter(has_text="Methods")
    methods.click()
    page.get_by_role("option", name="scorecam (slow)").click()
    page.keyboard.press("Escape")
    _settle(page, time.perf_counter(), 300_000)
    started = time.perf_counter()
    page.get_by_role("button", name="Compute scorecam").click()
    page.wait_for_function(RUNNING, timeout=30_000, polling=5)
    return started


def _scorecam_done(page: Page, started: float) -> float:
    page.get_by_text("scorecam", exact=True).first.wait_for(timeout=600_000)
    return _settle(page, started, 600_000)


def _exceptions(page: Page) -> int:
    return page.get_by_test_id("stException").count()


def _server(browser_work: Callable[[str], None], report_key: str, report: dict) -> None:
    port = free_port()
    server = start_server(port)
    try:
        browser_work(f"http://127.0.0.1:{port}")
    finally:
        report[report_key] = _memory_mib(server.pid)
        server.terminate()
        server.wait(timeout=30)


def _alone(browser: Browser, report: dict[str, Any], tables: dict[str, str], images: list[int], sessions: int,
           url: str) -> None:
    """Phase 1: one visitor alone: resnet18's new images, a Score-CAM run, the masked VGG's tables."""
    page = _settled_page(browser, url)
    _resnet18(page)
    report["alone_s"] = []
    for index in images:
        report["alone_s"].append(_set_image(page, index))
        tables[f"resnet18-{index}"] = _table(page)
    _set_image(page, 0)
    report["scorecam_alone_s"] = _scorecam_done(page, _start_scorecam(page))
    page.close()
    page = _settled_page(browser, url)
    for index in range(sessions):
        _set_image(page, index)
        tables[f"masked_vgg-{index}"] = _table(page)
    page.close()

def _beside_scorecam(browser: Browser, report: dict[str, Any], tables: dict[str, str], images: list[int],
                     url: str) -> None:
    """Phase 2: a visitor's new images while another visitor's Score-CAM runs."""
    slow, fast = _settled_page(browser, url), _settled_page(browser, url)
    _resnet18(slow)
    _resnet18(fast)
    started = _start_scorecam(slow)
    report["beside_scorecam_s"], report["overlapped"], report["tables_equal"] = [], [], []
    for index in images:
        running_before = slow.evaluate(RUNNING)
        report["beside_scorecam_s"].append(_set_image(fast, index))
        report["overlapped"].append(bool(running_before and slow.evaluate(RUNNING)))
        report["tables_equal"].append(_table(fast) == tables[f"resnet18-{index}"])
    report["scorecam_beside_s"] = _scorecam_done(slow, started)
    report["exceptions_phase2"] = _exceptions(slow) + _exceptions(fast)
    slow.close()
    fast.close()

def _many_sessions(browser: Browser, report: dict[str, Any], tables: dict[str, str], sessions: int, url: str) -> None:
    """Phase 3: every session changes its image at once."""
    _settled_page(browser, url).close()  # the model loaded once, as on a server already in use
    pages = [browser.new_page(viewport={"width": 1500, "height": 2000}) for _ in range(sessions)]
    started = time.perf_counter()
    for page in pages:
        page.goto(url, timeout=120_000)
    for page in pages:
        page.get_by_text("overlay PNG").first.wait_for(timeout=600_000)
    for page in pages:
        _settle(page, started, 600_000)
    for index, page in enumerate(pages):
        page.get_by_test_id("stNumberInput").filter(has_text="Test image").locator("input").fill(str(index))
    for page in pages:  # every session changes its image at once
        page.get_by_test_id("stNumberInput").filter(has_text="Test image").locator("input").press("Enter")
    for page in pages:
        _settle(page, started, 600_000)
    report["sessions_settled_s"] = time.perf_counter() - started
    report["sessions_tables_equal"] = [_table(page) == tables[f"masked_vgg-{i}"] for i, page in enumerate(pages)]
    report["exceptions_phase3"] = sum(_exceptions(page) for page in pages)
    for page in pages:
        page.close()


def _summarise(report: dict[str, Any], sessions: int) -> None:
    """The ratio of medians into ``report``, and every phase's numbers printed."""
    counted = [b for b, overlapped in zip(report["beside_scorecam_s"], report["overlapped"]) if overlapped]
    alone_p50 = statistics.median(report["alone_s"])
    report["ratio_p50"] = statistics.median(counted) / alone_p50 if counted else None
    print(f"resnet18 new image alone: p50 {alone_p50:.2f} s ({', '.join(f'{s:.2f}' for s in report['alone_s'])})")
    print(f"the same beside another visitor's Score-CAM: {', '.join(f'{s:.2f}' for s in report['beside_scorecam_s'])} s "
          f"(overlapping: {report['overlapped']}); ratio of medians "
          f"{report['ratio_p50']:.2f}" if counted else "no sample overlapped the Score-CAM run")
    print(f"Score-CAM itself: {report['scorecam_alone_s']:.1f} s alone, {report['scorecam_beside_s']:.1f} s beside the "
          f"other visitor; tables equal to alone: {report['tables_equal']}, exceptions {report['exceptions_phase2']}")
    print(f"{sessions} sessions at once: settled in {report['sessions_settled_s']:.1f} s, tables equal to alone: "
          f"{report['sessions_tables_equal']}, exceptions {report['exceptions_phase3']}")
    for key in ("memory_alone_mib", "memory_beside_scorecam_mib", "memory_sessions_mib"):
        print(f"server memory, {key[7:-4]}: {report[key]['VmRSS']:.0f} MiB now, {report[key]['VmHWM']:.0f} MiB peak")


def main(argv: Sequence[str] | None = None) -> None:
    """``camlab-bench-concurrency``: several visitors at once (see the module docstring)."""
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3, help="new resnet18 images per phase (each ~10 s on 2 cores)")
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--out", default=None, help="write every sample as JSON here")
    args = parser.parse_args(argv)
    images = list(range(1, args.images + 1))
    report: dict[str, Any] = {"images": images, "sessions": args.sessions}
    tables: dict[str, str] = {}

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium,
                                             args=["--no-sandbox", "--disable-gpu", "--no-first-run"])

        _server(partial(_alone, browser, report, tables, images, args.sessions), "memory_alone_mib", report)
        _server(partial(_beside_scorecam, browser, report, tables, images), "memory_beside_scorecam_mib", report)
        _server(partial(_many_sessions, browser, report, tables, args.sessions), "memory_sessions_mib", report)
        browser.close()

    _summarise(report, args.sessions)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
