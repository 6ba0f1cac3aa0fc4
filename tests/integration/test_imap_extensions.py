# SPDX-License-Identifier: ISC
"""LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), STATUS=SIZE (RFC
8438) and ESEARCH (RFC 4731) against a real ternd."""
import imaplib
import subprocess

import pytest

from test_imap import TERNCTL, connect, imap, maildir, wait_for  # noqa: F401
from test_imap_condstore import cmd, code, fill, ok


def test_list_extended_and_list_status(imap):
    fill(imap, 2)
    m = connect(imap)
    caps = m.capabilities
    for c in ("LIST-EXTENDED", "LIST-STATUS", "STATUS=SIZE", "ESEARCH"):
        assert c in caps, caps
    ok(m, "CREATE Work/Reports")
    ok(m, "SUBSCRIBE Work/Reports")
    ok(m, "SUBSCRIBE Gone")            # subscribed, never made
    ok(m, "SELECT INBOX")
    ok(m, "COPY 1 Work/Reports")
    # several patterns, STATUS of each selectable folder after its LIST
    lines, _ = ok(m, 'LIST "" (INBOX Work/*) RETURN (STATUS (MESSAGES '
                  'UIDNEXT SIZE) SUBSCRIBED)')
    assert lines[0].startswith("* LIST (") and lines[0].endswith(' "INBOX"')
    assert lines[1].startswith('* STATUS "INBOX" (MESSAGES 2 UIDNEXT 3 SIZE ')
    assert lines[2].startswith("* LIST (") and "Work/Reports" in lines[2] \
        and "\\Subscribed" in lines[2]
    assert lines[3].startswith('* STATUS "Work/Reports" (MESSAGES 1 ')
    assert len(lines) == 4, lines
    size = int(lines[1].split("SIZE ")[1].rstrip(")"))
    lines, _ = ok(m, "STATUS INBOX (SIZE)")
    assert lines == ['* STATUS "INBOX" (SIZE %d)' % size]
    # selection SUBSCRIBED: a subscribed name that does not exist, and
    # with RECURSIVEMATCH the parent of a subscribed folder
    lines, _ = ok(m, 'LIST (SUBSCRIBED) "" "*"')
    gone = [l for l in lines if l.endswith(' "Gone"')]
    assert gone and "\\NonExistent" in gone[0] and "\\Subscribed" in gone[0]
    assert not [l for l in lines if l.endswith(' "Work"')]
    lines, _ = ok(m, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    work = [l for l in lines if '"Work"' in l]
    assert work and "CHILDINFO" in work[0], lines
    # SPECIAL-USE selection: only the folders made for it
    lines, _ = ok(m, 'LIST (SPECIAL-USE) "" "*"')
    assert lines and all("\\Sent" in l or "\\Drafts" in l or "\\Trash" in l
                         or "\\Junk" in l or "\\Archive" in l
                         for l in lines), lines
    for bad in ('LIST (RECURSIVEMATCH) "" "*"', 'LIST (FROB) "" "*"',
                'LIST "" "*" RETURN (FROB)', 'LIST "" "*" RETURN',
                'LIST "" "*" RETURN (STATUS (FROB))',
                "STATUS INBOX (FROB)", "STATUS INBOX ()"):
        _, tagged = cmd(m, bad)
        assert tagged.startswith("BAD"), (bad, tagged)
    m.logout()


def test_esearch(imap):
    fill(imap, 4)
    m = connect(imap)
    ok(m, "SELECT INBOX")
    ok(m, "STORE 2,4 +FLAGS (\\Flagged)")
    lines, tagged = cmd(m, "SEARCH RETURN (MIN MAX COUNT) FLAGGED")
    tag = None
    assert lines[0].startswith('* ESEARCH (TAG "C'), lines
    assert lines[0].endswith(") MIN 2 MAX 4 COUNT 2"), lines
    lines, _ = ok(m, "UID SEARCH RETURN () 1:*")
    assert lines[0].endswith(") UID ALL 1:4"), lines
    lines, _ = ok(m, "SEARCH RETURN (COUNT ALL) DELETED")
    assert lines[0].endswith(") COUNT 0"), lines
    ok(m, "ENABLE CONDSTORE")
    lines, _ = ok(m, "SEARCH RETURN (ALL) CHARSET UTF-8 MODSEQ 1")
    assert " ALL 1:4 MODSEQ " in lines[0], lines
    # the plain form is unchanged
    lines, _ = ok(m, "SEARCH FLAGGED")
    assert lines == ["* SEARCH 2 4"]
    for bad in ("SEARCH RETURN (FROB) ALL", "SEARCH RETURN ALL",
                "SEARCH RETURN (MIN)"):
        _, tagged = cmd(m, bad)
        assert tagged.startswith("BAD"), (bad, tagged)
    assert tag is None
    m.logout()


def test_concurrent_appends_share_commits_and_keep_their_uids(imap):
    import re
    import threading
    got, errors = {}, []

    def client(k):
        try:
            m = connect(imap)
            for i in range(15):
                subject = "c%d-%d" % (k, i)
                msg = ("From: a@localhost\r\nTo: alice@localhost\r\n"
                       "Subject: %s\r\n\r\nbody %s\r\n" % (subject, subject))
                typ, data = m.append("INBOX", "(\\Seen $Work)" if i % 2 else
                                     None, None, msg.encode())
                assert typ == "OK", data
                uid = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
                got[subject] = uid
            m.logout()
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(got) == 120 and len(set(got.values())) == 120
    m = connect(imap)
    ok(m, "SELECT INBOX")
    lines, _ = ok(m, "UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    seen = {}
    for line in lines:
        uid = re.search(r"UID (\d+)", line)
        subj = re.search(r"Subject: (\S+)", line)
        if uid and subj:
            seen[subj.group(1)] = int(uid.group(1))
            odd = int(subj.group(1).split("-")[1]) % 2
            assert ("$Work" in line) == bool(odd), line
    assert seen == got
    m.logout()


class Deflated:
    """Raw IMAP over imaplib's (TLS) socket after COMPRESS DEFLATE."""

    def __init__(self, sock):
        import zlib
        self.sock = sock
        self.z_out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.z_in = zlib.decompressobj(-15)
        self.buf = b""

    def send(self, data):
        import zlib
        self.sock.sendall(self.z_out.compress(data) +
                          self.z_out.flush(zlib.Z_SYNC_FLUSH))

    def until(self, tag):
        """(what came before the tagged line, the tagged line)"""
        while True:
            at = (b"\r\n" + self.buf).find(b"\r\n" + tag + b" ")
            if at >= 0 and self.buf.find(b"\r\n", at) >= 0:
                break
            chunk = self.sock.recv(65536)
            assert chunk, "closed; got %r" % self.buf[-300:]
            self.buf += self.z_in.decompress(chunk)
        head = self.buf[:at]
        end = self.buf.find(b"\r\n", at)
        line = self.buf[at + len(tag) + 1:end]
        self.buf = self.buf[end + 2:]
        return head, line


def test_compress_deflate(imap):
    fill(imap, 3)
    m = connect(imap)
    assert b"COMPRESS=DEFLATE" in m.capability()[1][0]
    sock = m.socket()
    # COMPRESS and, in the same packet, nothing else: then deflated
    m.send(b"z1 COMPRESS DEFLATE\r\n")
    assert m.readline().startswith(b"z1 OK")
    d = Deflated(sock)
    big = "x" * 20000
    # a pipelined burst, a literal and a large body, all deflated
    d.send(b"z2 SELECT INBOX\r\nz3 FETCH 1:* (UID BODY.PEEK[])\r\n"
           b"z4 APPEND INBOX {%d+}\r\n%s\r\nz5 COMPRESS DEFLATE\r\n"
           % (len(big) + 10, b"S: big\r\n\r\n" + big.encode()))
    head, line = d.until(b"z2")
    assert line.startswith(b"OK") and b"* 3 EXISTS" in head
    head, line = d.until(b"z3")
    assert line.startswith(b"OK") and head.count(b" FETCH (") == 3
    head, line = d.until(b"z4")
    assert line.startswith(b"OK [APPENDUID"), (head, line)
    head, line = d.until(b"z5")
    assert line.startswith(b"NO [COMPRESSIONACTIVE]"), line
    d.send(b"z6 UID FETCH 4 (RFC822.SIZE BODY.PEEK[TEXT])\r\n")
    head, line = d.until(b"z6")
    assert line.startswith(b"OK") and big.encode() in head
    d.send(b"z7 LOGOUT\r\n")
    head, line = d.until(b"z7")
    assert b"* BYE" in head and line.startswith(b"OK")
    # a stream that is not deflate: the server ends the connection
    m2 = connect(imap)
    m2.send(b"y1 COMPRESS DEFLATE\r\n")
    assert m2.readline().startswith(b"y1 OK")
    m2.socket().sendall(b"\xff" * 64 + b"garbage\r\n")
    m2.socket().settimeout(10)
    closed = False
    while True:
        try:
            chunk = m2.socket().recv(4096)
        except OSError:
            break
        if not chunk:
            closed = True
            break
    assert closed, "the server kept a broken deflate stream open"
    m3 = connect(imap)          # and carries on for everybody else
    assert m3.noop()[0] == "OK"
    m3.logout()


def test_a_big_fetch_goes_out_in_parts(imap):
    """FETCH 1:* BODY[] of 12 MiB: answered in parts of about 1 MiB as
    the client reads them (TLS, then deflate), every message whole and in
    order, and other commands pipelined behind it answered after it."""
    import hashlib
    m = connect(imap)
    bodies = []
    for i in range(12):
        text = (b"Subject: part %d\r\n\r\n" % i) + \
            hashlib.sha256(b"%d" % i).hexdigest().encode() * 32768 + b"\r\n"
        assert m.append("INBOX", None, None, text)[0] == "OK"
        bodies.append(text)
    m.select("INBOX")
    typ, data = m.fetch("1:*", "(UID BODY.PEEK[])")
    got = [d[1] for d in data if isinstance(d, tuple)]
    assert got == bodies
    # the same deflated, with a command pipelined behind it
    m.send(b"z1 COMPRESS DEFLATE\r\n")
    assert m.readline().startswith(b"z1 OK")
    d = Deflated(m.socket())
    d.send(b"z2 FETCH 1:* (BODY.PEEK[])\r\nz3 NOOP\r\n")
    head, line = d.until(b"z2")
    assert line.startswith(b"OK") and head.count(b" FETCH (") == 12
    for b in bodies:
        assert b in head
    head, line = d.until(b"z3")
    assert line.startswith(b"OK")
    d.send(b"z4 LOGOUT\r\n")
    d.until(b"z4")


def put(m, subject, frm, date, msgid, refs=None, irt=None, body="x"):
    hdr = ("From: %s\r\nTo: alice@localhost\r\nSubject: %s\r\n"
           "Date: %s\r\nMessage-ID: %s\r\n" % (frm, subject, date, msgid))
    if refs:
        hdr += "References: %s\r\n" % refs
    if irt:
        hdr += "In-Reply-To: %s\r\n" % irt
    typ, _ = m.append("INBOX", None, None, (hdr + "\r\n" + body + "\r\n").encode())
    assert typ == "OK"


def test_sort_and_thread(imap):
    m = connect(imap)
    caps = m.capability()[1][0].decode()
    for c in ("SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT",
              "THREAD=REFERENCES"):
        assert c in caps.split(), caps
    # 1 lunch, 2 Re: lunch (reply to 1), 3 budget, 4 Re: Re: lunch
    # (reply to 2), 5 Re: budget (reply to 3, References only), 6 a
    # reply to a message this folder does not have
    put(m, "lunch", "Carol <carol@example.org>",
        "Tue, 01 Dec 2026 09:00:00 +0000", "<1@x>")
    put(m, "Re: lunch", "alice@example.org",
        "Tue, 01 Dec 2026 09:30:00 +0000", "<2@x>", refs="<1@x>")
    put(m, "[team] budget", "bob@example.org",
        "Tue, 01 Dec 2026 08:00:00 +0000", "<3@x>", body="x" * 500)
    put(m, "Re: Re: lunch", "Bob <bob@example.org>",
        "Tue, 01 Dec 2026 10:00:00 +0100", "<4@x>", refs="<1@x> <2@x>")
    put(m, "Re: budget", "dave@example.org",
        "Wed, 02 Dec 2026 08:00:00 +0000", "<5@x>", irt="<3@x>")
    put(m, "Re: gone", "erin@example.org",
        "Wed, 02 Dec 2026 09:00:00 +0000", "<6@x>", refs="<0@x>")
    ok(m, "SELECT INBOX")
    lines, _ = ok(m, "SORT (DATE) UTF-8 ALL")
    # 4 is 09:00 UTC (+0100), the same as 1: seq breaks the tie
    assert lines == ["* SORT 3 1 4 2 5 6"], lines
    lines, _ = ok(m, "SORT (REVERSE DATE) UTF-8 ALL")
    # the sequence number breaks ties, in ascending order even here
    assert lines == ["* SORT 6 5 2 1 4 3"], lines
    lines, _ = ok(m, "SORT (SUBJECT DATE) UTF-8 ALL")
    assert lines == ["* SORT 3 5 6 1 4 2"], lines   # budget, gone, lunch
    lines, _ = ok(m, "SORT (FROM) UTF-8 ALL")
    assert lines == ["* SORT 2 3 4 1 5 6"], lines   # alice bob bob carol ..
    lines, _ = ok(m, "SORT (DISPLAYFROM) UTF-8 ALL")
    # alice@.., bob (name), bob@.., carol (name), dave@.., erin@..
    assert lines == ["* SORT 2 4 3 1 5 6"], lines
    lines, _ = ok(m, "SORT (REVERSE SIZE) UTF-8 FROM bob")
    assert lines == ["* SORT 3 4"], lines
    lines, _ = ok(m, "UID SORT (DATE) US-ASCII SUBJECT lunch")
    assert lines == ["* SORT 1 4 2"], lines
    lines, _ = ok(m, "SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL")
    assert lines[0].endswith(" MIN 3 MAX 6 COUNT 6 ALL 3,1,4,2,5,6"), lines
    lines, _ = ok(m, "THREAD ORDEREDSUBJECT UTF-8 ALL")
    # threads by their first message's date: budget (3), lunch (1), gone
    assert lines == ["* THREAD (3 5)(1 (4)(2))(6)"], lines
    lines, _ = ok(m, "THREAD REFERENCES UTF-8 ALL")
    # 2 under 1, 4 under 2; 5 under 3 by In-Reply-To; 6's parent is
    # missing: it stands alone
    assert lines == ["* THREAD (3 5)(1 2 4)(6)"], lines
    lines, _ = ok(m, "UID THREAD REFERENCES UTF-8 NOT SUBJECT budget")
    assert lines == ["* THREAD (1 2 4)(6)"], lines
    for bad, want in (("SORT (FROB) UTF-8 ALL", "BAD"),
                      ("SORT (REVERSE) UTF-8 ALL", "BAD"),
                      ("SORT DATE UTF-8 ALL", "BAD"),
                      ("SORT (DATE) KOI8-R ALL", "NO [BADCHARSET"),
                      ("THREAD X UTF-8 ALL", "BAD"),
                      ("THREAD REFERENCES UTF-8", "BAD")):
        _, tagged = cmd(m, bad)
        assert tagged.startswith(want), (bad, tagged)
    m.logout()


def test_thread_references_survives_loops_and_duplicates(imap):
    m = connect(imap)
    d = "Tue, 01 Dec 2026 09:00:00 +0000"
    put(m, "a", "x@y", d, "<a@x>", refs="<b@x>")
    put(m, "b", "x@y", d, "<b@x>", refs="<a@x>")          # a loop
    put(m, "c", "x@y", d, "<a@x>", refs="<c@x> <a@x>")    # a duplicate id
    put(m, "d", "x@y", "garbage date", "<d@x>", refs="<d@x>")   # itself
    put(m, "e", "x@y", d, "no angle brackets", refs="<<>> <> <e")
    # many references in one message (more ids than messages)
    put(m, "f", "x@y", d, "<f@x>",
        refs=" ".join("<r%d@x>" % i for i in range(150)))
    ok(m, "SELECT INBOX")
    for alg in ("REFERENCES", "ORDEREDSUBJECT"):
        lines, _ = ok(m, "THREAD %s UTF-8 ALL" % alg)
        assert len(lines) == 1 and lines[0].startswith("* THREAD ("), lines
        nums = sorted(int(x) for x in
                      lines[0][len("* THREAD "):].replace("(", " ")
                      .replace(")", " ").split())
        assert nums == [1, 2, 3, 4, 5, 6], lines
    lines, _ = ok(m, "THREAD REFERENCES UTF-8 SUBJECT nothing-matches")
    assert lines == ["* THREAD"], lines
    lines, _ = ok(m, "SORT (DATE) UTF-8 ALL")
    assert lines[0].startswith("* SORT"), lines
    m.logout()


def test_objectid(imap):
    import re
    m = connect(imap)
    assert "OBJECTID" in m.capability()[1][0].decode().split()
    d = "Tue, 01 Dec 2026 09:00:00 +0000"
    put(m, "lunch", "x@y", d, "<1@x>")
    put(m, "Re: lunch", "x@y", d, "<2@x>", refs="<1@x>")
    put(m, "other", "x@y", d, "<3@x>")
    lines, tagged = ok(m, "CREATE Keep")
    box_id = re.search(r"\[MAILBOXID \((F[0-9a-f]+)\)\]", tagged).group(1)
    lines, _ = ok(m, "SELECT INBOX")
    inbox_id = code(lines, "MAILBOXID").strip("()")
    assert inbox_id.startswith("F") and inbox_id != box_id
    lines, _ = ok(m, "FETCH 1:* (EMAILID THREADID)")
    ids = [re.search(r"EMAILID \((M[0-9a-f]{16})\) THREADID \((T[0-9a-f]{16})\)",
                     l).groups() for l in lines]
    assert len({e for e, t in ids}) == 3
    assert ids[0][1] == ids[1][1] != ids[2][1]          # one thread
    # a flag change or a copy keeps the Email id
    ok(m, "STORE 1 +FLAGS (\\Flagged)")
    ok(m, "COPY 1 Keep")
    lines, _ = ok(m, "STATUS Keep (MAILBOXID MESSAGES)")
    assert "MAILBOXID (%s)" % box_id in lines[0]
    ok(m, "SELECT Keep")
    lines, _ = ok(m, "FETCH 1 (EMAILID)")
    assert ids[0][0] in lines[0]
    # RENAME keeps the MAILBOXID; SEARCH finds by id
    ok(m, "UNSELECT")
    ok(m, "RENAME Keep Kept")
    lines, _ = ok(m, "STATUS Kept (MAILBOXID)")
    assert "MAILBOXID (%s)" % box_id in lines[0]
    ok(m, "SELECT INBOX")
    lines, _ = ok(m, "SEARCH EMAILID %s" % ids[2][0])
    assert lines == ["* SEARCH 3"]
    lines, _ = ok(m, "SEARCH THREADID %s" % ids[0][1])
    assert lines == ["* SEARCH 1 2"]
    m.logout()


def test_quota_for_append_delivery_and_imap(imap):
    import smtplib
    imap.stop()
    imap.config.write_text(imap.config.read_text() +
                           "limits = { quota_storage = 20480, "
                           "quota_messages = 6, "
                           "imap_connections_per_user = 3 }\n")
    imap.start()
    m = connect(imap)
    caps = m.capability()[1][0].decode().split()
    assert "QUOTA" in caps and "QUOTA=RES-STORAGE" in caps
    lines, _ = ok(m, "GETQUOTAROOT INBOX")
    assert lines == ['* QUOTAROOT "INBOX" ""', '* QUOTA "" (STORAGE 0 20 '
                     'MESSAGE 0 6)'], lines
    # APPEND until the storage limit: NO [OVERQUOTA], nothing written
    big = "Subject: big\r\n\r\n" + "y" * 9000 + "\r\n"
    assert m.append("INBOX", None, None, big.encode())[0] == "OK"
    assert m.append("INBOX", None, None, big.encode())[0] == "OK"
    _, tagged = cmd(m, "APPEND INBOX {%d+}\r\n%s" % (len(big), big))
    assert tagged.startswith("NO [OVERQUOTA]"), tagged
    lines, _ = ok(m, 'GETQUOTA ""')
    assert lines[0].startswith('* QUOTA "" (STORAGE 18 20 MESSAGE 2 6)'), lines
    _, tagged = cmd(m, 'SETQUOTA "" (STORAGE 100)')
    assert tagged.startswith("NO"), tagged
    _, tagged = cmd(m, 'GETQUOTA "other"')
    assert tagged.startswith("NO [NONEXISTENT]"), tagged
    # a delivery over quota waits in the queue: 452 4.2.2, then goes in
    # once an expunge made room
    with smtplib.SMTP("127.0.0.1", imap.port) as s:
        s.sendmail("you@example.org", ["alice@localhost"],
                   b"Subject: waits\r\n\r\n" + (b"z" * 70 + b"\r\n") * 50)
    assert wait_for(lambda: "4.2.2" in imap.log())
    assert "mailbox full" in imap.log()
    ok(m, "SELECT INBOX")
    ok(m, "STORE 1 +FLAGS (\\Deleted)")
    ok(m, "EXPUNGE")
    r = subprocess.run([str(TERNCTL), "-c", str(imap.config), "flush"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: len(list((maildir(imap) / "new").iterdir())) +
                    len(list((maildir(imap) / "cur").iterdir())) == 2)
    # at most 3 logged-in sessions per user and address
    others = [connect(imap), connect(imap)]
    with pytest.raises(imaplib.IMAP4.error) as e:
        connect(imap)
    assert "LIMIT" in str(e.value)
    others.pop().logout()
    connect(imap).logout()           # room again
    m.logout()


def test_a_full_mailbox_is_refused_at_rcpt(imap):
    import smtplib
    imap.stop()
    imap.config.write_text(imap.config.read_text() +
                           "limits = { quota_messages = 2 }\n")
    imap.start()
    m = connect(imap)
    for i in range(2):
        assert m.append("INBOX", None, None,
                        b"Subject: %d\r\n\r\nx\r\n" % i)[0] == "OK"
    # counted full: RCPT gets 452 4.2.2, the sender keeps the message
    with smtplib.SMTP("127.0.0.1", imap.port) as s:
        s.ehlo("client.test")
        s.mail("you@example.org")
        code, msg = s.rcpt("alice@localhost")
        assert code == 452 and b"4.2.2" in msg, (code, msg)
        assert s.rcpt("bob@localhost")[0] == 250     # another account
    # room again after an expunge: accepted
    ok(m, "SELECT INBOX")
    ok(m, "STORE 1 +FLAGS (\\Deleted)")
    ok(m, "EXPUNGE")
    with smtplib.SMTP("127.0.0.1", imap.port) as s:
        s.ehlo("client.test")
        s.mail("you@example.org")
        assert s.rcpt("alice@localhost")[0] == 250
    m.logout()


def test_within(imap):
    import time
    m = connect(imap)
    now = time.time()
    for age in (10, 3600 * 24 * 3):
        t = time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(now - age))
        assert m.append("INBOX", None, '"%s"' % t,
                        b"Subject: w\r\n\r\nx\r\n")[0] == "OK"
    ok(m, "SELECT INBOX")
    lines, _ = ok(m, "SEARCH YOUNGER 3600")
    assert lines == ["* SEARCH 1"], lines
    lines, _ = ok(m, "SEARCH OLDER 86400")
    assert lines == ["* SEARCH 2"], lines
    _, tagged = cmd(m, "SEARCH YOUNGER soon")
    assert tagged.startswith("BAD"), tagged
    m.logout()


def test_thread_of_a_long_chain_is_cut_not_overflowed(imap):
    """300 messages each answering the one before (a chain a hostile
    sender can build): THREAD answers, with every message once."""
    m = connect(imap)
    d = "Tue, 01 Dec 2026 09:00:00 +0000"
    # the newest first, so that linking meets whole chains
    for i in reversed(range(300)):
        put(m, "Re: chain", "x@y", d, "<c%d@x>" % i,
            irt="<c%d@x>" % (i - 1) if i else None)
    ok(m, "SELECT INBOX")
    lines, _ = ok(m, "THREAD REFERENCES UTF-8 ALL")
    nums = sorted(int(x) for x in lines[0][len("* THREAD "):]
                  .replace("(", " ").replace(")", " ").split())
    assert nums == list(range(1, 301)), lines[0][:200]
    m.logout()


def test_searchres(imap):
    fill(imap, 5)
    m = connect(imap)
    assert "SEARCHRES" in m.capability()[1][0].decode().split()
    ok(m, "SELECT INBOX")
    ok(m, "STORE 2,4 +FLAGS (\\Flagged)")
    lines, _ = ok(m, "SEARCH RETURN (SAVE) FLAGGED")
    assert lines == [], lines                  # SAVE alone: only OK
    lines, _ = ok(m, "FETCH $ (UID)")
    assert [l.split()[1] for l in lines] == ["2", "4"], lines
    # UID EXPUNGE $ takes only what is deleted among the saved
    ok(m, "STORE 1:5 +FLAGS.SILENT (\\Deleted)")
    lines, _ = ok(m, "UID EXPUNGE $")
    assert lines == ["* 2 EXPUNGE", "* 3 EXPUNGE"], lines   # UIDs 2, 4
    lines, _ = ok(m, "SEARCH DELETED")
    assert lines == ["* SEARCH 1 2 3"], lines
    ok(m, "STORE 1:* -FLAGS.SILENT (\\Deleted)")
    lines, _ = ok(m, "SEARCH RETURN (SAVE MIN) ALL")
    assert lines[0].endswith(" MIN 1"), lines
    lines, _ = ok(m, "UID STORE $ +FLAGS (\\Seen)")
    assert len(lines) == 3, lines
    # a failed SEARCH with SAVE empties "$"; SELECT resets it
    _, tagged = cmd(m, "SEARCH RETURN (SAVE) FROB")
    assert tagged.startswith("BAD")
    lines, _ = ok(m, "FETCH $ (UID)")
    assert lines == [], lines
    ok(m, "SEARCH RETURN (SAVE) ALL")
    ok(m, "SELECT INBOX")
    lines, _ = ok(m, "FETCH $ (UID)")
    assert lines == [], lines
    _, tagged = cmd(m, "SORT RETURN (SAVE) (DATE) UTF-8 ALL")
    assert tagged.startswith("BAD"), tagged
    m.logout()
