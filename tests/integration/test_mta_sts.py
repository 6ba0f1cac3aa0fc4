# SPDX-License-Identifier: ISC
"""MTA-STS (RFC 8461): ternd finds the _mta-sts TXT record, fetches the
policy over HTTPS from a loopback server whose certificate comes from the
test CA, caches it, and applies it: under "enforce" only the MX hosts the
policy names are used, and only over TLS with a certificate verified for
the MX host's name; a wrong certificate, a host outside the policy or
one without STARTTLS never get the message. "testing" and a policy that
cannot be fetched change nothing."""
import pytest

from peers import Peer, PolicyServer, Unbound, make_certs
from test_dane import send as dane_send, wait_log
from test_outbound import bounce_of

MSG = (b"From: a@localhost\r\nTo: u@sts.test\r\nSubject: sts\r\n\r\n"
       b"strict transport\r\n")

ENFORCE = ("version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\n"
           "mx: *.backup.test\r\nmax_age: 86400\r\n")


def send(t, rcpt="u@sts.test"):
    dane_send(t, rcpt)


class World:
    def __init__(self, make_ternd, tmp_path):
        from conftest import free_port
        self.make_ternd = make_ternd
        self.tmp = tmp_path
        self.certs = tmp_path / "certs"
        self.ca = make_certs(self.certs, ["mta-sts.sts.test", "mx.sts.test",
                                          "other.name"])
        self.port = free_port()
        self.stops = []

    def peer(self, addr="127.0.0.2", cert="mx.sts.test"):
        p = Peer(addr, self.port, cert=self.certs / cert if cert else None)
        self.stops.append(p.stop)
        return p

    def policy(self, text=ENFORCE, **kw):
        s = PolicyServer(self.certs / "mta-sts.sts.test", text, **kw)
        self.stops.append(s.stop)
        return s

    def ternd(self, policy, mx="mx.sts.test", txt=True, extra=(),
              client=""):
        dns = Unbound(self.tmp, [
            "sts.test. MX 10 %s." % mx, "%s. A 127.0.0.2" % mx,
            "mta-sts.sts.test. A 127.0.0.1"] +
            (['_mta-sts.sts.test. TXT "v=STSv1; id=20261203"'] if txt
             else []) + list(extra))
        self.stops.append(dns.stop)
        t = self.make_ternd(start=False, sub="near")
        t.write_config('resolver = "%s"\nsmtp_client = { port = %d, '
                       'ca_file = "%s", mta_sts_port = %d, idle_time = 1%s }\n'
                       % (dns.address, self.port, self.ca,
                          policy.port if policy else 1, client))
        t.start()
        return t

    def close(self):
        for s in reversed(self.stops):
            s()


@pytest.fixture
def world(make_ternd, tmp_path):
    w = World(make_ternd, tmp_path)
    yield w
    w.close()


def test_enforce_verified_and_cached(world):
    w = world
    peer = w.peer()
    pol = w.policy()
    t = w.ternd(pol)
    send(t)
    assert len(peer.wait(1)) == 1 and peer.handler.tls == [True]
    assert "(verified MTA-STS)" in t.log()
    assert "mta-sts: sts.test: policy id 20261203, mode enforce, 2 mx " \
        "pattern(s), max_age 86400" in t.log()
    assert [r[0] for r in pol.requests] == ["/.well-known/mta-sts.txt"]
    assert pol.requests[0][1].startswith("mta-sts.sts.test"), pol.requests
    # the second message uses the cached policy: no second fetch
    send(t)
    assert len(peer.wait(2)) == 2
    assert len(pol.requests) == 1


def test_enforce_refuses_a_wrong_certificate(world):
    w = world
    peer = w.peer(cert="other.name")
    t = w.ternd(w.policy())
    send(t)
    assert wait_log(t, "status=deferred")
    assert peer.messages == []
    assert "MTA-STS: TLS handshake failed: certificate:" in t.log()
    assert "4.7.5" in t.log()


def test_enforce_skips_an_mx_outside_the_policy(world):
    w = world
    peer = w.peer()
    t = w.ternd(w.policy(), mx="rogue.sts.test")
    send(t)
    assert wait_log(t, "status=deferred")
    assert peer.messages == [] and peer.handler.ehlos == 0
    assert "rogue.sts.test is not an mx of sts.test's MTA-STS policy " \
        "(enforce)" in t.log()


def test_enforce_without_starttls_is_no_delivery(world):
    w = world
    peer = w.peer(cert=None)
    t = w.ternd(w.policy())
    send(t)
    assert wait_log(t, "status=deferred")
    assert peer.messages == [] and peer.handler.ehlos >= 1
    assert "MTA-STS (enforce) requires TLS; STARTTLS not offered" in t.log()


def test_testing_mode_delivers_anyway(world):
    w = world
    peer = w.peer(cert="other.name")
    t = w.ternd(w.policy(ENFORCE.replace("enforce", "testing")),
                mx="rogue.sts.test")
    send(t)
    assert len(peer.wait(1)) == 1
    assert "(testing: used anyway)" in t.log()


def test_no_record_no_policy(world):
    w = world
    peer = w.peer(cert="other.name")
    pol = w.policy()
    t = w.ternd(pol, txt=False)
    send(t)
    assert len(peer.wait(1)) == 1 and peer.handler.tls == [True]
    assert pol.requests == []


@pytest.mark.parametrize("kw, why", [
    ({"status": 404}, "HTTP status 404"),
    ({"status": 302}, "HTTP status 302"),        # redirects not followed
    ({"ctype": "text/html"}, "not text/plain"),
    ({"text": "<html>hello</html>"}, "policy: "),
])
def test_a_bad_policy_is_no_policy(world, kw, why):
    """Without a cached policy, a fetch that fails leaves the domain as
    if it had none (RFC 8461 5.1): delivered, opportunistically."""
    w = world
    peer = w.peer(cert="other.name")
    text = kw.pop("text", ENFORCE)
    pol = w.policy(text, **kw)
    t = w.ternd(pol)
    send(t)
    assert len(peer.wait(1)) == 1
    assert len(pol.requests) == 1
    assert "mode enforce" not in t.log()
    assert why in t.log()
    assert "; no policy in force" in t.log()


def test_policy_server_with_an_untrusted_certificate(world, tmp_path):
    """The policy's own HTTPS certificate must verify: one from another
    CA makes the fetch fail, and the policy is not used."""
    w = world
    other = make_certs(tmp_path / "other-ca", ["mta-sts.sts.test"])
    peer = w.peer(cert="other.name")
    pol = PolicyServer(tmp_path / "other-ca" / "mta-sts.sts.test", ENFORCE)
    w.stops.append(pol.stop)
    assert other.exists()
    t = w.ternd(pol)
    send(t)
    assert len(peer.wait(1)) == 1
    assert "mode enforce" not in t.log()
    assert "mta-sts: sts.test: policy fetch failed" in t.log()


def test_requiretls_to_an_mta_sts_mx(world):
    """RFC 8689 4.2.1: an MX named by an enforced policy and verified is
    good enough; aiosmtpd lacks REQUIRETLS, so it bounces, but only
    after MTA-STS authenticated the host."""
    import smtplib
    import ssl
    w = world
    peer = w.peer()
    t = w.ternd(w.policy())
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        s.starttls(context=ctx)
        s.ehlo("client.test")
        s.sendmail("sender@localhost", ["u@sts.test"], MSG,
                   mail_options=["REQUIRETLS"])
    raw, blocks = bounce_of(t)
    assert blocks[0]["Status"] == "5.7.30"
    assert b"does not offer it" in raw
    assert "(verified MTA-STS)" in t.log() and peer.messages == []


def test_ternctl_tls_policy_shows_the_policy(world):
    from test_ternctl import ctl
    w = world
    pol = w.policy()
    t = w.ternd(pol)
    r = ctl(t, "tls-policy", "sts.test")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "MTA-STS: mode enforce, max_age 86400, mx mx.sts.test " \
        "*.backup.test" in out
    assert "MTA-STS: an mx of the policy" in out
    assert "=> as the policy says (no DANE)" not in out
    assert "MTA-STS: TLS required, the certificate verified" in out
    assert len(pol.requests) == 1


def test_ternctl_tls_policy_names_a_rogue_mx(world):
    from test_ternctl import ctl
    w = world
    t = w.ternd(w.policy(), mx="rogue.sts.test")
    out = ctl(t, "tls-policy", "sts.test").stdout
    assert "MTA-STS: not an mx of the policy" in out
    assert "=> not used (MTA-STS enforce)" in out


RUA = ['_smtp._tls.sts.test. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@localhost"']


def tls_report_of(t):
    """Asks ternd for the reports now; the one that came to tlsrpt@localhost
    (a local mailbox of the same ternd): its message and its JSON."""
    import email
    import gzip
    import json
    from test_ternctl import ctl
    r = ctl(t, "tls-report")
    assert r.returncode == 0 and "1 policy domain(s)" in r.stdout, r.stdout
    raw = t.wait_messages("tlsrpt", 1)[0]
    m = email.message_from_bytes(raw)
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "tlsrpt"
    assert m["TLS-Report-Domain"] == "sts.test"
    assert m["Subject"].startswith("Report Domain: sts.test Submitter: ")
    part = [p for p in m.walk()
            if p.get_content_type() == "application/tlsrpt+gzip"][0]
    assert part.get_filename().endswith(".json.gz")
    return m, json.loads(gzip.decompress(part.get_payload(decode=True)))


def test_tls_report_counts_sessions(world):
    """RFC 8460: the sessions under the policy, reported to the rua
    address of _smtp._tls, gzipped JSON in a multipart/report."""
    w = world
    peer = w.peer()
    t = w.ternd(w.policy(), extra=RUA)
    send(t)
    assert len(peer.wait(1)) == 1
    m, rep = tls_report_of(t)
    assert rep["contact-info"].startswith("postmaster@")
    assert set(rep["date-range"]) == {"start-datetime", "end-datetime"}
    [p] = rep["policies"]
    assert p["policy"]["policy-type"] == "sts"
    assert p["policy"]["policy-domain"] == "sts.test"
    assert "mode: enforce" in p["policy"]["policy-string"]
    assert p["policy"]["mx-host"] == ["mx.sts.test"]
    assert p["summary"] == {"total-successful-session-count": 1,
                            "total-failure-session-count": 0}
    # the report asks for none about itself, and the book starts again
    from test_ternctl import ctl
    assert "0 policy domain(s)" in ctl(t, "tls-report").stdout


def test_tls_report_names_the_failure(world):
    w = world
    w.peer(cert="other.name")
    t = w.ternd(w.policy(), extra=RUA)
    send(t)
    assert wait_log(t, "status=deferred")
    m, rep = tls_report_of(t)
    [p] = rep["policies"]
    assert p["summary"]["total-failure-session-count"] == 1
    [f] = p["failure-details"]
    assert f == {"result-type": "certificate-host-mismatch",
                 "receiving-ip": "127.0.0.2",
                 "receiving-mx-hostname": "mx.sts.test",
                 "failed-session-count": 1}


def test_no_rua_no_report(world):
    from test_ternctl import ctl
    w = world
    peer = w.peer()
    t = w.ternd(w.policy())
    send(t)
    assert len(peer.wait(1)) == 1
    assert "1 policy domain(s)" in ctl(t, "tls-report").stdout
    assert wait_log(t, "has no usable _smtp._tls record")
    assert t.messages("tlsrpt") == []


def test_policy_survives_a_restart(world):
    """RFC 8461 5.1: the cached policy outlives ternd (kept in its store,
    plugins.kv): after a restart it is in force without a fetch, while
    the policy server now answers 404."""
    w = world
    peer = w.peer()
    pol = w.policy()
    t = w.ternd(pol)
    send(t)
    assert len(peer.wait(1)) == 1
    t.stop()
    pol.status = 404
    t.start()
    send(t)
    assert len(peer.wait(2)) == 2
    assert len(pol.requests) == 1            # not fetched again
    assert t.log().count("(verified MTA-STS)") == 2


def test_tls_report_posted_to_https(world):
    """RFC 8460 5.2: an https: rua gets the gzipped report POSTed, over a
    verified connection (the policy server doubles as the collector)."""
    import gzip
    import json
    from test_ternctl import ctl
    w = world
    peer = w.peer()
    pol = w.policy()
    t = w.ternd(pol, extra=['_smtp._tls.sts.test. TXT "v=TLSRPTv1; '
                            'rua=https://mta-sts.sts.test:%d/tlsrpt"'
                            % pol.port])
    send(t)
    assert len(peer.wait(1)) == 1
    assert "1 policy domain(s)" in ctl(t, "tls-report").stdout
    assert wait_log(t, "tls-rpt: report posted to https://mta-sts.sts.test")
    [(path, ctype, body)] = pol.posts
    assert path == "/tlsrpt" and ctype == "application/tlsrpt+gzip"
    rep = json.loads(gzip.decompress(body))
    assert rep["policies"][0]["policy"]["policy-domain"] == "sts.test"
    assert t.messages("tlsrpt") == []


def test_testing_mode_checks_and_reports(world):
    """RFC 8461 5: "testing" checks the certificate as "enforce" would,
    delivers anyway, and the TLS report says what would have failed."""
    w = world
    peer = w.peer(cert="other.name")
    t = w.ternd(w.policy(ENFORCE.replace("enforce", "testing")), extra=RUA)
    send(t)
    assert len(peer.wait(1)) == 1 and peer.handler.tls == [True]
    assert "hostname mismatch (MTA-STS testing: delivered anyway)" in t.log()
    m, rep = tls_report_of(t)
    [p] = rep["policies"]
    assert "mode: testing" in p["policy"]["policy-string"]
    assert p["summary"] == {"total-successful-session-count": 0,
                            "total-failure-session-count": 1}
    assert p["failure-details"][0]["result-type"] == \
        "certificate-host-mismatch"


def refreshing(w):
    """A policy fetched (once) and in use by ternd refreshing after 2 s."""
    peer = w.peer()
    pol = w.policy()
    t = w.ternd(pol, client=", mta_sts_refresh = 2")
    send(t)
    assert len(peer.wait(1)) == 1
    # (a slow machine may have refreshed it already: not counted)
    return peer, pol, t


def test_policy_in_use_is_refreshed_before_it_expires(world):
    """RFC 8461 3.3: a cached policy is fetched again before it expires
    (here after 2 s instead of a day), in the background, under the same
    id too, and the new one (a longer max_age) is in force."""
    peer, pol, t = refreshing(world)
    pol.policy = ENFORCE.replace("max_age: 86400", "max_age: 172800")
    assert wait_log(t, "mta-sts: sts.test: refreshing the policy "
                    "(id 20261203, fetched ", timeout=60)
    assert wait_log(t, "2 mx pattern(s), max_age 172800", timeout=60)
    assert len(pol.requests) >= 2 and len(peer.messages) == 1
    send(t)
    assert len(peer.wait(2)) == 2
    assert t.log().count("(verified MTA-STS)") == 2


def test_failed_refresh_keeps_the_cached_policy(world):
    peer, pol, t = refreshing(world)
    pol.status = 500
    assert wait_log(t, "policy fetch: HTTP status 500; the cached policy "
                    "(id 20261203) stays in force", timeout=60)
    send(t)
    assert len(peer.wait(2)) == 2
    assert t.log().count("(verified MTA-STS)") == 2


def test_tls_report_counts_survive_a_restart(world):
    """The day's book is kept in ternd's store: sessions counted before
    a restart are in the report made after it, with the period's start
    from before it too."""
    w = world
    peer = w.peer()
    t = w.ternd(w.policy(), extra=RUA)
    send(t)
    assert len(peer.wait(1)) == 1
    t.stop()
    t.start()
    assert "tls-rpt: 1 policy domain(s) counted since " in t.log()
    m, rep = tls_report_of(t)
    [p] = rep["policies"]
    assert p["summary"] == {"total-successful-session-count": 1,
                            "total-failure-session-count": 0}
    assert p["policy"]["mx-host"] == ["mx.sts.test"]
    # reported: the store is empty again, and stays so over a restart
    t.stop()
    t.start()
    from test_ternctl import ctl
    assert "0 policy domain(s)" in ctl(t, "tls-report").stdout


@pytest.mark.parametrize("kw,result", [
    ({"status": 404}, "sts-policy-fetch-error"),
    ({"ctype": "text/html"}, "sts-policy-invalid"),
])
def test_tls_report_of_a_policy_that_could_not_be_had(world, kw, result):
    """RFC 8460 4.3.2.1: a policy fetch that fails is a failure in the
    domain's report, under no-policy-found (none was ever had)."""
    w = world
    peer = w.peer()
    t = w.ternd(w.policy(**kw), extra=RUA)
    send(t)
    assert len(peer.wait(1)) == 1
    m, rep = tls_report_of(t)
    [p] = rep["policies"]
    assert p["policy"]["policy-type"] == "no-policy-found"
    assert p["summary"]["total-failure-session-count"] >= 1
    assert [f["result-type"] for f in p["failure-details"]] == [result]


def test_tls_report_of_an_untrusted_policy_server(world, tmp_path):
    w = world
    make_certs(tmp_path / "other-ca", ["mta-sts.sts.test"])
    peer = w.peer()
    pol = PolicyServer(tmp_path / "other-ca" / "mta-sts.sts.test", ENFORCE)
    w.stops.append(pol.stop)
    t = w.ternd(pol, extra=RUA)
    send(t)
    assert len(peer.wait(1)) == 1
    m, rep = tls_report_of(t)
    [p] = rep["policies"]
    assert [f["result-type"] for f in p["failure-details"]] == \
        ["sts-webpki-invalid"]
