"""The statistics page in a real browser (Debian's Chromium driven by Playwright) against the
real hub, on a generated history. With CALLBELL_SCREENSHOTS=1 it also saves
docs/images/stats.png."""
import csv
import io
import json
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


def today_at(hour: int, minute: int = 0) -> float:
    """Today (the browser's date: this machine's) at ``hour`` in the store's zone (Berlin)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo
    d = datetime.now().date()
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()


def call_row(seq, pressed, status="done", response=None, who=None):
    return {"id": f"c-{seq:06d}", "seq": seq, "room": "room-1", "zone": "a", "reason": "help", "status": status,
            "pressed_at": pressed, "response_s": response, "answered_by": who, "wait_ack_s": None if who is None else 10,
            "handling_s": None if who is None else 120, "reminders": 0, "auto_closed": 0, "overdue": 0,
            "answered_at": None if response is None else pressed + response, "closed_at": pressed + 900,
            "alerted": "[]", "declined": "[]"}


@pytest.fixture
def today_hub(store_file):
    """Today: ana answers two calls, one is missed and one cancelled; ana's phone page confirms
    her alert, ben (no phone page: the floor screen) is alerted without a receipt."""
    from hub.store import HistoryLoader
    calls = [call_row(1, today_at(10, 5), response=40, who="ana"), call_row(2, today_at(11, 20), response=130, who="ana"),
             call_row(3, today_at(11, 40), status="missed"), call_row(4, today_at(13, 10), status="cancelled")]
    # Alerts: ana at once for the first call, after 60 s (everyone busy) for the second; ben at
    # once for the missed one. She arrives at the door, then taps "Arrived" on her phone.
    for c, who, after in ((calls[0], "ana", 1), (calls[1], "ana", 60), (calls[2], "ben", 1)):
        c["alerted"] = json.dumps([{"associate": who, "at": c["pressed_at"] + after, "step": 1}])
    events = [(c["pressed_at"], "pressed", c["id"], "room-1", None, "device", None) for c in calls] + [
        (today_at(11, 20) + 60, "alerted", "c-000002", "room-1", "ana", "hub", None),
        (today_at(10, 5) + 40, "answered", "c-000001", "room-1", "ana", "device", None),
        (today_at(11, 20) + 130, "answered", "c-000002", "room-1", "ana", "phone", None)] + [
        (today_at(10, 5) + 1, "alerted", "c-000001", "room-1", "ana", "hub", None),
        (today_at(10, 5) + 1.2, "receipt", "c-000001", "room-1", "ana", "phone",
         '{"stage": "delivered", "via": "page", "latency_s": 0.2}'),
        (today_at(10, 5) + 1.5, "receipt", "c-000001", "room-1", "ana", "phone",
         '{"stage": "shown", "via": "page", "latency_s": 0.5}'),
        (today_at(11, 40) + 1, "alerted", "c-000003", "room-1", "ben", "hub", None)]
    with HistoryLoader(store_file.parent / "callbell.db") as load:
        load.write(calls, events)
    with running_hub(store_file) as service:
        yield service


def open_today(hub, page):
    page.goto(f"http://127.0.0.1:{hub.http_port}/stats")
    expect(page.locator("body[data-loaded=true]")).to_have_count(1)
    with page.expect_response(lambda r: "/api/v1/stats/receipts?" in r.url):  # the last to come
        page.get_by_role("button", name="Today").click()


def test_today_shows_its_hours_only_in_the_heat_map_the_trend_and_the_staffing(today_hub, page):
    """Issue 32: "Today", the first thing a new store sees, drew a 7 × 12 grid with one row in use."""
    open_today(today_hub, page)
    weekday = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[datetime_now_weekday()]
    expect(page.locator("#heat-title")).to_have_text(f"Share within standard by hour, {weekday}")
    cells = page.locator("#chart-heatmap rect.cell")
    expect(cells).to_have_count(13 - 10 + 1)  # 10:00 to 13:00, one row
    assert {c.get_attribute("data-weekday") for c in cells.all()} == {weekday}
    expect(page.locator("#chart-heatmap text.calls")).to_have_text(["1", "2", "", "1"])  # calls per hour
    square = cells.first.bounding_box()
    assert square["width"] < 60, f"four hours drawn as {square['width']:.0f} px squares"
    expect(page.locator("#trend-title")).to_have_text("Trend by hour")
    expect(page.locator("#chart-trend rect.bar")).to_have_count(4)  # 10, 11, 12 (none), 13
    expect(page.locator("#staffing tr").first.locator("th")).to_have_text(["hour", weekday])
    expect(page.locator("#staff-title")).to_have_text(f"Staffing per hour, {weekday}")
    if os.environ.get("CALLBELL_SCREENSHOTS") == "1":
        page.screenshot(path=str(ROOT / "docs" / "images" / "stats-today.png"), full_page=True)


def datetime_now_weekday() -> int:
    from datetime import datetime
    return datetime.now().weekday()


def test_calls_nobody_answered_are_a_line_of_their_own_not_a_red_person(today_hub, page):
    open_today(today_hub, page)
    page.select_option("#by", "associate")
    rows = page.locator("#groups tr")
    expect(rows).to_have_count(1 + 2 + 1)  # header, ana, not answered, total
    expect(rows.nth(2).locator("td").first).to_have_text("not answered")
    expect(page.locator("#groups")).not_to_contain_text("(none)")
    assert rows.nth(2).get_attribute("class") == "no-key"
    assert page.locator("#groups tr.no-key td[data-verdict]").count() == 0
    colour = rows.nth(2).locator("td").nth(7).evaluate("e => getComputedStyle(e).color")
    assert colour != "rgb(179, 38, 30)", "the unanswered line is red"


def test_alerts_to_someone_without_a_phone_page_say_so_rather_than_0_percent(today_hub, page):
    open_today(today_hub, page)
    rows = page.locator("#receipts tr")
    expect(rows).to_have_count(1 + 2 + 1)  # header, ana, ben, everyone
    expect(rows.nth(1).locator("td")).to_have_text(["Ana", "2", "50.0 %", "50.0 %", "200 ms", "200 ms", "50.0 %", "500 ms", "page 1"])
    expect(rows.nth(2).locator("td")).to_have_text(["Ben", "1", "no phone page"])
    expect(rows.nth(3).locator("td").first).to_have_text("Everyone with a phone page")
    expect(rows.nth(3).locator("td").nth(1)).to_have_text("2")  # ana's: ben's alert is not among them
    expect(rows.nth(2)).not_to_contain_text("%")


def test_the_service_standards_are_on_the_page(today_hub, page):
    open_today(today_hub, page)
    figure = lambda name: page.locator(f'#service div[data-figure="{name}"]')  # noqa: E731
    expect(figure("first-contact").locator("dd")).to_have_text("100.0 %")
    expect(figure("first-contact").locator("small")).to_have_text("2 of 2")
    expect(figure("queued").locator("dd")).to_have_text("50.0 %")  # the second call, and the cancelled one
    expect(figure("queued-wait").locator("dd")).to_have_text("60 s / 60 s")
    expect(figure("abandon").locator("dd")).to_have_text("900 s / 900 s")
    expect(figure("handoffs").locator("dd")).to_have_text("0.00")
    expect(figure("verified").locator("dd")).to_have_text("50.0 %")
    expect(figure("verified").locator("small")).to_have_text("1 tapped on a phone")
    # nobody signed in today (the config starts everyone off): no occupancy to show
    expect(figure("occupancy").locator("small")).to_have_text("nobody signed in")
    expect(figure("occupancy").locator("dt")).to_have_text("Occupancy (band 60–80 %)")
