# SPDX-License-Identifier: ISC
"""SMTPUTF8 (RFC 6531/6532): offered, required for UTF-8 addresses
(553 5.6.7 without it); UTF-8 local parts land in one Maildir whatever
Unicode form the sender used (NFC), U-label domains are the same domain
as their A-label; UTF-8 header fields arrive untouched, Received says
UTF8SMTP, and ternmail shows such mail. On the way out: declared to a
hop that has it (Postfix), A-labels to one that lacks it when that is
enough, else a 5.6.7 bounce."""
import email
import email.policy
import shutil
import smtplib
import unicodedata

import pytest

from conftest import Raw, free_port
from peers import Postfix
from test_outbound import world  # noqa: F401 (a fixture)
from test_ternmail import home, tm  # noqa: F401 (a fixture)

JOERG = "j\u00f6rg"                               # NFC
JOERG_NFD = unicodedata.normalize("NFD", JOERG)    # o + U+0308


def body(to, subject="Gr\u00fc\u00dfe aus K\u00f6ln"):
    return ("From: Z\u00f6e <z\u00f6e@localhost>\r\nTo: %s\r\n"
            "Subject: %s\r\n\r\nHallo \u2013 sch\u00f6n!\r\n"
            % (to, subject)).encode()


def send_utf8(port, sender, rcpts, msg):
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as s:
        s.ehlo("client.test")
        assert s.has_extn("smtputf8")
        # smtplib's sendmail encodes str addresses as UTF-8 with SMTPUTF8
        return s.sendmail(sender, rcpts, msg, mail_options=["SMTPUTF8"])


def global_bounce(t, n=1):
    """The n-th report to sender@localhost: RFC 6533's global kind."""
    msgs = t.wait_messages("sender", n)
    assert len(msgs) >= n, "no bounce"
    raw = msgs[n - 1].decode()
    head = "Content-Type: message/global-delivery-status\n\n"
    assert head in raw, raw[:600]
    text = raw.split(head, 1)[1].split("\n--", 1)[0]
    # per-message fields, then a block per recipient
    p = [email.message_from_string(b) for b in text.split("\n\n")
         if b.strip()]
    return msgs[n - 1], p[1:]


def test_offered_and_required(make_ternd):
    t = make_ternd()
    c = Raw(t.port)
    code, lines = c.cmd("EHLO client.test")
    assert "250-SMTPUTF8" in lines or "250 SMTPUTF8" in lines
    c.send(("MAIL FROM:<%s@localhost>\r\n" % JOERG).encode())
    code, lines = c.reply()
    assert code == 553 and "5.6.7" in lines[0]
    assert c.cmd("MAIL FROM:<a@localhost> SMTPUTF8=yes")[0] == 501
    assert c.cmd("MAIL FROM:<a@localhost>")[0] == 250
    c.send(("RCPT TO:<%s@localhost>\r\n" % JOERG).encode())
    code, lines = c.reply()
    assert code == 553 and "5.6.7" in lines[0]
    c.cmd("RSET")
    # not well-formed UTF-8: a syntax error, SMTPUTF8 or not
    c.send(b"MAIL FROM:<a@localhost> SMTPUTF8\r\n")
    assert c.reply()[0] == 250
    c.send(b"RCPT TO:<j\xf6rg@localhost>\r\n")
    assert c.reply()[0] == 501
    c.cmd("QUIT")


def test_local_delivery_nfc_and_headers(make_ternd, home):
    t = make_ternd()
    send_utf8(t.port, "z\u00f6e@localhost", [JOERG + "@localhost"],
              body(JOERG + "@localhost"))
    # the decomposed spelling is the same mailbox
    send_utf8(t.port, "z\u00f6e@localhost", [JOERG_NFD + "@localhost"],
              body(JOERG_NFD + "@localhost", "zweite"))
    msgs = t.wait_messages(JOERG, 2)
    assert len(msgs) == 2
    assert sorted(p.name for p in (t.data / "mail" / "localhost").iterdir()
                  ) == [JOERG]
    raw = msgs[0]
    assert "Subject: Gr\u00fc\u00dfe aus K\u00f6ln".encode() in raw
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert "with UTF8SMTP" in m["Received"]
    assert m["Delivered-To"] == JOERG + "@localhost"
    # ternmail lists and shows it
    md = t.maildir(JOERG)
    out = tm(home, "-m", md, "list").stdout.decode()
    assert "Z\u00f6e" in out and "Gr\u00fc\u00dfe aus K\u00f6ln" in out
    out = tm(home, "-m", md, "show", "1").stdout.decode()
    assert "Hallo \u2013 sch\u00f6n!" in out


def test_u_label_is_the_a_label_domain(make_ternd):
    t = make_ternd('domains = { "localhost", "xn--bcher-kva.test" }')
    send_utf8(t.port, "z\u00f6e@localhost", ["anna@B\u00fccher.test"],
              body("anna@b\u00fccher.test"))
    with smtplib.SMTP("127.0.0.1", t.port) as s:
        s.sendmail("x@localhost", ["anna@xn--bcher-kva.test"],
                   b"Subject: ascii\r\n\r\nx\r\n")
    assert len(t.wait_messages("anna", 2, domain="xn--bcher-kva.test")) == 2
    # the config may name it by its U-label too
    t = make_ternd('domains = { "localhost", "B\u00fccher.test" }', sub="u")
    with smtplib.SMTP("127.0.0.1", t.port) as s:
        s.sendmail("x@localhost", ["anna@xn--bcher-kva.test"],
                   b"Subject: ascii\r\n\r\nx\r\n")
    assert len(t.wait_messages("anna", 1, domain="xn--bcher-kva.test")) == 1


RECORDS = ["xn--bcher-kva.test. MX 10 mx.bu.test.", "mx.bu.test. A 127.0.0.3",
           "plain.test. MX 10 mx.pl.test.", "mx.pl.test. A 127.0.0.3"]


def test_hop_without_smtputf8(world, tmp_path):
    import test_outbound
    saved = test_outbound.RECORDS
    test_outbound.RECORDS = saved + RECORDS
    try:
        w = world()
    finally:
        test_outbound.RECORDS = saved
    p = w.peer("127.0.0.3", smtputf8=False)
    # ASCII local part, U-label domain, ASCII header: A-labels suffice
    send_utf8(w.t.port, "sender@localhost", ["u@b\u00fccher.test"],
              b"From: sender@localhost\r\nSubject: plain\r\n\r\nx\r\n")
    assert len(p.wait(1)) == 1
    assert p.messages[0][1] == ["u@xn--bcher-kva.test"]
    # a UTF-8 local part cannot be converted: a bounce, 5.6.7
    send_utf8(w.t.port, "sender@localhost", [JOERG + "@plain.test"],
              b"From: sender@localhost\r\nSubject: plain\r\n\r\nx\r\n")
    raw, status = global_bounce(w.t)
    assert status[0]["Status"] == "5.6.7"
    assert "SMTPUTF8 is required" in status[0]["Diagnostic-Code"]
    # nor can a UTF-8 header field
    send_utf8(w.t.port, "sender@localhost", ["v@plain.test"],
              body("v@plain.test"))
    raw, status = global_bounce(w.t, n=2)
    assert status[0]["Status"] == "5.6.7"
    assert len(p.messages) == 1
    # the report of SMTPUTF8 mail is RFC 6533's global kind
    m = email.message_from_bytes(raw)
    types = [q.get_content_type() for q in m.walk()]
    assert "message/global-delivery-status" in types
    assert "message/global-headers" in types


@pytest.mark.skipif(shutil.which("postfix") is None,
                    reason="Debian's postfix is not installed")
def test_postfix_both_ways(make_ternd):
    t = make_ternd(start=False)
    pf_port = free_port()
    t.write_config('relayhost = "127.0.0.1:%d"\n' % pf_port)
    t.start()
    pf = Postfix(pf_port, t.port)
    try:
        # ternd -> Postfix: declared, UTF-8 address and header as they are
        send_utf8(t.port, "z\u00f6e@localhost", [JOERG + "@pf.test"],
                  body(JOERG + "@pf.test"))
        msgs = pf.wait(1)
        assert len(msgs) == 1
        assert "Subject: Gr\u00fc\u00dfe aus K\u00f6ln".encode() in msgs[0]
        assert ("to=<%s@pf.test>" % JOERG) in pf.maillog()
        # Postfix -> ternd: the decomposed spelling, into the NFC Maildir
        send_utf8(pf.port, "z\u00f6e@pf.test", [JOERG_NFD + "@localhost"],
                  body(JOERG_NFD + "@localhost", "von Postfix"))
        got = t.wait_messages(JOERG, 1, timeout=30)
        assert len(got) == 1 and "von Postfix".encode() in got[0]
        m = email.message_from_bytes(got[0], policy=email.policy.default)
        assert "with UTF8SMTP" in m["Received"]
        assert pf.queue_empty() and t.wait_queue_empty()
    finally:
        pf.stop()
