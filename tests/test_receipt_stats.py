"""Receipt latency in the statistics (hub.domain.receipts, GET /api/v1/stats/receipts)."""
from __future__ import annotations

from playwright.sync_api import expect

from hub.domain.receipts import receipt_figures
from tests.browser import DESK, browser, open_page  # noqa: F401
from tests.helpers import Recorder, event, wait_until


def test_figures_count_alerts_confirmed_in_time_and_their_latency():
    alerts = [("ana", 1.0), ("ana", 2.0), ("ana", 3.0), ("ben", 4.0)]
    receipts = [("ana", "delivered", "page", 0.02), ("ana", "shown", "page", 0.05),
                ("ana", "delivered", "push", 7.5), ("ben", "delivered", "page", 0.04)]
    f = receipt_figures(alerts, receipts, receipt_s=5)
    ana, total = f["by_associate"]["ana"], f["total"]
    assert (ana["alerts"], ana["delivered"], ana["delivered_share"], ana["delivered_in_time_share"]) == (3, 2, 0.6667, 0.3333)
    assert ana["delivered_via"] == {"page": 1, "push": 1} and ana["shown"] == 1 and ana["shown_median_s"] == 0.05
    assert (total["alerts"], total["delivered"], total["delivered_median_s"]) == (4, 3, 0.04)
    assert receipt_figures([], [], 5)["total"]["delivered_share"] is None


def test_the_api_gives_the_receipts_of_the_period(hub, broker):
    api = hub.api
    api.ok("POST", "/api/v1/associates/ana/state", {"state": "available"})
    api.ok("POST", "/api/v1/associates/ana/heard", {"source": "phone"})
    r = Recorder(broker.url, [])
    try:
        r.publish("callbell/test-store/room/room-1/event", event("e-receipt-1", device="pi-test"))
    finally:
        r.close()
    call = wait_until(lambda: next(iter(api.ok("GET", "/api/v1/calls?status=open")), None), what="the call")
    alert = call["alerted"][0]
    api.ok("POST", f"/api/v1/calls/{call['id']}/receipt", {"associate": "ana", "alerted_at": alert["at"],
                                                            "stage": "shown", "via": "page"})
    f = wait_until(lambda: (lambda x: x if x["total"]["shown"] else None)(api.ok("GET", "/api/v1/stats/receipts")),
                   what="the receipts in the statistics")
    assert (f["total"]["alerts"], f["total"]["delivered"], f["total"]["delivered_share"]) == (1, 1, 1.0)
    assert f["by_associate"]["ana"]["delivered_via"] == {"page": 1} and f["receipt_s"] == 5.0
    status, body = api.get("/api/v1/stats/receipts?from=2026-01-02&until=2026-01-01")
    assert status == 400 and body["error"]["message"] == "from must come before until"


def test_the_statistics_page_shows_the_receipts_table(hub, broker, browser):
    test_the_api_gives_the_receipts_of_the_period(hub, broker)
    with open_page(browser, DESK) as page:
        page.goto(f"http://127.0.0.1:{hub.http_port}/stats")
        rows = page.locator("#receipts tr")
        expect(rows).to_have_count(3)  # the heading, Ana, everyone
        expect(rows.nth(1).locator("td").nth(0)).to_have_text("Ana")
        expect(rows.nth(1).locator("td").nth(2)).to_have_text("100.0 %")
        expect(page.locator("#reach-note")).to_contain_text("within 5 s goes on to the next person")



def test_associates_without_a_phone_page_are_marked_so():
    f = receipt_figures([("ana", 1.0), ("ben", 2.0)], [("ana", "delivered", "page", 0.1)], receipt_s=5, pages={"ana"})
    assert f["by_associate"]["ana"]["phone_page"] is True and f["by_associate"]["ben"]["phone_page"] is False
    # the total is of the people with a phone page: ben's alert is left out, and counted apart
    assert (f["total"]["alerts"], f["total"]["delivered_share"], f["alerts_without_phone_page"]) == (1, 1.0, 1)
    assert receipt_figures([("ana", 1.0)], [], 5)["by_associate"]["ana"]["phone_page"] is None
