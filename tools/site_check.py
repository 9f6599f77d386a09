"""Open the built website in headless Chromium and check every lesson page as a reader sees it.

    bash course.sh site && .venv/bin/python tools/site_check.py              # all pages
    .venv/bin/python tools/site_check.py --screenshots site/screenshots      # and screenshots

Serves build/site on 127.0.0.1 (http.server in a thread), starts Chromium and drives it over
the DevTools protocol (websocket-client). On every page (the home page, every lesson page, one per
notebooks/NN_*.ipynb, and every other page the home page's toctrees list) it checks: the page loads with no console error, no failed request
and no request outside the site (it must work offline); every <img> is complete with
naturalWidth > 0; MathJax drew every formula and left no raw ``$$``; the Chinese terms are drawn
with the vendored Noto Sans SC subset (the font Chromium actually used, not just the CSS) and
the subset has every Chinese character of the page. On lesson pages, also: every exercise
solution is folded behind "Show the solution"; the Colab link opens this lesson in this
repository; no "HBox(children=…" text and no progress bar frozen at "0%|" show. On every page: the
sidebar lists every page; the previous and next links go to the neighbouring pages in reading
order; every navigation link loads; no line of code or output is cut off at the right edge of the
text column (a block either wraps its lines or shows its scroll bar). Exits 1 on any failure.
"""

import argparse
import base64
import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "site" / "_ext"))
sys.path.insert(0, str(ROOT / "tools"))
from course_site import lessons, repository_url  # noqa: E402
from site_font import WEIGHTS, font_path, missing_chars  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
TIMEOUT = 60  # seconds for one page to load and typeset


class CheckError(RuntimeError):
    pass


def find_browser(explicit: str | None = None) -> str | None:
    for name in [explicit] if explicit else BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def serve(site: Path) -> http.server.ThreadingHTTPServer:
    """Serve ``site`` on 127.0.0.1 at a free port, from a daemon thread."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 128  # a page asks for dozens of files at once; the default backlog is 5

    server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Browser:
    """Headless Chromium and one tab, driven over the DevTools protocol."""

    def __init__(self, executable: str, width: int = 1280, height: int = 900):
        import websocket  # websocket-client, from requirements-site.txt

        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="site-check-")
        args = [
            executable,
            "--headless=new",
            # only this site's pages are opened; the sandbox is refused to root and missing in
            # many containers and CI runners
            "--no-sandbox",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--mute-audio",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            self._connect(websocket)
        except BaseException:
            self.close()
            raise

    def _connect(self, websocket) -> None:
        browser_ws = self._devtools_url()
        # no Origin header: Chromium refuses websockets from other origins
        control = websocket.create_connection(browser_ws, timeout=TIMEOUT, suppress_origin=True)
        self.ws, self._next_id, self.events = control, 0, []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        control.close()
        port = re.search(r":(\d+)/", browser_ws)[1]
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}/devtools/page/{target}", timeout=TIMEOUT, suppress_origin=True
        )
        for domain in ("Page", "Runtime", "Log", "Network", "DOM", "CSS"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def _devtools_url(self) -> str:
        deadline = time.monotonic() + TIMEOUT
        lines = []
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line and self.process.poll() is not None:
                break
            lines.append(line)
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                return found[1]
        raise CheckError("Chromium did not start its DevTools endpoint:\n" + "".join(lines[-20:]))

    def send(self, method: str, **params):
        """Call one DevTools method and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        self.ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise CheckError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str):
        result = self.send(
            "Runtime.evaluate",
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
            timeout=TIMEOUT * 1000,
        )
        if "exceptionDetails" in result:
            raise CheckError(f"script failed: {result['exceptionDetails'].get('text')} in {expression[:80]}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event, MathJax and the web fonts."""
        self.events.clear()
        self.send("Page.navigate", url=url)
        deadline = time.monotonic() + TIMEOUT
        while not any(e["method"] == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise CheckError(f"{url} did not finish loading in {TIMEOUT} s")
            self.events.append(json.loads(self.ws.recv()))
        self.evaluate(
            "(async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise;"
            " await document.fonts.ready; return true; })()"
        )

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed requests since the last open()."""
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(
                    f"exception: {details.get('exception', {}).get('description') or details['text']}"
                )
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(
                    "console.error: "
                    + " ".join(str(a.get("value", a.get("description"))) for a in params.get("args", []))
                )
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(
                    f"{params['entry']['source']}: {params['entry']['text']} {params['entry'].get('url', '')}"
                )
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                found.append(f"request failed: {params.get('errorText')}")
        return found

    def requests(self) -> list[str]:
        """The URLs the page requested since the last open()."""
        return [
            e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"
        ]

    def fonts_used(self, selector: str) -> list[str]:
        """The fonts Chromium drew the text directly inside the elements ``selector`` matches with.
        Right after a load Chromium may not report them yet: ask again for up to 5 s."""
        for _ in range(10):
            root = self.send("DOM.getDocument", depth=-1)["root"]["nodeId"]
            nodes = self.send("DOM.querySelectorAll", nodeId=root, selector=selector)["nodeIds"]
            fonts = {
                f["familyName"]
                for node in nodes
                for f in self.send("CSS.getPlatformFontsForNode", nodeId=node)["fonts"]
            }
            if fonts:
                return sorted(fonts)
            time.sleep(0.5)
        return []

    def screenshot(self, path: Path, scroll_to: str | None = None) -> None:
        """Save the viewport as a PNG, first scrolled to the element the JS ``scroll_to`` finds."""
        if scroll_to:
            self.evaluate(f"({scroll_to}).scrollIntoView(); true")
            time.sleep(0.3)
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


# What the page looks like, measured in the page: one script, one JSON answer.
PAGE_FACTS = r"""(() => {
  const visibleText = el => { const c = el.cloneNode(true);
    c.querySelectorAll('pre, code, script, style, mjx-container, .MathJax').forEach(n => n.remove());
    return c.textContent; };
  const main = document.querySelector('main') || document.body;
  const imgs = [...document.images];
  const math = [...document.querySelectorAll('.math')];
  const cjk = [];  // the first elements of the article whose own text holds a Chinese character
  const walker = document.createTreeWalker(document.querySelector('article') || main, NodeFilter.SHOW_TEXT);
  for (let n; cjk.length < 5 && (n = walker.nextNode());) {
    if (/[\u4e00-\u9fff]/.test(n.data) && !cjk.includes(n.parentElement)) cjk.push(n.parentElement);
  }
  cjk.forEach(el => el.setAttribute('data-site-check-cjk', ''));
  const solutions = [...document.querySelectorAll('details.hide')].filter(
    d => d.querySelector('summary') && /Show the solution/.test(d.querySelector('summary').textContent));
  const links = sel => [...document.querySelectorAll(sel)].map(a => a.href);
  return {
    title: document.title,
    images: imgs.length,
    brokenImages: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
    math: math.length,
    untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60)),
    rawDollars: (visibleText(main).match(/\$\$/g) || []).length,
    // a block whose lines run past its right edge must show a scroll bar (it takes height)
    cutOff: [...main.querySelectorAll('pre')].filter(p => p.scrollWidth > p.clientWidth + 1 &&
      !(['auto', 'scroll'].includes(getComputedStyle(p).overflowX) && p.offsetHeight - p.clientHeight >= 5))
      .map(p => p.textContent.split('\n').reduce((a, b) => b.length > a.length ? b : a, '').slice(0, 60)),
    hbox: /HBox\(children=/.test(main.textContent),
    frozenBar: /\b0%\|/.test(main.textContent),
    cjkText: cjk.length ? cjk[0].textContent.trim().slice(0, 60) : null,
    cjkChars: [...new Set(main.textContent.match(
      /[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]/g) || [])].join(''),
    cjkFontLoaded: [...document.fonts].some(
      f => f.family.replace(/"/g, '') === 'Course CJK' && f.status === 'loaded'),
    solutions: solutions.length,
    openSolutions: solutions.filter(d => d.open).length,
    colab: links('a[href^="https://colab.research.google.com/github/"]'),
    sidebar: links('nav.bd-docs-nav a'),
    prev: links('.prev-next-area a.left-prev'),
    next: links('.prev-next-area a.right-next'),
  };
})()"""

# HTTP status of each URL, one request at a time (0: no answer)
STATUS_OF = """(async (urls) => { const codes = [];
  for (const u of urls) codes.push(await fetch(u).then(r => r.status, () => 0));
  return codes; })"""


def check_page(browser: Browser, url: str, expect: dict) -> tuple[list[str], dict]:
    """Open ``url`` and return (problems, facts). ``expect`` holds what this page must have."""
    browser.open(url)
    facts = browser.evaluate(PAGE_FACTS)
    problems = browser.errors()
    site = url.split("/", 3)[:3]
    problems += [
        f"loads {u} from outside the site"
        for u in browser.requests()
        if u.split("/", 3)[:3] != site and not u.startswith(("data:", "blob:", "about:"))
    ]
    if facts["brokenImages"]:
        problems.append(f"images not drawn: {facts['brokenImages'][:5]}")
    if facts["untypeset"]:
        problems.append(
            f"{len(facts['untypeset'])} formulas not typeset by MathJax, e.g. {facts['untypeset'][0]!r}"
        )
    if facts["rawDollars"]:
        problems.append(f"raw $$ left in the text ({facts['rawDollars']}x)")
    if facts["cutOff"]:
        problems.append(f"{len(facts['cutOff'])} code or output blocks cut off at the right edge (no wrap, no "
                        f"scroll bar), e.g. {facts['cutOff'][0]!r}")
    if facts["hbox"] and expect.get("lesson"):  # the API page quotes the text it avoids
        problems.append('a widget shows as "HBox(children=…" text')
    if facts["frozenBar"] and expect.get("lesson"):
        problems.append('a progress bar is frozen at "0%|" (a tqdm widget bar, saved as its first frame)')
    if expect.get("cjk"):
        fonts = browser.fonts_used("[data-site-check-cjk]") if facts["cjkText"] else []
        if not facts["cjkText"]:
            problems.append("no Chinese term found in the text")
        elif not facts["cjkFontLoaded"] or not any("Noto Sans SC" in f for f in fonts):
            problems.append(
                f"Chinese text {facts['cjkText']!r} drawn with {fonts}, not the vendored Noto Sans SC"
            )
        facts["cjkFonts"] = fonts
        lacking = set().union(*(missing_chars(font_path(w), set(facts["cjkChars"])) for w in WEIGHTS))
        if lacking:
            problems.append(f"the vendored font lacks {''.join(sorted(lacking))}: run tools/site_font.py")
    if "solutions" in expect and (facts["solutions"], facts["openSolutions"]) != (expect["solutions"], 0):
        problems.append(
            f"{facts['solutions']} solution toggles ({facts['openSolutions']} open); "
            f"the notebook has {expect['solutions']} solutions, all to be folded"
        )
    if "colab" in expect and expect["colab"] not in facts["colab"]:
        problems.append(f"no Colab link to {expect['colab']} (found {facts['colab']})")
    for page in expect.get("sidebar", []):
        if not any(link.split("#")[0].endswith(page) for link in facts["sidebar"]):
            problems.append(f"the sidebar does not link to {page}")
    for side in ("prev", "next"):
        want = expect.get(side)
        if want and not any(link.split("#")[0].endswith(want) for link in facts[side]):
            problems.append(f"the {side} link goes to {facts[side]}, not {want}")
    targets = sorted({link.split("#")[0] for link in facts["sidebar"] + facts["prev"] + facts["next"]})
    statuses = browser.evaluate(f"{STATUS_OF}({json.dumps(targets)})")
    problems += [f"navigation link {t} answers {s}" for t, s in zip(targets, statuses) if s != 200]
    return problems, facts


def solution_count(notebook: Path) -> int:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return sum("solution" in cell.get("metadata", {}).get("tags", []) for cell in cells)


def site_pages(names: list[str], index: str | None = None) -> list[str]:
    """Every page of the site in reading order (the home page's toctrees: a glob line stands for the
    lessons ``names``), e.g. ``["index.html", "notebooks/01_tensors.html", ..., "setup.html", ...]``."""
    index = (ROOT / "site" / "index.md").read_text(encoding="utf-8") if index is None else index
    pages = ["index.html"]
    for block in re.findall(r"```\{toctree\}\n(.*?)```", index, re.S):
        for line in block.splitlines():
            entry = line.strip()
            if not entry or entry.startswith(":"):
                continue
            if "*" in entry or "[" in entry:
                pages += [f"notebooks/{n}.html" for n in names]
            else:
                pages.append(f"{entry}.html")
    return pages


def page_plan(names: list[str], repo: str, index: str | None = None) -> list[tuple[str, dict]]:
    """(page, what it must have) for every page of the site: the home page, each lesson ``names``
    and the other pages, with the previous and next page of each."""
    every_lesson = [f"notebooks/{n}.html" for n in names]
    pages = site_pages(names, index)
    plan = []
    for i, page in enumerate(pages):
        expect = {"sidebar": pages[1:]}
        if i > 0:
            expect["prev"] = pages[i - 1]
        if i + 1 < len(pages):
            expect["next"] = pages[i + 1]
        if page == "index.html":
            expect["cjk"] = True
        if page in every_lesson:
            name = names[every_lesson.index(page)]
            expect |= {
                "lesson": True,
                "cjk": True,
                "solutions": solution_count(ROOT / "notebooks" / f"{name}.ipynb"),
                "colab": f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{name}.ipynb",
            }
        plan.append((page, expect))
    return plan


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "build" / "site", help="the built site")
    parser.add_argument(
        "--browser", help=f"Chromium's executable (default: the first of {', '.join(BROWSERS)})"
    )
    parser.add_argument(
        "--screenshots", type=Path, help="save screenshots of the home page and a lesson here"
    )
    parser.add_argument("--screenshot-lesson", default="02", help="the lesson to screenshot (default 02)")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(
            f"site_check: no site in {args.site}: build it first with `bash course.sh site`", file=sys.stderr
        )
        return 2
    executable = find_browser(args.browser)
    if not executable:
        print(
            f"site_check: no Chromium found ({', '.join(BROWSERS)}); on Debian or Ubuntu: "
            "apt-get install chromium",
            file=sys.stderr,
        )
        return 2
    pages = lessons()
    names = list(pages.values())
    server = serve(args.site.resolve())
    base = f"http://127.0.0.1:{server.server_address[1]}"
    browser = Browser(executable)
    failures = 0
    try:
        plan = page_plan(names, repository_url().removeprefix("https://github.com/"))
        for page, expect in plan:
            try:
                problems, facts = check_page(browser, f"{base}/{page}", expect)
            except CheckError as error:  # a page that never loads: report it, check the others
                problems, facts = [str(error)], {"images": 0, "math": 0, "solutions": 0}
            failures += bool(problems)
            summary = f"{facts['images']} images, {facts['math']} formulas"
            if "solutions" in expect:
                summary += f", {facts['solutions']} solutions folded, Colab link"
            if expect.get("cjk"):
                summary += f", Chinese drawn with {' + '.join(facts.get('cjkFonts', []))}"
            print(f"{'FAIL' if problems else 'ok  '} {page}: {summary}")
            for problem in problems:
                print(f"       {problem}")
        if args.screenshots:
            browser.open(f"{base}/index.html")
            browser.screenshot(args.screenshots / "home.png")
            lesson = pages[args.screenshot_lesson]
            browser.open(f"{base}/notebooks/{lesson}.html")
            browser.screenshot(args.screenshots / "lesson.png")
            browser.screenshot(
                args.screenshots / "lesson-solution.png", scroll_to="document.querySelector('details.hide')"
            )
            browser.screenshot(
                args.screenshots / "lesson-widget.png",
                scroll_to="[...document.querySelectorAll('.cell_output pre')]"
                ".find(p => /explorer/.test(p.textContent))",
            )
            print(
                f"screenshots in {args.screenshots}: home.png, and lesson {lesson}'s top (lesson.png), "
                "first exercise (lesson-solution.png) and widget (lesson-widget.png)"
            )
    finally:
        browser.close()
        server.shutdown()
    print(f"site_check: {len(plan) - failures} pages passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
