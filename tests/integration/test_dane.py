# SPDX-License-Identifier: ISC
"""DANE for SMTP (RFC 7672): ternd validates DNS answers itself
(libunbound, the zone's DS as trust anchor) against a zone signed by
ldns-signzone and served by unbound on loopback. Where an MX host has
TLSA records proven by DNSSEC, TLS is required and the certificate must
match one of them: a wrong certificate, a host without STARTTLS or a
TLSA answer that fails validation never get the message, in plain text
or otherwise; the next MX host may. Without DNSSEC proof the old
opportunistic TLS applies."""
import smtplib
import time

import pytest

from peers import Peer, SignedZone, Unbound, make_certs, tlsa_data
from test_outbound import bounce_of

MSG = (b"From: a@localhost\r\nTo: u@dane.test\r\nSubject: dane\r\n\r\n"
       b"for DANE eyes only\r\n")


def send(t, rcpt="u@dane.test", options=()):
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        s.sendmail("sender@localhost", [rcpt], MSG,
                   mail_options=list(options))


def wait_log(t, text, timeout=20):
    deadline = time.monotonic() + timeout
    while text not in t.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    return text in t.log()


class World:
    def __init__(self, make_ternd, tmp_path):
        self.make_ternd = make_ternd
        self.tmp = tmp_path
        self.certs = tmp_path / "certs"
        self.ca = make_certs(self.certs, ["mx.dane.test", "mx2.dane.test",
                                          "alias.dane.test",
                                          "other.name"])
        from conftest import free_port
        self.port = free_port()
        self.stops = []

    def cert(self, name):
        return str(self.certs / (name + ".crt"))

    def peer(self, addr, cert=None, chain=False):
        """An SMTP server on addr:port; cert: the name of a certificate
        (STARTTLS offered), chain: the CA sent after it."""
        path = None
        if cert:
            path = self.certs / ("chain-" + cert if chain else cert)
            if chain:
                (self.certs / ("chain-" + cert + ".crt")).write_bytes(
                    (self.certs / (cert + ".crt")).read_bytes() +
                    self.ca.read_bytes())
                (self.certs / ("chain-" + cert + ".key")).write_bytes(
                    (self.certs / (cert + ".key")).read_bytes())
        p = Peer(addr, self.port, cert=path)
        self.stops.append(p.stop)
        return p

    def zone(self, records, bogus=(), validating=False):
        z = SignedZone(self.tmp, "dane.test", records, bogus=bogus,
                       validating=validating)
        self.stops.append(z.stop)
        return z

    def ternd(self, zone, extra=""):
        t = self.make_ternd(start=False, sub="near")
        t.write_config('resolver = "%s"\ndnssec = true\n'
                       'dnssec_trust_anchor = "%s"\n'
                       'smtp_client = { port = %d, idle_time = 1 }\n%s'
                       % (zone.address, zone.trust_anchor, self.port, extra))
        t.start()
        return t

    def ternd_trusting(self, zone, extra=""):
        """ternd with no trust anchor, believing zone's AD bit."""
        t = self.make_ternd(start=False, sub="near")
        t.write_config('resolver = "%s"\ndnssec = "resolver"\n'
                       'smtp_client = { port = %d, idle_time = 1 }\n%s'
                       % (zone.address, self.port, extra))
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


def mx_records(tlsa, host="mx"):
    return ["@ IN MX 10 %s.dane.test." % host,
            "%s IN A 127.0.0.2" % host] + \
        ["_%s._tcp.%s IN TLSA %s" % ("{port}", host, r) for r in tlsa]


def records(w, lines):
    return [l.replace("{port}", str(w.port)) for l in lines]


def test_dane_ee_match_delivers_over_tls(world):
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test")
    z = w.zone(records(w, mx_records(
        ["3 1 1 " + tlsa_data(w.cert("mx.dane.test"))])))
    t = w.ternd(z)
    assert "DNSSEC validation with" in t.log()
    send(t)
    msgs = peer.wait(1)
    assert len(msgs) == 1 and b"for DANE eyes only" in msgs[0][2]
    assert peer.handler.tls == [True]
    assert "(DANE: DANE-EE 3 1 1)" in t.log()
    assert "1 usable TLSA record(s): DANE required" in t.log()


def test_dane_ta_with_the_ca_in_the_chain(world):
    """DANE-TA 2 0 1: the test CA's certificate, which the server sends
    after its own; the name checked is the MX host's."""
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test", chain=True)
    z = w.zone(records(w, mx_records(
        ["2 0 1 " + tlsa_data(str(w.ca), selector=0)])))
    t = w.ternd(z)
    send(t)
    assert len(peer.wait(1)) == 1
    assert "(DANE: DANE-TA 2 0 1)" in t.log()


def test_dane_ta_refuses_a_certificate_for_another_name(world):
    w = world
    peer = w.peer("127.0.0.2", cert="other.name", chain=True)
    z = w.zone(records(w, mx_records(
        ["2 0 1 " + tlsa_data(str(w.ca), selector=0)])))
    t = w.ternd(z)
    send(t)
    assert wait_log(t, "status=deferred")
    assert peer.messages == []
    assert "DANE: TLS handshake failed" in t.log()


def test_wrong_certificate_is_never_used(world):
    """The TLSA record is another certificate's: no message, and no
    fallback to plain text on the next attempt either."""
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test")
    z = w.zone(records(w, mx_records(
        ["3 1 1 " + tlsa_data(w.cert("other.name"))])))
    t = w.ternd(z)
    send(t)
    assert wait_log(t, "status=deferred")
    assert "4.7.5" in t.log() and "DANE" in t.log()
    assert peer.messages == []
    assert "DANE: TLS handshake failed" in t.log()
    assert "status=sent" not in t.log()


def test_no_starttls_no_delivery(world):
    w = world
    peer = w.peer("127.0.0.2")                 # no STARTTLS offered
    z = w.zone(records(w, mx_records(
        ["3 1 1 " + tlsa_data(w.cert("mx.dane.test"))])))
    t = w.ternd(z)
    send(t)
    assert wait_log(t, "status=deferred")
    assert "does not offer STARTTLS" in t.log()
    assert peer.messages == [] and peer.handler.ehlos >= 1


def test_bogus_tlsa_is_a_temporary_failure(world):
    """A TLSA answer whose signature fails: the host is not used (it
    might be an attacker's answer), and the log says why."""
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test")
    z = w.zone(records(w, mx_records(
        ["3 1 1 " + tlsa_data(w.cert("mx.dane.test"))])),
        bogus=["_%d._tcp.mx.dane.test" % w.port])
    t = w.ternd(z)
    send(t)
    assert wait_log(t, "status=deferred")
    assert "fails DNSSEC validation" in t.log()
    assert peer.messages == []


def test_next_mx_when_the_first_does_not_match(world):
    w = world
    bad = w.peer("127.0.0.2", cert="mx.dane.test")
    good = w.peer("127.0.0.3", cert="mx2.dane.test")
    z = w.zone(records(w, [
        "@ IN MX 10 mx.dane.test.", "@ IN MX 20 mx2.dane.test.",
        "mx IN A 127.0.0.2", "mx2 IN A 127.0.0.3",
        "_{port}._tcp.mx IN TLSA 3 1 1 " + tlsa_data(w.cert("other.name")),
        "_{port}._tcp.mx2 IN TLSA 3 1 1 " +
        tlsa_data(w.cert("mx2.dane.test"))]))
    t = w.ternd(z)
    send(t)
    assert len(good.wait(1)) == 1
    assert bad.messages == []
    assert "next host" in t.log()


def test_unusable_tlsa_means_tls_without_authentication(world):
    """Only PKIX-EE records (not used for SMTP, RFC 7672 3.1.3): TLS is
    still required, but any certificate will do."""
    w = world
    peer = w.peer("127.0.0.2", cert="other.name")
    z = w.zone(records(w, mx_records(
        ["1 1 1 " + tlsa_data(w.cert("mx.dane.test"))])))
    t = w.ternd(z)
    send(t)
    assert len(peer.wait(1)) == 1 and peer.handler.tls == [True]
    assert "none usable: TLS required, unauthenticated" in t.log()


def test_no_tlsa_is_opportunistic(world):
    """A signed zone without TLSA records: the old opportunistic TLS."""
    w = world
    peer = w.peer("127.0.0.2")
    z = w.zone(["@ IN MX 10 mx.dane.test.", "mx IN A 127.0.0.2"])
    t = w.ternd(z)
    send(t)
    assert len(peer.wait(1)) == 1 and peer.handler.tls == [False]
    assert "DANE required" not in t.log()


def test_unsigned_domain_ignores_tlsa(world, tmp_path):
    """ternd validates, but plain.test is under no trust anchor: its
    TLSA record proves nothing, and the certificate it names is not
    asked for (opportunistic TLS, as without DANE)."""
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test")
    z = w.zone(["@ IN MX 10 mx.dane.test."])     # its anchor is all we use
    plain = Unbound(tmp_path, [
        "plain.test. MX 10 mx.plain.test.", "mx.plain.test. A 127.0.0.2",
        "_%d._tcp.mx.plain.test. TLSA 3 1 1 %s" % (
            w.port, tlsa_data(w.cert("other.name")))])
    w.stops.append(plain.stop)
    t = w.make_ternd(start=False, sub="near")
    t.write_config('resolver = "%s"\ndnssec = true\n'
                   'dnssec_trust_anchor = "%s"\n'
                   'smtp_client = { port = %d }\n'
                   % (plain.address, z.trust_anchor, w.port))
    t.start()
    send(t, "u@plain.test")
    assert len(peer.wait(1)) == 1 and peer.handler.tls == [True]
    assert "DANE required" not in t.log()


def test_dnssec_off_says_so(make_ternd):
    t = make_ternd()
    assert "no DNSSEC validation (dnssec = false); no DANE" in t.log()


def test_requiretls_goes_to_a_dane_mx(world):
    """RFC 8689 4.2.1: an MX found by DNSSEC and authenticated by DANE
    is good enough for REQUIRETLS (it bounced before DANE)."""
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test")
    z = w.zone(records(w, mx_records(
        ["3 1 1 " + tlsa_data(w.cert("mx.dane.test"))])))
    t = w.ternd(z)
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        s.starttls(context=ctx)
        s.ehlo("client.test")
        s.sendmail("sender@localhost", ["u@dane.test"], MSG,
                   mail_options=["REQUIRETLS"])
    # aiosmtpd does not offer REQUIRETLS: refused, for good, but only
    # after DANE found and authenticated the MX
    raw, blocks = bounce_of(t)
    assert blocks[0]["Status"] == "5.7.30"
    assert b"does not offer it" in raw
    assert peer.messages == []
    assert "(DANE: DANE-EE 3 1 1)" in t.log()


def test_ternctl_tls_policy(world):
    """ternctl tls-policy says what the client would do, and why: the
    same verdicts, from the same lookups, without sending anything."""
    from test_ternctl import TERNCTL
    import subprocess
    w = world
    z = w.zone(records(w, [
        "@ IN MX 10 mx.dane.test.", "@ IN MX 20 mx2.dane.test.",
        "mx IN A 127.0.0.2", "mx2 IN A 127.0.0.3",
        "_{port}._tcp.mx IN TLSA 3 1 1 " + tlsa_data(w.cert("mx.dane.test")),
        "_{port}._tcp.mx2 IN TLSA 1 1 1 " +
        tlsa_data(w.cert("mx2.dane.test"))]))
    t = w.ternd(z)

    def policy(domain):
        r = subprocess.run([str(TERNCTL), "-c", str(t.config), "tls-policy",
                            domain], capture_output=True, text=True,
                           timeout=60)
        return r.returncode, r.stdout
    rc, out = policy("dane.test")
    assert rc == 0, out
    assert "policy: dane" in out and "MX: in the order tried (secure" in out
    assert out.index("mx.dane.test") < out.index("mx2.dane.test")
    assert "3 1 1 " in out and "DANE-EE" in out
    assert "=> DANE: TLS required, the certificate must match" in out
    assert "PKIX-EE (not usable for SMTP)" in out
    assert "=> DANE: TLS required (TLSA records, none usable)" in out
    rc, out = policy("localhost")
    assert rc == 0 and "local: delivered into this server's Maildirs" in out
    rc, out = policy("nowhere.dane.test")
    assert "MX: no such domain" in out
    assert policy("not a domain")[0] == 2


def test_tls_report_of_a_dane_failure(world):
    """RFC 8460 for DANE: policy-type tlsa, the TLSA records as the
    policy, the failed session with its host and address."""
    import email
    import gzip
    import json
    from test_ternctl import ctl
    w = world
    w.peer("127.0.0.2", cert="mx.dane.test")
    wrong = tlsa_data(w.cert("other.name"))
    z = w.zone(records(w, mx_records(["3 1 1 " + wrong])) +
               ['_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@localhost"'])
    t = w.ternd(z)
    send(t)
    assert wait_log(t, "status=deferred")
    assert "1 policy domain(s)" in ctl(t, "tls-report").stdout
    m = email.message_from_bytes(t.wait_messages("tlsrpt", 1)[0])
    part = [p for p in m.walk()
            if p.get_content_type() == "application/tlsrpt+gzip"][0]
    rep = json.loads(gzip.decompress(part.get_payload(decode=True)))
    [p] = rep["policies"]
    assert p["policy"]["policy-type"] == "tlsa"
    assert p["policy"]["policy-string"] == ["3 1 1 " + wrong]
    assert p["policy"]["policy-domain"] == "dane.test"
    assert p["summary"]["total-failure-session-count"] == 1
    assert p["failure-details"][0]["result-type"] == "validation-failure"
    assert p["failure-details"][0]["receiving-mx-hostname"] == "mx.dane.test"


def test_dane_for_a_relayhost(world):
    """A relayhost is named, not found by MX: DANE applies when its own
    addresses and TLSA records are proven (Postfix does the same)."""
    w = world
    peer = w.peer("127.0.0.2", cert="other.name")
    z = w.zone(records(w, ["relay IN A 127.0.0.2",
                           "_{port}._tcp.relay IN TLSA 3 1 1 " +
                           tlsa_data(w.cert("mx.dane.test"))]))
    t = w.ternd(z, 'relayhost = "relay.dane.test:%d"\n' % w.port)
    send(t, "u@elsewhere.test")
    assert wait_log(t, "status=deferred")
    assert peer.messages == []
    assert "relay.dane.test has 1 usable TLSA record(s): DANE required" \
        in t.log()


# RFC 7672 2.2.2: an MX host that is a CNAME alias. Its addresses come
# from the end of the chain; where the chain is secure, the TLSA records
# are looked for there first, and at the alias's own name only when the
# target securely has none. Either name may be the certificate's.

def alias_records(target_tlsa=(), alias_tlsa=()):
    return (["@ IN MX 10 alias.dane.test.", "alias IN CNAME mx",
             "mx IN A 127.0.0.2"] +
            ["_{port}._tcp.mx IN TLSA " + r for r in target_tlsa] +
            ["_{port}._tcp.alias IN TLSA " + r for r in alias_tlsa])


def test_tlsa_at_the_alias_target(world):
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test")
    z = w.zone(records(w, alias_records(
        target_tlsa=["3 1 1 " + tlsa_data(w.cert("mx.dane.test"))])))
    t = w.ternd(z)
    send(t)
    assert len(peer.wait(1)) == 1
    assert peer.handler.tls == [True]
    assert ("alias.dane.test has 1 usable TLSA record(s) at its alias "
            "target mx.dane.test: DANE required") in t.log()
    assert "(DANE: DANE-EE 3 1 1)" in t.log()


def test_tlsa_of_the_alias_when_its_target_has_none(world):
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test")
    z = w.zone(records(w, alias_records(
        alias_tlsa=["3 1 1 " + tlsa_data(w.cert("mx.dane.test"))])))
    t = w.ternd(z)
    send(t)
    assert len(peer.wait(1)) == 1
    log = t.log()
    assert ("alias.dane.test is an alias of mx.dane.test, which has no "
            "TLSA records: trying its own") in log
    assert "alias.dane.test has 1 usable TLSA record(s): DANE" in log
    assert "(DANE: DANE-EE 3 1 1)" in log


def test_the_alias_target_records_come_first(world):
    """The target's records are the ones in force: a right record at
    the alias's own name does not save a wrong one at the target."""
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test")
    z = w.zone(records(w, alias_records(
        target_tlsa=["3 1 1 " + tlsa_data(w.cert("other.name"))],
        alias_tlsa=["3 1 1 " + tlsa_data(w.cert("mx.dane.test"))])))
    t = w.ternd(z)
    send(t)
    assert wait_log(t, "status=deferred")
    assert peer.messages == []
    assert "DANE: TLS handshake failed" in t.log()
    assert "status=sent" not in t.log()


@pytest.mark.parametrize("cert", ["mx.dane.test", "alias.dane.test"])
def test_dane_ta_accepts_either_name_of_an_alias(world, cert):
    """DANE-TA after a CNAME: the certificate may name the target (the
    TLSA base domain, sent as SNI) or the alias the MX record names."""
    w = world
    peer = w.peer("127.0.0.2", cert=cert, chain=True)
    z = w.zone(records(w, alias_records(
        target_tlsa=["2 0 1 " + tlsa_data(str(w.ca), selector=0)])))
    t = w.ternd(z)
    send(t)
    assert len(peer.wait(1)) == 1
    assert "(DANE: DANE-TA 2 0 1)" in t.log()


def test_dane_ta_after_an_alias_still_checks_the_name(world):
    w = world
    peer = w.peer("127.0.0.2", cert="other.name", chain=True)
    z = w.zone(records(w, alias_records(
        target_tlsa=["2 0 1 " + tlsa_data(str(w.ca), selector=0)])))
    t = w.ternd(z)
    send(t)
    assert wait_log(t, "status=deferred")
    assert peer.messages == []


def test_ternctl_tls_policy_follows_the_alias(world):
    from test_ternctl import TERNCTL
    import subprocess
    w = world
    z = w.zone(records(w, alias_records(
        alias_tlsa=["3 1 1 " + tlsa_data(w.cert("mx.dane.test"))])))
    t = w.ternd(z)
    r = subprocess.run([str(TERNCTL), "-c", str(t.config), "tls-policy",
                        "dane.test"], capture_output=True, text=True,
                       timeout=60)
    out = r.stdout
    assert r.returncode == 0, out
    assert "an alias (CNAME) of mx.dane.test" in out
    target = "TLSA _%d._tcp.mx.dane.test: no such domain" % w.port
    own = "TLSA _%d._tcp.alias.dane.test: found (secure, DNSSEC)" % w.port
    assert target in out and own in out
    assert out.index(target) < out.index(own)
    assert "=> DANE: TLS required, the certificate must match" in out


# dnssec = "resolver": no trust anchor here; the resolver validates and
# its AD bit is believed (RFC 4035 4.9.3: a resolver on a secure path,
# loopback here). The same verdicts follow from it; a resolver that sets
# no AD bit gives no DANE, and its SERVFAIL for a bogus record makes the
# mail wait.

def test_resolver_ad_bit_gives_dane(world):
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test")
    z = w.zone(records(w, mx_records(
        ["3 1 1 " + tlsa_data(w.cert("mx.dane.test"))])), validating=True)
    t = w.ternd_trusting(z)
    log = t.log()
    assert 'DNSSEC from the AD bit of %s (dnssec = "resolver"); DANE on' \
        % z.address in log
    assert "is not on loopback" not in log
    send(t)
    assert len(peer.wait(1)) == 1 and peer.handler.tls == [True]
    assert "1 usable TLSA record(s): DANE required" in t.log()
    assert "(DANE: DANE-EE 3 1 1)" in t.log()
    # the self-check asked the root's DNSKEY, which this resolver
    # without the Internet cannot have
    assert wait_log(t, "did not answer for the root zone's DNSKEY")


def test_resolver_ad_bit_wrong_certificate_is_refused(world):
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test")
    z = w.zone(records(w, mx_records(
        ["3 1 1 " + tlsa_data(w.cert("other.name"))])), validating=True)
    t = w.ternd_trusting(z)
    send(t)
    assert wait_log(t, "status=deferred")
    assert peer.messages == []
    assert "DANE: TLS handshake failed" in t.log()
    assert "status=sent" not in t.log()


def test_resolver_without_ad_bit_gives_no_dane(world):
    """The same zone served by an authority that sets no AD bit: the
    TLSA record proves nothing, and the (wrong) certificate is not held
    against the host: opportunistic TLS, as without DNSSEC."""
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test")
    z = w.zone(records(w, mx_records(
        ["3 1 1 " + tlsa_data(w.cert("other.name"))])))
    t = w.ternd_trusting(z)
    send(t)
    assert len(peer.wait(1)) == 1 and peer.handler.tls == [True]
    assert "DANE required" not in t.log()


def test_resolver_servfail_for_a_bogus_record_makes_mail_wait(world):
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test")
    z = w.zone(records(w, mx_records(
        ["3 1 1 " + tlsa_data(w.cert("mx.dane.test"))])),
        bogus=["_%d._tcp.mx.dane.test" % w.port], validating=True)
    t = w.ternd_trusting(z)
    send(t)
    assert wait_log(t, "status=deferred")
    assert "the resolver answered SERVFAIL" in t.log()
    assert peer.messages == []


def test_resolver_truncated_answer_is_asked_again_over_tcp(world):
    """Forty TLSA records do not fit the 1232 octets offered over UDP:
    the resolver truncates, the stub asks over TCP, the one record that
    matches is found among them."""
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test")
    others = ["3 1 1 %064x" % (i + 1) for i in range(39)]
    z = w.zone(records(w, mx_records(
        others + ["3 1 1 " + tlsa_data(w.cert("mx.dane.test"))])),
        validating=True)
    t = w.ternd_trusting(z)
    send(t)
    assert len(peer.wait(1)) == 1 and peer.handler.tls == [True]
    assert "40 usable TLSA record(s): DANE required" in t.log()


def test_resolver_ad_bit_after_an_alias(world):
    """The stub follows the CNAME chain in the resolver's answer: the
    TLSA records of the chain's target are the ones asked first."""
    w = world
    peer = w.peer("127.0.0.2", cert="mx.dane.test")
    z = w.zone(records(w, alias_records(
        target_tlsa=["3 1 1 " + tlsa_data(w.cert("mx.dane.test"))])),
        validating=True)
    t = w.ternd_trusting(z)
    send(t)
    assert len(peer.wait(1)) == 1
    assert ("alias.dane.test has 1 usable TLSA record(s) at its alias "
            "target mx.dane.test: DANE required") in t.log()


def test_ternctl_tls_policy_trusting_the_resolver(world):
    from test_ternctl import TERNCTL
    import subprocess
    w = world
    z = w.zone(records(w, mx_records(
        ["3 1 1 " + tlsa_data(w.cert("mx.dane.test"))])), validating=True)
    t = w.ternd_trusting(z)
    r = subprocess.run([str(TERNCTL), "-c", str(t.config), "tls-policy",
                        "dane.test"], capture_output=True, text=True,
                       timeout=60)
    out = r.stdout
    assert r.returncode == 0, out
    assert ('dnssec: the AD bit of %s is trusted (dnssec = "resolver")'
            % z.address) in out
    assert "MX: in the order tried (secure, the resolver's AD bit)" in out
    assert "=> DANE: TLS required, the certificate must match" in out
