"""The uplink's back-fill decision (hub/uplink.py UplinkPlan), on a fake clock."""
from hub.uplink import UplinkPlan


def plan(**kw) -> UplinkPlan:
    return UplinkPlan(window=kw.pop("window", 1000), resend_after_s=kw.pop("resend_after_s", 30), batch=kw.pop("batch", 200))


def test_sends_nothing_until_central_has_said_where_it_stands():
    p = plan()
    assert p.next_range(last_seq=50, now=0) is None
    p.central_mark(0, now=1)
    assert p.next_range(last_seq=50, now=1) == (0, 50)


def test_sends_the_log_in_ranges_of_at_most_one_batch():
    p = plan(batch=200)
    p.central_mark(0, 0)
    sent = []
    while (r := p.next_range(450, 0)) is not None:
        sent.append(r)
        p.sent(r[1])
    assert sent == [(0, 200), (200, 400), (400, 450)]


def test_starts_after_centrals_mark_after_a_hub_restart():
    p = plan()
    p.central_mark(3000, 0)
    assert p.next_range(3100, 0) == (3000, 3100)


def test_sends_at_most_a_window_beyond_centrals_mark():
    p = plan(window=1000, batch=200)
    p.central_mark(0, 0)
    while (r := p.next_range(5000, 0)) is not None:
        p.sent(r[1])
    assert p.upto == 1000
    p.central_mark(600, 1)
    assert p.next_range(5000, 1) == (1000, 1200)


def test_resends_from_the_mark_when_it_stands_still_for_resend_after_s():
    p = plan(resend_after_s=30)
    p.central_mark(0, 0)
    p.sent(p.next_range(300, 0)[1])
    p.sent(p.next_range(300, 0)[1])
    p.central_mark(200, 5)                 # the first range arrived, the second was lost
    assert p.next_range(300, 34.9) is None  # 29.9 s of stillness: still waiting
    assert p.next_range(300, 35.0) == (200, 300)
    assert p.resends == 1 and "resending from 201" in p.log[0]


def test_does_not_resend_while_the_bridge_is_down_and_waits_again_once_it_is_up():
    p = plan(resend_after_s=30)
    p.central_mark(0, 0)
    p.sent(p.next_range(100, 0)[1])
    p.bridge(False, 1)
    assert p.next_range(100, 100) is None and p.resends == 0
    p.bridge(True, 100)                     # what the broker queued now flows: give it time
    assert p.next_range(100, 129) is None
    assert p.next_range(100, 130) == (0, 100)


def test_a_mark_that_moves_is_progress_and_no_resend_follows():
    p = plan(resend_after_s=30, window=100_000)
    p.central_mark(0, 0)
    p.sent(p.next_range(10_000, 0)[1])
    for t in range(1, 200):
        p.central_mark(t * 10, t)           # slow but steady
        r = p.next_range(10_000, t)
        if r:
            p.sent(r[1])
    assert p.resends == 0


def test_central_ahead_of_what_this_run_sent_moves_the_start_forward():
    p = plan()
    p.central_mark(0, 0)
    p.sent(p.next_range(100, 0)[1])
    p.central_mark(500, 1)                  # e.g. an earlier run's ranges arrived late
    assert p.next_range(600, 1) == (500, 600)


def test_an_old_retained_mark_replayed_by_a_restarted_broker_is_ignored():
    p = plan(resend_after_s=30)
    p.central_mark(0, 0)
    p.sent(p.next_range(900, 0)[1])
    p.central_mark(800, 10)
    p.central_mark(0, 11)                   # the store broker's saved copy from long ago
    assert p.mark == 800 and p.stale_marks == 1
    assert p.next_range(900, 40) == (800, 900)   # a resend from 801, not from 1
