"""The JSON API, in process (Starlette's TestClient runs the real app and lifespan)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mailbeacon.store import keys


def test_missing_wrong_and_revoked_keys_get_401_json(api: TestClient) -> None:
    good = api.headers.pop("Authorization")
    r = api.get("/api/v1/campaigns")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert "keys create" in r.json()["message"]
    assert r.headers["www-authenticate"] == "Bearer"
    assert (
        api.get("/api/v1/campaigns", headers={"Authorization": "Bearer mb_nope"}).status_code == 401
    )
    assert api.get("/api/v1/campaigns", headers={"Authorization": "Basic abc"}).status_code == 401
    assert api.get("/api/v1/campaigns", headers={"Authorization": good}).status_code == 200
    engine = api.app_state_engine  # type: ignore[attr-defined]
    assert keys.revoke_api_key(engine, "test") == 1
    assert api.get("/api/v1/campaigns", headers={"Authorization": good}).status_code == 401


def test_campaign_and_message_with_links(api: TestClient) -> None:
    r = api.post("/api/v1/campaigns", json={"name": "Q3 outreach"})
    assert r.status_code == 201
    cid = r.json()["id"]
    assert api.post("/api/v1/campaigns", json={"name": "Q3 outreach"}).status_code == 409
    r = api.post(
        "/api/v1/messages",
        json={
            "recipient": "ana@example.org",
            "subject": "Proposal",
            "campaign_id": cid,
            "variant": "A",
            "sent_at": "2026-11-20T09:00:00Z",
            "links": ["https://example.com/a", "https://example.com/b?x=1&y=2"],
        },
    )
    assert r.status_code == 201, r.text
    msg = r.json()
    assert msg["open_url"].startswith("https://t.example.com/o/") and msg["open_url"].endswith(
        ".gif"
    )
    assert msg["open_url"] in msg["pixel_html"]
    assert [(lk["position"], lk["url"]) for lk in msg["links"]] == [
        (1, "https://example.com/a"),
        (2, "https://example.com/b?x=1&y=2"),
    ]
    assert all(lk["tracked_url"].startswith("https://t.example.com/c/") for lk in msg["links"])
    assert msg["sent_at"] == "2026-11-20T09:00:00.000Z"

    r = api.post(f"/api/v1/messages/{msg['id']}/links", json={"url": "https://example.com/c"})
    assert r.status_code == 201 and r.json()["position"] == 3

    got = api.get(f"/api/v1/messages/{msg['id']}").json()
    assert got["recipient"] == "ana@example.org" and got["variant"] == "A"
    assert [lk["position"] for lk in got["links"]] == [1, 2, 3]
    assert got["summary"] == {
        "opens": 0,
        "clicks": 0,
        "opens_by_label": {},
        "clicks_by_label": {},
        "opened": False,
        "opened_at": None,
        "first_human_open_at": None,
        "first_human_click_at": None,
    }
    [camp] = api.get("/api/v1/campaigns").json()
    assert camp["name"] == "Q3 outreach" and camp["messages"] == 1


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"recipient": "a@b.c", "links": ["javascript:alert(1)"]}, "http and https"),
        ({"recipient": "a@b.c", "links": ["ftp://x.org/f"]}, "http and https"),
        ({"recipient": "a@b.c", "links": ["/relative"]}, "http and https"),
        ({"recipient": "not-an-address"}, "email address"),
        ({"recipient": "a@b.c", "campaign_id": 999999}, "does not exist"),
        ({"recipient": "a@b.c", "sent_at": "yesterday-ish"}, "sent_at"),
        ({"subject": "no recipient"}, "recipient"),
    ],
)
def test_invalid_messages_get_422_with_a_message(api: TestClient, body: dict, needle: str) -> None:  # type: ignore[type-arg]
    r = api.post("/api/v1/messages", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid" and needle in r.json()["message"]


def test_unknown_message_is_404_json(api: TestClient) -> None:
    for path in ("/api/v1/messages/424242", "/api/v1/messages/424242/events"):
        r = api.get(path)
        assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = api.post("/api/v1/messages/424242/links", json={"url": "https://example.com/"})
    assert r.status_code == 404


def test_events_listing_pages_with_limit_and_after(api: TestClient) -> None:
    msg = api.post("/api/v1/messages", json={"recipient": "a@b.c"}).json()
    path = "/o/" + msg["open_url"].rsplit("/o/", 1)[1]
    for i in range(5):
        r = api.get(path, headers={"User-Agent": f"client/{i}"})
        assert r.headers["x-mailbeacon-recorded"] == "yes"
    first = api.get(f"/api/v1/messages/{msg['id']}/events", params={"limit": 2}).json()
    assert [e["user_agent"] for e in first] == ["client/0", "client/1"]
    rest = api.get(
        f"/api/v1/messages/{msg['id']}/events", params={"after": first[-1]["id"], "limit": 100}
    ).json()
    assert [e["user_agent"] for e in rest] == ["client/2", "client/3", "client/4"]
    e = rest[0]
    assert set(e) >= {
        "id",
        "kind",
        "at",
        "method",
        "ip",
        "user_agent",
        "link_position",
        "url",
        "label",
        "reasons",
    }
    assert api.get(f"/api/v1/messages/{msg['id']}/events", params={"limit": 0}).status_code == 422


def test_openapi_documents_every_route(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/campaigns", "post"),
        ("/api/v1/campaigns", "get"),
        ("/api/v1/messages", "post"),
        ("/api/v1/messages/{message_id}", "get"),
        ("/api/v1/messages/{message_id}/links", "post"),
        ("/api/v1/messages/{message_id}/events", "get"),
    ]:
        assert method in paths[path], (path, method)
    # No page may pull scripts from a CDN: the Swagger UI route is off.
    assert api.get("/docs").status_code == 404
