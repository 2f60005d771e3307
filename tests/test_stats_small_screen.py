"""The statistics page on a phone (issue 19 C): nothing scrolls the page sideways at 360 px;
wide tables scroll inside their own box."""
import pytest

from tests.browser import browser, open_page  # noqa: F401
from tests import test_receipt_stats as receipts

pytestmark = pytest.mark.browser


def test_the_statistics_page_does_not_scroll_sideways_at_360_px(hub, broker, browser):
    receipts.test_the_api_gives_the_receipts_of_the_period(hub, broker)  # a call with an alert and receipts
    with open_page(browser, {"width": 360, "height": 740}) as page:
        page.goto(f"http://127.0.0.1:{hub.http_port}/stats")
        page.wait_for_selector("body[data-loaded=true]")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
