# SPDX-License-Identifier: ISC
"""CONDSTORE and QRESYNC (RFC 7162) on the store's SQLite index: MODSEQs
that survive restarts and changes made while ternd was down, conditional
STORE, CHANGEDSINCE, VANISHED, and an index that is lost or torn."""
import itertools
import os
import re
import sqlite3
import subprocess

from test_imap import TERNCTL, connect, deliver, imap, maildir, wait_for  # noqa: F401

_tags = itertools.count(1)


def cmd(m, text):
    """Sends one command on imaplib's connection; returns (untagged, tagged)."""
    tag = "C%d" % next(_tags)
    m.send(("%s %s\r\n" % (tag, text)).encode())
    lines = []
    while True:
        line = m.readline()
        assert line, "connection closed after %r" % lines
        line = line.decode("utf-8", "replace").rstrip("\r\n")
        lit = re.search(r"\{(\d+)\}$", line)
        if lit:
            line += m.read(int(lit.group(1))).decode("utf-8", "replace")
            line += m.readline().decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith(tag + " "):
            return lines, line[len(tag) + 1:]
        lines.append(line)


def ok(m, text):
    lines, tagged = cmd(m, text)
    assert tagged.startswith("OK"), (text, lines, tagged)
    return lines, tagged


def code(lines, name):
    for line in lines:
        hit = re.search(r"\[%s ([^\]]*)\]" % name, line)
        if hit:
            return hit.group(1)
    raise AssertionError("no %s in %r" % (name, lines))


def modseqs(lines):
    """{uid: modseq} from FETCH responses."""
    out = {}
    for line in lines:
        u = re.search(r"UID (\d+)", line)
        ms = re.search(r"MODSEQ \((\d+)\)", line)
        if "FETCH" in line and u and ms:
            out[int(u.group(1))] = int(ms.group(1))
    return out


def files_by_uid(t):
    """{uid: path} from the folder's dovecot-uidlist and cur/."""
    root = maildir(t)
    by_base = {p.name.split(":2,")[0]: p for p in (root / "cur").iterdir()}
    out = {}
    for line in (root / "dovecot-uidlist").read_text().splitlines()[1:]:
        uid, base = line.split(" ", 1)[0], line.split(":", 1)[1]
        if base in by_base:
            out[int(uid)] = by_base[base]
    return out


def fill(t, n=3):
    for i in range(n):
        deliver(t, subject="message %d" % i)
    assert t.wait_messages("alice", n, domain="localhost")


def test_modseqs_are_kept_across_restarts(imap):
    fill(imap)
    m = connect(imap)
    assert "CONDSTORE" in m.capabilities and "QRESYNC" in m.capabilities
    lines, _ = ok(m, "ENABLE CONDSTORE")
    assert "* ENABLED CONDSTORE" in lines
    lines, _ = ok(m, "SELECT INBOX")
    h1 = int(code(lines, "HIGHESTMODSEQ"))
    lines, _ = ok(m, "UID FETCH 1:* (FLAGS MODSEQ)")
    before = modseqs(lines)
    assert sorted(before) == [1, 2, 3] and max(before.values()) <= h1
    # a flag change: a new MODSEQ above every other, in the answer
    lines, _ = ok(m, "UID STORE 2 +FLAGS (\\Flagged)")
    ms2 = modseqs(lines)[2]
    assert ms2 > h1
    # CHANGEDSINCE: only what changed
    lines, _ = ok(m, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h1)
    assert list(modseqs(lines)) == [2]
    # SEARCH MODSEQ answers with the highest MODSEQ of the matches
    lines, _ = ok(m, "SEARCH MODSEQ %d" % (h1 + 1))
    assert lines == ["* SEARCH 2 (MODSEQ %d)" % ms2]
    lines, _ = ok(m, "STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
    assert "HIGHESTMODSEQ %d" % ms2 in lines[0]
    m.logout()
    assert (maildir(imap) / "tern-index.sqlite").exists()

    imap.stop()
    imap.start()
    m = connect(imap)
    lines, _ = ok(m, "SELECT INBOX (CONDSTORE)")
    assert int(code(lines, "HIGHESTMODSEQ")) == ms2
    lines, _ = ok(m, "UID FETCH 1:* (MODSEQ)")
    after = modseqs(lines)
    assert after == {**before, 2: ms2}
    # opened from the index without a listing: its file names are right
    lines, _ = ok(m, "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert sum("Subject: message" in l for l in lines) == 3, lines
    m.logout()


def test_conditional_store(imap):
    fill(imap)
    a, b = connect(imap), connect(imap)
    lines, _ = ok(a, "SELECT INBOX (CONDSTORE)")
    seen = int(code(lines, "HIGHESTMODSEQ"))
    ok(b, "SELECT INBOX")
    ok(b, "STORE 1 +FLAGS (\\Answered)")   # after a looked
    lines, tagged = ok(a, "STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS.SILENT "
                          "(\\Seen)" % seen)
    assert tagged.startswith("OK [MODIFIED 1]"), tagged
    # .SILENT, yet the stored messages come back with their MODSEQ
    stored = [l for l in lines if "MODSEQ" in l and "FLAGS" not in l]
    assert [l.split()[1] for l in stored] == ["2", "3"], lines
    lines, _ = ok(a, "FETCH 1:3 (FLAGS)")
    flags = {l.split()[1]: l for l in lines if "FETCH" in l}
    assert "\\Seen" not in flags["1"] and "\\Answered" in flags["1"]
    assert "\\Seen" in flags["2"] and "\\Seen" in flags["3"]
    # UNCHANGEDSINCE 0 fails for everything; bad modifiers are BAD
    _, tagged = ok(a, "UID STORE 1:* (UNCHANGEDSINCE 0) +FLAGS (\\Draft)")
    assert tagged.startswith("OK [MODIFIED 1:3]"), tagged
    for bad in ("STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)",
                "STORE 1 (FROB 1) +FLAGS (\\Seen)",
                "FETCH 1 (FLAGS) (CHANGEDSINCE)",
                "FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)",
                "SELECT INBOX (QRESYNC (1 1))",
                "SELECT INBOX (FROB)"):
        _, tagged = cmd(a, bad)
        assert tagged.startswith("BAD"), (bad, tagged)
    a.logout()
    b.logout()


def test_qresync_after_changes_made_while_ternd_was_down(imap):
    fill(imap, 4)
    m = connect(imap)
    ok(m, "ENABLE QRESYNC")
    lines, _ = ok(m, "SELECT INBOX")
    uv = int(code(lines, "UIDVALIDITY"))
    known = int(code(lines, "HIGHESTMODSEQ"))
    m.logout()
    imap.stop()
    # another program (mutt, mblaze, rsync) while ternd is down: one
    # message deleted, one flagged by renaming its file
    files = files_by_uid(imap)
    assert sorted(files) == [1, 2, 3, 4]
    os.unlink(files[2])
    os.rename(files[3], str(files[3]).split(":2,")[0] + ":2,F")
    imap.start()
    m = connect(imap)
    ok(m, "ENABLE QRESYNC")
    lines, _ = ok(m, "SELECT INBOX (QRESYNC (%d %d 1:4))" % (uv, known))
    assert "* VANISHED (EARLIER) 2" in lines, "\n".join(lines)
    changed = [l for l in lines if "FETCH" in l]
    assert len(changed) == 1 and "UID 3 " in changed[0] and \
        "\\Flagged" in changed[0], lines
    assert int(code(lines, "HIGHESTMODSEQ")) > known
    # UID FETCH ... VANISHED tells the same
    lines, _ = ok(m, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)"
                  % known)
    assert lines[0] == "* VANISHED (EARLIER) 2", lines
    assert list(modseqs(lines)) == [3]
    # a stale UIDVALIDITY: nothing to resync, the client starts over
    lines, _ = ok(m, "SELECT INBOX (QRESYNC (%d %d))" % (uv + 1, known))
    assert not [l for l in lines if "VANISHED" in l or "FETCH" in l]
    assert "* OK [CLOSED] Previous mailbox closed" in lines
    m.logout()


def test_vanished_pushed_to_an_idle_qresync_client(imap):
    fill(imap)
    a = connect(imap)
    ok(a, "ENABLE QRESYNC")
    ok(a, "SELECT INBOX")
    a.send(b"I1 IDLE\r\n")
    assert a.readline().startswith(b"+ ")
    b = connect(imap)
    ok(b, "SELECT INBOX")
    ok(b, "STORE 2 +FLAGS (\\Deleted)")
    seen = []
    while True:
        line = a.readline().decode()
        seen.append(line)
        if "FETCH" in line:
            assert "MODSEQ (" in line and "UID 2 " in line, line
            break
    ok(b, "EXPUNGE")
    while True:
        line = a.readline().decode()
        seen.append(line)
        if "VANISHED" in line or "EXPUNGE" in line:
            assert line.strip() == "* VANISHED 2", seen
            break
    a.send(b"DONE\r\n")
    assert a.readline().startswith(b"I1 OK")
    a.logout()
    b.logout()


def test_a_lost_or_torn_index_is_made_again(imap):
    fill(imap, 3)
    m = connect(imap)
    ok(m, "ENABLE QRESYNC")
    lines, _ = ok(m, "SELECT INBOX")
    uv = int(code(lines, "UIDVALIDITY"))
    known = int(code(lines, "HIGHESTMODSEQ"))
    ok(m, "STORE 1 +FLAGS (\\Deleted)")
    ok(m, "EXPUNGE")
    m.logout()
    imap.stop()
    index = maildir(imap) / "tern-index.sqlite"
    for p in maildir(imap).glob("tern-index.sqlite*"):
        p.unlink()
    imap.start()
    m = connect(imap)
    ok(m, "ENABLE QRESYNC")
    lines, _ = ok(m, "SELECT INBOX (QRESYNC (%d %d))" % (uv, known))
    # the index forgot the expunge: every UID it cannot vouch for
    assert "* VANISHED (EARLIER) 1" in lines, lines
    # MODSEQs start again above any given out before
    assert int(code(lines, "HIGHESTMODSEQ")) > known
    lines, _ = ok(m, "UID FETCH 1:* (UID)")
    assert len([l for l in lines if "FETCH" in l]) == 2
    m.logout()
    imap.stop()
    index.write_bytes(b"this is not an SQLite database" * 100)
    imap.start()
    m = connect(imap)
    lines, _ = ok(m, "SELECT INBOX")
    assert "* 2 EXISTS" in lines
    m.logout()
    assert "unusable" in imap.log()
    assert (maildir(imap) / "tern-index.sqlite.broken").exists()


def index_rows(t):
    db = sqlite3.connect(str(maildir(t) / "tern-index.sqlite"))
    try:
        return db.execute("SELECT count(*) FROM msg").fetchone()[0]
    finally:
        db.close()


def test_ternctl_index_rebuild(imap):
    fill(imap, 3)
    m = connect(imap)
    ok(m, "CREATE Archive/2026")
    ok(m, "SELECT INBOX (CONDSTORE)")
    ok(m, "COPY 1:2 Archive/2026")
    lines, _ = ok(m, "UID FETCH 1:* (MODSEQ)")
    before = modseqs(lines)
    ternctl = [str(TERNCTL), "-c", str(imap.config)]
    # after a reload too (ternd once read a freed configuration here)
    assert subprocess.run(ternctl + ["reload"],
                          capture_output=True).returncode == 0
    r = subprocess.run(ternctl + ["index", "rebuild", "alice"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # INBOX, Archive, Archive/2026 and the special-use folders
    assert re.search(r"index of alice rebuilt: \d+ folder\(s\), 5 message",
                     r.stdout), r.stdout
    assert index_rows(imap) == 5
    # the open session carries on; MODSEQs never go back
    lines, _ = ok(m, "UID STORE 1 +FLAGS (\\Seen)")
    assert modseqs(lines)[1] > max(before.values())
    m.logout()
    for bad in (["index", "rebuild"], ["index", "frob", "alice"]):
        assert subprocess.run(ternctl + bad, capture_output=True).returncode == 2
    r = subprocess.run(ternctl + ["index", "rebuild", "nobody"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "no mail" in r.stderr
    # offline: the files go, and the next start makes them again
    imap.stop()
    r = subprocess.run(ternctl + ["index", "rebuild", "alice"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "removed" in r.stdout, r.stdout + r.stderr
    assert not (maildir(imap) / "tern-index.sqlite").exists()
    imap.start()
    m = connect(imap)
    lines, _ = ok(m, "SELECT INBOX")
    assert "* 3 EXISTS" in lines
    m.logout()
    assert index_rows(imap) == 3


def test_kill_during_a_flag_storm(imap):
    """SIGKILL while two clients flip flags: after the restart every message
    is there once under its UID, flags are ones a client set, MODSEQs and
    HIGHESTMODSEQ did not go back, and the index agrees with the files."""
    import threading
    fill(imap, 30)
    m = connect(imap)
    lines, _ = ok(m, "SELECT INBOX (CONDSTORE)")
    before_top = int(code(lines, "HIGHESTMODSEQ"))
    uids_before = sorted(files_by_uid(imap))
    m.logout()
    stop = threading.Event()
    count = [0]

    def storm(flag):
        try:
            c = connect(imap)
            c.select("INBOX")
            while not stop.is_set():
                c.store("1:*", "+FLAGS", flag)
                c.store("1:*", "-FLAGS", flag)
                count[0] += 2
        except Exception:  # the kill ends it
            pass

    threads = [threading.Thread(target=storm, args=(f,))
               for f in ("\\Flagged", "$Work")]
    for t in threads:
        t.start()
    assert wait_for(lambda: count[0] >= 20, timeout=60)
    imap.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    imap.start()
    m = connect(imap)
    lines, _ = ok(m, "SELECT INBOX (CONDSTORE)")
    assert "* 30 EXISTS" in lines
    assert int(code(lines, "HIGHESTMODSEQ")) >= before_top
    assert sorted(files_by_uid(imap)) == uids_before
    lines, _ = ok(m, "UID FETCH 1:* (FLAGS MODSEQ)")
    for line in lines:
        flags = set(re.search(r"FLAGS \(([^)]*)\)", line).group(1).split())
        assert flags <= {"\\Flagged", "$Work", "\\Recent"}, line
    assert sorted(modseqs(lines)) == uids_before
    m.logout()
    print("\nflag changes before the kill: %d" % count[0])


def test_a_big_first_commit_is_written_beside_the_folder(imap):
    """2,500 messages new to the index: SELECT answers, their rows are
    written beside the folder's queue (a second session's SELECT does
    not wait for them), and they are in the index after a restart."""
    cur = maildir(imap) / "cur"
    cur.mkdir(parents=True, exist_ok=True)
    for i in range(2500):
        (cur / ("1700000%03d.M%dP1.big:2,S" % (i % 1000, i))).write_bytes(
            b"Subject: big %d\n\nx\n" % i)
    m = connect(imap)
    ok(m, "ENABLE CONDSTORE")
    lines, _ = ok(m, "SELECT INBOX")
    assert "* 2500 EXISTS" in lines, lines
    other = connect(imap)
    lines, _ = ok(other, "SELECT INBOX")
    assert "* 2500 EXISTS" in lines, lines
    ok(other, "STORE 7 +FLAGS (\\Flagged)")      # while it may be written
    before, _ = ok(m, "UID FETCH 1:* (FLAGS MODSEQ)")
    before = modseqs(before)
    other.logout()
    m.logout()
    imap.stop()
    db = sqlite3.connect(str(maildir(imap) / "tern-index.sqlite"))
    assert db.execute("SELECT count(*) FROM msg").fetchone() == (2500,)
    db.close()
    imap.start()
    m = connect(imap)
    ok(m, "ENABLE CONDSTORE")
    ok(m, "SELECT INBOX")
    after, _ = ok(m, "UID FETCH 1:* (FLAGS MODSEQ)")
    assert modseqs(after) == before
    assert "\\Flagged" in [l for l in after if "UID 7 " in l][0]
    m.logout()


def test_other_sessions_hear_every_flag_change(imap):
    """Flag changes reach other sessions from the folder's list of recent
    changes, or, when there were more than it keeps, from every message."""
    from test_imap_rev2 import bcmd, lit
    a = connect(imap)
    for start in range(0, 5000, 1000):
        msgs = b" ".join(lit(b"Subject: f%d\r\n\r\nx\r\n" % i)
                         for i in range(start, start + 1000))
        _, tagged = bcmd(a, b"APPEND INBOX " + msgs)
        assert tagged.startswith(b"OK"), tagged
    ok(a, "SELECT INBOX")
    b = connect(imap)
    ok(b, "SELECT INBOX")
    ok(b, "STORE 1:5000 +FLAGS.SILENT (\\Flagged)")     # more than kept
    lines, _ = ok(a, "NOOP")
    fetches = [l for l in lines if " FETCH (" in l and "\\Flagged" in l]
    assert len(fetches) == 5000, len(fetches)
    ok(b, "STORE 7,4000 -FLAGS.SILENT (\\Flagged)")      # from the list
    ok(b, "STORE 4000 +FLAGS.SILENT (\\Seen)")
    lines, _ = ok(a, "NOOP")
    fetches = [l for l in lines if " FETCH (" in l]
    assert len(fetches) == 2, fetches
    assert fetches[0].startswith("* 7 FETCH (UID 7 FLAGS (") and \
        "\\Flagged" not in fetches[0], fetches
    assert "\\Seen" in fetches[1] and "\\Flagged" not in fetches[1]
    b.logout()
    a.logout()


def test_new_files_alone_are_listed_alone(imap):
    """Files that come into new/ (cur/ and the uidlist untouched) are
    taken from a listing of new/ alone: the next UIDs, appended to the
    uidlist; one deleted from new/ is an expunge; a base the folder has
    in cur/ is never a second message; a move to cur/ keeps the UID."""
    import os
    import time
    from test_imap import wait_for
    root = maildir(imap)
    for sub in ("cur", "new", "tmp"):
        (root / ".Work" / sub).mkdir(parents=True, exist_ok=True)
    work = root / ".Work"
    (work / "cur" / "1700000000.M1P1.x:2,S").write_bytes(b"Subject: a\n\nx\n")
    m = connect(imap)
    m.subscribe("Work")

    def status():
        lines, _ = ok(m, "STATUS Work (MESSAGES UIDNEXT)")
        return lines[0]
    assert status().endswith("(MESSAGES 1 UIDNEXT 2)"), status()
    ul_before = (work / "dovecot-uidlist").read_text()
    for i in range(3):
        (work / "new" / ("17000000%02d.M%dP2.y" % (i, i))).write_bytes(
            b"Subject: n%d\n\nx\n" % i)
        time.sleep(0.01)
    # a hard link of the cur/ message into new/: the same message
    os.link(work / "cur" / "1700000000.M1P1.x:2,S",
            work / "new" / "1700000000.M1P1.x")
    assert wait_for(lambda: status().endswith("(MESSAGES 4 UIDNEXT 5)")), \
        status()
    ul = (work / "dovecot-uidlist").read_text()
    assert ul.startswith(ul_before) and ul.count("\n") == 5, ul  # appended
    (work / "new" / "1700000000.M1P1.x").unlink()
    (work / "new" / "1700000001.M1P2.y").unlink()          # UID 3
    assert wait_for(lambda: status().endswith("(MESSAGES 3 UIDNEXT 5)")), \
        status()
    os.rename(work / "new" / "1700000002.M2P2.y",
              work / "cur" / "1700000002.M2P2.y:2,F")
    ok(m, "SELECT Work")
    lines, _ = ok(m, "UID FETCH 1:* FLAGS")
    got = sorted(l.split("UID ")[1].split()[0] for l in lines)
    assert got == ["1", "2", "4"], lines
    assert "\\Flagged" in [l for l in lines if "UID 4 " in l][0], lines
    m.logout()


def test_a_change_by_another_program_amid_our_own_is_seen(imap):
    """Our own renames are not listed for again; one by another program
    in between still is (its inotify event asks, or ours then does)."""
    from test_imap import wait_for
    fill(imap, 4)
    a = connect(imap)
    ok(a, "SELECT INBOX")
    b = connect(imap)
    ok(b, "SELECT INBOX")
    for round_ in range(3):
        ok(b, "STORE 1:4 -FLAGS.SILENT (\\Seen \\Answered)")
        ok(a, "NOOP")
        ok(b, "STORE 1,3 +FLAGS.SILENT (\\Answered)")   # ours
        paths = files_by_uid(imap)
        p = paths[2]                                    # another's
        p.rename(p.with_name(p.name.split(":2,")[0] + ":2,S"))
        ok(b, "STORE 4 +FLAGS.SILENT (\\Answered)")     # ours again

        def seen():
            lines, _ = ok(a, "FETCH 2 FLAGS")
            return "\\Seen" in lines[0]
        assert wait_for(seen), round_
        lines, _ = ok(b, "FETCH 2 FLAGS")
        assert "\\Seen" in lines[0], lines
    a.logout()
    b.logout()
