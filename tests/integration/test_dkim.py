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
import time

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


# --- verification of received mail ------------------------------------------

def txt_record(name, text):
    """An unbound local-data TXT line, the text in strings of 200."""
    parts = " ".join('"%s"' % text[i:i + 200]
                     for i in range(0, len(text), 200))
    return "%s TXT %s" % (name, parts)


def ed_seed(pem_path):
    """The 32-octet seed of a PKCS#8 Ed25519 key, base64 (dkimpy's form)."""
    import base64
    der = base64.b64decode("".join(
        line for line in pem_path.read_text().splitlines()
        if not line.startswith("-----")))
    return base64.b64encode(der[-32:])


DKIM_PLUGIN = """
return { data = function(tx, msg)
  local seen = {}
  for _, d in ipairs(tx.auth.dkim) do
    seen[#seen + 1] = d.result .. ":" .. d.domain .. ":" .. d.selector ..
      ":" .. d.algorithm
    if d.domain == "sender.test" and d.result == "fail" then
      return "reject", "550 5.7.1 forged mail from sender.test"
    end
  end
  msg:add_header("X-Dkim-Seen", #seen > 0 and table.concat(seen, " ") or "-")
end }
"""


@pytest.fixture
def signed_world(make_ternd, tmp_path):
    """sender.test's keys in a loopback unbound, and a ternd using it
    with a plugin that reads tx.auth.dkim (rejects what fails)."""
    from test_hooks import plugins
    from peers import Unbound
    home = tmp_path / "senderkeys"
    rsa, rsa_rec = keygen(home, "sender.test", "s1", "rsa")
    ed, ed_rec = keygen(home, "sender.test", "e1", "ed25519")
    dns = Unbound(tmp_path, [
        txt_record("s1._domainkey.sender.test.", rsa_rec),
        txt_record("e1._domainkey.sender.test.", ed_rec),
        txt_record("gone._domainkey.sender.test.", "v=DKIM1; p="),
        txt_record("bad._domainkey.sender.test.", "v=DKIM1; k=rsa; p=!!"),
    ])
    t = make_ternd(start=False)
    t.write_config('resolver = "%s"\n%splugins = { "dkim_seen" }\n'
                   % (dns.address, plugins(t, dkim_seen=DKIM_PLUGIN)))
    t.start()
    yield t, rsa, ed
    dns.stop()


def mx_send(t, raw, sender="someone@sender.test"):
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        s.sendmail(sender, ["vera@localhost"], raw)


def results_of(raw):
    """The dkim= results of our Authentication-Results field."""
    import email
    m = email.message_from_bytes(raw)
    ours = [v for v in m.get_all("Authentication-Results", [])
            if v.split(";")[0].strip() == "mx.test"]
    assert len(ours) == 1, m.get_all("Authentication-Results")
    return re.findall(r"dkim=(\w+)", ours[0]), " ".join(ours[0].split())


MSG = (b"From: Someone <someone@sender.test>\r\nTo: vera@localhost\r\n"
       b"Subject: %s\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\n"
       b"Message-ID: <%s@sender.test>\r\n\r\nA body  with  spaces.\r\n")


def test_received_mail_is_verified(signed_world):
    t, rsa, ed = signed_world
    pem = rsa.read_bytes()
    n = 0

    def got():
        return t.wait_messages("vera", n)[n - 1]

    # signed by dkimpy, both canonicalizations, RSA and Ed25519
    for canon in ((b"simple", b"simple"), (b"relaxed", b"relaxed")):
        m = MSG % (b"rsa " + canon[0], b"r" + canon[0])
        mx_send(t, dkim.sign(m, b"s1", b"sender.test", pem,
                             canonicalize=canon) + m)
        n += 1
        res, text = results_of(got())
        assert res == ["pass"], text
        assert "header.d=sender.test" in text and "header.s=s1" in text
        assert "2048-bit key" in text
    m = MSG % (b"ed25519", b"e")
    mx_send(t, dkim.sign(m, b"e1", b"sender.test", ed_seed(ed),
                         signature_algorithm=b"ed25519-sha256") + m)
    n += 1
    res, text = results_of(got())
    assert res == ["pass"] and "header.a=ed25519-sha256" in text, text
    assert b"X-Dkim-Seen: pass:sender.test:e1:ed25519-sha256" in got()

    # two signatures, one broken in transit: each has its verdict
    m = MSG % (b"two", b"two")
    sig = dkim.sign(m, b"s1", b"sender.test", pem) + dkim.sign(
        m, b"e1", b"sender.test", ed_seed(ed),
        signature_algorithm=b"ed25519-sha256")
    # (the plugin refuses what fails for sender.test: seen in the log)
    with pytest.raises(smtplib.SMTPDataError) as e:
        mx_send(t, sig + m.replace(b"spaces.", b"spaces!"))
    assert e.value.smtp_code == 550 and b"forged" in e.value.smtp_error
    assert t.log().count("dkim=fail d=sender.test") == 2
    assert "reason=body hash did not verify" in t.log()

    # a changed Subject: the signature, not the body, fails
    m = MSG % (b"subject", b"subj")
    sig = dkim.sign(m, b"s1", b"sender.test", pem)
    with pytest.raises(smtplib.SMTPDataError):
        mx_send(t, sig + m.replace(b"Subject: subject", b"Subject: changed"))
    assert "reason=signature did not verify" in t.log()

    # keys that are not there, revoked or broken; no signature at all
    for sel, why in ((b"nokey", "no key for the signature"),
                     (b"gone", "key revoked"), (b"bad", "base64")):
        m = MSG % (sel, sel)
        mx_send(t, dkim.sign(m, sel, b"sender.test", pem) + m)
        n += 1
        res, text = results_of(got())
        assert res == ["permerror"] and why in text, text
    mx_send(t, MSG % (b"plain", b"plain"))
    n += 1
    res, text = results_of(got())
    assert res == ["none"], text
    assert b"X-Dkim-Seen: -" in got()
    assert "dkim=pass d=sender.test s=s1" in t.log()


def test_forged_results_are_taken_out(signed_world):
    t, rsa, ed = signed_world
    m = (b"Authentication-Results: mx.test; dkim=pass header.d=bank.test\r\n"
         b"Authentication-Results: MX.TEST (forged); spf=pass\r\n"
         b"Authentication-Results: other.example; dkim=pass\r\n") + (
        MSG % (b"forged", b"forged"))
    mx_send(t, m)
    raw = t.wait_messages("vera", 1)[0]
    res, text = results_of(raw)
    assert res == ["none"], text
    assert b"bank.test" not in raw and b"spf=pass" not in raw
    assert b"Authentication-Results: other.example; dkim=pass" in raw
    assert "2 Authentication-Results field(s) of ours taken out" in t.log()


class HeldDNS:
    """A DNS server on loopback that holds every query for a name with
    "slow" in it (or the wire-format bytes hold) until release(), then
    answers each NXDOMAIN (those after it and all others at once)."""

    def __init__(self, hold=b"\x04slow"):
        import socket
        import threading
        self.hold = hold
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.held = []
        self.seen = threading.Event()
        self.released = False
        self.done = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @staticmethod
    def nxdomain(q):
        # the question kept (its name, then type and class), no records
        i = 12
        while i < len(q) and q[i] != 0:
            i += 1 + q[i]
        head = bytearray(q[:12])
        head[2] = 0x80 | (q[2] & 0x01)          # QR, RD as asked
        head[3] = 0x80 | 3                      # RA, NXDOMAIN
        head[6:12] = b"\0\0\0\0\0\0"            # no answers, none else
        return bytes(head) + q[12:i + 5]

    def run(self):
        import socket
        deadline = time.monotonic() + 120
        while not self.done and time.monotonic() < deadline:
            try:
                q, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            with self.lock:
                if self.released or self.hold not in q:
                    self.sock.sendto(self.nxdomain(q), addr)
                else:
                    self.held.append((q, addr))
                    self.seen.set()

    def release(self):
        with self.lock:
            self.released = True
            for q, addr in self.held:
                self.sock.sendto(self.nxdomain(q), addr)

    def stop(self):
        self.done = True
        self.thread.join()
        self.sock.close()


def test_a_key_lookup_waits_without_holding_other_sessions(make_ternd,
                                                           tmp_path):
    from conftest import Raw
    key, _ = keygen(tmp_path / "slowkeys", "slow.test", "s1", "rsa")
    dns = HeldDNS()
    try:
        t = make_ternd(start=False)
        t.write_config('resolver = "127.0.0.1:%d"\ndns_timeout = 60\n'
                       % dns.port)
        t.start()
        m = MSG % (b"slow", b"slow")
        signed = dkim.sign(m, b"s1", b"slow.test", key.read_bytes()) + m
        a = Raw(t.port, timeout=60)
        assert a.cmd("EHLO client.test")[0] == 250
        assert a.cmd("MAIL FROM:<x@slow.test>")[0] == 250
        assert a.cmd("RCPT TO:<vera@localhost>")[0] == 250
        assert a.cmd("DATA")[0] == 354
        a.send(signed + b".\r\n")
        assert dns.seen.wait(60), "ternd asked no key"
        # while its key is looked up, another client's transaction is
        # done from start to end
        mx_send(t, MSG % (b"fast", b"fast"))
        fast = t.wait_messages("vera", 1)
        assert len(fast) == 1 and b"Subject: fast" in fast[0]
        # and the first client has still had no answer
        a.sock.settimeout(0.05)
        with pytest.raises(OSError):
            a.sock.recv(1)
        a.sock.settimeout(60)
        dns.release()
        assert a.reply()[0] == 250
        raw = [x for x in t.wait_messages("vera", 2) if b"slow" in x][0]
        res, text = results_of(raw)
        assert res == ["permerror"] and "no key" in text, text
        a.cmd("QUIT")
    finally:
        dns.stop()
