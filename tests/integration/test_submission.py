# SPDX-License-Identifier: ISC
"""Submission (RFC 6409): AUTH PLAIN/LOGIN under TLS (RFC 4954), the
sender a user may use, the MSA fix-ups, no open relay."""
import email
import smtplib
import ssl
import subprocess

import pytest

from conftest import BUILD, Raw, free_port

TERNCTL = BUILD / "mta" / "ternctl"


def unverified():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def start_msa(make_ternd, tmp_path, settings="", sub="a"):
    users = tmp_path / ("users-" + sub)
    users.write_text("# user:hash\n")
    sport = free_port()
    t = make_ternd(start=False, sub=sub)
    t.write_config('users = "%s"\ntrusted_networks = { "127.0.0.1/32" }\n%s\n'
                   % (users, settings))
    t.config.write_text(t.config.read_text().replace(
        'role = "submission" },', 'role = "submission" },\n'
        '  { addr = "127.0.0.1:%d", role = "submissions" },' % sport))
    t.write_config = lambda *a: None
    for user, pw in (("alice", "s3cret pass"), ("bob@example.test", "bobpw")):
        r = subprocess.run([str(TERNCTL), "-c", str(t.config), "passwd", user],
                           input=pw + "\n", capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert users.stat().st_mode & 0o077 == 0
    t.start()
    t.sport = sport
    return t


@pytest.fixture
def msa(make_ternd, tmp_path):
    return start_msa(make_ternd, tmp_path)


def login(t, user="alice", pw="s3cret pass", mech=None):
    s = smtplib.SMTP("127.0.0.1", t.sub_port, local_hostname="client.test")
    s.starttls(context=unverified())
    s.ehlo()
    if mech == "LOGIN":
        s.user, s.password = user, pw
        s.auth("LOGIN", s.auth_login)
    else:
        s.login(user, pw)
    return s


def test_auth_plain_and_login_under_tls(msa):
    for mech in (None, "LOGIN"):
        s = login(msa, mech=mech)
        s.sendmail("alice@localhost", ["carl@localhost"],
                   b"From: alice@localhost\r\nTo: carl@localhost\r\nSubject: hi\r\n\r\nx\r\n")
        s.quit()
    msgs = msa.wait_messages("carl", 2)
    assert len(msgs) == 2 and b"with ESMTPSA id" in msgs[0]
    assert "authenticated user=alice" in msa.log()


def test_auth_needs_tls_and_the_right_password(msa):
    c = Raw(msa.sub_port)
    code, lines = c.cmd("EHLO client.test")
    assert not any(l[4:].startswith("AUTH") for l in lines)
    code, lines = c.cmd("AUTH PLAIN AGFsaWNlAHMzY3JldCBwYXNz")
    assert code == 538
    for user, pw in (("alice", "wrong"), ("nobody", "whatever")):
        s = smtplib.SMTP("127.0.0.1", msa.sub_port, local_hostname="client.test")
        s.starttls(context=unverified())
        s.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login(user, pw)
        assert e.value.smtp_code == 535
        s.quit()
    assert "authentication failed user=nobody client=127.0.0.1" in msa.log()


def test_submission_requires_auth(msa):
    s = smtplib.SMTP("127.0.0.1", msa.sub_port, local_hostname="client.test")
    s.starttls(context=unverified())
    s.ehlo()
    code, msg = s.mail("alice@localhost")
    assert code == 530 and b"5.7.0" in msg
    s.quit()


def test_implicit_tls_port_with_auth(msa):
    s = smtplib.SMTP_SSL("127.0.0.1", msa.sport, local_hostname="client.test",
                         context=unverified())
    s.login("bob@example.test", "bobpw")
    s.sendmail("bob@example.test", ["dora@localhost"],
               b"From: bob@example.test\r\nTo: dora@localhost\r\n\r\nx\r\n")
    s.quit()
    assert len(msa.wait_messages("dora", 1)) == 1


def test_sender_must_be_the_users_own(msa):
    s = login(msa)
    code, msg = s.mail("bob@example.test")
    assert code == 553 and b"not owned" in msg
    s.rset()
    assert s.mail("alice@example.test")[0] == 250   # any local domain
    s.rset()
    s.quit()
    s = login(msa, "bob@example.test", "bobpw")
    assert s.mail("bob@localhost")[0] == 553          # bob is one address
    s.quit()


def test_plus_addresses_are_the_users_own(msa):
    s = login(msa)
    assert s.mail("alice+lists@localhost")[0] == 250
    s.rset()
    assert s.mail("alice+@localhost")[0] == 250
    s.rset()
    assert s.mail("alicex@localhost")[0] == 553
    s.rset()
    assert s.mail("+alice@localhost")[0] == 553
    s.quit()
    s = login(msa, "bob@example.test", "bobpw")
    assert s.mail("bob+x@example.test")[0] == 250
    s.quit()


def submit(t, sender, from_header, rcpt="gail@localhost", user="alice",
           pw="s3cret pass"):
    """Sends as user with this From: field; the 250 or the refusal."""
    s = login(t, user, pw)
    try:
        s.sendmail(sender, [rcpt], ("From: %s\r\nTo: %s\r\nSubject: f\r\n"
                                    "\r\nx\r\n" % (from_header, rcpt)).encode())
        return 250, b""
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error
    finally:
        s.quit()


def test_from_header_is_the_users_own_by_default(msa):
    ok = ["alice@localhost", "Alice <alice@localhost>",
          '"Alice, the one" <alice+news@example.test>',
          "alice@localhost (Alice)", "ALICE@LOCALHOST"]
    for f in ok:
        assert submit(msa, "alice@localhost", f)[0] == 250, f
    bad = ["bob@example.test", "Alice <ceo@bank.test>",
           '"alice@localhost" <ceo@bank.test>',
           "alice@localhost, ceo@bank.test", "(alice@localhost) ceo@bank.test"]
    for f in bad:
        code, text = submit(msa, "alice@localhost", f)
        assert code == 550 and b"5.7.1" in text and b"not owned" in text, f
    code, text = submit(msa, "alice@localhost", "not an address")
    assert code == 550 and b"5.6.0" in text
    assert "may not use From: ceo@bank.test (submission_from=strict)" in msa.log()
    assert len(msa.wait_messages("gail", len(ok))) == len(ok)


def test_submission_from_envelope_and_none(make_ternd, tmp_path):
    t = start_msa(make_ternd, tmp_path, 'submission_from = "envelope"', "e")
    assert submit(t, "alice+x@localhost", "alice+x@localhost")[0] == 250
    # the envelope sender, not just any of the user's addresses
    assert submit(t, "alice+x@localhost", "alice@localhost")[0] == 550
    t = start_msa(make_ternd, tmp_path, 'submission_from = "none"', "n")
    assert submit(t, "alice@localhost", "Someone <ceo@bank.test>")[0] == 250


def test_hooks_may_allow_other_senders(make_ternd, tmp_path):
    pdir = tmp_path / "plugins"
    pdir.mkdir()
    (pdir / "roles.lua").write_text("""
        return {
          -- alice may also send as the help desk
          mail = function(tx, addr)
            if tx.session.user == "alice" and addr == "help@localhost" then
              return "accept"
            end
          end,
          -- and a newsletter tool may put anything in From:
          data = function(tx, msg)
            if msg:header("X-Newsletter") then return "accept" end
          end,
        }
    """)
    t = start_msa(make_ternd, tmp_path,
                  'plugin_path = { "%s" }\nplugins = { "roles" }' % pdir, "h")
    # the envelope the mail hook allowed, and a From: equal to it
    assert submit(t, "help@localhost", "Help Desk <help@localhost>")[0] == 250
    assert submit(t, "help@localhost", "other@bank.test")[0] == 550
    s = login(t)
    s.sendmail("alice@localhost", ["gail@localhost"],
               b"From: Big News <news@bank.test>\r\nTo: gail@localhost\r\n"
               b"X-Newsletter: 1\r\n\r\nx\r\n")
    s.quit()
    assert len(t.wait_messages("gail", 2)) == 2


def test_authenticated_users_may_relay(msa):
    s = login(msa)
    s.mail("alice@localhost")
    assert s.rcpt("someone@far.example")[0] == 250
    s.quit()


def test_msa_fixups(msa):
    s = login(msa)
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail("alice@localhost", ["eve@localhost"], b"To: eve@localhost\r\n\r\nx\r\n")
    assert e.value.smtp_code == 550 and b"From" in e.value.smtp_error
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail("alice@localhost", ["eve@localhost"], b"From: alice@localhost\r\n\r\nx\r\n")
    assert e.value.smtp_code == 550
    s.sendmail("alice@localhost", ["eve@localhost", "hidden@localhost"],
               b"From: alice@localhost\r\nTo: eve@localhost\r\n"
               b"Bcc: hidden@localhost\r\nSubject: fix me\r\n\r\nbody\r\n")
    s.quit()
    for who in ("eve", "hidden"):
        m = email.message_from_bytes(msa.wait_messages(who, 1)[0])
        assert m["Bcc"] is None
        assert m["Date"] and m["Message-ID"].endswith("@mx.test>")


def test_swaks_submission(msa):
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1:%d" % msa.sub_port, "--tls",
         "--auth", "LOGIN", "--auth-user", "alice",
         "--auth-password", "s3cret pass", "--from", "alice@localhost",
         "--to", "finn@localhost", "--helo", "client.test"],
        capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout[-2000:]
    assert "235 2.7.0" in r.stdout
    assert len(msa.wait_messages("finn", 1)) == 1


def test_passwd_replaces_and_reload_applies(msa):
    r = subprocess.run([str(TERNCTL), "-c", str(msa.config), "passwd", "alice"],
                       input="new one\n", capture_output=True, text=True)
    assert r.returncode == 0 and "changed" in r.stdout
    assert subprocess.run([str(TERNCTL), "-c", str(msa.config), "reload"],
                          capture_output=True).returncode == 0
    login(msa, "alice", "new one").quit()
    with pytest.raises(smtplib.SMTPAuthenticationError):
        login(msa, "alice", "s3cret pass")


def test_failure_limit_per_address(msa):
    s = smtplib.SMTP("127.0.0.1", msa.sub_port, local_hostname="client.test")
    s.starttls(context=unverified())
    s.ehlo()
    codes = []
    for _ in range(12):
        code, _ = s.docmd("AUTH", "PLAIN AGFsaWNlAHdyb25n")   # alice / wrong
        codes.append(code)
        if code == 421:
            break
    assert 535 in codes and 454 in codes, codes     # then: try again later
    s.close()
    s = smtplib.SMTP("127.0.0.1", msa.sub_port, local_hostname="client.test")
    s.starttls(context=unverified())
    s.ehlo()
    code, _ = s.docmd("AUTH", "PLAIN AGFsaWNlAHMzY3JldCBwYXNz")  # right one
    assert code == 454                              # still blocked
    s.close()


def coalesced_starttls_ehlo(port):
    """STARTTLS, then the client's last handshake flight (TLS 1.3
    Finished) and its EHLO in one segment, as GnuTLS clients (msmtp,
    neomutt) send them. Returns the EHLO reply's lines."""
    import socket
    sock = socket.create_connection(("127.0.0.1", port), 10)
    f = sock.makefile("rb")

    def reply():
        lines = []
        while True:
            line = f.readline().rstrip(b"\r\n").decode()
            lines.append(line)
            if line[3:4] != "-":
                return lines
    reply()
    sock.sendall(b"EHLO client.test\r\n")
    reply()
    sock.sendall(b"STARTTLS\r\n")
    assert reply()[0].startswith("220")
    ctx = unverified()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            if out.pending:
                sock.sendall(out.read())
            data = sock.recv(65536)
            assert data, "server closed during the handshake"
            inc.write(data)
    # the Finished flight is still in out: the EHLO joins it
    tls.write(b"EHLO client.test\r\n")
    sock.sendall(out.read())
    text = b""
    while not text.endswith(b"\r\n") or text.split(b"\r\n")[-2][3:4] == b"-":
        try:
            text += tls.read(65536)
        except ssl.SSLWantReadError:
            data = sock.recv(65536)
            assert data, "server closed before answering EHLO"
            inc.write(data)
    sock.close()
    return text.decode().split("\r\n")[:-1]


def test_ehlo_in_the_same_segment_as_the_tls_finished(msa):
    lines = coalesced_starttls_ehlo(msa.sub_port)
    assert lines[0].startswith("250-")
    words = [l[4:] for l in lines]
    assert "STARTTLS" not in words, lines
    assert any(w.startswith("AUTH ") for w in words), lines


def test_msmtp_sends_on_submission(msa, tmp_path):
    """msmtp (GnuTLS) on 587: STARTTLS, AUTH, the message delivered."""
    import shutil
    if shutil.which("msmtp") is None:
        pytest.fail("msmtp is not installed (scripts/deps test installs it)")
    rc = tmp_path / "msmtprc"
    rc.write_text(
        "defaults\n"
        "account tern\n"
        "host 127.0.0.1\n"
        "port %d\n"
        "domain client.test\n"
        "tls on\n"
        "tls_starttls on\n"
        "tls_certcheck off\n"
        "auth plain\n"
        "user alice\n"
        "password s3cret pass\n"
        "from alice@localhost\n"
        "logfile %s\n" % (msa.sub_port, tmp_path / "msmtp.log"))
    rc.chmod(0o600)
    msg = (b"From: alice@localhost\r\nTo: dora@localhost\r\n"
           b"Subject: from msmtp\r\n\r\nsent by msmtp\r\n")
    r = subprocess.run(["msmtp", "-C", str(rc), "-a", "tern",
                        "dora@localhost"], input=msg, capture_output=True,
                       timeout=30)
    assert r.returncode == 0, (r.stderr, msa.log()[-2000:])
    msgs = msa.wait_messages("dora", 1)
    assert len(msgs) == 1 and b"sent by msmtp" in msgs[0]
    assert b"with ESMTPSA id" in msgs[0]
