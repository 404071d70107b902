"""Docs are checked: the references are generated from the code and must be current."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbeacon import docsgen

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("name", sorted(docsgen.GENERATED))
def test_generated_reference_is_current(name: str) -> None:
    fresh = docsgen.GENERATED[name]()
    on_disk = (DOCS / name).read_text()
    assert on_disk == fresh, (
        f"docs/{name} is stale: a command, setting or route changed. "
        "Run `python -m mailbeacon.docsgen` and commit the result."
    )


def test_every_command_setting_and_route_appears() -> None:
    from dataclasses import fields

    from mailbeacon.config import Settings

    conf = (DOCS / "configuration.md").read_text()
    for f in fields(Settings):
        assert f"`{f.name}`" in conf and f.metadata.get("help"), f"setting {f.name} undocumented"
    api = (DOCS / "api.md").read_text()
    for path in ("/api/v1/messages", "/api/v1/campaigns", "/o/{token}.gif", "/c/{token}"):
        assert path in api
    for cmd in (
        "mailbeacon serve",
        "mailbeacon keys create",
        "mailbeacon message new",
        "mailbeacon events",
        "mailbeacon networks load",
        "mailbeacon reclassify",
        "mailbeacon instrument",
        "mailbeacon lint",
    ):
        assert f"### `{cmd}`" in conf, cmd


def test_readme_quick_start_has_the_two_commands() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    assert "mailbeacon serve" in readme and "./scripts/test" in readme
    ci = (DOCS.parent / ".ci" / "run").read_text()
    assert "scripts/test" in ci
