# SPDX-License-Identifier: ISC
"""SEARCH TEXT and BODY on the decoded text of messages, from the store's
full-text index (SQLite FTS5, trigram) where it has them and from the
files where it does not, with the same answers either way."""
import os
import sqlite3

from test_imap import connect, imap, maildir  # noqa: F401
from test_imap_condstore import files_by_uid, ok
from test_imap_rev2 import bcmd, lit

MESSAGES = [
    # 1: base64 text part and an attachment
    b"From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    b"TWluZCB0aGUgWmVicmEgY3Jvc3Npbmcu\r\n"           # Mind the Zebra crossing.
    b"--b\r\nContent-Type: application/pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    b"c2VjcmV0d29yZA==\r\n"                           # secretword
    b"--b--\r\n",
    # 2: an encoded-word subject, a quoted-printable body
    b"From: b@example.org\r\nSubject: =?utf-8?q?Caf=C3=A9_menu?=\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=C3=BC=C3=9Fe, 50% off to=\r\nday\r\n",
    # 3: ISO-8859-1, 8bit
    b"From: c@example.org\r\nSubject: plain\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\n"
    b"caf\xe9 au lait\r\n",
]


def search(m, q):
    lines, _ = ok(m, "SEARCH " + q)
    return lines[0].split()[2:]


def test_text_and_body_on_decoded_text(imap):
    m = connect(imap)
    _, tagged = bcmd(m, b"APPEND INBOX " + b" ".join(lit(x)
                                                   for x in MESSAGES))
    assert tagged.startswith(b"OK"), tagged
    ok(m, "SELECT INBOX")
    cases = [("BODY zebra", ["1"]), ("BODY ZEBRA", ["1"]),
             ("BODY secretword", []),             # an attachment
             ("TEXT parts", ["1"]), ("BODY parts", []),
             ('TEXT "Café menu"', ["2"]),          # a decoded subject
             ('SUBJECT "Café"', ["2"]),
             ('BODY "Grüße"', ["2"]), ("BODY today", ["2"]),  # soft break
             ('BODY "café au"', ["3"]),            # Latin-1 made UTF-8
             ('BODY "50%"', ["2"]),                # LIKE's wildcard
             ("BODY au", ["3"]),                   # shorter than a trigram
             ("OR BODY zebra BODY lait", ["1", "3"]),
             ("NOT BODY zebra", ["2", "3"])]
    for q, want in cases:
        assert search(m, q) == want, q
    db = sqlite3.connect(str(maildir(imap) / "tern-index.sqlite"))
    assert db.execute("SELECT count(*) FROM ftsdoc").fetchone() == (3,)
    db.close()
    # from the index now: a body changed behind ternd's back (a Maildir
    # file never changes; this one does only to show where answers come
    # from) still answers with what was indexed, also after a restart
    path = files_by_uid(imap)[1]
    st = os.stat(path)
    path.write_bytes(path.read_bytes().replace(
        b"TWluZCB0aGUgWmVicmEgY3Jvc3Npbmcu", b"SGlwcG8="))     # Hippo
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert search(m, "BODY zebra") == ["1"]
    assert search(m, "BODY hippo") == []
    m.logout()
    imap.stop()
    imap.start()
    m = connect(imap)
    ok(m, "SELECT INBOX")
    assert search(m, "BODY zebra") == ["1"]
    for q, want in cases[2:]:
        assert search(m, q) == want, q
    # the last copy expunged: its text leaves the index
    ok(m, "STORE 1 +FLAGS.SILENT (\\Deleted)")
    ok(m, "EXPUNGE")
    m.logout()
    imap.stop()
    db = sqlite3.connect(str(maildir(imap) / "tern-index.sqlite"))
    assert db.execute("SELECT count(*) FROM ftsdoc").fetchone() == (2,)
    assert db.execute("SELECT count(*) FROM fts").fetchone() == (2,)
    db.close()
    imap.start()


def test_search_without_the_index_answers_the_same(imap):
    m = connect(imap)
    _, tagged = bcmd(m, b"APPEND INBOX " + b" ".join(lit(x)
                                                   for x in MESSAGES))
    assert tagged.startswith(b"OK"), tagged
    m.logout()
    imap.stop()
    # an index that cannot be opened: every answer comes from the files
    idx = maildir(imap) / "tern-index.sqlite"
    for p in maildir(imap).glob("tern-index.sqlite*"):
        p.unlink()
    idx.mkdir()       # not a database, and not to be set aside either
    aside = maildir(imap) / "tern-index.sqlite.broken"
    (aside / "x").mkdir(parents=True)
    imap.start()
    m = connect(imap)
    ok(m, "SELECT INBOX")
    assert search(m, "BODY zebra") == ["1"]
    assert search(m, "BODY secretword") == []
    assert search(m, 'TEXT "Café menu"') == ["2"]
    assert search(m, 'BODY "café au"') == ["3"]
    m.logout()
    imap.stop()
    assert idx.is_dir() and "warning: store: index" in imap.log()
    idx.rmdir()
    imap.start()


def test_a_searched_folder_is_indexed_while_idle(imap):
    import re
    from test_imap import wait_for
    m = connect(imap)
    n = 2100                      # more than one SEARCH indexes itself
    for start in range(0, n, 700):
        msgs = b" ".join(lit(b"Subject: s%d\r\n\r\nword%d here\r\n" % (i, i))
                         for i in range(start, min(n, start + 700)))
        _, tagged = bcmd(m, b"APPEND INBOX " + msgs)
        assert tagged.startswith(b"OK"), tagged
    ok(m, "SELECT INBOX")
    # the answer is whole at once, from the index and the files together
    assert search(m, "BODY word2099") == ["2100"]
    assert search(m, 'BODY "word7 "') == ["8"]
    db = sqlite3.connect(str(maildir(imap) / "tern-index.sqlite"))

    def indexed():
        return db.execute("SELECT count(*) FROM ftsdoc").fetchone()[0]
    # the rest goes in while the folder is idle
    assert wait_for(lambda: indexed() == n, timeout=120), indexed()
    db.close()
    assert search(m, "BODY word2099") == ["2100"]
    lines, _ = ok(m, "SEARCH RETURN (COUNT) BODY here")
    assert re.search(r"COUNT %d$" % n, lines[0]), lines
    m.logout()
