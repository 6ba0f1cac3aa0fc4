# SPDX-License-Identifier: ISC
"""REQUIRETLS (RFC 8689): offered only inside TLS, MAIL FROM's parameter
refused on a plain session; a message that carries it is kept in the
queue file and goes on only to a next hop whose certificate verifies and
that offers REQUIRETLS itself (here a second ternd behind the test CA),
with the parameter again; to a hop that cannot keep it, and to an MX
found without DNSSEC, it bounces 5.7.30 instead of being downgraded."""
import smtplib
import ssl
import time

import pytest

from conftest import Raw
from peers import Unbound, make_certs
from test_outbound import bounce_of


def unverified():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


MSG = (b"From: a@localhost\r\nTo: u@far.test\r\nSubject: secret\r\n\r\n"
       b"only over TLS\r\n")


def submit(t, rcpt, options=("REQUIRETLS",)):
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        s.starttls(context=unverified())
        s.ehlo("client.test")
        assert s.has_extn("requiretls")
        s.sendmail("sender@localhost", [rcpt], MSG,
                   mail_options=list(options))


def test_offered_only_inside_tls(make_ternd):
    t = make_ternd()
    c = Raw(t.port)
    code, lines = c.cmd("EHLO client.test")
    assert not any("REQUIRETLS" in l for l in lines)
    code, lines = c.cmd("MAIL FROM:<a@localhost> REQUIRETLS")
    assert code == 530 and "5.7.10" in lines[0]
    c.cmd("QUIT")


@pytest.fixture
def relay(make_ternd, tmp_path):
    """near relays all remote mail to far.test (a ternd with a
    certificate from the test CA, which near trusts)."""
    certs = tmp_path / "certs"
    ca = make_certs(certs, ["far.test"])
    far = make_ternd(start=False, sub="far")
    far.write_config('domains = { "far.test" }\ntls = { cert = "%s/far.test'
                     '.crt", key = "%s/far.test.key" }\n' % (certs, certs))
    far.start()
    dns = Unbound(tmp_path, ["far.test. A 127.0.0.1",
                             "other.test. MX 10 far.test."])

    def near(sub="near", ca_file=ca):
        t = make_ternd(start=False, sub=sub)
        t.write_config('resolver = "%s"\nrelayhost = "far.test:%d"\n'
                       'smtp_client = { ca_file = "%s" }\n'
                       % (dns.address, far.port, ca_file))
        t.start()
        return t
    yield near, far
    dns.stop()


def test_requiretls_mail_goes_only_over_verified_tls(relay):
    make_near, far = relay
    near = make_near()
    submit(near, "u@far.test")
    raw = far.wait_messages("u", 1, domain="far.test")[0]
    assert b"only over TLS" in raw
    assert "requiretls" in far.log()        # far got the parameter too
    assert "from=<sender@localhost>" in far.log()
    # near kept it in the queue file while it was there
    assert "requiretls" in near.log()


def test_an_unverified_hop_never_gets_it(relay):
    """far's certificate is not from a CA near trusts: the message waits
    (a temporary failure, as tls = "verify" does), never goes plain."""
    make_near, far = relay
    near = make_near("near2", "/etc/ssl/certs/ca-certificates.crt")
    submit(near, "u@far.test")
    deadline = time.monotonic() + 20
    while "status=deferred" not in near.log():
        assert time.monotonic() < deadline, near.log()
        time.sleep(0.05)
    assert far.wait_messages("u", 0, domain="far.test") == []


def test_a_hop_without_requiretls_is_a_bounce(make_ternd, tmp_path):
    """The next hop (aiosmtpd) verifies but does not offer REQUIRETLS:
    5.7.30, and it never sees the message."""
    from conftest import free_port
    from peers import Peer
    certs = tmp_path / "certs"
    ca = make_certs(certs, ["far.test"])
    port = free_port()
    peer = Peer("127.0.0.2", port, cert=certs / "far.test")
    dns = Unbound(tmp_path, ["far.test. A 127.0.0.2"])
    try:
        near = make_ternd(start=False)
        near.write_config('resolver = "%s"\nrelayhost = "far.test:%d"\n'
                          'smtp_client = { ca_file = "%s" }\n'
                          % (dns.address, port, ca))
        near.start()
        submit(near, "u@far.test")
        raw, blocks = bounce_of(near)
        assert blocks[0]["Status"] == "5.7.30"
        assert b"does not offer it" in raw
        assert peer.messages == []
        assert peer.handler.tls == [] and peer.handler.ehlos >= 1
    finally:
        peer.stop()
        dns.stop()


def test_requiretls_to_an_mx_bounces(make_ternd, tmp_path):
    dns = Unbound(tmp_path, ["other.test. MX 10 mx.other.test.",
                             "mx.other.test. A 127.0.0.2"])
    try:
        t = make_ternd(start=False)
        t.write_config('resolver = "%s"\n' % dns.address)
        t.start()
        submit(t, "u@other.test")
        raw, blocks = bounce_of(t)
        assert blocks[0]["Status"] == "5.7.30"
        assert b"REQUIRETLS support required" in raw
        # the report has the header section, never the body (RFC 8689 5)
        assert b"Subject: secret" in raw and b"only over TLS" not in raw
    finally:
        dns.stop()
