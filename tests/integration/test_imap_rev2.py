# SPDX-License-Identifier: ISC
"""IMAP4rev2 (RFC 9051), UTF8=ACCEPT (RFC 6855), BINARY (RFC 3516),
MULTIAPPEND (RFC 3502), SAVEDATE (RFC 8514) and "$" as a SEARCH key
(RFC 5182) against a real ternd."""
import datetime
import itertools
import re

from test_imap import connect, deliver, imap, maildir, wait_for  # noqa: F401
from test_imap_condstore import cmd, fill, ok

_tags = itertools.count(1)


def bcmd(m, data):
    """Sends data (bytes, literals inline as LITERAL+) and returns
    (untagged, tagged) as bytes, literals and literal8s read whole."""
    tag = b"B%d" % next(_tags)
    m.send(tag + b" " + data + b"\r\n")
    lines = []
    while True:
        line = m.readline()
        assert line, "connection closed after %r" % lines
        line = line.rstrip(b"\r\n")
        while True:
            lit = re.search(rb"~?\{(\d+)\}$", line)
            if not lit:
                break
            line += m.read(int(lit.group(1)))
            line += m.readline().rstrip(b"\r\n")
        if line.startswith(tag + b" "):
            return lines, line[len(tag) + 1:]
        lines.append(line)


def lit(data, eight=False):
    return (b"~" if eight else b"") + b"{%d+}\r\n" % len(data) + data


def test_rev2_enable_select_search_status(imap):
    fill(imap, 3)
    m = connect(imap)
    caps = m.capability()[1][0].decode().split()
    for c in ("IMAP4rev1", "IMAP4rev2", "UTF8=ACCEPT", "BINARY",
              "MULTIAPPEND", "SAVEDATE"):
        assert c in caps, caps
    # a rev1 session sees RECENT, and \Recent on what arrives meanwhile
    r1 = connect(imap)
    lines, _ = ok(r1, "SELECT INBOX")
    assert "* 0 RECENT" in lines, lines
    deliver(imap, subject="new one")
    assert wait_for(lambda: "* 4 EXISTS" in ok(r1, "NOOP")[0])
    lines, _ = ok(r1, "FETCH 4 FLAGS")
    assert "\\Recent" in lines[0], lines
    ok(r1, "STORE 2 +FLAGS (\\Deleted)")
    lines, _ = ok(r1, "SEARCH DELETED")
    assert lines == ["* SEARCH 2"], lines
    # rev2: no RECENT, no \Recent; SELECT names the folder in a LIST;
    # SEARCH answers with ESEARCH
    lines, _ = ok(m, "ENABLE IMAP4rev2")
    assert lines == ["* ENABLED IMAP4rev2"], lines
    lines, _ = ok(m, "SELECT INBOX")
    assert not [l for l in lines if "RECENT" in l], lines
    assert '* LIST () "/" "INBOX"' in lines, lines
    assert "* 4 EXISTS" in lines, lines
    deliver(imap, subject="newer one")
    assert wait_for(lambda: "* 5 EXISTS" in ok(m, "NOOP")[0])
    assert wait_for(lambda: "* 5 EXISTS" in ok(r1, "NOOP")[0])
    lines, _ = ok(r1, "FETCH 5 FLAGS")
    assert "\\Recent" in lines[0], lines
    r1.logout()
    lines, _ = ok(m, "FETCH 1:* FLAGS")
    assert len(lines) == 5 and not [l for l in lines if "Recent" in l], lines
    lines, tagged = cmd(m, "SEARCH DELETED")
    assert re.fullmatch(r'\* ESEARCH \(TAG "C\d+"\) ALL 2', lines[0]), lines
    assert tagged.startswith("OK")
    lines, _ = ok(m, "UID SEARCH NOT DELETED")
    assert lines[0].endswith(") UID ALL 1,3:5"), lines
    lines, _ = ok(m, "SEARCH SUBJECT nothing-like-this")
    assert re.fullmatch(r'\* ESEARCH \(TAG "C\d+"\)', lines[0]), lines
    # STATUS DELETED (RFC 9051 6.3.11)
    lines, _ = ok(m, "STATUS INBOX (MESSAGES DELETED)")
    assert lines == ['* STATUS "INBOX" (MESSAGES 5 DELETED 1)'], lines
    m.logout()


def test_utf8_names_on_the_wire_and_utf7_on_disk(imap):
    m = connect(imap)
    ok(m, "ENABLE UTF8=ACCEPT")
    lines, tagged = bcmd(m, 'CREATE "Données/Été"'.encode())
    assert tagged.startswith(b"OK"), (lines, tagged)
    # Dovecot's directory name: modified UTF-7 under Maildir++ dots
    root = maildir(imap)
    assert (root / ".Donn&AOk-es.&AMk-t&AOk-" / "cur").is_dir()
    lines, _ = bcmd(m, b'LIST "" "Donn*"')
    names = [l.split(b'"/" ', 1)[1] for l in lines]
    assert names == ['"Données"'.encode(), '"Données/Été"'.encode()], lines
    lines, _ = bcmd(m, 'LIST "Données/" "%"'.encode())
    assert len(lines) == 1 and lines[0].endswith('"Données/Été"'.encode())
    lines, tagged = bcmd(m, 'SELECT "Données/Été"'.encode())
    assert tagged.startswith(b"OK"), tagged
    lines, _ = bcmd(m, 'STATUS "Données" (MESSAGES)'.encode())
    assert lines == ['* STATUS "Données" (MESSAGES 0)'.encode()], lines
    # '&' is just a character for a UTF-8 client
    _, tagged = bcmd(m, b'CREATE "Tom & Jerry"')
    assert tagged.startswith(b"OK")
    assert (root / ".Tom &- Jerry").is_dir()
    # a name that is not UTF-8
    _, tagged = bcmd(m, b'CREATE "bad\xff\xfe"')
    assert tagged.startswith(b"BAD"), tagged
    # APPEND UTF8 (~{n}): a message with a UTF-8 header (RFC 6532)
    msg = "Subject: Grüße\r\nFrom: jörg@example.org\r\n\r\nHallo\r\n" \
        .encode()
    lines, tagged = bcmd(m, 'APPEND "Données" UTF8 ('.encode() +
                         lit(msg, True) + b")")
    assert tagged.startswith(b"OK [APPENDUID "), tagged
    # a rev1 session meanwhile: the same folders in modified UTF-7
    r1 = connect(imap)
    lines, _ = ok(r1, 'LIST "" "*"')
    assert [l for l in lines if l.endswith('"Donn&AOk-es/&AMk-t&AOk-"')]
    assert [l for l in lines if l.endswith('"Tom &- Jerry"')], lines
    lines, _ = ok(r1, 'STATUS "Donn&AOk-es" (MESSAGES)')
    assert lines == ['* STATUS "Donn&AOk-es" (MESSAGES 1)'], lines
    # UTF8 APPEND without UTF8=ACCEPT is refused
    _, tagged = bcmd(r1, b"APPEND INBOX UTF8 (" + lit(msg, True) + b")")
    assert tagged.startswith(b"BAD"), tagged
    r1.logout()
    m.logout()


MIXED = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: parts\r\n"
         b"MIME-Version: 1.0\r\n"
         b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
         b"--XX\r\nContent-Type: application/octet-stream\r\n"
         b"Content-Transfer-Encoding: base64\r\n\r\n"
         b"AAECA/8AaGVsbG8=\r\n"
         b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
         b"Gr=C3=BC=C3=9Fe, a long line =\r\ncontinued=20\r\nend\r\n"
         b"--XX\r\nContent-Type: text/plain\r\n"
         b"Content-Transfer-Encoding: x-frobnicated\r\n\r\n"
         b"???\r\n"
         b"--XX--\r\n")


def test_binary_fetch_and_literal8_append(imap):
    m = connect(imap)
    # APPEND with a literal8 (RFC 3516 4.4)
    lines, tagged = bcmd(m, b"APPEND INBOX " + lit(MIXED, True))
    assert tagged.startswith(b"OK [APPENDUID "), tagged
    ok(m, "SELECT INBOX")
    # base64 decoded: NUL octets, so a literal8
    lines, tagged = bcmd(m, b"FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
    assert tagged.startswith(b"OK"), tagged
    want = b"\x00\x01\x02\x03\xff\x00hello"
    assert (b"BINARY[1] ~{%d}" % len(want)) + want in lines[0], lines
    assert b"BINARY.SIZE[1] %d" % len(want) in lines[0], lines
    # quoted-printable decoded, soft break joined, hard breaks CRLF
    # (the CRLF before a boundary is the boundary's, RFC 2046 5.1.1)
    text = "Grüße, a long line continued \r\nend".encode()
    lines, _ = bcmd(m, b"FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])")
    assert (b"BINARY[2] {%d}" % len(text)) + text in lines[0], lines
    assert b"BINARY.SIZE[2] %d" % len(text) in lines[0], lines
    lines, _ = bcmd(m, b"FETCH 1 (BINARY.PEEK[2]<3.4>)")
    assert b"BINARY[2]<3> {4}" + text[3:7] in lines[0], lines
    # PEEK leaves \Seen alone, BINARY sets it
    lines, _ = bcmd(m, b"FETCH 1 FLAGS")
    assert b"\\Seen" not in lines[0], lines
    lines, _ = bcmd(m, b"FETCH 1 BINARY[2]")
    assert b"\\Seen" in lines[0], lines
    # an encoding not known here: NO [UNKNOWN-CTE], no FETCH answer
    lines, tagged = bcmd(m, b"FETCH 1 BINARY.PEEK[3]")
    assert tagged.startswith(b"NO [UNKNOWN-CTE]"), tagged
    assert not [l for l in lines if b"FETCH" in l], lines
    # BODY[] is unchanged: the stored text as it came
    lines, _ = bcmd(m, b"FETCH 1 BODY.PEEK[1]")
    assert b"AAECA/8AaGVsbG8=" in lines[0], lines
    for bad in (b"FETCH 1 BINARY[1.HEADER]", b"FETCH 1 BINARY[TEXT]",
                b"FETCH 1 BINARY.SIZE[1]<0.1>", b"FETCH 1 BINARY[1..2]",
                b"FETCH 1 BINARY.FROB[1]"):
        _, tagged = bcmd(m, bad)
        assert tagged.startswith(b"BAD"), (bad, tagged)
    m.logout()


def test_multiappend_all_or_nothing(imap):
    imap.stop()
    imap.config.write_text(imap.config.read_text() +
                           "limits = { quota_storage = 10240 }\n")
    imap.start()
    m = connect(imap)
    one = b"Subject: one\r\n\r\nfirst\r\n"
    two = b"Subject: two\r\n\r\nsecond\r\n"
    lines, tagged = bcmd(m, b"APPEND INBOX (\\Seen) " + lit(one) +
                         b' (\\Flagged $Work) "01-Dec-2026 10:00:00 +0000" ' +
                         lit(two))
    assert re.match(rb"OK \[APPENDUID \d+ 1:2\]", tagged), tagged
    ok(m, "SELECT INBOX")
    lines, _ = ok(m, "FETCH 1:* (FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS "
                  "(Subject)])")
    assert "\\Seen" in lines[0] and "one" in lines[0], lines
    assert "\\Flagged" in lines[1] and "$Work" in lines[1], lines
    assert '" 1-Dec-2026 10:00:00 +0000"' in lines[1], lines
    # the third does not fit the quota: none of the three is kept
    big = b"Subject: big\r\n\r\n" + b"z" * 20000 + b"\r\n"
    lines, tagged = bcmd(m, b"APPEND INBOX " + lit(one) + b" " + lit(big) +
                         b" " + lit(two))
    assert tagged.startswith(b"NO [OVERQUOTA]"), tagged
    lines, _ = ok(m, "NOOP")
    lines, _ = ok(m, "STATUS INBOX (MESSAGES UIDNEXT)")
    assert lines == ['* STATUS "INBOX" (MESSAGES 2 UIDNEXT 3)'], lines
    assert len(list((maildir(imap) / "tmp").iterdir())) == 0
    # quota usage is back where it was: two small messages
    lines, _ = ok(m, 'GETQUOTA ""')
    assert lines[0].startswith('* QUOTA "" (STORAGE 1 10'), lines
    # one over APPENDLIMIT is refused before anything is written
    _, tagged = bcmd(m, b"APPEND INBOX " + lit(one) + b" (\\Frob) " +
                     lit(two))
    assert tagged.startswith(b"BAD"), tagged
    for bad in (b"APPEND INBOX", b"APPEND INBOX (\\Seen)",
                b"APPEND INBOX " + lit(one) + b" (\\Seen)"):
        _, tagged = bcmd(m, bad)
        assert tagged.startswith(b"BAD"), (bad, tagged)
    m.logout()


def test_savedate_and_saved_result_as_key(imap):
    fill(imap, 3)
    m = connect(imap)
    ok(m, "SELECT INBOX")
    today = datetime.datetime.now(datetime.timezone.utc)
    day = "%d-%s-%d" % (today.day, today.strftime("%b"), today.year)
    lines, _ = ok(m, "FETCH 1:* SAVEDATE")
    assert len(lines) == 3 and all('SAVEDATE "' in l for l in lines), lines
    lines, _ = ok(m, "SEARCH SAVEDATESUPPORTED SAVEDON %s" % day)
    assert lines == ["* SEARCH 1 2 3"], lines
    lines, _ = ok(m, "SEARCH SAVEDBEFORE %s" % day)
    assert lines == ["* SEARCH"], lines
    lines, _ = ok(m, "SEARCH SAVEDSINCE 1-Jan-2000")
    assert lines == ["* SEARCH 1 2 3"], lines
    # an APPEND with an old INTERNALDATE is still saved today
    assert m.append("INBOX", None, '"01-Jan-2001 00:00:00 +0000"',
                    b"Subject: old\r\n\r\nx\r\n")[0] == "OK"
    ok(m, "NOOP")
    lines, _ = ok(m, "SEARCH BEFORE 1-Jan-2002")
    assert lines == ["* SEARCH 4"], lines
    lines, _ = ok(m, "SEARCH SAVEDON %s" % day)
    assert lines == ["* SEARCH 1 2 3 4"], lines
    # kept across a restart (in the index)
    lines, _ = ok(m, "FETCH 4 SAVEDATE")
    saved = lines[0]
    m.logout()
    imap.stop()
    imap.start()
    m = connect(imap)
    ok(m, "SELECT INBOX")
    lines, _ = ok(m, "FETCH 4 SAVEDATE")
    assert lines == [saved], (lines, saved)
    # "$" as a key (RFC 5182 2.3), alone, combined and as UID's set
    ok(m, "STORE 2,4 +FLAGS (\\Flagged)")
    ok(m, "SEARCH RETURN (SAVE) FLAGGED")
    lines, _ = ok(m, "SEARCH $")
    assert lines == ["* SEARCH 2 4"], lines
    lines, _ = ok(m, "SEARCH OR $ 1")
    assert lines == ["* SEARCH 1 2 4"], lines
    lines, _ = ok(m, "SEARCH NOT $")
    assert lines == ["* SEARCH 1 3"], lines
    lines, _ = ok(m, "UID SEARCH UID $ SUBJECT old")
    assert lines == ["* SEARCH 4"], lines
    m.logout()


def test_index_of_version_2_is_upgraded_in_place(imap):
    import sqlite3
    fill(imap, 2)
    m = connect(imap)
    ok(m, "ENABLE CONDSTORE")
    ok(m, "SELECT INBOX")
    ok(m, "STORE 2 +FLAGS (\\Flagged)")
    before, _ = ok(m, "FETCH 1:* (UID MODSEQ INTERNALDATE)")
    m.logout()
    imap.stop()
    # the index as the version before SAVEDATE wrote it
    db = sqlite3.connect(str(maildir(imap) / "tern-index.sqlite"))
    for q in ("DROP TRIGGER msg_gone", "DROP TABLE cache", "DROP TABLE fts",
              "DROP TABLE ftsdoc", "DROP INDEX msg_base",
              "ALTER TABLE msg DROP COLUMN savedate",
              "ALTER TABLE msg DROP COLUMN fts",
              "ALTER TABLE expunged DROP COLUMN email",
              "ALTER TABLE expunged DROP COLUMN thread",
              "UPDATE meta SET v=2 WHERE k='version'"):
        db.execute(q)
    db.commit()
    db.close()
    imap.start()
    m = connect(imap)
    ok(m, "ENABLE CONDSTORE")
    ok(m, "SELECT INBOX")
    # not made again: the MODSEQs are those it had; the save date of a
    # row that had none is its INTERNALDATE
    after, _ = ok(m, "FETCH 1:* (UID MODSEQ INTERNALDATE SAVEDATE)")
    for b, a in zip(before, after):
        idate = re.search(r'INTERNALDATE ("[^"]+")', b).group(1)
        assert b.rstrip(")") in a and ("SAVEDATE " + idate) in a, (b, a)
    assert not (maildir(imap) / "tern-index.sqlite.broken").exists()
    db = sqlite3.connect(str(maildir(imap) / "tern-index.sqlite"))
    assert db.execute("SELECT v FROM meta WHERE k='version'").fetchone() == (5,)
    db.close()
    m.logout()


def test_index_caches_envelope_structure_and_sort_keys(imap):
    import sqlite3
    import os
    from test_imap_condstore import files_by_uid
    fill(imap, 3)
    m = connect(imap)
    ok(m, "SELECT INBOX")
    want, _ = ok(m, "FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY THREADID)")
    ok(m, "COPY 2 Archive")
    sort, _ = ok(m, "SORT (REVERSE SUBJECT) UTF-8 ALL")
    assert sorted(sort[0].split()[2:]) == ["1", "2", "3"], sort
    m.logout()
    imap.stop()
    db = sqlite3.connect(str(maildir(imap) / "tern-index.sqlite"))
    rows = db.execute("SELECT envelope, structure, body, keys FROM cache"
                      ).fetchall()
    db.close()
    # one row per message, the copy in Archive shares it
    assert len(rows) == 3 and all(all(r) for r in rows), rows
    # prove the answers come from the cache: the files' Subjects are
    # changed behind ternd's back (a Maildir file never changes; this
    # one does only to show where the answer comes from)
    for path in files_by_uid(imap).values():
        text = path.read_bytes().replace(b"Subject: message",
                                         b"Subject: changed")
        st = os.stat(path)
        path.write_bytes(text)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    imap.start()
    m = connect(imap)
    ok(m, "SELECT INBOX")
    got, _ = ok(m, "FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY THREADID)")
    assert got == want, (got, want)
    assert ok(m, "SORT (REVERSE SUBJECT) UTF-8 ALL")[0] == sort
    # a section reads the file itself
    lines, _ = ok(m, "FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject)]")
    assert "changed" in lines[0], lines
    # an expunged message's row goes, unless a copy the index knows
    # still has it (Archive's, once a STATUS looked at it)
    ok(m, "STATUS Archive (MESSAGES)")
    ok(m, "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    ok(m, "EXPUNGE")
    m.logout()
    imap.stop()
    db = sqlite3.connect(str(maildir(imap) / "tern-index.sqlite"))
    assert db.execute("SELECT count(*) FROM cache").fetchone() == (2,)
    db.close()
    imap.start()


def test_index_cache_of_a_whole_folder_in_one_pass(imap):
    import os
    m = connect(imap)
    msgs = b" ".join(lit(b"Subject: n%d\r\nMessage-ID: <%d@x>\r\n\r\nx\r\n"
                         % (i, i)) for i in range(300))
    _, tagged = bcmd(m, b"APPEND INBOX " + msgs)
    assert re.match(rb"OK \[APPENDUID \d+ 1:300\]", tagged), tagged
    ok(m, "SELECT INBOX")
    want, _ = ok(m, "FETCH 1:* (ENVELOPE THREADID)")
    assert len(want) == 300
    m.logout()
    imap.stop()
    for path in (maildir(imap) / "cur").iterdir():
        st = os.stat(path)
        path.write_bytes(path.read_bytes().replace(b"Subject: n",
                                                   b"Subject: z"))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    imap.start()
    m = connect(imap)
    ok(m, "SELECT INBOX")
    got, _ = ok(m, "FETCH 1:* (ENVELOPE THREADID)")
    assert got == want
    m.logout()
