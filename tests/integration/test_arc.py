# SPDX-License-Identifier: ISC
"""ARC (RFC 8617): chains made by Debian's dkimpy (python3-dkim's
arc_sign, an independent implementation) are validated by ternd on the
way in (arc= in Authentication-Results, tx.auth.arc in the data hook);
mail that ternd forwards to another server (an alias to a remote address)
leaves with ternd's own ARC set, which dkimpy's arc_verify accepts, alone
and on top of an earlier chain. Keys and MX records come from a loopback
unbound."""
import re
import smtplib

import dkim
import pytest

from conftest import free_port
from peers import Peer, Unbound
from test_dkim import dns_of, keygen, txt_record
from test_hooks import plugins

ARC_SEEN = """
return { data = function(tx, msg)
  local a = tx.auth.arc
  if not a then msg:add_header("X-Arc-Seen", "-") return end
  local sets = {}
  for _, s in ipairs(a.sets) do
    sets[#sets + 1] = s.i .. ":" .. s.domain .. ":" .. s.cv .. ":" ..
      tostring(s.seal_ok) .. ":" .. tostring(s.ams_ok)
  end
  local first = a.sets[1] and a.sets[1].results or ""
  msg:add_header("X-Arc-Seen", a.result .. " oldest=" ..
    tostring(a.oldest_pass) .. " [" .. table.concat(sets, " ") .. "] " ..
    (first:match("dkim=%w+") or "no-results"))
end }
"""

MSG = (b"From: Someone <someone@sender.test>\r\nTo: list@forwarder.test\r\n"
       b"Subject: %s\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\n"
       b"Message-ID: <%s@sender.test>\r\n\r\nA body  with  spaces.\r\n")


class ArcWorld:
    def __init__(self, make_ternd, tmp_path):
        home = tmp_path / "keys"
        self.sender_key, sender_rec = keygen(home, "sender.test", "s1", "rsa")
        self.fwd_key, fwd_rec = keygen(home, "forwarder.test", "a1", "rsa")
        self.our_key, our_rec = keygen(home, "mx.test", "arc1", "rsa")
        self.records = {"s1._domainkey.sender.test.": sender_rec,
                        "a1._domainkey.forwarder.test.": fwd_rec,
                        "a1._domainkey.other.test.": fwd_rec,
                        "s1._domainkey.strict.test.": sender_rec,
                        "_dmarc.strict.test.": "v=DMARC1; p=reject",
                        "strict.test.": "v=spf1 -all",
                        "arc1._domainkey.mx.test.": our_rec}
        self.dns = Unbound(tmp_path, [txt_record(n, r) for n, r in
                                      self.records.items()] + [
            "remote.test. MX 10 mx.remote.test.",
            "mx.remote.test. A 127.0.0.2"])
        port = free_port()
        self.peer = Peer("127.0.0.2", port)
        self.t = make_ternd(start=False)
        users = self.t.dir / "recipients"
        users.write_text("vera\nfwd: carol@remote.test\nboth: vera, "
                         "carol@remote.test\n")
        self.t.write_config(
            'resolver = "%s"\n'
            "smtp_client = { port = %d, connect_timeout = 2, idle_time = 1 }"
            '\narc = { domain = "mx.test", selector = "arc1", key = "%s" }\n'
            '%splugins = { "rcpt_users", "dmarc_policy", "arc_seen" }\n'
            'plugin_config = { rcpt_users = { file = "%s" },\n'
            '  dmarc_policy = { arc_trusted = { "forwarder.test" } } }\n'
            % (self.dns.address, port, self.our_key,
               plugins(self.t, arc_seen=ARC_SEEN), users))
        self.t.start()

    def stop(self):
        self.peer.stop()
        self.dns.stop()

    def signed(self, subject, domain=b"sender.test"):
        """MSG, DKIM-signed by sender.test (or domain, with its key)."""
        m = (MSG % (subject, subject.replace(b" ", b"-"))).replace(
            b"sender.test", domain)
        return dkim.sign(m, b"s1", domain, self.sender_key.read_bytes()) + m

    def seal(self, msg, results, sealer=b"forwarder.test"):
        """msg with forwarder.test's Authentication-Results and then its
        ARC set, made by dkimpy (RSA: its ARC knows no Ed25519)."""
        # (its field of the hop before is gone, as a receiver takes
        # out those that claim its name)
        msg = (b"Authentication-Results: " + sealer + b"; " + results +
               b"\r\n" + re.sub(rb"(?m)^Authentication-Results: " +
                                re.escape(sealer) + rb";[^\n]*\n", b"", msg))
        head = dkim.arc_sign(msg, b"a1", sealer, self.fwd_key.read_bytes(),
                             sealer, timestamp=1796000000)
        assert head, "dkimpy made no ARC set"
        return b"".join(head) + msg


@pytest.fixture
def arc_world(make_ternd, tmp_path):
    w = ArcWorld(make_ternd, tmp_path)
    yield w
    w.stop()


def send(t, raw, rcpt="vera@localhost"):
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        s.sendmail("someone@sender.test", [rcpt], raw)


def ours(raw):
    """Our Authentication-Results field, unfolded, and its arc= result."""
    import email
    m = email.message_from_bytes(raw)
    mine = [" ".join(v.split()) for v in m.get_all("Authentication-Results",
                                                  [])
            if v.split(";")[0].strip() == "mx.test"]
    assert len(mine) == 1, m.get_all("Authentication-Results")
    got = re.findall(r"\barc=(\w+)", mine[0])
    assert len(got) == 1, mine[0]
    return got[0], mine[0]


def seen(raw):
    return re.search(rb"X-Arc-Seen: ([^\r\n]*)", raw).group(1).decode()


def test_chains_made_by_dkimpy_are_validated(arc_world):
    w = arc_world
    t = w.t
    n = 0

    def got():
        return t.wait_messages("vera", n)[n - 1]

    # no chain: arc=none
    send(t, w.signed(b"plain"))
    n += 1
    res, text = ours(got())
    assert res == "none", text
    assert "smtp.remote-ip=127.0.0.1" in text
    assert seen(got()) == "none oldest=nil [] no-results"

    # one set (cv=none) by forwarder.test: pass
    one = w.seal(w.signed(b"one hop"), b"dkim=pass header.d=sender.test; "
                 b"arc=none")
    send(t, one)
    n += 1
    res, text = ours(got())
    assert res == "pass", text
    assert "(i=1 d=forwarder.test)" in text and "oldest-pass" not in text
    assert seen(got()) == ("pass oldest=0 [1:forwarder.test:none:true:true]"
                           " dkim=pass")

    # a second set on top (cv=pass): pass, oldest-pass 0
    two = w.seal(one, b"arc=pass")
    assert b"i=2" in two and b"cv=pass" in two
    send(t, two)
    n += 1
    res, text = ours(got())
    assert res == "pass" and "header.oldest-pass=0" in text, text
    assert seen(got()).startswith(
        "pass oldest=0 [1:forwarder.test:none:true:true "
        "2:forwarder.test:pass:true:true]")

    # the body changed after the last seal: the newest AMS fails
    send(t, one.replace(b"spaces.", b"spaces!"))
    n += 1
    res, text = ours(got())
    assert res == "fail" and "body hash" in text, text
    assert "oldest=nil" in seen(got())

    # a header the seal covers changed: the seal fails
    send(t, one.replace(b"arc=none", b"arc=pass", 1))
    n += 1
    res, text = ours(got())
    assert res == "fail" and "ARC-Seal" in text, text

    # an incomplete set, a set whose sealer said fail
    send(t, re.sub(rb"ARC-Message-Signature:[^\n]*\n(?:[ \t][^\n]*\n)*",
                   b"", one))
    n += 1
    res, text = ours(got())
    assert res == "fail" and "incomplete" in text, text
    failed = w.seal(one, b"arc=fail")
    assert b"cv=fail" in failed
    send(t, failed)
    n += 1
    res, text = ours(got())
    assert res == "fail" and "cv=fail" in text, text
    assert "arc=pass sets=2 sealer=forwarder.test" in t.log()


def test_a_trusted_sealer_vouches_for_dmarc(arc_world):
    """strict.test says p=reject; a list changed the Subject (DKIM fails)
    and resent it (SPF fails): DMARC fails. Its ARC set says DMARC passed
    when the list got it."""
    w = arc_world
    t = w.t

    def listed(sealer):
        m = w.signed(b"to the list", b"strict.test").replace(
            b"Subject: to the list", b"Subject: [list] to the list")
        return w.seal(m, b"dkim=pass header.d=strict.test; dmarc=pass "
                      b"header.from=strict.test; arc=none", sealer)

    # not trusted (or no chain): the policy holds
    for m in (listed(b"other.test"),
              w.signed(b"x", b"strict.test").replace(b"spaces", b"space")):
        with pytest.raises(smtplib.SMTPDataError) as e:
            send(t, m)
        assert e.value.smtp_code == 550, e.value
        assert b"DMARC policy of strict.test" in e.value.smtp_error
    # trusted: through, with the verdicts as they were
    send(t, listed(b"forwarder.test"))
    raw = t.wait_messages("vera", 1)[0]
    res, text = ours(raw)
    assert res == "pass" and "dmarc=fail" in text and "dkim=fail" in text
    assert ("DMARC fail of strict.test let through: ARC i=1 by "
            "forwarder.test saw a pass") in t.log()


def test_forwarded_mail_is_sealed(arc_world):
    w = arc_world
    t = w.t
    dns = dns_of(w.records)

    # no chain yet: ternd's set is instance 1, cv=none
    send(t, w.signed(b"forward me"), "fwd@localhost")
    msgs = w.peer.wait(1)
    assert len(msgs) == 1 and msgs[0][1] == ["carol@remote.test"]
    raw = msgs[0][2]
    head = raw.split(b"\r\n\r\n")[0].replace(b"\r\n\t", b" ")
    assert head.startswith(b"ARC-Seal: i=1; a=rsa-sha256; cv=none; "
                           b"d=mx.test; s=arc1;"), head[:300]
    assert re.search(rb"ARC-Authentication-Results: i=1; mx.test; dkim=pass"
                     rb" [^\r\n]*header.d=sender.test", head), head
    cv, results, why = dkim.arc_verify(raw, dnsfunc=dns)
    assert cv == dkim.CV_Pass, (why, results)
    assert "arc sealed d=mx.test" in t.log()

    # on top of forwarder.test's chain: instance 2, cv=pass, and the whole
    # chain verifies
    one = w.seal(w.signed(b"forward again"), b"dkim=pass; arc=none")
    send(t, one, "fwd@localhost")
    raw = w.peer.wait(2)[1][2]
    assert re.search(rb"^ARC-Seal: i=2; a=rsa-sha256; cv=pass;", raw), raw[:200]
    cv, results, why = dkim.arc_verify(raw, dnsfunc=dns)
    assert cv == dkim.CV_Pass, (why, results)
    assert [r["instance"] for r in results] == [2, 1]

    # a chain that failed here is sealed cv=fail (only our set signed);
    # dkimpy sees the failure we recorded
    send(t, one.replace(b"spaces.", b"spaces!"), "fwd@localhost")
    raw = w.peer.wait(3)[2][2]
    assert re.search(rb"^ARC-Seal: i=2; a=rsa-sha256; cv=fail;", raw), raw[:200]
    cv, results, why = dkim.arc_verify(raw, dnsfunc=dns)
    assert cv != dkim.CV_Pass

    # an alias with a local and a remote target: only the copy that
    # leaves is sealed
    send(t, w.signed(b"both"), "both@localhost")
    raw = w.peer.wait(4)[3][2]
    assert raw.startswith(b"ARC-Seal: i=1;")
    local = t.wait_messages("vera", 1)[0]
    assert b"ARC-Seal" not in local
    assert ours(local)[0] == "none"


def test_the_sealing_key_is_checked(make_ternd, tmp_path):
    import subprocess
    from test_dkim import TERNCTL
    t = make_ternd(start=False)
    t.write_config('arc = { domain = "mx.test", selector = "s", key = "%s" }\n'
                   % (tmp_path / "missing.key"))
    t.start(expect_fail=True)
    assert "missing.key" in t.log()
    t.write_config('arc = { domain = "mx.test", selector = "s" }\n')
    r = subprocess.run([str(TERNCTL), "-c", str(t.config), "check-config"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "required" in r.stderr
