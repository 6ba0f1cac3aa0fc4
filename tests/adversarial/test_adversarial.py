# SPDX-License-Identifier: ISC
"""The adversarial suite: what a hostile client or plugin may try. SMTP
smuggling, STARTTLS injection and open-relay tricks (collected here from
the earlier suites), header abuse, path tricks in recipients, NUL and
8-bit bytes in addresses, hostile AUTH, a plugin allocating without
bound. After each, ternd is still serving and nothing leaked onto disk."""
import base64
import os
import smtplib
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..",
                                "integration"))
from conftest import BUILD, Raw, make_ternd, rss_kib, ternd  # noqa: E402,F401
from test_hooks import with_plugins  # noqa: E402
from test_submission import unverified  # noqa: E402

TERNCTL = BUILD / "mta" / "ternctl"


@pytest.fixture
def outsider_ternd(make_ternd):
    """Only 127.0.0.1 is trusted: 127.0.0.2 is the outside world."""
    return make_ternd('trusted_networks = { "127.0.0.1/32" }')


def still_serving(t):
    with smtplib.SMTP("127.0.0.1", t.port, timeout=10) as s:
        s.sendmail("a@example.org", ["alive@localhost"],
                   b"Subject: alive\r\n\r\nx\r\n")
    assert t.wait_messages("alive", 1)


SMUGGLING = {
    "LF.LF": b"\n.\n",
    "LF.CR": b"\n.\r",
    "CR.LF": b"\r.\n",
    "CR.CR": b"\r.\r",
    "LF.CRLF": b"\n.\r\n",
    "CR.CRLF": b"\r.\r\n",
    "CRLF NUL.CRLF": b"\r\n\x00.\r\n",
}


@pytest.mark.parametrize("name", sorted(SMUGGLING))
def test_smuggling_variant_refused(ternd, name):
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<target@localhost>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    smuggled = (b"MAIL FROM:<admin@example.org>\r\nRCPT TO:<target@localhost>\r\n"
                b"DATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n")
    c.send(b"Subject: outer\r\n\r\nhello" + SMUGGLING[name] + smuggled)
    code, lines = c.reply()
    # the real end of data is the last CRLF.CRLF: one reply, a refusal
    assert code == 554 and "5.6.0" in lines[0], lines
    assert c.cmd("NOOP")[0] == 250  # in step: nothing else was answered
    c.cmd("QUIT")
    time.sleep(0.3)
    assert ternd.messages("target") == []


def test_bare_lf_and_nul_in_commands(ternd):
    c = Raw(ternd.port)
    c.send(b"EHLO client.test\n")
    code, lines = c.reply()
    assert code == 500 and "5.5.2" in lines[0]
    c.send(b"NOOP\x00\r\n")
    code, lines = c.reply()
    assert code == 500 and "5.5.2" in lines[0]
    c.send(b"NOOP\rRSET\r\n")
    assert c.reply()[0] == 500
    assert c.cmd("NOOP")[0] == 250


def test_long_command_line(ternd):
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    code, lines = c.cmd("NOOP " + "x" * 600)
    assert code == 500 and "5.5.2" in lines[0]
    assert c.cmd("NOOP")[0] == 250
    # exactly 512 octets with CRLF is allowed
    assert c.cmd("NOOP " + "x" * 505)[0] == 250


def test_long_text_line_and_nul_in_data(ternd):
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    for body, want in [(b"a" * 1001, (500, "5.5.2")),
                       (b"nul\x00here", (554, "5.6.0"))]:
        c.cmd("MAIL FROM:<bob@example.org>")
        c.cmd("RCPT TO:<long@localhost>")
        assert c.cmd("DATA")[0] == 354
        c.send(body + b"\r\n.\r\n")
        code, lines = c.reply()
        assert (code, lines[0][4:9]) == want
    # a 998-octet line is fine
    c.cmd("MAIL FROM:<bob@example.org>")
    c.cmd("RCPT TO:<long@localhost>")
    c.cmd("DATA")
    c.send(b"b" * 998 + b"\r\n.\r\n")
    assert c.reply()[0] == 250
    assert len(ternd.wait_messages("long", 1)) == 1


def test_starttls_injection_is_discarded(ternd):
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    c.send(b"STARTTLS\r\nHELP\r\n")          # HELP rides in the same packet
    code, lines = c.reply()
    assert code == 220
    c.sock = unverified().wrap_socket(c.sock, server_hostname="mx.test")
    c.buf = b""
    code, lines = c.cmd("NOOP")
    assert code == 250, "a command sent before the handshake was answered"
    assert "discarded" in ternd.log()


@pytest.mark.parametrize("rcpt,codes", [
    ("user%other.example@localhost", (553,)),
    ("other.example!user@localhost", (553,)),
    ("@localhost:user@other.example", (550,)),
    ('"user@other.example"@localhost', (553,)),
    ("user@other.example.", (501,)),
    ("USER@OTHER.EXAMPLE", (550,)),
    ("user@[192.0.2.1]", (550,)),
    ("user@[127.0.0.1]", (550,)),
])
def test_no_open_relay_tricks(outsider_ternd, rcpt, codes):
    c = Raw(outsider_ternd.port, source="127.0.0.2")     # not a trusted address
    c.cmd("EHLO outsider.test")
    assert c.cmd("MAIL FROM:<x@outside.example>")[0] == 250
    code, lines = c.cmd("RCPT TO:<%s>" % rcpt)
    assert code in codes, (rcpt, lines)


def test_relay_denied_for_untrusted(make_ternd):
    t = make_ternd('trusted_networks = { "127.0.0.1/32" }')
    c = Raw(t.port, source="127.0.0.2")
    c.cmd("EHLO outsider.test")
    assert c.cmd("MAIL FROM:<x@outside.example>")[0] == 250
    for rcpt in ["victim@remote.example", "u@[127.0.0.1]",
                 "@localhost:victim@remote.example"]:
        code, lines = c.cmd("RCPT TO:<%s>" % rcpt)
        assert lines[0].startswith("550 5.7.1"), (rcpt, lines)
    # trailing dot is no escape either
    assert c.cmd("RCPT TO:<victim@remote.example.>")[0] == 501
    # local recipients are fine, whatever the case
    assert c.cmd("RCPT TO:<Hank@LOCALHOST>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: in\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    assert len(t.wait_messages("hank", 1)) == 1


# --- header abuse -------------------------------------------------------

def data_txn(c, rcpt, data):
    """One transaction on an open Raw client; the final reply code."""
    assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % rcpt)[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(data + b"\r\n.\r\n")
    return c.reply()


@pytest.mark.parametrize("name,data,want", [
    ("10,000 headers", b"".join(b"X-H%d: v\r\n" % i for i in range(10000))
     + b"Subject: many\r\n\r\nbody", "too many header fields"),
    ("folding only", b"Subject: x\r\n" + b" \r\n" * 20000 + b"\r\nbody", None),
    ("fold before any field", b" leading fold\r\n\tagain\r\nSubject: y\r\n"
     b"\r\nbody", None),
    ("1 MB folded header", b"Subject: " + b"w \r\n " * 150000 + b"end\r\n"
     b"\r\nbody", "header section exceeds the size limit"),
    ("colonless header", b"this is not a header\r\nSubject: z\r\n\r\nbody", None),
    ("header without body", b"Subject: only", None),
    ("8-bit and NUL-free junk in headers",
     b"Subject: \xff\xfe\xc3(\r\nFrom: \xe9\xe9\r\n\r\nbody \xff", None),
], ids=lambda v: v if isinstance(v, str) else "data")
def test_header_abuse(ternd, name, data, want):
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    code, lines = data_txn(c, "hdr@localhost", data)
    if want:
        # over limits.max_header_fields / max_header_size: refused, stored nowhere
        assert code == 552 and "5.3.4" in lines[0] and want in lines[0], lines
    else:
        assert code == 250, (name, lines)
    c.cmd("QUIT")
    if code == 250:
        msgs = ternd.wait_messages("hdr", 1)
        assert len(msgs) == 1
    still_serving(ternd)


def test_one_megabyte_header_line(ternd):
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    code, lines = data_txn(c, "hdr@localhost",
                           b"Subject: " + b"A" * (1 << 20) + b"\r\n\r\nb")
    assert code == 500 and "5.5.2" in lines[0], lines
    assert c.cmd("NOOP")[0] == 250
    still_serving(ternd)
    assert ternd.messages("hdr") == []


# --- recipients that try to leave the Maildir tree ------------------------

@pytest.mark.parametrize("rcpt", [
    "../../etc/passwd@localhost", "..@localhost", ".hidden@localhost",
    "a/b@localhost", "a\\b@localhost", '"../x"@localhost',
    '"a/../../b"@localhost', "%2e%2e@localhost", "x@../localhost",
    "x@localhost/../../etc",
])
def test_path_tricks_in_recipients(ternd, rcpt):
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 250
    code, lines = c.cmd("RCPT TO:<%s>" % rcpt)
    if code == 250:
        # accepted only as a plain mailbox name inside the mail directory
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: p\r\n\r\nx\r\n.\r\n")
        c.reply()
    else:
        assert 500 <= code < 600, (rcpt, lines)
    c.cmd("QUIT")
    time.sleep(0.3)
    mail = ternd.data / "mail"
    for root, dirs, files in os.walk(ternd.data):
        for d in dirs:
            p = os.path.realpath(os.path.join(root, d))
            assert p.startswith(str(ternd.data)), p
    for dirpath, dirs, files in os.walk(mail):
        rel = os.path.relpath(dirpath, mail)
        for part in rel.split(os.sep):
            assert part not in ("..",) and "/" not in part
    assert not (ternd.dir / "etc").exists()
    still_serving(ternd)


# --- NUL and 8-bit bytes in addresses -------------------------------------

@pytest.mark.parametrize("cmd", [
    b"MAIL FROM:<b\x00ob@example.org>", b"RCPT TO:<us\x00er@localhost>",
    b"MAIL FROM:<b\xffob@example.org>", b"RCPT TO:<\xc3\xbcser@localhost>",
    b"RCPT TO:<user@loc\xe9lhost>", b"MAIL FROM:<\x1b[31m@example.org>",
    b"RCPT TO:<user@localhost> SIZE=\x00",
], ids=["nul-from", "nul-rcpt", "ff-from", "utf8-rcpt", "8bit-domain",
        "esc-from", "nul-param"])
def test_nul_and_8bit_in_addresses(ternd, cmd):
    c = Raw(ternd.port)
    c.cmd("EHLO client.test")
    if cmd.startswith(b"RCPT"):
        assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 250
    c.send(cmd + b"\r\n")
    code, lines = c.reply()
    assert 500 <= code < 600, (cmd, lines)
    assert c.cmd("NOOP")[0] == 250
    still_serving(ternd)


# --- hostile AUTH ------------------------------------------------------------

@pytest.fixture
def msa(make_ternd, tmp_path):
    import subprocess
    users = tmp_path / "users"
    users.write_text("")
    t = make_ternd(start=False)
    t.write_config('users = "%s"\n' % users)
    r = subprocess.run([str(TERNCTL), "-c", str(t.config), "passwd", "ann"],
                       input="pw\n", capture_output=True, text=True)
    assert r.returncode == 0
    t.start()
    return t


@pytest.mark.parametrize("line,want", [
    (b"AUTH PLAIN " + b"QUFB" * 30000, 500),        # a 120 KB line
    (b"AUTH PLAIN " + b"QUFB" * 120, (501, 535)),     # 480 octets, no NULs
    (b"AUTH PLAIN !!!!not*base64", 501),
    (b"AUTH PLAIN ====", 501),
    (b"AUTH PLAIN AGFubgBwdwBleHRyYQ==", (501, 535)),  # a third NUL field
    (b"AUTH PLAIN " + base64.b64encode(b"root\0ann\0pw"), (535, 501)),
    (b"AUTH LOGIN " + b"A" * 400, (501, 535, 334)),
    (b"AUTH CRAM-MD5", 504),
    (b"AUTH", 501),
], ids=["120KB line", "no NULs", "not base64", "padding only",
        "three NULs", "foreign authzid", "long LOGIN", "unknown mech",
        "no mech"])
def test_hostile_auth(msa, line, want):
    c = Raw(msa.sub_port)
    c.cmd("EHLO client.test")
    assert c.cmd("STARTTLS")[0] == 220
    c.sock = unverified().wrap_socket(c.sock, server_hostname="mx.test")
    c.buf = b""
    c.cmd("EHLO client.test")
    c.send(line + b"\r\n")
    code, lines = c.reply()
    want = want if isinstance(want, tuple) else (want,)
    assert code in want, (line[:40], lines)
    if code == 334:
        c.send(b"*\r\n")                    # cancel
        assert c.reply()[0] == 501
    assert c.cmd("NOOP")[0] == 250
    # a continuation line that is far too long
    c.send(b"AUTH PLAIN\r\n")
    assert c.reply()[0] == 334
    c.send(b"A" * 20000 + b"\r\n")
    assert c.reply()[0] in (500, 501)
    assert c.cmd("NOOP")[0] == 250
    still_serving(msa)


# --- a plugin that allocates without bound -----------------------------------

def test_plugin_allocating_without_bound(make_ternd):
    t = with_plugins(make_ternd, ["hog"], hog="""
        local keep = {}
        return {
          rcpt = function(tx, addr)
            if addr:match("^hog@") then
              local s = "x"
              while true do s = s .. s; keep[#keep + 1] = s end
            end
          end,
          data = function(tx)
            if tx.rcpts[1]:match("^tablehog@") then
              local t = {}
              for i = 1, 1e12 do t[i] = {i, tostring(i)} end
            end
          end,
        }
    """, extra="plugin_memory = 32*1024*1024\nhook_budget_ms = 2000\n")
    rss0 = rss_kib(t.proc.pid)
    for _ in range(3):
        c = Raw(t.port)
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 250
        code, lines = c.cmd("RCPT TO:<hog@localhost>")
        assert code == 451, lines
        assert c.cmd("RSET")[0] == 250
        code, lines = data_txn(c, "tablehog@localhost", b"Subject: t\r\n\r\nx")
        assert code == 451, lines
        c.cmd("QUIT")
    rss1 = rss_kib(t.proc.pid)
    print("\nplugin hog: ternd RSS %d -> %d KiB (cap 32 MiB)" % (rss0, rss1))
    assert rss1 - rss0 < 200 * 1024
    still_serving(t)
    assert "not enough memory" in t.log()
