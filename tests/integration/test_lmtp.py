# SPDX-License-Identifier: ISC
"""LMTP (RFC 2033) on a loopback listener (role "lmtp"), so that a site
can keep Postfix or Exim as its MTA and hand local mail to Tern's store:
LHLO (not EHLO/HELO), only local recipients, one reply per accepted
recipient after DATA or BDAT LAST, Received "with LMTP"; swaks with
--protocol LMTP as the client."""
import subprocess

from conftest import Raw, free_port


def lmtp_ternd(make_ternd, extra=""):
    port = free_port()
    t = make_ternd(start=False)
    t.write_config(extra)
    t.config.write_text(t.config.read_text().replace(
        'role = "submission" },', 'role = "submission" },\n'
        '  { addr = "127.0.0.1:%d", role = "lmtp" },' % port))
    t.write_config = lambda *a: None
    t.start()
    return t, port


def test_lmtp_answers_per_recipient(make_ternd):
    t, port = lmtp_ternd(make_ternd, "limits = { max_recipients = 3 }")
    c = Raw(port)
    assert c.greeting[0] == 220 and "LMTP" in c.greeting[1][0]
    assert c.cmd("EHLO mta.test")[1][0].startswith("500 5.5.1")
    assert c.cmd("HELO mta.test")[0] == 500
    code, lines = c.cmd("LHLO mta.test")
    assert code == 250 and any("PIPELINING" in l for l in lines)
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<vera@localhost>")[0] == 250
    assert c.cmd("RCPT TO:<walt@example.test>")[0] == 250
    # final delivery only: nothing is relayed, even from loopback
    assert c.cmd("RCPT TO:<x@elsewhere.test>")[1][0].startswith("550 5.1.1")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: by lmtp\r\n\r\nhello\r\n.\r\n")
    first, second = c.reply(), c.reply()
    assert first[0] == 250 and second[0] == 250, (first, second)
    assert c.cmd("NOOP")[0] == 250          # nothing else was pending
    raw = t.wait_messages("vera", 1)[0]
    assert b"with LMTP" in raw and b"by lmtp" in raw
    assert len(t.wait_messages("walt", 1, domain="example.test")) == 1
    # a refused message: the refusal once per recipient too
    c.cmd("MAIL FROM:<a@sender.test>")
    c.cmd("RCPT TO:<vera@localhost>")
    c.cmd("RCPT TO:<walt@example.test>")
    c.send(b"BDAT 9 LAST\r\nbare\nlf\r\n")
    got = [c.reply(), c.reply()]
    assert [g[0] for g in got] == [got[0][0]] * 2 and got[0][0] >= 500, got
    assert c.cmd("NOOP")[0] == 250
    c.cmd("QUIT")


def test_swaks_delivers_over_lmtp(make_ternd):
    t, port = lmtp_ternd(make_ternd)
    r = subprocess.run(["swaks", "--protocol", "LMTP", "--server",
                        "127.0.0.1", "--port", str(port), "--from",
                        "a@sender.test", "--to",
                        "vera@localhost,walt@example.test", "--helo",
                        "mta.test", "--header", "Subject: swaks lmtp",
                        "--body", "via LMTP"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("<-  250 2.0.0 Ok: queued as") == 2, r.stdout
    assert b"swaks lmtp" in t.wait_messages("vera", 1)[0]
    assert len(t.wait_messages("walt", 1, domain="example.test")) == 1


def test_lmtp_listens_only_on_loopback(make_ternd):
    import subprocess as sp
    from test_dkim import TERNCTL
    t = make_ternd(start=False)
    t.config.write_text(t.config.read_text().replace(
        'role = "submission" },', 'role = "submission" },\n'
        '  { addr = "0.0.0.0:%d", role = "lmtp" },' % free_port()))
    r = sp.run([str(TERNCTL), "-c", str(t.config), "check-config"],
               capture_output=True, text=True)
    assert r.returncode != 0 and "LMTP only on a loopback" in r.stderr
