"""Domain names as the lint needs them: is this a real domain, and which
registrable domain (example.co.uk) does a host belong to.

Both come from the Public Suffix List, through ``publicsuffixlist`` (it ships
the list, so nothing is fetched at run time; loading it takes ~50 ms, once,
on first use). The crude rule it replaces (last two labels, a hand list of
co.uk-style suffixes) called ``same-link-as-button.url`` a domain: 10 false
"domain mismatch" findings on one real template whose link text is a
made-up URL.
"""

from __future__ import annotations

from functools import cache

from publicsuffixlist import PublicSuffixList

# RFC 2606 / RFC 6761 special-use names: not in the list, but what examples
# and tests use, and clearly meant as domains when someone writes them.
_SPECIAL = frozenset({"example", "test", "invalid", "localhost"})


@cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList(accept_unknown=False)


def is_domain(host: str) -> bool:
    """True when ``host`` ends in a public suffix (or a special-use TLD)."""
    host = host.lower().rstrip(".")
    if "." not in host:
        return False
    if host.rsplit(".", 1)[1] in _SPECIAL:
        return True
    return _psl().publicsuffix(host) is not None


def registrable(host: str) -> str:
    """The registrable domain of ``host`` (``a.b.shop.co.uk`` -> ``shop.co.uk``);
    for names outside the list, the last two labels."""
    host = host.lower().rstrip(".")
    found = _psl().privatesuffix(host)
    if found:
        return str(found)
    return ".".join(host.split(".")[-2:])
