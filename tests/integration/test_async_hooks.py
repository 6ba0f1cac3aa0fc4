# SPDX-License-Identifier: ISC
"""Lua hooks that wait: tern.dns.lookup, tern.dnsbl and tern.http.request
run on the event loop while the plugin's coroutine is suspended; the
session waits (its client sees nothing), other sessions go on. The
shipped dnsbl, spf_policy and rspamd plugins use them; rspamd is Debian's
own, started here on loopback with a config this test writes."""
import http.server
import json
import re
import signal
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from conftest import Raw, free_port
from peers import Unbound
from test_dkim import HeldDNS
from test_hooks import plugins

MSG = (b"From: a@sender.test\r\nTo: vera@localhost\r\nSubject: %s\r\n\r\n"
       b"%s\r\n")

# Ten lines: refuse clients a DNS blocklist lists, by its answer.
TEN_LINE_DNSBL = """
return {
  rcpt = function(tx, addr)
    local listed, codes = tern.dnsbl(tx.session.ip, config.zone)
    if listed == nil then return "tempfail" end
    if listed then
      return "reject", "554 5.7.1 Listed by " .. config.zone .. " (" .. codes[1] .. ")"
    end
  end,
}
"""


def world(make_ternd, settings, sub="a", **files):
    t = make_ternd(start=False, sub=sub)
    t.write_config(plugins(t, **files) + settings)
    t.start()
    return t


def held_world(make_ternd, dns, wait_ms, plugin):
    """ternd asking the held DNS server, with the plugin "bl" on
    slow.test."""
    return world(make_ternd, 'resolver = "127.0.0.1:%d"\ndns_timeout = 60\n'
                 'hook_wait_ms = %d\nplugins = { "bl" }\n'
                 'plugin_config = { bl = { zone = "slow.test" } }\n'
                 % (dns.port, wait_ms), bl=plugin)


def start_waiting_rcpt(t, dns):
    """A client whose RCPT's blocklist lookup is held."""
    c = Raw(t.port, timeout=60)
    assert c.cmd("EHLO client.test")[0] == 250
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    c.send(b"RCPT TO:<vera@localhost>\r\n")
    assert dns.seen.wait(60), "the plugin asked nothing"
    return c


def send(t, subject=b"hello", rcpt="vera@localhost"):
    with smtplib.SMTP("127.0.0.1", t.port, timeout=30) as c:
        c.sendmail("a@sender.test", [rcpt], MSG % (subject, b"body"))


def test_a_blocklist_lookup_waits_without_holding_other_sessions(make_ternd):
    # held: the question for 127.0.0.1 (1.0.0.127.slow.test); the one for
    # 127.0.0.2 is answered at once
    dns = HeldDNS(hold=b"\x011\x010\x010\x03127\x04slow")
    try:
        t = held_world(make_ternd, dns, 60000, TEN_LINE_DNSBL)
        a = start_waiting_rcpt(t, dns)
        # while its lookup waits, another client's transaction is done
        # from start to end on the same ternd
        b = Raw(t.port, source="127.0.0.2", timeout=30)
        for line in ("EHLO other.test", "MAIL FROM:<b@sender.test>",
                     "RCPT TO:<vera@localhost>"):
            assert b.cmd(line)[0] == 250, line
        assert b.cmd("DATA")[0] == 354
        b.send(MSG % (b"fast", b"not held") + b".\r\n")
        assert b.reply()[0] == 250
        b.cmd("QUIT")
        fast = t.wait_messages("vera", 1)
        assert len(fast) == 1 and b"Subject: fast" in fast[0]
        # and the first client has still had no answer
        a.sock.settimeout(0.05)
        with pytest.raises(OSError):
            a.sock.recv(1)
        a.sock.settimeout(60)
        dns.release()
        assert a.reply()[0] == 250   # NXDOMAIN: not listed
        assert a.cmd("DATA")[0] == 354
        a.send(MSG % (b"slow", b"waited") + b".\r\n")
        assert a.reply()[0] == 250
        a.cmd("QUIT")
        assert len(t.wait_messages("vera", 2)) == 2
    finally:
        dns.stop()


LOOKUPS = """
return { data = function(tx, msg)
  for _, q in ipairs({ { "host.zone.test", "A" }, { "host.zone.test", "AAAA" },
                       { "zone.test", "MX" }, { "zone.test", "TXT" },
                       { "9.8.7.6.in-addr.arpa", "PTR" },
                       { "nothing.zone.test", "A" }, { "zone.test", "AAAA" } }) do
    local r, st = tern.dns.lookup(q[1], q[2])
    msg:add_header("X-Lookup", q[1] .. " " .. q[2] .. " " .. st .. " " ..
      table.concat(r or {}, ","))
  end
end }
"""

ZONE = [
    "host.zone.test. A 127.0.0.9",
    "host.zone.test. AAAA ::9",
    "zone.test. MX 10 mx1.zone.test.",
    'zone.test. TXT "hello world"',
    "9.8.7.6.in-addr.arpa. PTR client.zone.test.",
    "2.0.0.127.bl.test. A 127.0.0.2",
    "2.0.0.127.bl.test. TXT \"listed for testing\"",
    "2.0.0.127.other.test. A 127.0.0.10",
    "2.0.0.127.refusing.test. A 127.255.255.254",
]


@pytest.fixture
def dns(tmp_path):
    u = Unbound(tmp_path, ZONE + ['local-zone: "7.6.in-addr.arpa." static'])
    yield u
    u.stop()


def headers_of(raw, name):
    import email
    return email.message_from_bytes(raw).get_all(name, [])


def test_lookups_of_each_type_answer_in_the_hook(make_ternd, dns):
    t = world(make_ternd, 'resolver = "%s"\nplugins = { "look" }\n'
              % dns.address, look=LOOKUPS)
    send(t)
    got = headers_of(t.wait_messages("vera", 1)[0], "X-Lookup")
    # add_header puts each at the top: the last asked comes first
    assert list(reversed(got)) == [
        "host.zone.test A ok 127.0.0.9",
        "host.zone.test AAAA ok ::9",
        "zone.test MX ok 10 mx1.zone.test",
        "zone.test TXT ok hello world",
        "9.8.7.6.in-addr.arpa PTR ok client.zone.test",
        "nothing.zone.test A nxdomain ",
        "zone.test AAAA nodata ",
    ], got


def test_the_shipped_dnsbl_plugin_refuses_a_listed_client(make_ternd, dns):
    t = world(make_ternd, 'resolver = "%s"\nplugins = { "dnsbl" }\n'
              'plugin_config = { dnsbl = { zones = { "bl.test", '
              '{ zone = "other.test", weight = 5, codes = { "127.0.0.11" } },'
              ' "refusing.test" } } }\n' % dns.address)
    # 127.0.0.1 is on no list
    send(t, b"clean")
    assert len(t.wait_messages("vera", 1)) == 1
    # 127.0.0.2 is on bl.test; other.test lists it with a code that does
    # not count; refusing.test answers "refused" (logged, ignored)
    c = Raw(t.port, source="127.0.0.2")
    assert c.cmd("EHLO listed.test")[0] == 250
    assert c.cmd("MAIL FROM:<b@sender.test>")[0] == 250
    code, text = c.cmd("RCPT TO:<vera@localhost>")
    text = " ".join(text)
    assert code == 554 and "5.7.1" in text and "bl.test" in text, text
    assert "other.test" not in text
    # postmaster may still be written to
    assert c.cmd("RCPT TO:<postmaster@localhost>")[0] == 250
    c.cmd("QUIT")
    log = t.log()
    assert "listed by bl.test score=1" in log
    assert "refusing.test: the list refused the query (127.255.255.254)" in log


def test_score_mode_marks_the_message(make_ternd, dns):
    t = world(make_ternd, 'resolver = "%s"\nplugins = { "dnsbl" }\n'
              'plugin_config = { dnsbl = { zones = { "bl.test" }, '
              'action = "score" } }\n' % dns.address)
    with smtplib.SMTP("127.0.0.1", t.port, source_address=("127.0.0.2", 0),
                      timeout=30) as c:
        c.sendmail("a@sender.test", ["vera@localhost"], MSG % (b"s", b"b"))
    raw = t.wait_messages("vera", 1)[0]
    assert headers_of(raw, "X-Tern-DNSBL") == ["score=1 listed=bl.test"]


def test_waiting_too_long_is_a_451_and_the_session_goes_on(make_ternd):
    dns = HeldDNS()
    try:
        t = held_world(make_ternd, dns, 300, TEN_LINE_DNSBL)
        c = Raw(t.port, timeout=30)
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
        code, text = c.cmd("RCPT TO:<vera@localhost>")
        assert code == 451 and "4.3.0" in text[0], text
        assert c.cmd("NOOP")[0] == 250
        c.cmd("QUIT")
        assert "waited longer than 300 ms (hook_wait_ms)" in t.log()
    finally:
        dns.stop()


def test_a_client_that_leaves_while_its_hook_waits(make_ternd):
    dns = HeldDNS()
    try:
        t = held_world(make_ternd, dns, 60000, TEN_LINE_DNSBL)
        c = start_waiting_rcpt(t, dns)
        c.close()
        deadline = time.monotonic() + 15
        while "disconnect client=127.0.0.1" not in t.log():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        dns.release()      # the answer comes to nobody
        send(t, b"after")  # and ternd is fine
        assert len(t.wait_messages("vera", 1)) == 1
    finally:
        dns.stop()


def test_a_reload_keeps_the_waiting_hooks_generation(make_ternd):
    dns = HeldDNS()
    try:
        gen1 = TEN_LINE_DNSBL.replace("Listed by", "gen1 listed by")
        t = held_world(make_ternd, dns, 60000, gen1)
        c = start_waiting_rcpt(t, dns)
        # the new generation refuses everybody at RCPT
        (t.dir / "plugins" / "bl.lua").write_text(
            'return { rcpt = function() return "reject", '
            '"550 5.7.1 gen2" end }\n')
        t.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while "configuration generation 2" not in t.log():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        dns.release()
        assert c.reply()[0] == 250          # generation 1's plugin answered
        code, text = c.cmd("RCPT TO:<other@localhost>")
        assert code == 250, text            # the session stays on gen 1
        c.cmd("QUIT")
        d = Raw(t.port)
        d.cmd("EHLO new.test")
        d.cmd("MAIL FROM:<a@sender.test>")
        assert "gen2" in d.cmd("RCPT TO:<vera@localhost>")[1][0]
        d.cmd("QUIT")
    finally:
        dns.stop()


HTTP_PLUGIN = """
return { data = function(tx, msg)
  local r, err = tern.http.request{ url = config.url, method = "POST",
    headers = { ["X-Rcpt"] = tx.rcpts, ["X-From"] = tx.sender },
    body = msg:text() }
  if not r then return "tempfail", "451 4.7.1 " .. err end
  local v = tern.json.decode(r.body)
  msg:add_header("X-Service", r.status .. " " .. v.verdict .. " " ..
    r.headers["x-answer"] .. " " .. tern.json.encode({ n = #v.seen }))
  if v.verdict == "no" then return "reject", "550 5.7.1 the service said no" end
end }
"""


class Service:
    """A JSON policy service on loopback: says no to "Subject: spam".
    cert: serve https with that certificate (its .crt and .key)."""

    def __init__(self, cert=None):
        self.requests = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((self.path, dict(self.headers),
                                       self.headers.get_all("X-Rcpt"), body))
                out = json.dumps({"verdict": "no" if b"Subject: spam" in body
                                  else "yes", "seen": [1, 2, 3]}).encode()
                self.send_response(200)
                self.send_header("X-Answer", "42")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        if cert:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(cert) + ".crt", str(cert) + ".key")
            self.srv.socket = ctx.wrap_socket(self.srv.socket,
                                              server_side=True)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_an_http_service_is_asked_only_where_the_config_allows(make_ternd):
    svc = Service()
    try:
        url = "http://127.0.0.1:%d/check?x=1" % svc.port
        t = world(make_ternd, 'plugins = { "svc" }\nplugin_http_allow = '
                  '{ "127.0.0.1:%d" }\nplugin_config = { svc = { url = '
                  '"%s" } }\n' % (svc.port, url), svc=HTTP_PLUGIN)
        with smtplib.SMTP("127.0.0.1", t.port, timeout=30) as c:
            c.sendmail("a@sender.test", ["vera@localhost", "walt@localhost"],
                       MSG % (b"ham", b"b"))
            with pytest.raises(smtplib.SMTPDataError) as e:
                c.sendmail("a@sender.test", ["vera@localhost"],
                           MSG % (b"spam", b"b"))
            assert e.value.smtp_code == 550
        raw = t.wait_messages("vera", 1)[0]
        assert headers_of(raw, "X-Service") == ['200 yes 42 {"n":3}']
        path, hdrs, rcpts, body = svc.requests[0]
        assert path == "/check?x=1" and hdrs["X-From"] == "a@sender.test"
        assert rcpts == ["vera@localhost", "walt@localhost"]
        assert b"Subject: ham" in body
    finally:
        svc.stop()
    # a port the config does not name: an error, a 451, no request
    svc = Service()
    try:
        t2 = world(make_ternd, 'plugins = { "svc" }\nplugin_http_allow = '
                   '{ "127.0.0.1:1" }\nplugin_config = { svc = { url = '
                   '"http://127.0.0.1:%d/" } }\n' % svc.port, sub="b",
                   svc=HTTP_PLUGIN)
        with smtplib.SMTP("127.0.0.1", t2.port, timeout=30) as c:
            with pytest.raises(smtplib.SMTPDataError) as e:
                c.sendmail("a@sender.test", ["vera@localhost"],
                           MSG % (b"ham", b"b"))
            assert e.value.smtp_code == 451
        assert svc.requests == []
        assert "is not in plugin_http_allow" in t2.log(), t2.log()
    finally:
        svc.stop()


def test_an_https_service_is_verified(make_ternd, tmp_path):
    """https:// with the chain and the name checked: the test CA given
    as plugin_http_ca is trusted; without it (the system's store) the
    same service is refused before any request is made."""
    from peers import make_certs
    ca = make_certs(tmp_path / "certs", ["localhost"])
    svc = Service(cert=tmp_path / "certs" / "localhost")
    try:
        conf = ('plugins = { "svc" }\nplugin_http_allow = { "localhost:%d" '
                '}\nplugin_config = { svc = { url = "https://localhost:%d/'
                'check" } }\n' % (svc.port, svc.port))
        t = world(make_ternd, conf + 'plugin_http_ca = "%s"\n' % ca,
                  svc=HTTP_PLUGIN)
        with smtplib.SMTP("127.0.0.1", t.port, timeout=30) as c:
            c.sendmail("a@sender.test", ["vera@localhost"],
                       MSG % (b"ham", b"b"))
            with pytest.raises(smtplib.SMTPDataError) as e:
                c.sendmail("a@sender.test", ["vera@localhost"],
                           MSG % (b"spam", b"b"))
            assert e.value.smtp_code == 550
        raw = t.wait_messages("vera", 1)[0]
        assert headers_of(raw, "X-Service") == ['200 yes 42 {"n":3}']
        assert len(svc.requests) == 2
        # not trusted: 451, and the service never saw a request
        t2 = world(make_ternd, conf, sub="b", svc=HTTP_PLUGIN)
        with smtplib.SMTP("127.0.0.1", t2.port, timeout=30) as c:
            with pytest.raises(smtplib.SMTPDataError) as e:
                c.sendmail("a@sender.test", ["vera@localhost"],
                           MSG % (b"ham", b"b"))
            assert e.value.smtp_code == 451
        assert len(svc.requests) == 2
        assert re.search(r"localhost:%d: TLS: certificate: unable to get local issuer"
                         % svc.port, t2.log()), t2.log()
    finally:
        svc.stop()


GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


class Rspamd:
    """Debian's rspamd on a loopback port, with a config written here:
    one normal worker, no modules beyond its core (GTUBE is core)."""

    def __init__(self, d):
        self.dir = d
        d.mkdir()
        self.port = free_port()
        (d / "rspamd.conf").write_text("""
options {
  pidfile = "%(d)s/rspamd.pid";
  dns { nameserver = ["127.0.0.1:9"]; timeout = 1s; retransmits = 1; }
  filters = "";
  history_file = "%(d)s/history";
  hs_cache_dir = "%(d)s";
}
logging { type = "file"; filename = "%(d)s/rspamd.log"; level = "info"; }
worker "normal" { bind_socket = "127.0.0.1:%(p)d"; count = 1; }
actions { reject = 15; add_header = 6; greylist = 4; }
""" % {"d": d, "p": self.port})
        self.proc = subprocess.Popen(
            ["rspamd", "-f", "-i", "-c", str(d / "rspamd.conf"),
             "--var=DBDIR=%s" % d, "--var=RUNDIR=%s" % d,
             "--var=LOGDIR=%s" % d],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # it compiles its tables before it listens: wait for an answer
        deadline = time.monotonic() + 120
        while not self.answers():
            assert self.proc.poll() is None, (d / "rspamd.log").read_text()
            assert time.monotonic() < deadline, "rspamd did not start"
            time.sleep(0.2)

    def answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                s.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
                return b"pong" in s.recv(1024)
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    r = Rspamd(tmp_path_factory.mktemp("rspamd") / "r")
    yield r
    r.stop()


def rspamd_ternd(make_ternd, port, sub="a", extra=""):
    return world(make_ternd, 'plugins = { "rspamd" }\nplugin_http_allow = '
                 '{ "127.0.0.1:%d" }\nplugin_config = { rspamd = { url = '
                 '"http://127.0.0.1:%d/checkv2"%s } }\n' % (port, port, extra),
                 sub=sub)


def test_rspamd_rejects_gtube_and_marks_what_it_passes(make_ternd, rspamd):
    t = rspamd_ternd(make_ternd, rspamd.port)
    with smtplib.SMTP("127.0.0.1", t.port, timeout=60) as c:
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("a@sender.test", ["vera@localhost"],
                       MSG % (b"test", GTUBE))
        assert e.value.smtp_code == 554, e.value
        assert b"5.7.1" in e.value.smtp_error
        c.sendmail("a@sender.test", ["vera@localhost"],
                   MSG % (b"lunch", b"Shall we have lunch on Friday?"))
    raw = t.wait_messages("vera", 1)[0]
    assert b"lunch" in raw
    action = headers_of(raw, "X-Spam-Action")
    assert action == ["no action"], raw
    assert headers_of(raw, "X-Spam-Status")[0].startswith("No, score=")
    assert len(headers_of(raw, "X-Spam-Score")) == 1
    assert "rspamd: action=reject" in t.log()


def test_rspamd_down_is_a_451_unless_fail_open(make_ternd):
    port = free_port()      # nobody listens there
    t = rspamd_ternd(make_ternd, port)
    with smtplib.SMTP("127.0.0.1", t.port, timeout=60) as c:
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("a@sender.test", ["vera@localhost"],
                       MSG % (b"x", b"y"))
        assert e.value.smtp_code == 451
    assert t.messages("vera") == []
    t2 = rspamd_ternd(make_ternd, port, sub="b", extra=", fail_open = true")
    send(t2, b"open")
    raw = t2.wait_messages("vera", 1)[0]
    assert headers_of(raw, "X-Spam-Action") == []
    assert "accepted unchecked" in t2.log()


def test_spf_policy_refuses_an_spf_fail(make_ternd, tmp_path):
    u = Unbound(tmp_path, ['fail.test. TXT "v=spf1 -all"',
                           'soft.test. TXT "v=spf1 ~all"'])
    try:
        t = world(make_ternd, 'resolver = "%s"\nplugins = { "spf_policy" }\n'
                  'plugin_config = { spf_policy = { softfail = "junk" } }\n'
                  % u.address)
        with smtplib.SMTP("127.0.0.1", t.port, timeout=30) as c:
            with pytest.raises(smtplib.SMTPDataError) as e:
                c.sendmail("a@fail.test", ["vera@localhost"],
                           MSG % (b"f", b"b"))
            assert e.value.smtp_code == 550
            assert b"5.7.23" in e.value.smtp_error
            c.sendmail("a@soft.test", ["vera@localhost"], MSG % (b"s", b"b"))
        deadline = time.monotonic() + 15
        while not t.messages("vera", folder="Junk"):
            assert time.monotonic() < deadline, t.log()
            time.sleep(0.05)
        assert t.messages("vera") == []
    finally:
        u.stop()


def test_hooks_that_cannot_wait_say_so(make_ternd, dns):
    # route runs in the queue, which does not wait for plugins: the
    # lookup is an error there (logged), the delivery a temporary failure
    t = world(make_ternd, 'resolver = "%s"\nplugins = { "r" }\n' % dns.address,
              r='return { route = function(rcpt, m)\n'
                '  tern.dns.lookup("host.zone.test")\nend }\n')
    send(t, b"routed")
    deadline = time.monotonic() + 15
    while "cannot wait in the route hook" not in t.log():
        assert time.monotonic() < deadline, t.log()
        time.sleep(0.05)
    assert t.messages("vera") == []
