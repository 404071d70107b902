"""One vocabulary (issue 10): every reason code the rules can emit and every
network list has plain words, and every code the corpora produce is in the
closed set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailbeacon.classify import classify
from mailbeacon.classify.network_lists import LISTS, NetKind, kind_of
from mailbeacon.classify.reasons import WORDING, Reason, ip, is_known, method, wording
from mailbeacon.model import HUMAN_LABELS, LABEL_CLASS, ClickLabel, LabelClass, OpenLabel
from mailbeacon.store import rollups
from mailbeacon.web.dashboard.reasons import CLASS as DASHBOARD_CLASS
from mailbeacon.web.dashboard.reasons import LABELS, explain
from tests import classify_corpus as corpus

SRC = Path(__file__).resolve().parent.parent / "src" / "mailbeacon"


@pytest.mark.parametrize("code", list(Reason), ids=[r.value for r in Reason])
def test_every_reason_has_wording(code: Reason) -> None:
    assert WORDING.get(code), code
    assert wording(code.value) == WORDING[code]
    assert explain(None, [code.value]) == [WORDING[code]]


@pytest.mark.parametrize("name", sorted(LISTS))
def test_every_network_list_has_kind_source_and_wording(name: str) -> None:
    lst = LISTS[name]
    assert lst.wording and lst.source and lst.scope in ("all", "clicks", "opens")
    assert isinstance(lst.kind, NetKind) and kind_of(name, lst.scope) is lst.kind
    assert wording(ip(name)) == f"Came from {lst.wording}."
    assert lst.cidrs or lst.feed or lst.fmt, "a list must be builtin, fetchable or loadable"


def test_the_dashboard_names_no_list_that_does_not_exist() -> None:
    """The drift issue 10 found: wording for `google_crawlers`, a list that
    never existed. The dashboard now has no list names of its own."""
    text = (SRC / "web" / "dashboard" / "reasons.py").read_text()
    for name in re.findall(r'"ip:([a-z_0-9]+)"', text):
        assert name in LISTS, name


def test_parameterised_codes() -> None:
    assert method("HEAD") is Reason.METHOD_HEAD and method("post") is Reason.METHOD_OTHER
    assert is_known("ip:my_scanners") and not is_known("ip:")
    assert wording("ip:my_scanners") == "Came from the network list 'my_scanners'."
    assert not is_known("ua:made_up") and wording("ua:made_up") == "ua:made_up"
    assert kind_of("my_scanners", "all") is NetKind.GATEWAY
    assert kind_of("my_clouds", "clicks") is NetKind.CLOUD


def test_rules_emit_only_codes_of_the_closed_set() -> None:
    """Run the whole table-driven corpus: every reason of every verdict is known."""
    ns = corpus.corpus_networks()
    for case in corpus.load_cases():
        ev, ctx = corpus.build(case, ns)
        for code in classify(ev, ctx).reasons:
            assert is_known(code), (code, case.source)


def test_no_reason_string_literals_in_the_rules() -> None:
    """Rules name codes through Reason (or ip()/method()), never as bare strings."""
    pattern = re.compile(r'"(?:ua|self|timing|burst|campaign|device|click|history|net|token):')
    for name in ("rules.py", "self_rules.py", "retro.py", "signatures.py", "campaign.py"):
        path = SRC / "classify" / name
        if path.exists():
            assert not pattern.search(path.read_text()), name


@pytest.mark.parametrize("label", [*OpenLabel, *ClickLabel], ids=lambda x: f"{x!r}")
def test_every_label_has_a_class_wording_and_a_counter(label: OpenLabel | ClickLabel) -> None:
    """Labels are one closed set (model.py): the rollups count each one under
    its class, the dashboard words it, and the store has a column for it."""
    cls = LABEL_CLASS[label.value]
    assert rollups.CLASS[label.value] == rollups.CLASS_CODE[cls]
    assert DASHBOARD_CLASS[label.value] == cls.value
    assert LABELS.get(label.value)
    kind = "open" if isinstance(label, OpenLabel) else "click"
    assert f"{kind}_{label.value}" in rollups.LABEL_COLS
    assert (label.value in HUMAN_LABELS) == (cls is LabelClass.HUMAN)


def test_label_strings_outside_model_are_only_wording() -> None:
    """No module keeps its own copy of a label set (they drift): a tuple or set
    literal of two or more label strings appears only in model.py."""
    labels = {str(x) for x in [*OpenLabel, *ClickLabel]}
    found = []
    for path in SRC.rglob("*.py"):
        if path.name == "model.py" or "migrations" in path.parts:
            continue
        for m in re.finditer(
            r"[({]\s*((?:\"[a-z_]+\",\s*){1,}\"[a-z_]+\",?)\s*[)}]", path.read_text()
        ):
            items = set(re.findall(r"\"([a-z_]+)\"", m.group(1)))
            if len(items & labels) >= 2 and items <= labels | {"open", "click"}:
                found.append(f"{path.relative_to(SRC)}: {m.group(0)[:60]}")
    assert not found, found
