# SPDX-License-Identifier: ISC
"""DKIM signing (RFC 6376, RFC 8463): keys made by `ternctl dkim keygen`,
mail submitted on port 587 and through tern-sendmail, and bounces, leave
signed by every key of their From: domain; Debian's dkimpy (python3-dkim)
verifies both signatures, with the record ternctl printed as the DNS
answer; an 8-bit message is made quoted-printable first and still
verifies; mail of a domain without keys stays unsigned."""
import os
import re
import smtplib
import subprocess

import dkim
import pytest

from conftest import BUILD
from test_outbound import World, bounce_of, send
from test_sendmail import sendmail
from test_submission import login, start_msa

TERNCTL = BUILD / "mta" / "ternctl"


def keygen(home, domain, selector, kind):
    """A key made by ternctl under home: its path and its TXT record."""
    r = subprocess.run([str(TERNCTL), "dkim", "keygen", domain, selector,
                        "--type", kind], capture_output=True, text=True,
                       env=dict(os.environ, TERN_HOME=str(home)))
    assert r.returncode == 0, r.stderr
    dns = r.stdout.split("publish in DNS:")[1]
    assert dns.strip().startswith("%s._domainkey.%s. IN TXT" % (selector,
                                                               domain))
    record = "".join(re.findall(r'"([^"]*)"', dns))
    return home / "dkim" / ("%s.%s.key" % (domain, selector)), record


@pytest.fixture
def keys(tmp_path):
    """An RSA and an Ed25519 key of localhost and one of mx.test, the
    configuration naming them, and the DNS records."""
    home = tmp_path / "keys"
    made = {}
    for domain, sel, kind in (("localhost", "r1", "rsa"),
                              ("localhost", "e1", "ed25519"),
                              ("mx.test", "b1", "rsa")):
        made[(domain, sel)] = keygen(home, domain, sel, kind)
    conf = "dkim = {\n%s\n}\n" % ",\n".join(
        '  { domain = "%s", selector = "%s", key = "%s" }' % (d, s, p)
        for (d, s), (p, _) in made.items())
    records = {"%s._domainkey.%s." % (s, d): rec
               for (d, s), (_, rec) in made.items()}
    return conf, records


def dns_of(records):
    def txt(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        rec = records.get(n if n.endswith(".") else n + ".")
        return rec.encode() if rec else None
    return txt


def verify_all(raw, records):
    """The (d, s) of every DKIM-Signature of raw (LF line ends, as the
    Maildir keeps it), each checked by dkimpy."""
    wire = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    d = dkim.DKIM(wire)
    n = len(re.findall(rb"(?im)^DKIM-Signature:", wire))
    got = []
    for i in range(n):
        ok = d.verify(idx=i, dnsfunc=dns_of(records))
        assert ok, "signature %d does not verify: %r" % (i, raw[:1500])
        got.append((d.domain.decode(), d.selector.decode()))
    return got


def test_submitted_mail_is_signed_with_both_keys(make_ternd, tmp_path, keys):
    conf, records = keys
    msa = start_msa(make_ternd, tmp_path, conf)
    s = login(msa)
    s.sendmail("alice@localhost", ["gail@localhost"],
               b"From: Alice <alice@localhost>\r\nTo: gail@localhost\r\n"
               b"Subject: signed, we hope\r\n\r\nHello  Gail,\r\n\r\n"
               b"  spaces  and\ttabs stay.\r\n\r\n\r\n")
    s.quit()
    raw = msa.wait_messages("gail", 1)[0]
    assert sorted(verify_all(raw, records)) == [("localhost", "e1"),
                                                ("localhost", "r1")]
    head = raw.split(b"\n\n")[0]
    assert b"a=ed25519-sha256" in head and b"a=rsa-sha256" in head
    # From, To, Subject and Date oversigned: none can be added
    assert re.search(rb"h=from:from:subject:subject:date:date:to:to:"
                     rb"message-id", head.replace(b"\n\t", b""))
    # a change breaks them (dkimpy says no)
    wire = raw.replace(b"signed, we hope", b"signed, we HOPE").replace(
        b"\n", b"\r\n")
    assert not dkim.DKIM(wire).verify(idx=0, dnsfunc=dns_of(records))
    assert "DKIM-signed (2 signatures)" in msa.log()

    # 8-bit: quoted-printable before signing, so no relay breaks it
    s = login(msa)
    s.sendmail("alice@localhost", ["gail@localhost"],
               "From: alice@localhost\r\nTo: gail@localhost\r\nSubject: "
               "umlauts\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; "
               "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
               "Grüße aus Köln\r\n".encode(), mail_options=["BODY=8BITMIME"])
    s.quit()
    raw = msa.wait_messages("gail", 2)[1]
    assert b"quoted-printable" in raw and b"Gr=C3=BC=C3=9Fe" in raw
    assert all(b < 128 for b in raw)
    assert len(verify_all(raw, records)) == 2

    # a domain with no key: sent as it is
    s = login(msa, "bob@example.test", "bobpw")
    s.sendmail("bob@example.test", ["gail@localhost"],
               b"From: bob@example.test\r\nTo: gail@localhost\r\n"
               b"Subject: plain\r\n\r\nx\r\n")
    s.quit()
    raw = msa.wait_messages("gail", 3)[2]
    assert b"DKIM-Signature" not in raw


def test_sendmail_and_bounces_are_signed(make_ternd, tmp_path, keys):
    conf, records = keys
    w = World(make_ternd, tmp_path, conf)
    try:
        # tern-sendmail: local submission, signed for its From: domain
        r = sendmail(w.t, ["-f", "cron@localhost", "ann@localhost"],
                     "From: cron@localhost\nTo: ann@localhost\n"
                     "Subject: nightly\n\nall done\n")
        assert r.returncode == 0, r.stderr
        raw = w.t.wait_messages("ann", 1)[0]
        assert len(verify_all(raw, records)) == 2
        # a bounce from MAILER-DAEMON@mx.test: the key of mx.test
        send(w.t, ["x@nosuchdomain.test"])
        raw, blocks = bounce_of(w.t)
        assert blocks[0]["Status"] == "5.1.2"
        assert verify_all(raw, records) == [("mx.test", "b1")]
    finally:
        w.stop()


def test_keys_are_checked_at_start(make_ternd, tmp_path, keys):
    conf, records = keys
    t = make_ternd(start=False)
    missing = tmp_path / "no-such.key"
    t.write_config('dkim = { { domain = "localhost", selector = "x", '
                   'key = "%s" } }\n' % missing)
    t.start(expect_fail=True)
    assert "no-such.key" in t.log()
    # check-config names the keys
    t.write_config(conf)
    r = subprocess.run([str(TERNCTL), "-c", str(t.config), "check-config"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'selector = "e1"' in r.stdout
    r = subprocess.run([str(TERNCTL), "-c", str(t.config), "dkim", "record",
                        "localhost", "nokey"], capture_output=True, text=True)
    assert r.returncode == 1
    # the same name twice is an error
    t.write_config('dkim = { { domain = "a.test", selector = "s", key = "k" },'
                   ' { domain = "A.test", selector = "s", key = "k" } }\n')
    r = subprocess.run([str(TERNCTL), "-c", str(t.config), "check-config"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "named twice" in r.stderr


def test_jmap_submission_is_signed(make_ternd, keys):
    from test_jmap import web_ternd
    from test_jmap_write import CORE, MAIL, SUB, acc, api, boxes
    conf, records = keys
    web = web_ternd(make_ternd, conf)
    a = acc(web)
    b = boxes(web)
    r = api(web, [["Identity/get", {"accountId": a}, "i"]],
            using=(CORE, MAIL, SUB))
    ident = [i["id"] for i in r[0][1]["list"]
             if i["email"] == "alice@localhost"][0]
    r = api(web, [
        ["Email/set", {"accountId": a, "create": {"d": {
            "mailboxIds": {b["drafts"]: True},
            "from": [{"name": "Alice", "email": "alice@localhost"}],
            "to": [{"name": "Bob", "email": "bob@localhost"}],
            "subject": "caf\u00e9 at noon",
            "textBody": [{"partId": "t", "type": "text/plain"}],
            "bodyValues": {"t": {"value": "Noon at the caf\u00e9?\n"}}}}},
         "0"],
        ["EmailSubmission/set", {"accountId": a, "create": {"s": {
            "identityId": ident, "emailId": "#d"}}}, "1"]],
        using=(CORE, MAIL, SUB))
    assert "s" in r[1][1]["created"], r
    raw = web.wait_messages("bob", 1)[0]
    assert sorted(verify_all(raw, records)) == [("localhost", "e1"),
                                                ("localhost", "r1")]
