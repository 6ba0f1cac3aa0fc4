# SPDX-License-Identifier: ISC
"""CHUNKING (RFC 3030) on the server: BDAT chunks framed by their sizes
alone (a line "." or a leading dot is message text), chunks split
anywhere (a CRLF across two), pipelined with the envelope, each answered
250 and the LAST one with the queue id; refused BDATs still have their
octets read, so the session stays in step; the same limits as DATA
(size, bare LF) answered at the LAST chunk."""
import pytest

from conftest import Raw


def envelope(c, rcpt="vera@localhost"):
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % rcpt)[0] == 250


def test_chunking_is_offered(make_ternd):
    t = make_ternd()
    c = Raw(t.port)
    code, lines = c.cmd("EHLO client.test")
    assert code == 250 and any(l[4:] == "CHUNKING" for l in lines)
    assert not any("BINARYMIME" in l for l in lines)
    c.cmd("QUIT")


def test_chunks_frame_the_message(make_ternd):
    t = make_ternd()
    c = Raw(t.port)
    envelope(c)
    msg = (b"From: a@sender.test\r\nTo: vera@localhost\r\nSubject: chunks"
           b"\r\n\r\nfirst line\r\n.\r\n..two dots stay two\r\n"
           b".one dot stays\r\nlast line\r\n")
    cut = msg.index(b"\r\n.\r\n") + 1          # between CR and LF
    c.send(b"BDAT %d\r\n" % cut + msg[:cut])
    code, lines = c.reply()
    assert code == 250 and lines[0] == "250 2.0.0 %d octets received" % cut
    rest = msg[cut:]
    c.send(b"BDAT %d LAST\r\n" % len(rest) + rest)
    code, lines = c.reply()
    assert code == 250 and "queued as" in lines[0], lines
    raw = t.wait_messages("vera", 1)[0]
    body = raw.split(b"\n\n", 1)[1]
    assert body == (b"first line\n.\n..two dots stay two\n.one dot stays\n"
                    b"last line\n")
    assert b"Subject: chunks\n" in raw and b"\r" not in raw
    c.cmd("QUIT")


def test_pipelined_chunks_and_an_empty_last(make_ternd):
    t = make_ternd()
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    head = b"Subject: piped\r\n\r\n"
    body = b"no final line end"
    c.send(b"MAIL FROM:<a@sender.test>\r\nRCPT TO:<vera@localhost>\r\n"
           b"BDAT %d\r\n%sBDAT %d\r\n%sBDAT 0 LAST\r\nNOOP\r\n"
           % (len(head), head, len(body), body))
    got = [c.reply() for _ in range(6)]
    assert [g[0] for g in got] == [250, 250, 250, 250, 250, 250], got
    assert "queued as" in got[4][1][0]
    raw = t.wait_messages("vera", 1)[0]
    assert raw.endswith(b"\n\nno final line end\n")
    c.cmd("QUIT")


def test_refused_chunks_are_read_and_the_session_goes_on(make_ternd):
    t = make_ternd("limits = { max_message_size = 2000 }")
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    # no transaction: 503, after the 5 octets (which are not a command)
    c.send(b"BDAT 5\r\nQUIT\n")
    assert c.reply()[1][0].startswith("503 5.5.1")
    assert c.cmd("NOOP")[0] == 250
    # DATA after BDAT; RSET drops the transfer
    envelope(c)
    c.send(b"BDAT 4\r\nab\r\n")
    assert c.reply()[0] == 250
    assert c.cmd("DATA")[1][0].startswith("503 5.5.1 Error: DATA after BDAT")
    assert c.cmd("RSET")[0] == 250
    c.send(b"BDAT 2 LAST\r\nx\n")
    assert c.reply()[1][0].startswith("503")
    # over the size limit: read to the end, refused at LAST, then fine
    envelope(c)
    big = b"x" * 1000 + b"\r\n"
    for _ in range(3):
        c.send(b"BDAT %d\r\n" % len(big) + big)
        assert c.reply()[0] == 250
    c.send(b"BDAT 0 LAST\r\n")
    code, lines = c.reply()
    assert code == 552, lines
    # a bare LF in a chunk: refused as DATA would be
    envelope(c)
    c.send(b"BDAT 9 LAST\r\nbare\nlf\r\n")
    code, lines = c.reply()
    assert code == 554 or code == 550, lines
    assert c.cmd("NOOP")[0] == 250
    assert t.wait_messages("vera", 0) == []
    c.cmd("QUIT")


@pytest.mark.parametrize("line", [b"BDAT", b"BDAT x", b"BDAT 10 FIRST",
                                  b"BDAT -1", b"BDAT 123456789012345678901"])
def test_a_size_that_cannot_be_read_ends_the_session(make_ternd, line):
    t = make_ternd()
    c = Raw(t.port)
    envelope(c)
    c.send(line + b"\r\n")
    assert c.reply()[1][0].startswith("501 5.5.4")
    assert c.closed()


def test_tern_sends_bdat_to_a_server_with_chunking(make_ternd, tmp_path):
    """Tern to Tern: the next hop offers CHUNKING, so the message goes as
    one BDAT LAST chunk, leading dots and a "." line as they are (DATA to
    servers without it: test_outbound's aiosmtpd peers)."""
    import smtplib
    from peers import Unbound
    far = make_ternd(start=False, sub="far")
    far.write_config('domains = { "far.test" }\n')
    far.start()
    dns = Unbound(tmp_path, ["far.test. MX 10 mx.far.test.",
                             "mx.far.test. A 127.0.0.1"])
    try:
        near = make_ternd(start=False, sub="near")
        near.write_config('resolver = "%s"\nsmtp_client = { port = %d }\n'
                          % (dns.address, far.port))
        near.start()
        msg = (b"From: a@localhost\r\nTo: u@far.test\r\nSubject: dots\r\n"
               b"\r\n.leading dot\r\n.\r\n..two\r\nend\r\n")
        with smtplib.SMTP("127.0.0.1", near.port) as s:
            s.sendmail("a@localhost", ["u@far.test"], msg)
        raw = far.wait_messages("u", 1, domain="far.test")[0]
        assert raw.split(b"\n\n", 1)[1] == b".leading dot\n.\n..two\nend\n"
        assert "via=BDAT" in far.log()
        assert "via=DATA" not in far.log()
    finally:
        dns.stop()
