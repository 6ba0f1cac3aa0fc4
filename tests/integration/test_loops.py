# SPDX-License-Identifier: ISC
"""Mail loops (RFC 5321 5.1, 6.3): a message with more Received: fields
than limits.max_hops is refused 554 5.4.6; a domain whose best MX is
ternd itself (its own listening address and port) bounces 5.4.6 instead
of being sent to ourselves, and MX hosts after one that is ourselves are
not tried."""
import smtplib
import time

import pytest

from conftest import Raw
from peers import Unbound
from test_outbound import bounce_of, send


def hops(n):
    return b"".join(b"Received: from h%d.test by h%d.test; Thu, 3 Dec 2026 "
                    b"10:00:00 +0000\r\n" % (i, i + 1) for i in range(n))


def test_too_many_hops_is_a_loop(make_ternd):
    t = make_ternd("limits = { max_hops = 10 }")
    body = b"From: a@x.test\r\nTo: vera@localhost\r\nSubject: loop\r\n\r\nx\r\n"
    # ours makes 10: still fine
    with smtplib.SMTP("127.0.0.1", t.port) as s:
        s.sendmail("a@x.test", ["vera@localhost"], hops(9) + body)
    assert len(t.wait_messages("vera", 1)) == 1
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<a@x.test>")
    c.cmd("RCPT TO:<vera@localhost>")
    assert c.cmd("DATA")[0] == 354
    c.send(hops(10) + body + b".\r\n")
    code, lines = c.reply()
    assert code == 554 and "5.4.6" in lines[0], lines
    assert "11 Received:" in lines[0]
    # the session goes on
    assert c.cmd("RSET")[0] == 250
    assert "message refused client=127.0.0.1: 11 Received: fields" in t.log()


@pytest.fixture
def self_mx(make_ternd, tmp_path):
    """loop.test's MX is ternd itself; backup.test's best MX is a host
    that does not answer, its second ternd."""
    t = make_ternd(start=False)
    dns = Unbound(tmp_path, [
        "loop.test. MX 10 mx.loop.test.",
        "mx.loop.test. A 127.0.0.1",
        "backup.test. MX 10 down.backup.test.",
        "backup.test. MX 20 mx.loop.test.",
        "down.backup.test. A 127.0.0.9",
    ])
    t.write_config('resolver = "%s"\nsmtp_client = { port = %d, '
                   "connect_timeout = 2 }\n" % (dns.address, t.port))
    t.start()
    yield t
    dns.stop()


def test_an_mx_that_is_ourselves_bounces(self_mx):
    t = self_mx
    send(t, ["u@loop.test"])
    raw, blocks = bounce_of(t)
    assert blocks[0]["Status"] == "5.4.6"
    assert b"loops back to myself" in raw
    assert "mail for loop.test loops back to myself (mx.loop.test)" in t.log()
    # nothing was sent to ourselves: two sessions only, the start-up
    # probe's and the client's
    assert t.log().count(": connect client=") == 2


def test_mx_hosts_after_ourselves_are_not_tried(self_mx):
    t = self_mx
    send(t, ["u@backup.test"])
    deadline = time.monotonic() + 20
    while "status=deferred" not in t.log():
        assert time.monotonic() < deadline, t.log()
        time.sleep(0.05)
    assert "the remaining MX hosts are ourselves" in t.log()
    assert t.log().count(": connect client=") == 2
