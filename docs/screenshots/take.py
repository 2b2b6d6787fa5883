"""The README's screenshots, taken from real runs: serves RUNS with `mnistgan serve`'s app on
127.0.0.1 and drives Debian's chromium through Playwright over the runs page, RUN's story,
its forge page (class 7 when the run is conditional) and its police officer (one drawn stroke),
then opens `mnistgan report RUN` offline.

    mnistgan train --preset best --epochs 3 --out runs/best --data-dir ../shared/data/mnist
    mnistgan train --epochs 20 --out runs/seed --data-dir ../shared/data/mnist
    mnistgan evaluate runs/best
    python docs/screenshots/take.py runs best --out docs/screenshots
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path


def take(page, base: str, name: str, out: Path, conditional: bool) -> None:
    def shot(file: str) -> None:
        page.screenshot(path=str(out / f"{file}.png"), full_page=True)
        print(f"wrote {out / file}.png")

    page.goto(base + "/")
    page.wait_for_load_state("networkidle")
    shot("runs")
    page.goto(f"{base}/runs/{name}")
    page.wait_for_load_state("networkidle")
    shot("story")
    page.goto(f"{base}/runs/{name}/forge")
    if conditional:
        page.select_option("#digit", "7")
    page.fill("#n", "100")
    page.click("button[type=submit]")
    page.wait_for_function("document.querySelector('#forged').naturalWidth > 0")
    page.eval_on_selector("#t", "s => { s.value = 60; s.dispatchEvent(new Event('input')); }")
    page.wait_for_function("document.querySelector('#between').dataset.url?.includes('t=0.6')")
    page.wait_for_function("document.querySelector('#between').naturalWidth > 0")
    shot("forge-7")
    page.goto(f"{base}/runs/{name}/police")
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + 140, box["y"] + 40)
    page.mouse.down()
    for y in range(40, 250, 10):
        page.mouse.move(box["x"] + 140 + (y - 40) // 30, box["y"] + y)
    page.mouse.up()
    page.click("#judge")
    page.wait_for_function("document.querySelector('#verdict').textContent.length > 0")
    shot("police-verdict")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, help="folder of runs")
    p.add_argument("run", help="the run whose pages are shown (a name inside RUNS)")
    p.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    a = p.parse_args()
    from playwright.sync_api import sync_playwright

    from mnistgan.generation import read_config
    from mnistgan.web.app import serve_in_thread
    from mnistgan.web.story import write_report

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("needs Debian's chromium: apt-get install chromium")
    a.out.mkdir(parents=True, exist_ok=True)
    conditional = read_config(a.runs / a.run).conditional
    base, stop = serve_in_thread(a.runs)
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=browser, args=["--no-sandbox"])
            page = b.new_context(viewport={"width": 1100, "height": 900}).new_page()
            take(page, base, a.run, a.out, conditional)
            with tempfile.TemporaryDirectory() as tmp:
                report = write_report(a.runs / a.run, Path(tmp) / "report.html", False)
                page.goto(Path(report).resolve().as_uri())
                page.wait_for_load_state("load")
                page.screenshot(path=str(a.out / "report.png"), full_page=True)
                print(f"wrote {a.out / 'report.png'}")
            b.close()
    finally:
        stop()


if __name__ == "__main__":
    main()
