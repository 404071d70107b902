"""Variants carry their subject line: two subject lines from one CSV (its
subject and variant columns), named in the campaign report (API JSON and
the CLI table, which fits 80 columns), with the verdict and send-time
sentences under it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailbeacon.reports.campaign import variant_rows
from tests.helpers import cli


def test_variant_rows_name_the_subject_most_messages_had() -> None:
    rows = {"A\x1fmessages": 3, "B\x1fmessages": 2, "C\x1fmessages": 1}
    subjects = {"A\x1fSpring offer": 2, "A\x1fSpring offer!": 1, "B\x1fLast chance": 2}
    got = {r["variant"]: r["subject"] for r in variant_rows(rows, subjects)}
    assert got == {"A": "Spring offer", "B": "Last chance", "C": None}
    assert [r["subject"] for r in variant_rows(rows)] == [None, None, None]


def test_one_csv_two_subject_lines(sqlite_url: str, tmp_path: Path) -> None:
    (tmp_path / "mail.html").write_text("<p>Hello {{name}}</p>")
    (tmp_path / "people.csv").write_text(
        "email,name,subject,variant\n"
        "ana@example.com,Ana,Spring offer: 20% off,A\n"
        "bo@example.com,Bo,Last chance for spring,B\n"
        "cy@example.com,Cy,,\n"  # empty cells: --subject and --variant
    )
    cli(
        "instrument", str(tmp_path / "mail.html"), "--recipients", str(tmp_path / "people.csv"),
        "--out", str(tmp_path / "out"), "--campaign", "spring", "--subject", "Spring news",
        "--variant", "C", db=sqlite_url,
    )  # fmt: skip
    rep = json.loads(cli("report", "spring", "--json", db=sqlite_url).stdout)
    got = {v["variant"]: (v["subject"], v["messages"]) for v in rep["variants"]}
    assert got == {
        "A": ("Spring offer: 20% off", 1),
        "B": ("Last chance for spring", 1),
        "C": ("Spring news", 1),
    }
    found = json.loads(cli("message", "list", "--json", db=sqlite_url).stdout)["messages"]
    assert {m["recipient"]: m["subject"] for m in found}["bo@example.com"] == (
        "Last chance for spring"
    )
    table = cli("report", "spring", db=sqlite_url, env={"COLUMNS": "80"}).stdout
    assert "A · Spring offer: 20% off" in table and "B · Last chance for spring" in table
    assert "too few" in table
    flat = " ".join(table.split())
    assert "No winner yet: nobody has opened any variant (A 0 of 1, B 0 of 1, C 0 of 1)." in flat
    assert "Too few human opens to advise a send time (0 so far; advice starts at 10)." in flat
    assert all(len(line) <= 80 for line in table.splitlines())


@pytest.mark.process
def test_events_and_report_fit_80_columns(sqlite_url: str) -> None:
    cli("demo", db=sqlite_url, timeout=180)
    env = {"COLUMNS": "80"}
    events = cli("events", db=sqlite_url, env=env).stdout
    assert all(len(line) <= 80 for line in events.splitlines())
    flat = " ".join(events.split())
    # Who, which link, the label in words: nothing that tells rows apart is cut.
    for shown in (
        "security@corp.example",
        "click /pricing · scanner",
        "click hidden trap link · scanner",
        "open · machine prefetch · Apple Mail",
        "open · person, via proxy · Gmail",
    ):
        assert shown in flat, (shown, events)
    assert "…" not in events
    report = cli("report", "1", db=sqlite_url, env=env).stdout
    assert all(len(line) <= 80 for line in report.splitlines())
    assert "https://example.com/spring-offer" in report and "…" not in report
