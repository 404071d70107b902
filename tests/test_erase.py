"""Recipient routes take any valid address, "/" in the local part included."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize("spelled", ["a/b@example.com", "a%2Fb@example.com", "A/B@Example.COM"])
def test_addresses_with_a_slash_work_in_every_route(api: TestClient, spelled: str) -> None:
    made = api.post("/api/v1/messages", json={"recipient": "a/b@example.com"})
    assert made.status_code == 201, made.text
    mid = made.json()["id"]
    base = f"/api/v1/recipients/{spelled}"

    r = api.get(f"{base}/export")
    assert r.status_code == 200, r.text
    assert [m["id"] for m in r.json()["messages"]] == [mid]
    r = api.post(f"{base}/optout")
    assert r.status_code == 200 and r.json() == {
        "recipient": "a/b@example.com", "opted_out": True, "changed": True
    }
    r = api.delete(f"{base}/optout")  # not taken for "erase a/b@example.com/optout"
    assert r.status_code == 200 and r.json()["opted_out"] is False and r.json()["changed"]
    r = api.delete(f"{base}/erase")
    assert r.status_code == 200 and r.json()["messages"] == 1
    api.post("/api/v1/messages", json={"recipient": "a/b@example.com"})
    r = api.delete(base)
    assert r.status_code == 200 and r.json()["messages"] == 1
    assert api.get(f"{base}/export").json()["messages"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/recipients/no-at-sign/export",
        "/api/v1/recipients/a@example.com/b/export",  # "/" after the "@": no address
        "/api/v1/recipients/@example.com/export",
    ],
)
def test_what_is_no_address_is_422(api: TestClient, path: str) -> None:
    r = api.get(path)
    assert r.status_code == 422 and "email address" in r.json()["message"]
