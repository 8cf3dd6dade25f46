#!/usr/bin/env python3
"""The console in a real browser (Chromium driven by playwright's sync API).

Runs against a live `pipectl serve --listen` with a token, over the store `.ci/console-browser`
builds: repo `raw` (a.txt, b.txt, bad.txt and a file named like an HTML tag) and pipelines
`upper` (raw, /*), `count` (upper, /) and `check` (raw, /*, fails on bad.txt after printing
`cannot parse bad.txt ...`), plus `slow` (one datum printing `tick 1`, then `tick 2` three
seconds later). It signs in, follows links from the overview to the failed datum and its log
line, presses "Rerun failed datums" and waits for the new job, reruns `slow` and watches its job
page receive `tick 2` and turn JOB_SUCCESS without a reload, visits the repo, a
commit and its file browser, and fails if any page logs a console error, throws, opens an alert,
loads a resource that fails, or shows an element that came from data (escaping broke).

    python console_test.py --url http://127.0.0.1:PORT --token TOKEN [--screenshots DIR]

`--screenshots DIR` writes the main pages as PNGs (the README shows docs/console/*.png).
Exit status: 0 passed, 1 a check failed (the message names the page and shows a snippet).
"""

import argparse
import os
import re
import sys
import time

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

# How long one page may take to show what a step waits for, in milliseconds.
WAIT_MS = 10_000
# How long the rerun's new job may take to appear, in seconds.
RERUN_WAIT_S = 30
# Requests that a navigation legitimately cuts off: the live-update event stream.
LONG_LIVED = ("/api/v1/events",)


class CheckFailed(Exception):
    """A check of the console failed; the message says which page and what it showed."""


class Console:
    """One browser page on the console, recording every problem the browser reports."""

    def __init__(self, page, base_url, screenshots):
        self.page = page
        self.base = base_url.rstrip("/")
        self.screenshots = screenshots
        self.problems = []
        page.set_default_timeout(WAIT_MS)
        page.on("console", self._on_console)
        page.on("pageerror", lambda e: self.problems.append(f"{page.url}: uncaught error: {e}"))
        page.on("requestfailed", self._on_request_failed)
        page.on("response", self._on_response)
        page.on("dialog", self._on_dialog)

    def _on_console(self, msg):
        if msg.type != "error":
            return
        source = msg.location.get("url", "") if msg.location else ""
        self.problems.append(f"{self.page.url}: console error: {msg.text} (from {source or 'the page'})")

    def _on_request_failed(self, request):
        aborted = request.failure == "net::ERR_ABORTED"
        if aborted and any(p in request.url for p in LONG_LIVED):
            return
        self.problems.append(f"{self.page.url}: request failed: {request.url} ({request.failure})")

    def _on_response(self, response):
        if response.status >= 400:
            self.problems.append(f"{self.page.url}: {response.status} for {response.url}")

    def _on_dialog(self, dialog):
        # The console asks before actions (confirm); anything else came from data.
        if dialog.type == "confirm":
            dialog.accept()
        else:
            self.problems.append(f"{self.page.url}: unexpected {dialog.type} dialog: {dialog.message}")
            dialog.dismiss()

    def url(self, path):
        """The absolute URL of a console path."""
        return self.base + path

    def fail(self, what):
        """Raises CheckFailed naming the page and showing the start of its text."""
        try:
            text = self.page.inner_text("body")
        except PlaywrightError:
            text = "(no body)"
        snippet = re.sub(r"\s+", " ", text)[:800]
        raise CheckFailed(f"{what}\n  page: {self.page.url}\n  shows: {snippet}")

    def goto(self, path):
        """Opens a console path and checks the answer is a page."""
        response = self.page.goto(self.url(path))
        if response is None or response.status >= 400:
            status = response.status if response else "no response"
            self.fail(f"GET {path} answered {status}")
        self.loaded()

    def loaded(self):
        """Checks the page now shown: fully loaded, nothing from data turned into markup."""
        self.page.wait_for_load_state("load")
        injected = self.page.locator("img[src='x'], script:not([src='/assets/console.js'])")
        if injected.count() > 0:
            self.fail("an element built from data reached the page unescaped")

    def expect(self, selector, what, min_count=1):
        """Waits for `selector` to match (at least `min_count` elements); fails with `what`."""
        try:
            self.page.locator(selector).nth(min_count - 1).wait_for(state="attached")
        except PlaywrightError:
            self.fail(f"{what}: nothing matches {selector!r}")
        return self.page.locator(selector)

    def click(self, selector, what):
        """Clicks the first match of `selector` and waits for the page it leads to."""
        link = self.expect(selector, what).first
        with self.page.expect_navigation():
            link.click()
        self.loaded()

    def expect_path(self, pattern, what):
        """Fails unless the current URL's path matches the regular expression `pattern`."""
        path = self.page.url[len(self.base):] if self.page.url.startswith(self.base) else self.page.url
        if not re.fullmatch(pattern, path):
            self.fail(f"{what}: expected a path matching {pattern!r}, got {path!r}")

    def expect_text(self, selector, text, what):
        """Waits until the element at `selector` contains `text`."""
        el = self.expect(selector, what).first
        try:
            el.filter(has_text=text).wait_for(state="attached")
        except PlaywrightError:
            self.fail(f"{what}: {selector!r} does not contain {text!r}")

    def shot(self, name):
        """Saves a full-page screenshot `<name>.png` when screenshots were asked for."""
        if self.screenshots:
            self.page.screenshot(path=os.path.join(self.screenshots, f"{name}.png"), full_page=True)


def sign_in(c, token):
    """A browser without the cookie is sent to /login; the token signs it in and back to /."""
    c.page.goto(c.url("/"))
    c.expect_path(r"/login\?next=%2F", "an unsigned browser goes to the sign-in page")
    c.page.fill("#token", token)
    with c.page.expect_navigation():
        c.page.click("form[action='/login'] button[type=submit]")
    c.loaded()
    c.expect_path(r"/", "signing in goes back to the overview")


def overview(c):
    """The overview draws the DAG as SVG with the three pipelines as links."""
    c.goto("/")
    for name in ("upper", "count", "check"):
        c.expect(f"svg a[data-pipeline='{name}']", f"the DAG shows pipeline {name}")
    c.shot("overview")


def failed_datum(c):
    """From the overview to check's failed job, its failed datum and its log line."""
    c.goto("/")
    c.click("a[data-pipeline='check']", "the DAG links pipeline check")
    c.expect_path(r"/pipelines/check", "the DAG node leads to the pipeline page")
    c.shot("pipeline")
    c.click("table#jobs tr[data-job] a", "the pipeline page lists its jobs")
    c.expect_path(r"/pipelines/check/jobs/[0-9a-f]+", "a job row leads to the job page")
    c.shot("job")
    c.click("table#datums a.datum-link", "the job page lists its datums")
    c.expect_path(r"/pipelines/check/jobs/[0-9a-f]+/datums/[0-9a-f]+", "a datum row leads to the datum page")
    c.expect_text("#logs", "cannot parse bad.txt", "the failed datum (listed first) shows its log line")
    c.shot("datum")


def rerun_failed(c):
    """"Rerun failed datums" on check's page starts a new job that shows up in its job list."""
    c.goto("/pipelines/check")
    before = c.expect("table#jobs tr[data-job]", "the pipeline page lists its jobs").count()
    button = c.page.get_by_role("button", name="Rerun failed datums")
    if button.count() == 0:
        c.fail("the pipeline page has no \"Rerun failed datums\" button")
    with c.page.expect_navigation():
        button.first.click()
    c.loaded()
    c.expect_path(r"/pipelines/check", "the rerun goes back to the pipeline page")
    deadline = time.monotonic() + RERUN_WAIT_S
    while c.page.locator("table#jobs tr[data-job]").count() <= before:
        if time.monotonic() > deadline:
            c.fail(f"no new job in table#jobs {RERUN_WAIT_S} s after the rerun ({before} before)")
        time.sleep(0.5)
        c.page.reload()
        c.loaded()


def live_updates(c):
    """A running job's page shows its log lines and its final state without a reload."""
    c.goto("/pipelines/slow")
    button = c.page.get_by_role("button", name="Rerun all datums")
    if button.count() == 0:
        c.fail("the pipeline page has no \"Rerun all datums\" button")
    with c.page.expect_navigation():
        button.first.click()  # the confirmation dialog is accepted
    c.loaded()
    deadline = time.monotonic() + RERUN_WAIT_S
    while c.page.locator("table#jobs tr[data-job]").count() < 2:
        if time.monotonic() > deadline:
            c.fail(f"no new job of slow {RERUN_WAIT_S} s after the rerun")
        time.sleep(0.2)
        c.page.reload()
        c.loaded()
    c.click("table#jobs tr[data-job] a", "the newest job is listed first")
    badge = c.page.locator("h1 [data-live-job-state]")
    if badge.count() == 0:
        c.fail("the job page has no live state badge")
    if badge.first.inner_text() == "JOB_SUCCESS":
        c.fail("the rerun's job ended before its page opened: the live check proves nothing")
    navigations = []
    c.page.on("framenavigated", lambda f: navigations.append(f.url))
    try:
        c.page.locator("#logs").filter(has_text="tick 2").wait_for(state="attached", timeout=RERUN_WAIT_S * 1000)
    except PlaywrightError:
        c.fail("the running datum's second line never arrived in #logs")
    try:
        c.page.locator("h1 [data-live-job-state]", has_text="JOB_SUCCESS").wait_for(
            state="attached", timeout=RERUN_WAIT_S * 1000
        )
    except PlaywrightError:
        c.fail("the job's badge never changed to JOB_SUCCESS")
    if navigations:
        c.fail(f"the page reloaded instead of updating live: {navigations}")


def repo_and_commit(c):
    """The repo page links its commits; a commit shows its files, a download and a directory."""
    c.goto("/repos/raw")
    c.click("main a[href^='/repos/raw/commits/']", "the repo page links its commits")
    c.expect_path(r"/repos/raw/commits/[^/?]+", "a commit link leads to the commit page")
    c.expect_text("main", "bad.txt", "the commit page lists its files")
    c.expect_text("main", "<img src=x onerror=alert`1`>.txt", "a file named like a tag shows as text")
    c.shot("commit")
    download = c.expect("main a[href*='/file?path=']", "the file browser links downloads").first
    href = download.get_attribute("href") or ""
    answer = c.page.request.get(c.url(href))
    if answer.status != 200:
        c.fail(f"the download link {href} answered {answer.status}")
    c.goto(c.page.url.split("?")[0][len(c.base):] + "?path=%2F")
    c.expect_text("main", "a.txt", "the file browser shows the root directory")


STEPS = [
    ("overview", overview),
    ("failed datum", failed_datum),
    ("rerun failed datums", rerun_failed),
    ("live logs and states", live_updates),
    ("repo and commit", repo_and_commit),
]


def run(args):
    """Runs every step in one signed-in browser; returns the list of failures."""
    failures = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            c = Console(context.new_page(), args.url, args.screenshots)
            try:
                sign_in(c, args.token)
            except (CheckFailed, PlaywrightError) as e:
                return [f"sign in: {e}"]
            for name, step in STEPS:
                seen = len(c.problems)
                try:
                    step(c)
                    print(f"ok   {name}")
                except (CheckFailed, PlaywrightError) as e:
                    failures.append(f"{name}: {e}")
                    print(f"FAIL {name}")
                failures.extend(f"{name}: {p}" for p in c.problems[seen:])
        finally:
            browser.close()
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the console, e.g. http://127.0.0.1:8080")
    parser.add_argument("--token", required=True, help="the server's API token")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium binary")
    parser.add_argument("--screenshots", metavar="DIR", help="write the main pages' screenshots here")
    args = parser.parse_args()
    if args.screenshots:
        os.makedirs(args.screenshots, exist_ok=True)
    failures = run(args)
    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} console check(s) failed", file=sys.stderr)
        return 1
    print("console in the browser: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
