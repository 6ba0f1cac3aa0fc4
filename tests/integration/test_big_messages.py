# SPDX-License-Identifier: ISC
"""Big messages are spooled as they arrive (issue 14): past 32 KiB the
rest of a message goes to spool/tmp/<id>.body in pieces, the queue file
is made from the start kept in memory and that file, and the message is
delivered from the queue file (its Maildir copies by the kernel, a remote
hop from memory, four such at a time). What arrives is what is delivered, over
DATA and over BDAT; DKIM signatures of a spooled body verify (its hashes
are made piece by piece); the data hook sees the start of it, its true
size and `msg.truncated`, and its header edits stay; a transfer cut off
or reset leaves no file behind."""
import smtplib
import socket
import time

import dkim
import pytest

from conftest import Raw

MIB = 1024 * 1024


def big_text(n, tag):
    """A message of about n octets: its header, then numbered lines (a
    dot at the start of some, so dot-stuffing is in play)."""
    head = (b"From: a@sender.test\r\nTo: vera@localhost\r\nSubject: %s\r\n"
            b"Message-ID: <%s@sender.test>\r\n\r\n" % (tag, tag))
    lines, size, i = [], len(head), 0
    while size < n:
        line = b"%s%08d %s\r\n" % (b"." if i % 97 == 0 else b"", i,
                                   b"x" * (60 + i % 13))
        lines.append(line)
        size += len(line)
        i += 1
    return head + b"".join(lines)


def delivered_body(raw):
    return raw.split(b"\n\n", 1)[1]


def body_of(msg):
    return msg.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")


def tmp_files(t):
    d = t.data / "spool" / "tmp"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def wait_tmp_empty(t, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and tmp_files(t):
        time.sleep(0.05)
    return tmp_files(t)


def test_big_messages_arrive_whole(ternd):
    """3 MiB over DATA, 2.5 MiB over BDAT in uneven chunks, and one just
    under the threshold: each delivered octet for octet."""
    data_msg = big_text(3 * MIB, b"data")
    with smtplib.SMTP("127.0.0.1", ternd.port) as s:
        s.sendmail("a@sender.test", ["vera@localhost"], data_msg)
    small = big_text(20 * 1024, b"small")
    with smtplib.SMTP("127.0.0.1", ternd.port) as s:
        s.sendmail("a@sender.test", ["vera@localhost"], small)
    bdat_msg = big_text(5 * MIB // 2, b"bdat")
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<vera@localhost>")[0] == 250
    pos, step = 0, 300001
    while pos + step < len(bdat_msg):
        c.send(b"BDAT %d\r\n" % step + bdat_msg[pos:pos + step])
        assert c.reply()[0] == 250
        pos += step
    rest = bdat_msg[pos:]
    c.send(b"BDAT %d LAST\r\n" % len(rest) + rest)
    code, lines = c.reply()
    assert code == 250 and "queued as" in lines[0], lines
    c.cmd("QUIT")
    got = ternd.wait_messages("vera", 3)
    assert len(got) == 3
    by_subject = {m.split(b"Subject: ", 1)[1].split(b"\n", 1)[0]: m
                  for m in got}
    assert delivered_body(by_subject[b"data"]) == body_of(data_msg)
    assert delivered_body(by_subject[b"bdat"]) == body_of(bdat_msg)
    assert delivered_body(by_subject[b"small"]) == body_of(small)
    log = ternd.log()
    assert log.count(" spooled") == 2, log
    assert wait_tmp_empty(ternd) == []
    assert ternd.wait_queue_empty()


from test_dkim import signed_world  # noqa: F401,E402 (a fixture)


def test_a_spooled_body_is_verified(signed_world):  # noqa: F811
    """dkimpy's signatures over a 2 MiB body, both canonicalizations and
    one with l=: each passes; a changed octet near the end fails."""
    from test_dkim import mx_send, results_of
    t, rsa, _ = signed_world
    pem = rsa.read_bytes()
    n = 0
    m = big_text(2 * MIB, b"signed").replace(b"From: a@sender.test",
                                              b"From: someone@sender.test")
    for canon in ((b"simple", b"simple"), (b"relaxed", b"relaxed")):
        mx_send(t, dkim.sign(m, b"s1", b"sender.test", pem,
                             canonicalize=canon) + m)
        n += 1
        res, text = results_of(t.wait_messages("vera", n)[n - 1])
        assert res == ["pass"], text
    mx_send(t, dkim.sign(m, b"s1", b"sender.test", pem, length=True) + m)
    n += 1
    res, text = results_of(t.wait_messages("vera", n)[n - 1])
    assert res == ["pass"], text
    bad = m[:-40] + b"Y" + m[-39:]
    with pytest.raises(smtplib.SMTPDataError):
        mx_send(t, dkim.sign(m, b"s1", b"sender.test", pem) + bad)
    assert "reason=body hash did not verify" in t.log()
    assert t.log().count(" spooled") == n


HOOK = """return { data = function(tx, msg)
  msg:add_header("X-Seen", string.format("size=%d truncated=%s body=%d",
    msg.size, tostring(msg.truncated), #msg:body()))
  msg:remove_header("X-Drop")
end }
"""


def test_the_data_hook_sees_the_start(make_ternd):
    from test_hooks import with_plugins
    t = with_plugins(make_ternd, ["seen"], seen=HOOK)
    m = big_text(3 * MIB, b"hooked").replace(b"Subject:", b"X-Drop: 1\r\n"
                                              b"Subject:")
    with smtplib.SMTP("127.0.0.1", t.port) as s:
        s.sendmail("a@sender.test", ["vera@localhost"], m)
    raw = t.wait_messages("vera", 1)[0]
    head, body = raw.split(b"\n\n", 1)
    assert body == body_of(m)
    assert b"X-Drop" not in head
    seen = head.split(b"X-Seen: ", 1)[1].split(b"\n", 1)[0].decode()
    fields = dict(kv.split("=") for kv in seen.split())
    # its whole size (header and body, LF line ends); of the body, what
    # was in memory (32 KiB or so) and the first MiB of the spool file
    assert fields["truncated"] == "true"
    assert 100 < int(fields["size"]) - len(body) < 1000
    assert MIB < int(fields["body"]) < MIB + 300000
    # and a small message: all of it
    small = big_text(20000, b"small")
    with smtplib.SMTP("127.0.0.1", t.port) as s:
        s.sendmail("a@sender.test", ["vera@localhost"], small)
    raw = [r for r in t.wait_messages("vera", 2) if b"small" in r][0]
    assert b"truncated=false" in raw


def test_cut_off_and_reset_transfers_leave_nothing(ternd):
    # DATA cut off after 1 MiB
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<vera@localhost>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(big_text(MIB, b"cut"))
    time.sleep(0.2)
    c.close()
    # BDAT of 1 MiB, then RSET: the session goes on, nothing is kept
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<vera@localhost>")[0] == 250
    m = big_text(MIB, b"reset")
    c.send(b"BDAT %d\r\n" % len(m) + m)
    assert c.reply()[0] == 250
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<vera@localhost>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: after\r\n\r\nsmall\r\n.\r\n")
    assert c.reply()[0] == 250
    c.cmd("QUIT")
    got = ternd.wait_messages("vera", 1)
    assert len(got) == 1 and b"Subject: after" in got[0]
    assert wait_tmp_empty(ternd) == []


def test_big_messages_relayed(make_ternd):
    """ternd A relays six 2 MiB messages to ternd B in a row (each read
    whole for the remote hop, at most four at a time): B has each whole;
    A's local copy of one of them (to a local recipient too) came from
    its queue file."""
    b = make_ternd(sub="b")
    a = make_ternd('domains = { "a.test" }\nrelayhost = "127.0.0.1:%d"\n'
                   % b.port, sub="a")
    sent = []
    with smtplib.SMTP("127.0.0.1", a.port) as s:
        for i in range(6):
            m = big_text(2 * MIB, b"relay%d" % i).replace(
                b"To: vera@localhost", b"To: rob@example.test")
            rcpts = ["rob@example.test"] + (["vera@a.test"] if i == 0
                                            else [])
            s.sendmail("a@sender.test", rcpts, m)
            sent.append(m)
    got = b.wait_messages("rob", 6, domain="example.test", timeout=60)
    assert len(got) == 6
    bodies = sorted(delivered_body(m) for m in got)
    assert bodies == sorted(body_of(m) for m in sent)
    local = a.wait_messages("vera", 1, domain="a.test")
    assert len(local) == 1 and delivered_body(local[0]) == body_of(sent[0])
    assert a.wait_queue_empty(timeout=30)


def test_a_big_message_bounced_with_its_header(make_ternd):
    """A big message a route plugin refuses: the report, asked for in
    full (RET=FULL), returns its header only; a small one whole."""
    from test_hooks import with_plugins
    t = with_plugins(make_ternd, ["router"], router="""
        return { route = function(rcpt)
          if rcpt:match("^gone@") then return "reject", "550 5.1.1 left" end
        end }
    """)
    big = big_text(2 * MIB, b"bounced")
    with smtplib.SMTP("127.0.0.1", t.port) as s:
        s.sendmail("sender@localhost", ["gone@localhost"], big,
                   mail_options=["RET=FULL"])
    bounce = t.wait_messages("sender", 1)
    assert len(bounce) == 1
    assert b"text/rfc822-headers" in bounce[0]
    assert b"<bounced@sender.test>" in bounce[0]
    assert len(bounce[0]) < 64 * 1024
    assert "returns the header only" in t.log()
    small = big_text(4000, b"smallbounce")
    with smtplib.SMTP("127.0.0.1", t.port) as s:
        s.sendmail("sender@localhost", ["gone@localhost"], small,
                   mail_options=["RET=FULL"])
    bounces = t.wait_messages("sender", 2)
    full = [m for m in bounces if b"smallbounce" in m][0]
    assert b"message/rfc822" in full and b"00000040 " in full
