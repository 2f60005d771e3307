"""The statistics page in a real browser (Debian's Chromium driven by Playwright) against the
real hub, on a generated history. With CALLBELL_SCREENSHOTS=1 it also saves
docs/images/stats.png."""
import csv
import io
import os
import re
import shutil
import time
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect, sync_playwright

from hub.config import load_store_config
from hub.history import Shop, seed_history
from tests.helpers import ROOT, running_hub

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is not installed: run scripts/setup (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"{r.url} failed"))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def history_hub(store_file):
    config = load_store_config(store_file)
    shop = Shop({r.id: r.zone for r in config.rooms}, ("ana", "ben"), ("help", "size"), config.tz)
    seed_history(store_file.parent / "callbell.db", shop, calls=2500, days=35, until=time.time(), seed=3)
    with running_hub(store_file) as service:
        yield service


def test_the_statistics_page_draws_its_charts_and_its_csv_matches_the_api(history_hub, page):
    page.goto(f"http://127.0.0.1:{history_hub.http_port}/stats")
    expect(page.locator("body[data-loaded=true]")).to_have_count(1)
    with page.expect_response(lambda r: "/api/v1/stats/overview?" in r.url and "by=room" in r.url) as shown:
        page.get_by_role("button", name="4 weeks").click()
        page.select_option("#by", "room")
    api_url = shown.value.url
    expect(page.locator("#groups tr")).to_have_count(1 + 3 + 1)  # header, three rooms, total: drawn

    # the charts: bars with the standard line, a heat map cell per hour of the week, weekly trend
    expect(page.locator('#chart-distribution rect.bar:not([data-calls="0"])').first).to_be_visible()
    expect(page.locator("#standard-line")).to_have_count(1)
    assert page.locator("#chart-distribution rect.bar").count() == 31  # 10 s bins to 300 s, and slower
    assert page.locator("#chart-heatmap rect.cell").count() == 7 * 11  # weekdays × opening hours 9-19
    assert page.locator("#chart-trend rect.bar").count() >= 4
    expect(page.locator("#verdict")).to_contain_text("within 90 s")
    expect(page.locator("#staffing td[data-short]").first).to_be_visible()
    cells = page.locator("#staffing td[data-short]").all_inner_texts()
    whole = [c for c in cells if re.fullmatch(r"(\d+|∞) / \d+", c)]
    assert whole == cells, f"staffing shows fractions of people: {sorted(set(cells) - set(whole))[:5]}"

    # the table shown, downloaded as CSV, is the API's figures
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(open(dl.value.path(), encoding="utf-8").read())))
    u = urlparse(api_url)
    api = history_hub.api.ok("GET", f"/api/v1/stats?{u.query}")  # the plain route, same query
    expected = api["groups"] + [{**api["total"], "key": "all"}]
    assert [r["key"] for r in rows] == [g["key"] for g in expected]
    for r, g in zip(rows, expected):
        for field, value in r.items():
            assert value == ("" if g[field] is None else str(g[field])), (r["key"], field)

    if os.environ.get("CALLBELL_SCREENSHOTS") == "1":
        page.set_viewport_size({"width": 1280, "height": 1000})
        page.screenshot(path=str(ROOT / "docs" / "images" / "stats.png"), full_page=True)


def test_filters_change_what_the_page_shows(history_hub, page):
    page.goto(f"http://127.0.0.1:{history_hub.http_port}/stats")
    expect(page.locator("body[data-loaded=true]")).to_have_count(1)
    page.select_option("#by", "zone")
    expect(page.locator("#groups tr")).to_have_count(1 + 2 + 1)
    page.select_option("#zone", "b")
    expect(page.locator("#groups tr")).to_have_count(1 + 1 + 1)
    expect(page.locator("#groups tr").nth(1).locator("td").first).to_have_text("b")
    page.fill("#from", "2001-01-01")
    page.fill("#until", "2001-01-07")
    page.locator("#until").dispatch_event("change")
    expect(page.locator("#verdict")).to_have_text("No calls in this period.")
