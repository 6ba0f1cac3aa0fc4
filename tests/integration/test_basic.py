# SPDX-License-Identifier: ISC
"""The mail path end to end: SMTP in, queue, Maildir out."""
import email
import smtplib
import subprocess
import time

from conftest import Raw

MSG = (b"From: Bob <bob@example.org>\r\n"
       b"To: Alice <alice@localhost>\r\n"
       b"Subject: first message\r\n"
       b"Message-ID: <1@example.org>\r\n"
       b"\r\n"
       b"Hello Alice,\r\n"
       b".leading dot line\r\n"
       b"\r\n"
       b"Bye.\r\n")


def split_trace(raw):
    """Returns (trace header lines, the rest) of a delivered file."""
    lines = raw.split(b"\n")
    assert lines[0] == b"Return-Path: <bob@example.org>"
    assert lines[1].startswith(b"Delivered-To: ")
    assert lines[2].startswith(b"Received: from client.test (unknown [127.0.0.1])")
    i = 3
    while lines[i].startswith(b"\t"):
        i += 1
    # our Authentication-Results (RFC 8601), below our Received:
    assert lines[i] == b"Authentication-Results: mx.test;", lines[i]
    i += 1
    while lines[i].startswith(b"\t"):
        i += 1
    return lines[:i], b"\n".join(lines[i:])


def test_plain_message_lands_byte_for_byte(ternd):
    with smtplib.SMTP("127.0.0.1", ternd.port, local_hostname="client.test") as s:
        s.sendmail("bob@example.org", ["alice@localhost"], MSG)
    msgs = ternd.wait_messages("alice", 1)
    assert len(msgs) == 1
    trace, rest = split_trace(msgs[0])
    assert trace[1] == b"Delivered-To: alice@localhost"
    # smtplib dot-stuffs; the server unstuffs; Maildir stores LF line ends
    assert rest == MSG.replace(b"\r\n", b"\n")
    assert b"by mx.test (Tern) with ESMTP id " in b"\n".join(trace)
    assert b"for <alice@localhost>;" in b"\n".join(trace)
    parsed = email.message_from_bytes(msgs[0])
    assert parsed["Subject"] == "first message"
    assert ternd.wait_queue_empty()


def test_greeting_and_ehlo(ternd):
    c = Raw(ternd.port)
    code, lines = c.greeting
    assert code == 220 and "mx.test" in lines[0] and "ESMTP" in lines[0]
    code, lines = c.cmd("EHLO client.test")
    assert code == 250
    exts = [l[4:] for l in lines[1:]]
    assert "PIPELINING" in exts and "8BITMIME" in exts
    assert "ENHANCEDSTATUSCODES" in exts
    assert any(e.startswith("SIZE ") for e in exts)
    assert c.cmd("HELO client.test")[0] == 250
    assert c.cmd("NOOP")[0] == 250
    code, lines = c.cmd("VRFY alice")
    assert code == 252
    assert c.cmd("HELP")[0] == 214
    assert c.cmd("EXPN staff")[0] == 502
    code, lines = c.cmd("QUIT")
    assert code == 221
    assert c.closed()


def test_several_messages_one_connection(ternd):
    with smtplib.SMTP("127.0.0.1", ternd.port, local_hostname="client.test") as s:
        for i in range(5):
            s.sendmail("bob@example.org", ["carol@localhost"],
                       b"Subject: n%d\r\n\r\nbody %d\r\n" % (i, i))
    msgs = ternd.wait_messages("carol", 5)
    subjects = sorted(email.message_from_bytes(m)["Subject"] for m in msgs)
    assert subjects == ["n0", "n1", "n2", "n3", "n4"]


def test_multiple_recipients(ternd):
    with smtplib.SMTP("127.0.0.1", ternd.port, local_hostname="client.test") as s:
        refused = s.sendmail("bob@example.org",
                             ["dave@localhost", "erin@example.test",
                              "Frank+lists@localhost", "dave@localhost"],
                             b"Subject: to many\r\n\r\nhi\r\n")
        assert refused == {}
    d = ternd.wait_messages("dave", 1)
    e = ternd.wait_messages("erin", 1, domain="example.test")
    f = ternd.wait_messages("frank", 1)  # user+tag -> user, lower case
    assert len(d) == 1 and len(e) == 1 and len(f) == 1
    # one file linked into the three Maildirs: no Delivered-To can name
    # each recipient (test_fast_path.py has the per-copy setting)
    assert d[0] == e[0] == f[0] and b"Delivered-To:" not in d[0]
    # one Received for several recipients: no "for" clause
    assert b"\tfor <" not in d[0]
    assert ternd.wait_queue_empty()
    # the duplicate recipient got one copy
    assert len(ternd.messages("dave")) == 1


def test_null_sender_and_postmaster(ternd):
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<>")[0] == 250
    assert c.cmd("RCPT TO:<Postmaster>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: bounce\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    msgs = ternd.wait_messages("postmaster", 1, domain="mx.test")
    assert msgs and msgs[0].startswith(b"Return-Path: <>\n")


def test_commands_out_of_order_and_unknown(ternd):
    c = Raw(ternd.port)
    assert c.cmd("MAIL FROM:<a@b.example>")[1][0].startswith("503 5.5.1")
    c.cmd("EHLO client.test")
    assert c.cmd("RCPT TO:<alice@localhost>")[1][0].startswith("503 5.5.1")
    assert c.cmd("DATA")[1][0].startswith("503 5.5.1")
    assert c.cmd("FROB")[1][0].startswith("500 5.5.1")
    assert c.cmd("MAIL FROM:<a@b.example>")[0] == 250
    assert c.cmd("MAIL FROM:<a@b.example>")[1][0].startswith("503 5.5.1")
    assert c.cmd("DATA")[1][0].startswith("503 5.5.1")
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("MAIL FROM:a@b.example")[1][0].startswith("501 5.5.4")
    assert c.cmd("MAIL FROM:<a@@b>")[1][0].startswith("501 5.1.7")
    assert c.cmd("MAIL FROM:<a@b.example> FOO=1")[1][0].startswith("555 5.5.4")
    assert c.cmd("MAIL FROM:<a@b.example> BODY=8BITMIME")[0] == 250
    assert c.cmd("RCPT TO:<x@@y>")[1][0].startswith("501 5.1.3")
    assert c.cmd("RCPT TO:<../../etc/passwd@localhost>")[0] == 501
    assert c.cmd("RCPT TO:<a/b@localhost>")[1][0].startswith("553 5.1.3")
    assert c.cmd("RCPT TO:<\"a b\"@localhost>")[1][0].startswith("553 5.1.3")
    # every RCPT failed: a pipelined DATA gets 554 (RFC 2920)
    assert c.cmd("DATA")[1][0].startswith("554 5.5.1")
    c.send(b"BDAT 3 LAST\r\nabc")           # read, then refused too
    assert c.reply()[1][0].startswith("554 5.5.1")
    c.cmd("QUIT")


def test_loopback_may_queue_remote_mail(make_ternd):
    # a resolver on a closed loopback port: every lookup fails for now
    # (no SPF or DKIM lookups, which would wait for it too)
    ternd = make_ternd('resolver = "127.0.0.1:1"\ninbound_auth = false')
    with smtplib.SMTP("127.0.0.1", ternd.port, local_hostname="client.test") as s:
        s.sendmail("bob@example.org", ["someone@remote.example", "gina@localhost"],
                   b"Subject: mixed\r\n\r\nhi\r\n")
    assert len(ternd.wait_messages("gina", 1)) == 1
    # the remote recipient stays queued (its DNS fails for now: the test
    # resolver is a closed loopback port), with its state recorded
    deadline = time.monotonic() + 20
    files = []
    while time.monotonic() < deadline:
        files = ternd.queue_files()
        if len(files) == 2:
            break
        time.sleep(0.1)
    assert len(files) == 2 and files[1].endswith(".state")
    state = (ternd.data / "spool" / "queue" / files[1]).read_text()
    assert "rcpt-done: 1" in state and "attempts: 1" in state
    assert "status=deferred" in ternd.log()


def test_swaks_as_a_second_client(ternd):
    out = subprocess.run(
        ["swaks", "--server", "127.0.0.1:%d" % ternd.port, "--helo", "client.test",
         "--from", "bob@example.org", "--to", "ivan@localhost",
         "--header", "Subject: via swaks", "--body", "swaks body"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "250 2.0.0 Ok: queued as" in out.stdout
    msgs = ternd.wait_messages("ivan", 1)
    assert b"Subject: via swaks" in msgs[0] and b"swaks body" in msgs[0]
