"""Where the network lists come from: the official feeds, and the small
builtin lists used when none is loaded (each with its source)."""

from __future__ import annotations

APPLE_EGRESS = "apple_egress"

# name -> (official URL, format, scope). Sources: ip_ranges.md.
OFFICIAL_LISTS: dict[str, tuple[str, str, str]] = {
    APPLE_EGRESS: ("https://mask-api.icloud.com/egress-ip-ranges.csv", "apple_csv", "opens"),
    "google_special_crawlers": (
        "https://developers.google.com/static/crawling/ipranges/special-crawlers.json",
        "google_json",
        "all",
    ),
    # The endpoints web service requires a client request id (a GUID).
    "microsoft_eop": ("https://endpoints.office.com/endpoints/worldwide", "ms_json", "all"),
}

# Small stable vendor ranges, so the classifier works (with less recall)
# before any official list is loaded. name -> (scope, CIDRs); all from
# ip_ranges.md with the source and date it gives.
BUILTIN_LISTS: dict[str, tuple[str, tuple[str, ...]]] = {
    # EOP IDs 9/10, endpoints version 2022072800 (MicrosoftDocs); Safe Links
    # pre-delivery scans came from 40.107.218.12 (gophish #973).
    "microsoft_eop": (
        "all",
        (
            "40.92.0.0/15",
            "40.107.0.0/16",
            "52.100.0.0/14",
            "52.238.78.88/32",
            "104.47.0.0/17",
            "2a01:111:f400::/48",
            "2a01:111:f403::/48",
        ),
    ),
    # special-crawlers.json IPv4, collapsed (EmailEngine copy, 2026-08-21).
    "google_special_crawlers": (
        "all",
        (
            "66.249.87.0/24",
            "66.249.89.0/24",
            "66.249.90.0/23",
            "66.249.92.0/24",
            "72.14.199.32/27",
            "72.14.199.64/26",
            "72.14.199.128/25",
            "74.125.148.0/23",
            "74.125.150.0/25",
            "74.125.150.128/26",
            "74.125.150.192/27",
            "74.125.151.0/24",
            "74.125.216.0/22",
            "108.177.2.0/24",
            "192.178.16.0/24",
            "192.178.17.0/27",
            "209.85.238.0/24",
        ),
    ),
    # Proofpoint's own networks (PPSup_SupportInfo, undated) and the
    # Essentials inbound /19 (community copy, 2018-12-20).
    "proofpoint": (
        "all",
        (
            "62.209.50.0/24",
            "91.209.104.0/24",
            "208.36.134.0/24",
            "208.84.64.0/22",
            "208.86.200.0/22",
            "209.66.100.64/26",
            "67.231.144.0/20",
            "148.163.128.0/19",
        ),
    ),
    # Barracuda Email Gateway Defense (campus.barracuda.com worked example).
    "barracuda": ("all", ("209.222.80.0/21",)),
    # Whole Microsoft cloud space: clicks only. 40.94.0.0/16 widens the Safe
    # Links detonation IPs 40.94.89.19/.21/.23 (gophish #2646) and 40.94.29.84
    # (mautic #9400), which lie outside EOP; the rest is 0xZDH/redirect.rules
    # misc.txt (2020-04-16).
    "microsoft_cloud": (
        "clicks",
        (
            "40.94.0.0/16",
            "40.74.0.0/15",
            "40.76.0.0/14",
            "40.80.0.0/12",
            "40.96.0.0/12",
            "40.112.0.0/13",
            "40.120.0.0/14",
            "40.124.0.0/16",
            "40.125.0.0/17",
        ),
    ),
    # Google 66.249.64.0/19: GoogleImageProxy egress (observed 66.249.84.222,
    # 66.249.82.4) and "seen in phish" (redirect.rules): clicks only.
    "google_cloud": ("clicks", ("66.249.64.0/19",)),
}
