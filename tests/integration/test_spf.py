# SPDX-License-Identifier: ISC
"""SPF (RFC 7208) of mail received on port 25: the MAIL FROM domain (or
the HELO name for <>) checked over a loopback unbound, the result in
our Authentication-Results field and in tx.auth.spf, and the same
result as Debian's pyspf (python3-spf) on the same DNS data."""
import email
import re
import smtplib
import time

import pytest

from conftest import TOP
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
    "badhelo.test": ["v=spf1 -all"],
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
  local h = tx.auth.spf_helo
  msg:add_header("X-Spf-Helo", h and (h.result .. " " .. h.domain) or "-")
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


def pyspf_result(u, sender, helo="client.test"):
    import dns.resolver
    import spf
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = u.port
    old = dns.resolver.default_resolver
    dns.resolver.default_resolver = r
    try:
        return spf.check2(i="127.0.0.1", s=sender, h=helo)[0]
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


def test_the_helo_identity_is_checked_beside_mail_from(spf_world):
    t, u = spf_world
    with smtplib.SMTP("127.0.0.1", t.port,
                      local_hostname="badhelo.test") as s:
        s.sendmail("x@pass.test", ["vera@localhost"],
                   b"Subject: two\r\n\r\nx\r\n")
    raw = t.wait_messages("vera", 1)[0]
    got, text, m = ours(raw)
    # MAIL FROM's first (DMARC's), then the HELO name's (RFC 7208 2.3)
    assert got == "pass" and "smtp.mailfrom=x@pass.test" in text, text
    assert "spf=fail smtp.helo=badhelo.test" in text, text
    assert m["X-Spf-Helo"] == "fail badhelo.test"
    assert pyspf_helo(u, "badhelo.test") == "fail"
    # for <> the HELO name is the MAIL FROM identity: checked once
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="helo.test") as s:
        s.sendmail("<>", ["vera@localhost"], b"Subject: dsn\r\n\r\nx\r\n")
    raw = [x for x in t.wait_messages("vera", 2) if b"dsn" in x][0]
    got, text, m = ours(raw)
    assert text.count("spf=") == 1 and m["X-Spf-Helo"] == "-", text


def pyspf_helo(u, helo):
    return pyspf_result(u, "postmaster@" + helo, helo)


# --- DMARC (RFC 7489) --------------------------------------------------------

@pytest.fixture
def dmarc_world(make_ternd, tmp_path):
    """sender.test with a DKIM key and p=reject, org.test's record
    covering its subdomains (sp=quarantine), and a ternd with the
    shipped dmarc_policy plugin."""
    from test_dkim import keygen, txt_record
    home = tmp_path / "dmarckeys"
    key, rec = keygen(home, "sender.test", "s1", "rsa")
    dns = Unbound(tmp_path, [
        txt_record("s1._domainkey.sender.test.", rec),
        'sender.test. TXT "v=spf1 -all"',
        '_dmarc.sender.test. TXT "v=DMARC1; p=reject; adkim=r"',
        '_dmarc.org.test. TXT "v=DMARC1; p=none; sp=quarantine"',
        'sub.org.test. TXT "v=spf1 -all"',
        'nopolicy.test. TXT "v=spf1 ip4:127.0.0.1 -all"',
    ])
    t = make_ternd(start=False)
    t.write_config('resolver = "%s"\nplugin_path = { "%s" }\n'
                   'plugins = { "dmarc_policy" }\n'
                   'public_suffix_list = "/usr/share/publicsuffix/'
                   'public_suffix_list.dat"\n' % (dns.address, TOP / "plugins"))
    t.start()
    yield t, key
    dns.stop()


def test_dmarc_verdicts_and_the_shipped_policy(dmarc_world):
    import dkim
    t, key = dmarc_world

    def msg(frm, subject):
        return (b"From: %s\r\nTo: vera@localhost\r\nSubject: %s\r\n"
                b"Date: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\nhi\r\n"
                % (frm.encode(), subject.encode()))
    # aligned DKIM (d=sender.test for From: sender.test): pass
    m = msg("a@sender.test", "signed")
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="c.test") as s:
        s.sendmail("bounce@sender.test", ["vera@localhost"],
                   dkim.sign(m, b"s1", b"sender.test", key.read_bytes()) + m)
    raw = t.wait_messages("vera", 1)[0]
    text = " ".join(ours(raw)[1].split())
    assert "dmarc=pass (p=reject pct=100) header.from=sender.test" in text
    # unsigned, SPF fails: p=reject refuses it
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="c.test") as s:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("x@sender.test", ["vera@localhost"],
                       msg("a@sender.test", "forged"))
    assert e.value.smtp_code == 550 and b"DMARC policy" in e.value.smtp_error
    assert "dmarc=fail header.from=sender.test policy=reject" in t.log()
    # a subdomain: the organizational domain's sp=quarantine, into Junk
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="c.test") as s:
        s.sendmail("x@sub.org.test", ["vera@localhost"],
                   msg("a@sub.org.test", "junk"))
    junk = t.data / "mail" / "localhost" / "vera" / ".Junk"
    # (the folder is made before the message is in it: wait for that)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (
            (junk / "new").is_dir() and any((junk / "new").iterdir())):
        time.sleep(0.05)
    got = list((junk / "new").iterdir())
    assert len(got) == 1 and b"Subject: junk" in got[0].read_bytes()
    assert "dmarc=fail (p=quarantine pct=100) header.from=sub.org.test" in \
        " ".join(got[0].read_text().split())
    # no record: none, delivered; SPF-aligned pass needs no DKIM
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="c.test") as s:
        s.sendmail("x@nopolicy.test", ["vera@localhost"],
                   msg("a@nopolicy.test", "plain"))
    raw = [m for m in t.wait_messages("vera", 2) if b"plain" in m][0]
    assert "dmarc=none header.from=nopolicy.test" in " ".join(
        ours(raw)[1].split())
