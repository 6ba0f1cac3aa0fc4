# SPDX-License-Identifier: ISC
"""The RFC 7208 test suite (openspf.org's, as Debian's python3-spf ships
it: /usr/share/doc/python3-spf/rfc7208-tests.yml.gz), each scenario's
zone data served by a loopback unbound, each case checked with
`ternctl spf` (check_host() as ternd runs it, through the configured
resolver). Where Tern knowingly differs, KNOWN says why; every other case
must give one of the results the suite allows, and every KNOWN one must
still differ (so the list stays true)."""
import gzip
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from peers import Unbound
from test_dkim import TERNCTL

SUITE = Path("/usr/share/doc/python3-spf/rfc7208-tests.yml.gz")

# case -> why Tern's answer is not the suite's (none today: every case
# agrees; a deviation made on purpose goes here with its reason)
KNOWN = {}


def txt_strings(value):
    """A TXT (or SPF) value as unbound local-data strings: each string
    quoted, cut at 255 octets, odd octets as \\DDD."""
    parts = value if isinstance(value, list) else [value]
    out = []
    for p in parts:
        b = p.encode("utf-8")
        for i in range(0, max(len(b), 1), 255):
            chunk = b[i:i + 255]
            out.append('"' + "".join(
                "\\" + chr(c) if c in b'"\\' else
                chr(c) if 32 <= c < 127 else "\\%03d" % c
                for c in chunk) + '"')
    return " ".join(out)


def owner(name):
    n = name.lower().rstrip(".") + "."
    return "".join("\\%03d" % ord(c) if c in ' "\\;()' else c for c in n)


def zone(zonedata):
    """unbound lines for a scenario: TXT made from SPF for names that
    have no TXT (as the suite's drivers do), TIMEOUT as REFUSED."""
    lines = ['local-zone: "." static']
    # A name that times out: every query for it refused but for the types
    # it has records of (libunbound then says SERVFAIL, a temporary
    # failure, as a timeout is). A refusing zone covers the names below it
    # too: those with data of their own get a zone of their own.
    slow = {owner(n) for n, recs in zonedata.items() if "TIMEOUT" in recs}
    for t in slow:
        lines.append('local-zone: "%s" refuse' % t)
    for name in zonedata:
        o = owner(name)
        if o not in slow and any(o.endswith("." + t) for t in slow):
            lines.append('local-zone: "%s" static' % o)
    for name, recs in zonedata.items():
        o = owner(name)
        has_txt = any(isinstance(r, dict) and "TXT" in r for r in recs)
        for r in recs:
            if not isinstance(r, dict):
                assert r == "TIMEOUT", r
                continue
            for t, v in r.items():
                # "NONE": no record of that type (and none made from SPF);
                # an SPF record of no strings is no record
                if v == "NONE" or v == []:
                    continue
                if t in ("TXT", "SPF"):
                    lines.append("%s %s %s" % (o, t, txt_strings(v)))
                    if t == "SPF" and not has_txt:
                        lines.append("%s TXT %s" % (o, txt_strings(v)))
                elif t == "MX":
                    lines.append("%s MX %d %s" % (o, v[0], owner(v[1])))
                elif t in ("PTR", "CNAME"):
                    lines.append("%s %s %s" % (o, t, owner(v)))
                else:
                    for a in v if isinstance(v, list) else [v]:
                        lines.append("%s %s %s" % (o, t, a))
    return lines


def scenarios():
    if not SUITE.exists():
        return []
    with gzip.open(SUITE, "rt") as f:
        return list(yaml.safe_load_all(f))


@pytest.mark.parametrize("scenario", scenarios(),
                         ids=lambda s: s["description"])
def test_rfc7208_scenario(tmp_path, scenario):
    dns = Unbound(tmp_path, zone(scenario["zonedata"]))
    try:
        conf = tmp_path / "tern.conf"
        conf.write_text('data_dir = "%s"\nresolver = "%s"\n'
                        'dns_timeout = 5\nlisten = { { addr = '
                        '"127.0.0.1:25", role = "mx" } }\n'
                        % (tmp_path / "data", dns.address))
        wrong = {}
        for name, case in scenario["tests"].items():
            want = case["result"]
            want = want if isinstance(want, list) else [want]
            r = subprocess.run([str(TERNCTL), "-c", str(conf), "spf",
                                case["host"], case["mailfrom"],
                                case.get("helo", "")],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, (name, r.stderr)
            got = re.match(r"spf=(\w+)", r.stdout).group(1)
            if got not in want:
                wrong[name] = "%s, not %s (%s)" % (got, "/".join(want),
                                                   r.stdout.strip())
        known = {n for n in scenario["tests"] if n in KNOWN}
        assert set(wrong) - known == set(), wrong
        assert known - set(wrong) == set(), \
            "now agreeing: %s (take them out of KNOWN)" % (known - set(wrong))
    finally:
        dns.stop()


def test_the_suite_is_there():
    """Debian's python3-spf (scripts/deps test) ships it; without it the
    cases above would silently be none."""
    assert len(scenarios()) >= 16
    assert sum(len(s["tests"]) for s in scenarios()) >= 200
