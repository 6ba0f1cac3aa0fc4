# SPDX-License-Identifier: ISC
"""TLS on the receiving side: STARTTLS (RFC 3207), implicit TLS (RFC 8314),
the self-signed certificate made at first start, reload of certificates."""
import email
import signal
import smtplib
import socket
import ssl
import time

from conftest import Raw, free_port
from peers import make_certs


def unverified():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_starttls_then_mail(ternd):
    with smtplib.SMTP("127.0.0.1", ternd.port, local_hostname="client.test") as s:
        s.ehlo()
        assert s.has_extn("starttls")
        assert s.starttls(context=unverified())[0] == 220
        s.ehlo()
        assert not s.has_extn("starttls")
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        s.sendmail("a@example.org", ["tina@localhost"], b"Subject: tls\r\n\r\nx\r\n")
    msg = ternd.wait_messages("tina", 1)[0]
    assert b"with ESMTPS id" in msg
    assert b"(using TLSv1." in msg
    key = ternd.data / "tls" / "key.pem"
    assert key.exists() and key.stat().st_mode & 0o077 == 0
    assert (ternd.data / "tls" / "cert.pem").exists()


def test_state_is_reset_after_starttls(ternd):
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    assert c.cmd("STARTTLS")[0] == 220
    c.sock = unverified().wrap_socket(c.sock, server_hostname="mx.test")
    # RFC 3207 4.2: no HELO, no transaction any more
    assert c.cmd("MAIL FROM:<a@example.org>")[1][0].startswith("503")
    assert c.cmd("EHLO client.test")[0] == 250
    assert c.cmd("STARTTLS")[0] == 503


def test_implicit_tls_port(make_ternd):
    port = free_port()
    t = make_ternd(start=False)
    t.config.write_text(t.config.read_text().replace(
        'role = "submission" },', 'role = "submission" },\n'
        '  { addr = "127.0.0.1:%d", role = "submissions" },' % port))
    t.write_config = lambda *a: None  # keep the edited file
    t.start()
    with smtplib.SMTP_SSL("127.0.0.1", port, local_hostname="client.test",
                          context=unverified()) as s:
        code, _ = s.ehlo()
        assert code == 250
        assert not s.has_extn("starttls")
    # a plain-text client gets no greeting there
    raw = socket.create_connection(("127.0.0.1", port), 2)
    raw.settimeout(1)
    try:
        data = raw.recv(100)
    except socket.timeout:
        data = b""
    assert not data.startswith(b"220")


def test_configured_certificate_and_reload(make_ternd, tmp_path):
    certs = tmp_path / "certs"
    make_certs(certs, ["mx10.test", "mx11.test"])
    t = make_ternd('tls = { cert = "%s/mx10.test.crt", key = "%s/mx10.test.key" }'
                   % (certs, certs))

    def peer_cn():
        with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
            ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
            ctx.check_hostname = False
            s.starttls(context=ctx)         # verified against the test CA
            cert = s.sock.getpeercert()
            return dict(x[0] for x in cert["subject"])["commonName"]
    assert peer_cn() == "mx10.test"
    # renewed certificate: ternctl reload / SIGHUP picks it up
    t.config.write_text(t.config.read_text().replace("mx10.test", "mx11.test"))
    t.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "generation 2" not in t.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert peer_cn() == "mx11.test"


def test_listener_without_tls(make_ternd):
    t = make_ternd()
    t.stop()
    cfg = t.config.read_text().replace('role = "mx" }', 'role = "mx", tls = "none" }')
    t.config.write_text(cfg)
    t.start()
    c = Raw(t.port)
    code, lines = c.cmd("EHLO client.test")
    assert "STARTTLS" not in [l[4:] for l in lines]
    assert c.cmd("STARTTLS")[1][0].startswith("454 4.7.0")


def test_sni_picks_the_certificate(make_ternd, tmp_path):
    """tls as a list: the name a client asks for (SNI) picks the
    certificate (exact names before *.domain ones); any other name, or
    none, gets the default (the entry without names). STARTTLS on port 25
    and implicit TLS alike."""
    certs = tmp_path / "certs"
    make_certs(certs, ["default.test", "mail.a.test", "star.b.test"])
    port = free_port()
    t = make_ternd(start=False)
    t.write_config(
        'tls = {\n'
        '  { names = { "mail.a.test", "Smtp.A.test" }, cert = "%(d)s/mail.a.'
        'test.crt", key = "%(d)s/mail.a.test.key" },\n'
        '  { cert = "%(d)s/default.test.crt", key = "%(d)s/default.test.key"'
        ' },\n'
        '  { names = { "*.b.test" }, cert = "%(d)s/star.b.test.crt", '
        'key = "%(d)s/star.b.test.key" },\n'
        '}\n' % {"d": certs})
    t.config.write_text(t.config.read_text().replace(
        'role = "submission" },', 'role = "submission" },\n'
        '  { addr = "127.0.0.1:%d", role = "submissions" },' % port))
    t.write_config = lambda *a: None
    t.start()
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    ctx.check_hostname = False

    def cn(cert):
        return dict(x[0] for x in cert["subject"])["commonName"]

    def implicit(name):
        with socket.create_connection(("127.0.0.1", port), 5) as raw:
            with ctx.wrap_socket(raw, server_hostname=name) as s:
                return cn(s.getpeercert())

    def starttls(name):
        with smtplib.SMTP("127.0.0.1", t.port,
                          local_hostname="client.test") as s:
            s.ehlo()
            s.putcmd("STARTTLS")
            assert s.getreply()[0] == 220
            sock = ctx.wrap_socket(s.sock, server_hostname=name)
            got = cn(sock.getpeercert())
            sock.close()
            return got

    assert implicit("mail.a.test") == "mail.a.test"
    assert implicit("SMTP.a.test") == "mail.a.test"
    assert implicit("x.b.test") == "star.b.test"
    assert implicit("b.test") == "default.test"        # * is one label
    assert implicit("y.x.b.test") == "default.test"
    assert implicit("other.test") == "default.test"
    assert starttls("mail.a.test") == "mail.a.test"
    assert starttls("other.test") == "default.test"
    # no SNI at all (an address): the default
    with socket.create_connection(("127.0.0.1", port), 5) as raw:
        with ctx.wrap_socket(raw) as s:
            assert cn(s.getpeercert()) == "default.test"
