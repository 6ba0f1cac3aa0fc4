# SPDX-License-Identifier: ISC
"""SPF (RFC 7208) of mail received on port 25: the MAIL FROM domain (or
the HELO name for <>) checked over a loopback unbound, the result in
our Authentication-Results field and in tx.auth.spf, and the same
result as Debian's pyspf (python3-spf) on the same DNS data."""
import email
import re
import smtplib

import pytest

from peers import Unbound
from test_hooks import plugins

ZONE = {
    "pass.test": ["v=spf1 ip4:127.0.0.1 -all"],
    "fail.test": ["v=spf1 -all"],
    "soft.test": ["v=spf1 ~all"],
    "neutral.test": ["v=spf1 ?all"],
    "cidr.test": ["v=spf1 ip4:127.0.0.0/8 -all"],
    "other.test": ["v=spf1 ip4:192.0.2.0/24 -all"],
    "inc.test": ["v=spf1 include:pass.test -all"],
    "incfail.test": ["v=spf1 include:fail.test ~all"],
    "redir.test": ["v=spf1 redirect=pass.test"],
    "redirnone.test": ["v=spf1 redirect=nothing-here.test"],
    "arec.test": ["v=spf1 a -all"],
    "amiss.test": ["v=spf1 a:elsewhere.test -all"],
    "mxrec.test": ["v=spf1 mx -all"],
    "macro.test": ["v=spf1 exists:%{i}.%{l}.ex.test -all"],
    "two.test": ["v=spf1 -all", "v=spf1 +all"],
    "bad.test": ["v=spf1 foo:bar -all"],
    "loop.test": ["v=spf1 include:loop.test"],
    "voids.test": ["v=spf1 a:nx1.test a:nx2.test a:nx3.test -all"],
    "notspf.test": ["google-site-verification=xyz"],
    "helo.test": ["v=spf1 ip4:127.0.0.1 -all"],
}
OTHER = [
    "arec.test. A 127.0.0.1",
    "elsewhere.test. A 192.0.2.9",
    "mxrec.test. MX 10 mxhost.test.",
    "mxhost.test. A 127.0.0.1",
    "127.0.0.1.someone.ex.test. A 127.0.0.2",
]

SPF_PLUGIN = """
return { data = function(tx, msg)
  local s = tx.auth.spf
  msg:add_header("X-Spf-Seen", s and (s.result .. " " .. s.domain) or "-")
  if s and s.domain == "fail.test" and s.result == "fail" then
    return "reject", "550 5.7.23 SPF says no"
  end
end }
"""


def records():
    out = ['%s. TXT "%s"' % (d, r) for d, rs in ZONE.items() for r in rs]
    return out + OTHER


@pytest.fixture
def spf_world(make_ternd, tmp_path):
    dns = Unbound(tmp_path, records())
    t = make_ternd(start=False)
    t.write_config('resolver = "%s"\n%splugins = { "spf_seen" }\n'
                   % (dns.address, plugins(t, spf_seen=SPF_PLUGIN)))
    t.start()
    yield t, dns
    dns.stop()


def ours(raw):
    m = email.message_from_bytes(raw)
    ar = [v for v in m.get_all("Authentication-Results", [])
          if v.split(";")[0].strip() == "mx.test"][0]
    got = re.search(r"spf=(\w+)", ar)
    return got.group(1) if got else None, " ".join(ar.split()), m


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_spf_results_agree_with_pyspf(spf_world):
    t, u = spf_world
    seen = {}
    cases = [("someone@%s" % d) for d in ZONE if d not in (
        "fail.test", "helo.test")] + ["someone@nothing-here.test"]
    n = 0
    for sender in cases:
        with smtplib.SMTP("127.0.0.1", t.port,
                          local_hostname="client.test") as s:
            s.sendmail(sender, ["vera@localhost"],
                       b"Subject: %s\r\n\r\nx\r\n" % sender.encode())
        n += 1
        raw = [m for m in t.wait_messages("vera", n)
               if b"Subject: " + sender.encode() in m][0]
        got, text, m = ours(raw)
        want = pyspf_result(u, sender)
        assert got == want, (sender, got, want, text)
        assert "smtp.mailfrom=" + sender in text, text
        assert m["X-Spf-Seen"] == "%s %s" % (got, sender.split("@")[1])
        seen[sender.split("@")[1]] = got
    # the cases cover every result
    assert set(seen.values()) == {"pass", "softfail", "neutral", "fail",
                                  "permerror", "none"}, seen
    assert seen["macro.test"] == "pass" and seen["mxrec.test"] == "pass"
    assert seen["loop.test"] == "permerror"
    assert seen["voids.test"] == "permerror"
    assert "spf=pass domain=pass.test" in t.log()


def pyspf_result(u, sender):
    import dns.resolver
    import spf
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = u.port
    old = dns.resolver.default_resolver
    dns.resolver.default_resolver = r
    try:
        return spf.check2(i="127.0.0.1", s=sender, h="client.test")[0]
    finally:
        dns.resolver.default_resolver = old


def test_spf_of_the_helo_for_bounces_and_a_plugin_refusing(spf_world):
    t, u = spf_world
    # <>: the HELO name's record, as postmaster@ it
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="helo.test") as s:
        s.sendmail("<>", ["vera@localhost"], b"Subject: dsn\r\n\r\nx\r\n")
    raw = t.wait_messages("vera", 1)[0]
    got, text, m = ours(raw)
    assert got == "pass" and "smtp.helo=helo.test" in text, text
    # a plugin reads tx.auth.spf and refuses what fails
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("x@fail.test", ["vera@localhost"],
                       b"Subject: no\r\n\r\nx\r\n")
    assert e.value.smtp_code == 550 and b"SPF says no" in e.value.smtp_error
    assert "spf=fail domain=fail.test" in t.log()
