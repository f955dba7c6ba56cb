#!/usr/bin/env python3
"""Open an HTML file in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) and
check it the way a reader's browser would see it.

Fails (exit 1, reasons on stderr) when the page logs a console error, throws an uncaught
exception, requests anything but its own file (a self-contained page needs no network), or when
an expectation does not hold:

  --expect 'SELECTOR=N'   exactly N elements match the CSS selector
  --drawn 'SELECTOR=N'    exactly N elements match it and every one is drawn (a non-empty box)
  --rendered 'SELECTOR'   at least one element matches, and every match is laid out with a
                          non-empty box and draws at least --min-drawn visible SVG/HTML shapes

Prints a JSON summary (counts per selector, console messages) on stdout. Use it with the venv of
deploy/local/browser-env.sh:

  python="$(bash deploy/local/browser-env.sh)"
  "$python" tests/browser/check_page.py report.html --expect 'svg#kaart path.gemeente=342'
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Counts, per matched element, the drawn descendants (or the element itself) with a non-empty box.
RENDERED_JS = """
(els) => els.map((el) => {
  const r = el.getBoundingClientRect();
  const shapes = el.querySelectorAll('path, rect, line, polyline, polygon, circle, ellipse, text, img');
  let drawn = 0;
  for (const s of shapes) {
    const b = s.getBoundingClientRect();
    if (b.width > 0 || b.height > 0) drawn++;
  }
  return {tag: el.tagName.toLowerCase(), width: r.width, height: r.height, drawn: drawn};
})
"""

# Whether each matched element has a non-empty box on the page.
DRAWN_JS = """
(els) => els.map((el) => { const b = el.getBoundingClientRect(); return b.width > 0 && b.height > 0; })
"""


def parse_expect(text):
    selector, sep, count = text.rpartition("=")
    if not sep or not selector or not count.isdigit():
        raise argparse.ArgumentTypeError(f"wanted SELECTOR=N, got {text!r}")
    return selector, int(count)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", type=pathlib.Path)
    ap.add_argument("--expect", action="append", type=parse_expect, default=[])
    ap.add_argument("--drawn", action="append", type=parse_expect, default=[])
    ap.add_argument("--rendered", action="append", default=[])
    ap.add_argument("--min-drawn", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds for the page to load")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args()

    page_path = args.file.resolve()
    if not page_path.is_file():
        print(f"check_page: {page_path}: no such file", file=sys.stderr)
        return 2
    url = page_path.as_uri()
    problems = []
    console = []
    summary = {"file": str(page_path), "counts": {}, "drawn": {}, "rendered": {}, "console": console}

    with tempfile.TemporaryDirectory(prefix="check-page-") as profile, sync_playwright() as pw:
        # A fresh profile per run; Playwright never downloads a browser here, it drives Debian's.
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=args.chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            chromium_sandbox=False,
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()

            def on_console(msg):
                console.append({"type": msg.type, "text": msg.text})
                if msg.type == "error":
                    problems.append(f"console error: {msg.text}")

            def on_route(route):
                if route.request.url.split("#")[0] == url or route.request.url.startswith("data:"):
                    route.continue_()
                else:
                    problems.append(f"the page requested {route.request.url} (not self-contained)")
                    route.abort()

            page.on("console", on_console)
            page.on("pageerror", lambda e: problems.append(f"uncaught exception: {e}"))
            page.on("crash", lambda _p: problems.append("the page crashed"))
            page.route("**/*", on_route)
            page.goto(url, wait_until="load", timeout=args.timeout * 1000)
            # Let scripts scheduled at load run and report.
            page.wait_for_timeout(200)

            for selector, want in args.expect:
                got = page.locator(selector).count()
                summary["counts"][selector] = got
                if got != want:
                    problems.append(f"selector {selector!r}: {got} elements, expected {want}")
            for selector, want in args.drawn:
                boxes = page.eval_on_selector_all(selector, DRAWN_JS)
                drawn = sum(1 for b in boxes if b)
                summary["drawn"][selector] = {"matched": len(boxes), "drawn": drawn}
                if len(boxes) != want or drawn != want:
                    problems.append(
                        f"selector {selector!r}: {len(boxes)} elements, {drawn} of them drawn, "
                        f"expected {want} drawn"
                    )
            for selector in args.rendered:
                boxes = page.eval_on_selector_all(selector, RENDERED_JS)
                summary["rendered"][selector] = boxes
                if not boxes:
                    problems.append(f"selector {selector!r}: nothing to render")
                for i, b in enumerate(boxes):
                    if b["width"] <= 0 or b["height"] <= 0 or b["drawn"] < args.min_drawn:
                        problems.append(
                            f"selector {selector!r} element {i} ({b['tag']}) not rendered: "
                            f"box {b['width']:.0f}x{b['height']:.0f}, {b['drawn']} drawn shapes "
                            f"(at least {args.min_drawn} wanted)"
                        )
        finally:
            context.close()

    summary["problems"] = problems
    print(json.dumps(summary, ensure_ascii=False))
    for p in problems:
        print(f"check_page: {page_path.name}: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
