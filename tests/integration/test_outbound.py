# SPDX-License-Identifier: ISC
"""Sending mail on: MX lookup against a real DNS server on loopback,
aiosmtpd peers as the recipients' servers, retries and bounces."""
import email
import email.policy
import smtplib
import time

import pytest

from conftest import TOP, Raw, free_port
from peers import Peer, Unbound, make_certs

RECORDS = [
    "mxorder.test. MX 10 mx1.test.",
    "mxorder.test. MX 20 mx2.test.",
    "mx1.test. A 127.0.0.2",
    "mx2.test. A 127.0.0.3",
    "aonly.test. A 127.0.0.3",
    "nullmx.test. MX 0 .",
    "reject.test. MX 10 mx4.test.",
    "mx4.test. A 127.0.0.4",
    "down.test. MX 10 mx5.test.",
    "mx5.test. A 127.0.0.5",
    "plain.test. MX 10 mx6.test.",
    "mx6.test. A 127.0.0.6",
    "many.test. MX 10 mx7.test.",
    "mx7.test. A 127.0.0.7",
    "small.test. MX 10 mx8.test.",
    "mx8.test. A 127.0.0.8",
    "never.test. MX 10 mx9.test.",
    "mx9.test. A 127.0.0.9",
    "tls.test. MX 10 mx10.test.",
    "mx10.test. A 127.0.0.10",
    "badname.test. MX 10 mx11.test.",
    "mx11.test. A 127.0.0.10",
    "notls.test. MX 10 mx12.test.",
    "mx12.test. A 127.0.0.12",
]

RETRY_PLUGIN = """
return {
  retry = function(m)
    if m.attempts >= (config.bounce_after or 1000) then return "bounce" end
    return config.delay or 1
  end,
}
"""


class World:
    def __init__(self, make_ternd, tmp_path, settings="", retry=None):
        self.dns = Unbound(tmp_path, RECORDS)
        self.port = free_port()
        self.peers = []
        self.t = make_ternd(start=False)
        pdir = self.t.dir / "plugins"
        pdir.mkdir(exist_ok=True)
        (pdir / "test_retry.lua").write_text(RETRY_PLUGIN)
        self.t.write_config(
            'resolver = "%s"\n'
            "smtp_client = { port = %d, connect_timeout = 2, idle_time = 1 }\n"
            'plugin_path = { "%s", "%s" }\n'
            'plugins = { "test_retry" }\n'
            "plugin_config = { test_retry = { %s } }\n%s\n"
            % (self.dns.address, self.port, pdir, TOP / "plugins",
               retry or "", settings))
        self.t.start()

    def peer(self, host, **kw):
        p = Peer(host, self.port, **kw)
        self.peers.append(p)
        return p

    def stop(self):
        for p in self.peers:
            p.stop()
        self.dns.stop()


@pytest.fixture
def world(make_ternd, tmp_path):
    worlds = []

    def make(settings="", retry=None):
        w = World(make_ternd, tmp_path, settings, retry)
        worlds.append(w)
        return w
    yield make
    for w in worlds:
        w.stop()


def send(t, rcpts, body=b"Subject: out\r\n\r\nhello\r\n", sender="sender@localhost"):
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        return s.sendmail(sender, rcpts, body)


def bounce_of(t, user="sender", n=1):
    msgs = t.wait_messages(user, n)
    assert len(msgs) >= n, "no bounce for %s" % user
    b = email.message_from_bytes(msgs[n - 1])
    assert b.get_content_type() == "multipart/report"
    status = [p for p in b.walk() if p.get_content_type() == "message/delivery-status"][0]
    return msgs[n - 1], status.get_payload()[1:]


def test_mx_order_and_fallback(world):
    w = world()
    mx2 = w.peer("127.0.0.3")
    send(w.t, ["u@mxorder.test"])              # mx1 (preferred) is down
    assert len(mx2.wait(1)) == 1
    assert mx2.messages[0][1] == ["u@mxorder.test"]
    # the idle connection is gone (idle_time = 1): it said QUIT
    deadline = time.monotonic() + 30
    while mx2.handler.quits < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mx2.handler.quits == 1
    mx1 = w.peer("127.0.0.2")
    send(w.t, ["v@mxorder.test"])
    assert len(mx1.wait(1)) == 1 and len(mx2.messages) == 1
    assert w.t.wait_queue_empty()
    assert "relay=mx1.test[127.0.0.2]" in w.t.log()


def test_a_only_domain_is_its_own_mx(world):
    w = world()
    p = w.peer("127.0.0.3")
    send(w.t, ["someone@aonly.test"])
    assert len(p.wait(1)) == 1


def test_null_mx_bounces_at_once(world):
    w = world()
    send(w.t, ["x@nullmx.test"])
    raw, blocks = bounce_of(w.t)
    assert blocks[0]["Status"] == "5.1.10"
    assert "556" in blocks[0]["Diagnostic-Code"]
    assert w.t.wait_queue_empty()


def test_unknown_domain_bounces(world):
    w = world()
    send(w.t, ["x@nosuchdomain.test"])
    raw, blocks = bounce_of(w.t)
    assert blocks[0]["Status"] == "5.1.2"


def test_remote_5xx_bounce_per_recipient(world):
    w = world()
    p = w.peer("127.0.0.4", reject_rcpt=("bad@",))
    send(w.t, ["good@reject.test", "bad@reject.test"],
         b"Subject: half\r\nMessage-ID: <half@localhost>\r\n\r\nx\r\n")
    assert len(p.wait(1)) == 1 and p.messages[0][1] == ["good@reject.test"]
    raw, blocks = bounce_of(w.t)
    assert len(blocks) == 1
    assert blocks[0]["Final-Recipient"] == "rfc822; bad@reject.test"
    assert blocks[0]["Action"] == "failed"
    assert blocks[0]["Status"] == "5.1.1"
    assert blocks[0]["Remote-MTA"] == "dns; mx4.test"
    assert "no such user here" in blocks[0]["Diagnostic-Code"]
    assert b"<half@localhost>" in raw
    assert w.t.wait_queue_empty()


def test_a_bounce_is_never_bounced(world):
    w = world()
    w.peer("127.0.0.4", reject_rcpt=("bad@",))
    send(w.t, ["bad@reject.test"], sender="")
    assert w.t.wait_queue_empty()
    time.sleep(0.3)
    assert "no bounce sent" in w.t.log()
    assert w.t.messages("sender") == []


def test_remote_down_is_retried_then_delivered(world):
    w = world(retry="delay = 1")
    send(w.t, ["r@down.test"])
    deadline = time.monotonic() + 10
    while w.t.log().count("status=deferred") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert w.t.log().count("status=deferred") >= 2
    assert len(w.t.queue_files()) == 2        # message + its state
    p = w.peer("127.0.0.5")
    assert len(p.wait(1)) == 1
    assert w.t.wait_queue_empty()


def test_give_up_bounces(world):
    w = world(retry="delay = 1, bounce_after = 2")
    send(w.t, ["gone@never.test"])
    raw, blocks = bounce_of(w.t)
    assert blocks[0]["Final-Recipient"] == "rfc822; gone@never.test"
    assert blocks[0]["Action"] == "failed"
    assert blocks[0]["Status"].startswith("5.")
    assert w.t.wait_queue_empty()


def test_twenty_messages_one_connection(world):
    w = world()
    # one connection per destination, kept while messages keep coming
    w.t.stop()
    cfg = w.t.config.read_text().replace(
        "idle_time = 1 }", "idle_time = 5, max_per_destination = 1 }")
    w.t.config.write_text(cfg)
    w.t.start()
    p = w.peer("127.0.0.7")
    with smtplib.SMTP("127.0.0.1", w.t.port, local_hostname="client.test") as s:
        for i in range(20):
            s.sendmail("sender@localhost", ["n%d@many.test" % i],
                       b"Subject: m%d\r\n\r\nx\r\n" % i)
    assert len(p.wait(20)) == 20
    assert p.handler.ehlos == 1


def test_8bit_to_a_peer_without_8bitmime(world):
    w = world()
    p = w.peer("127.0.0.6", eightbit=False)
    text = "Grüße aus Köln — ünïcödé, 東京\n"
    single = ("From: a@localhost\r\nTo: b@plain.test\r\nSubject: 8bit\r\n"
              "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Transfer-Encoding: 8bit\r\n\r\n" + text.replace("\n", "\r\n")
              ).encode()
    multi = ("From: a@localhost\r\nTo: b@plain.test\r\nSubject: alt\r\n"
             "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"XX\"\r\n"
             "\r\npreamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: 8bit\r\n\r\n" + text.replace("\n", "\r\n") +
             "--XX\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<p>hi</p>\r\n"
             "--XX--\r\n").encode()
    for body in (single, multi):
        c = Raw(w.t.port)
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<a@localhost> BODY=8BITMIME")[0] == 250
        c.cmd("RCPT TO:<b@plain.test>")
        c.cmd("DATA")
        c.send(body + b".\r\n")
        assert c.reply()[0] == 250
        c.cmd("QUIT")
    got = p.wait(2)
    assert len(got) == 2
    for _, _, data in got:
        assert all(b < 128 for b in data), "not 7-bit clean"
    def parse(raw):  # the peer keeps the wire's CRLF line ends
        return email.message_from_bytes(raw.replace(b"\r\n", b"\n"),
                                        policy=email.policy.default)
    m1 = parse(got[0][2])
    assert m1["Content-Transfer-Encoding"] == "quoted-printable"
    # aiosmtpd drops the data's final line break
    assert m1.get_content().rstrip("\n") == text.rstrip("\n")
    m2 = parse(got[1][2])
    parts = list(m2.iter_parts())
    assert parts[0]["Content-Transfer-Encoding"] == "quoted-printable"
    assert parts[0].get_content().rstrip("\n") == text.rstrip("\n")  # CRLF before a boundary belongs to it
    assert parts[1].get_content().strip() == "<p>hi</p>"


def test_8bit_header_cannot_be_converted_and_bounces(world):
    w = world()
    w.peer("127.0.0.6", eightbit=False)
    c = Raw(w.t.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<sender@localhost> BODY=8BITMIME")
    c.cmd("RCPT TO:<b@plain.test>")
    c.cmd("DATA")
    c.send("Subject: Grüße\r\n\r\nbody\r\n.\r\n".encode())
    assert c.reply()[0] == 250
    raw, blocks = bounce_of(w.t)
    assert blocks[0]["Status"] == "5.6.3"
    # Tern refused it, not the next hop: no Remote-MTA (RFC 3464 2.3.5)
    assert blocks[0]["Remote-MTA"] is None


def test_remote_size_limit(world):
    w = world()
    w.peer("127.0.0.8", size=1000)
    send(w.t, ["big@small.test"], b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 40)
    raw, blocks = bounce_of(w.t)
    assert blocks[0]["Remote-MTA"] is None      # Tern's own SIZE check
    assert blocks[0]["Status"] == "5.3.4"


def test_restart_in_the_middle_of_a_retry_schedule(world):
    w = world(retry="delay = 3")
    send(w.t, ["later@down.test"])
    deadline = time.monotonic() + 10
    while "status=deferred" not in w.t.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    w.t.stop()
    state = [f for f in w.t.queue_files() if f.endswith(".state")]
    assert state, w.t.queue_files()
    text = (w.t.data / "spool" / "queue" / state[0]).read_text()
    assert "attempts: 1" in text
    p = w.peer("127.0.0.5")
    w.t.start()
    assert len(p.wait(1, timeout=20)) == 1
    assert w.t.wait_queue_empty()


def test_route_relay_to_a_second_ternd(make_ternd, tmp_path):
    """Issue 3: a route hook sends a domain to another ternd."""
    b = make_ternd(sub="b")
    b.stop()
    b.write_config(b.settings + 'domains = { "b.test" }\n')
    b.config.write_text(b.config.read_text().replace(
        'domains = { "localhost", "mx.test", "example.test" }\n', ""))
    b.start()
    a = make_ternd(start=False, sub="a2")
    pdir = a.dir / "plugins"
    pdir.mkdir()
    (pdir / "to_b.lua").write_text(
        'return { route = function(rcpt, m)\n'
        '  if m.domain == "b.test" then return { relay = "127.0.0.1:%d" } end\n'
        'end }\n' % b.port)
    a.write_config('plugin_path = { "%s" }\nplugins = { "to_b" }\n'
                   'resolver = "127.0.0.1:1"\n' % pdir)
    a.start()
    send(a, ["carl@b.test"], b"Subject: via route\r\n\r\nhi\r\n", sender="x@localhost")
    got = b.wait_messages("carl", 1, domain="b.test")
    assert len(got) == 1 and b"Subject: via route" in got[0]
    # two Received fields: one per hop
    assert got[0].count(b"Received: from") == 2
    assert a.wait_queue_empty()


def test_delay_warning_once(world):
    w = world(settings="delay_warning = 2", retry="delay = 1")
    send(w.t, ["slow@down.test"], b"Subject: slow one\r\n\r\nx\r\n")
    raw, blocks = bounce_of(w.t)
    assert blocks[0]["Action"] == "delayed"
    assert blocks[0]["Status"].startswith("4.")
    assert b"Subject: Delayed Mail" in raw
    time.sleep(3)                               # more failed attempts
    assert len(w.t.messages("sender")) == 1     # warned once
    p = w.peer("127.0.0.5")
    assert len(p.wait(1)) == 1                  # and delivered in the end
    assert w.t.wait_queue_empty()


def test_starttls_opportunistic(world, tmp_path):
    make_certs(tmp_path / "certs", ["mx10.test"])
    w = world()            # default "may": encrypt, do not verify
    p = w.peer("127.0.0.10", cert=tmp_path / "certs" / "mx10.test")
    send(w.t, ["a@tls.test"])
    assert len(p.wait(1)) == 1
    assert p.handler.tls == [True]
    assert "smtp client: TLS to mx10.test[127.0.0.10]" in w.t.log()


def test_starttls_verify(world, tmp_path):
    ca = make_certs(tmp_path / "certs", ["mx10.test"])
    w = world(settings='smtp_client = { tls = "verify", ca_file = "%s" }' % ca)
    # (the world's own smtp_client line sets port and timeouts; merge)
    w.t.stop()
    cfg = w.t.config.read_text()
    cfg = cfg.replace('smtp_client = { tls = "verify", ca_file = "%s" }' % ca, "")
    cfg = cfg.replace("idle_time = 1 }",
                      'idle_time = 1, tls = "verify", ca_file = "%s" }' % ca)
    w.t.config.write_text(cfg)
    w.t.start()
    p = w.peer("127.0.0.10", cert=tmp_path / "certs" / "mx10.test")
    send(w.t, ["good@tls.test"])
    assert len(p.wait(1)) == 1 and p.handler.tls == [True]
    assert "(verified PKIX)" in w.t.log()
    # the same server under another name: the certificate does not match
    send(w.t, ["x@badname.test"])
    deadline = time.monotonic() + 10
    while "status=deferred" not in w.t.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = w.t.log()
    assert "x@badname.test" in log and "status=deferred" in log
    assert "certificate" in log or "TLS handshake failed" in log
    assert len(p.messages) == 1
    # a server that offers no STARTTLS gets nothing in plain text
    plain = w.peer("127.0.0.12")
    send(w.t, ["y@notls.test"])
    deadline = time.monotonic() + 10
    while "TLS is required" not in w.t.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "STARTTLS not offered; TLS is required" in w.t.log()
    assert plain.messages == []
