# SPDX-License-Identifier: ISC
"""Pipelining, strict framing, smuggling, limits and timeouts."""
import email
import time

import pytest

from conftest import Raw


def group(rcpt):
    return b"MAIL FROM:<bob@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n" % rcpt


def test_100_messages_pipelined(ternd):
    """As much pipelining as RFC 2920 allows: each message's text, its end
    and the next MAIL/RCPT/DATA in one write; only the 354 is waited for."""
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    c.send(group(b"pipe@localhost"))
    codes = [c.reply()[0] for _ in range(3)]
    for i in range(100):
        body = b"Subject: p%d\r\n\r\nbody\r\n.\r\n" % i
        if i < 99:
            c.send(body + group(b"pipe@localhost"))
            codes += [c.reply()[0] for _ in range(4)]
        else:
            c.send(body + b"QUIT\r\n")
            codes += [c.reply()[0] for _ in range(2)]
    assert codes[-1] == 221
    per_txn = [codes[i:i + 4] for i in range(0, 400, 4)]
    assert all(t == [250, 250, 354, 250] for t in per_txn), per_txn[:3]
    msgs = ternd.wait_messages("pipe", 100, timeout=30)
    assert len(msgs) == 100
    subjects = {email.message_from_bytes(m)["Subject"] for m in msgs}
    assert subjects == {"p%d" % i for i in range(100)}


def test_size_limits(make_ternd):
    t = make_ternd("limits = { max_message_size = 10000 }")
    c = Raw(t.port)
    code, lines = c.cmd("EHLO client.test")
    assert "SIZE 10000" in [l[4:] for l in lines]
    code, lines = c.cmd("MAIL FROM:<bob@example.org> SIZE=20000")
    assert code == 552 and "5.3.4" in lines[0]
    assert c.cmd("MAIL FROM:<bob@example.org> SIZE=5000")[0] == 250
    c.cmd("RCPT TO:<big@localhost>")
    c.cmd("DATA")
    c.send((b"x" * 900 + b"\r\n") * 20 + b".\r\n")
    code, lines = c.reply()
    assert code == 552 and "5.3.4" in lines[0]
    assert c.cmd("NOOP")[0] == 250
    time.sleep(0.2)
    assert t.messages("big") == []


def test_too_many_recipients(make_ternd):
    t = make_ternd("limits = { max_recipients = 3 }")
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<bob@example.org>")
    for i in range(3):
        assert c.cmd("RCPT TO:<r%d@localhost>" % i)[0] == 250
    code, lines = c.cmd("RCPT TO:<r9@localhost>")
    assert code == 452 and "4.5.3" in lines[0]


def test_too_many_errors(make_ternd):
    t = make_ternd("limits = { max_errors = 3 }")
    c = Raw(t.port)
    for _ in range(4):
        assert c.cmd("BOGUS")[0] == 500
    code, lines = c.cmd("BOGUS")
    assert code == 421
    assert c.closed()


def test_connection_limits(make_ternd):
    # 127.0.0.0/8 but 127.0.0.1 is not trusted here: the per-address cap
    t = make_ternd("limits = { max_connections_per_ip = 2, "
                   "max_connections_per_trusted_ip = 3 }\n"
                   'trusted_networks = { "127.0.0.1/32" }')
    a, b = Raw(t.port, source="127.0.0.2"), Raw(t.port, source="127.0.0.2")
    c = Raw(t.port, source="127.0.0.2")
    assert c.greeting[0] == 421 and "too many" in c.greeting[1][0]
    assert c.closed()
    # another address is still welcome
    d = Raw(t.port, source="127.0.0.3")
    assert d.greeting[0] == 220
    a.cmd("QUIT")
    deadline = time.monotonic() + 10
    while "disconnect client=127.0.0.2" not in t.log():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert Raw(t.port, source="127.0.0.2").greeting[0] == 220
    # a trusted address has its own, higher cap
    trusted = [Raw(t.port) for _ in range(3)]
    assert all(r.greeting[0] == 220 for r in trusted)
    assert Raw(t.port).greeting[0] == 421


def test_global_connection_limit(make_ternd):
    t = make_ternd("limits = { max_connections = 2 }")
    a, b = Raw(t.port), Raw(t.port, source="127.0.0.5")
    c = Raw(t.port, source="127.0.0.6")
    assert c.greeting[0] == 421


def test_command_timeout(make_ternd):
    t = make_ternd("limits = { command_timeout = 1 }")
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    code, lines = c.reply()
    assert code == 421 and "4.4.2" in lines[0]
    assert c.closed()


def test_data_timeout(make_ternd):
    t = make_ternd("limits = { data_timeout = 1 }")
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<bob@example.org>")
    c.cmd("RCPT TO:<slow@localhost>")
    c.cmd("DATA")
    c.send(b"Subject: slow\r\n")
    code, lines = c.reply()
    assert code == 421 and "4.4.2" in lines[0]
    time.sleep(0.2)
    assert t.messages("slow") == []


def test_shutdown_says_421(ternd):
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    ternd.stop()
    code, lines = c.reply()
    assert code == 421 and "4.3.2" in lines[0]


def test_text_before_the_354_is_refused(ternd):
    """RFC 2920 3.1: DATA ends a pipelined group. A client that sends its
    message without waiting for the 354 is refused and disconnected, and
    nothing it sent after DATA is read as commands."""
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    c.send(b"MAIL FROM:<bob@example.org>\r\nRCPT TO:<early@localhost>\r\n"
           b"DATA\r\nSubject: too early\r\n\r\nx\r\n.\r\n"
           b"MAIL FROM:<bob@example.org>\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    code, lines = c.reply()
    assert code == 554 and "5.5.0" in lines[0], lines
    assert c.closed()
    assert "improper pipelining after DATA" in ternd.log()
    # a pipelined group that waits for the 354 is fine
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    c.send(b"MAIL FROM:<bob@example.org>\r\nRCPT TO:<early@localhost>\r\n"
           b"DATA\r\n")
    assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
    c.send(b"Subject: in time\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    c.cmd("QUIT")
    msgs = ternd.wait_messages("early", 1)
    assert len(msgs) == 1 and b"in time" in msgs[0]


def test_header_size_and_field_limits(make_ternd):
    t = make_ternd("limits = { max_header_size = 4096, max_header_fields = 20 }")
    c = Raw(t.port)
    c.cmd("EHLO client.test")

    def txn(header):
        c.cmd("MAIL FROM:<bob@example.org>")
        c.cmd("RCPT TO:<hl@localhost>")
        assert c.cmd("DATA")[0] == 354
        c.send(header + b"\r\nbody\r\n.\r\n")
        return c.reply()
    code, lines = txn(b"".join(b"X-F%d: v\r\n" % i for i in range(21)))
    assert code == 552 and lines[0] == "552 5.3.4 Message has too many header fields"
    code, lines = txn(b"Subject: " + b"word\r\n " * 1000 + b"end\r\n")
    assert code == 552 and "header section exceeds the size limit" in lines[0]
    # at the limits exactly: accepted (20 fields, folded lines part of one)
    code, lines = txn(b"".join(b"X-F%d: v\r\n\tmore\r\n" % i for i in range(20)))
    assert code == 250, lines
    c.cmd("QUIT")
    assert len(t.wait_messages("hl", 1)) == 1
    assert "errors=0x40" in t.log() and "errors=0x20" in t.log()


def test_lost_connection_is_logged_with_the_state(ternd):
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<bob@example.org>")
    c.cmd("RCPT TO:<gone@localhost>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: half\r\n\r\n12345")
    c.close()
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<bob@example.org>")
    c.close()
    deadline = time.monotonic() + 10
    while "lost connection after MAIL" not in ternd.log() and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    log = ternd.log()
    assert "lost connection after DATA (22 bytes)" in log, log[-1500:]
    assert "lost connection after MAIL" in log
