"""The chain page's API: head-office roles scoped to regions, ranking, drill-down, bad input."""
import datetime as dt

import pytest
from fastapi.testclient import TestClient

from callbell.chain_wire import ChainEvent, EventRange
from chain.intake import Intake
from chain.schema import EVENT_COLUMNS
from chain.warehouse import ChdbWarehouse
from chain.web import create_app
from hub.auth import hash_password
from tests.chain.harness import chain_config

T0 = 1763800000.0  # November 2025
REGIONS = {"berlin": "north", "hamburg": "north", "munich": "south"}
#: (response seconds of each answered call, missed calls) per store
CALLS = {"berlin": ([10, 20, 30, 40, 200], 0), "hamburg": ([5, 6, 7, 8], 1), "munich": ([60, 70, 80, 95], 0)}


def fill(wh):
    intake = Intake(set(REGIONS), {})
    for store, (responses, missed) in CALLS.items():
        events, seq = [], 0
        for i, r in enumerate(responses + [None] * missed):
            seq += 1
            pressed = T0 + i * 3600
            kind = "answered" if r is not None else "missed"
            events.append(ChainEvent(seq=seq, at=pressed + (r or 900), kind=kind, call=f"c-{i}", room="r1",
                                     detail={"response_s": r} if r is not None else None, pressed_at=pressed))
        v = intake.take(store, EventRange(store, 0, seq, tuple(events), "Europe/Berlin", 90).to_json(), T0)
        wh.insert("events", EVENT_COLUMNS, v.rows)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    users = [{"id": "hq", "role": "chain", "password_hash": hash_password("head office 1")},
             {"id": "nora", "role": "region", "regions": ["north"], "password_hash": hash_password("north north 1")}]
    config = chain_config(list(REGIONS), REGIONS, users)
    wh = ChdbWarehouse(tmp_path_factory.mktemp("page") / "wh")
    wh.create_schema()
    fill(wh)
    with TestClient(create_app(config, wh, today=lambda: dt.date(2025, 12, 15))) as c:
        yield c
    wh.close()


def sign_in(client, user, password):
    client.cookies.clear()
    r = client.post("/api/chain/v1/session", json={"user": user, "password": password})
    assert r.status_code == 200, r.text


def test_nothing_without_signing_in(client):
    client.cookies.clear()
    for path in ("/api/chain/v1/me", "/api/chain/v1/ranking", "/api/chain/v1/stores/berlin"):
        r = client.get(path)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_a_wrong_password_or_unknown_user_is_refused_alike(client):
    for body in ({"user": "hq", "password": "nope nope nope"}, {"user": "ghost", "password": "head office 1"}):
        r = client.post("/api/chain/v1/session", json=body)
        assert r.status_code == 401 and r.json()["error"]["message"] == "wrong user or password"
    assert client.post("/api/chain/v1/session", content=b"{oops").status_code == 400


def test_head_office_sees_every_store_ranked_by_share_within_then_p90(client):
    sign_in(client, "hq", "head office 1")
    r = client.get("/api/chain/v1/ranking?months=12").json()
    order = [(s["store"], s["share"]) for s in r["stores"]]
    # berlin 4/5 within, hamburg 4/5 (one missed) with a lower p90, munich 3/4
    assert order == [("hamburg", 0.8), ("berlin", 0.8), ("munich", 0.75)]
    berlin = next(s for s in r["stores"] if s["store"] == "berlin")
    assert (berlin["p50"], berlin["exact"], berlin["region"]) == (30.0, True, "north")


def test_a_region_user_sees_only_its_regions_stores_and_others_do_not_exist(client):
    sign_in(client, "nora", "north north 1")
    me = client.get("/api/chain/v1/me").json()
    assert [s["id"] for s in me["stores"]] == ["berlin", "hamburg"] and me["role"] == "region"
    ranked = client.get("/api/chain/v1/ranking?by=hour").json()
    assert {s["store"] for s in ranked["stores"]} == {"berlin", "hamburg"}
    assert {g["store"] for g in ranked["groups"]} == {"berlin", "hamburg"}
    r = client.get("/api/chain/v1/stores/munich")
    assert r.status_code == 404 and "munich" in r.json()["error"]["message"]


def test_drill_down_gives_a_store_by_hour_and_weekday(client):
    sign_in(client, "hq", "head office 1")
    d = client.get("/api/chain/v1/stores/berlin?months=1").json()
    assert d["overall"] is None  # nothing in December
    d = client.get("/api/chain/v1/stores/berlin?months=2").json()
    assert d["overall"]["answered"] == 5
    assert sum(h["answered"] for h in d["hour"]) == 5 and sum(w["answered"] for w in d["weekday"]) == 5
    assert [h["key"] for h in d["hour"]] == sorted(h["key"] for h in d["hour"])


def test_bad_parameters_get_a_clear_error(client):
    sign_in(client, "hq", "head office 1")
    for path, words in (("/api/chain/v1/ranking?months=0", "months"), ("/api/chain/v1/ranking?months=x", "months"),
                        ("/api/chain/v1/ranking?by=zone", "by must be")):
        r = client.get(path)
        assert r.status_code == 400 and words in r.json()["error"]["message"]


def test_the_page_is_served_and_the_service_has_no_route_into_a_store(client):
    assert "Stores, best first" in client.get("/").text
    assert "showStore" in client.get("/chain.js").text
    paths = {r.path for r in client.app.routes}
    assert paths == {"/", "/chain.js", "/api/chain/v1/session", "/api/chain/v1/me", "/api/chain/v1/ranking",
                     "/api/chain/v1/stores/{store}", "/openapi.json"}
