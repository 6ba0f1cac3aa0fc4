# SPDX-License-Identifier: ISC
"""IMAP (RFC 3501 + IDLE, UIDPLUS, MOVE, ...) with Python's imaplib and raw
sockets against a real ternd, on the store shared with SMTP delivery."""
import imaplib
import os
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BUILD, free_port

TERNCTL = BUILD / "mta" / "ternctl"


def unverified():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture
def imap(make_ternd):
    t = make_ternd(start=False)
    t.imap_port = free_port()
    t.imaps_port = free_port()
    t.config.write_text(t.config.read_text().replace(
        'role = "submission" },', 'role = "submission" },\n'
        '  { addr = "127.0.0.1:%d", role = "imap" },\n'
        '  { addr = "127.0.0.1:%d", role = "imaps" },'
        % (t.imap_port, t.imaps_port)))
    t.write_config = lambda *a: None
    for user, pw in (("alice", "alice pw"), ("bob", "bob pw")):
        r = subprocess.run([str(TERNCTL), "-c", str(t.config), "passwd", user],
                           input=pw + "\n", capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    t.start()
    return t


def connect(t, user="alice", pw="alice pw"):
    m = imaplib.IMAP4("127.0.0.1", t.imap_port, timeout=20)
    m.starttls(ssl_context=unverified())
    m.login(user, pw)
    return m


def deliver(t, rcpt="alice@localhost", subject="hello", body="First message."):
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        s.sendmail("you@example.org", [rcpt],
                   ("From: You <you@example.org>\r\nTo: %s\r\n"
                    "Subject: %s\r\n\r\n%s\r\n" % (rcpt, subject, body)).encode())


def maildir(t, user="alice"):
    return t.data / "mail" / "localhost" / user


def wait_for(cond, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_login_needs_tls_and_the_right_password(imap):
    m = imaplib.IMAP4("127.0.0.1", imap.imap_port, timeout=20)
    assert "LOGINDISABLED" in m.capabilities and "STARTTLS" in m.capabilities
    with pytest.raises(imaplib.IMAP4.error):
        m.login("alice", "alice pw")
    m.starttls(ssl_context=unverified())
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login("alice", "wrong")
    assert "AUTHENTICATIONFAILED" in str(e.value)
    typ, data = m.login("alice", "alice pw")
    assert typ == "OK" and b"IDLE" in data[0] and b"UIDPLUS" in data[0]
    m.logout()
    # AUTHENTICATE PLAIN with SASL-IR
    m = imaplib.IMAP4("127.0.0.1", imap.imap_port, timeout=20)
    m.starttls(ssl_context=unverified())
    typ, _ = m.authenticate("PLAIN", lambda _: b"\0bob\0bob pw")
    assert typ == "OK"
    m.logout()
    log = imap.log()
    assert "imap" in log and "login user=bob" in log and "login failed user=alice" in log
    assert wait_for(lambda: "logout client=127.0.0.1 user=bob" in imap.log())


def test_read_flag_search_copy_move_expunge(imap):
    # one after the other: deliveries run in parallel, and UIDs follow
    # the order the files arrived in
    deliver(imap, subject="one")
    assert len(imap.wait_messages("alice", 1, domain="localhost")) == 1
    deliver(imap, subject="two", body="needle in here")
    assert len(imap.wait_messages("alice", 2, domain="localhost")) == 2
    m = connect(imap)
    typ, data = m.list()
    names = [d.decode() for d in data]
    assert any('\\Sent) "/" "Sent"' in n for n in names)
    assert any('"INBOX"' in n for n in names)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"2"]
    typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE ENVELOPE)")
    assert typ == "OK" and b'"one"' in data[0] and b'"two"' in data[1]
    assert b"UID 1 " in data[0] and b"UID 2 " in data[1]
    # RFC822.SIZE is the CRLF size of what BODY[] returns
    size = int(data[0].split(b"RFC822.SIZE ")[1].split(b" ")[0])
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert len(data[0][1]) == size and data[0][1].count(b"\r\n") > 3
    typ, data = m.search(None, "BODY", "needle")
    assert data == [b"2"]
    typ, data = m.uid("SEARCH", None, "SUBJECT", "one")
    assert data == [b"1"]
    typ, data = m.search(None, "UNSEEN")
    assert data == [b"1 2"]
    m.fetch("1", "(BODY[TEXT])")             # sets \Seen
    typ, data = m.search(None, "SEEN")
    assert data == [b"1"]
    typ, data = m.store("2", "+FLAGS", "(\\Flagged Work)")
    assert b"\\Flagged" in data[0] and b"Work" in data[0]
    # the file name carries the flags, dovecot-keywords the keyword
    files = sorted(os.listdir(maildir(imap) / "cur"))
    assert files[0].endswith(":2,S") and files[1].endswith(":2,Fa")
    assert (maildir(imap) / "dovecot-keywords").read_text() == "0 Work\n"
    typ, data = m.copy("1", "Archive")
    assert typ == "OK"
    typ, data = m.uid("MOVE", "2", "Trash")
    assert typ == "OK"
    assert "COPYUID" in str(m.untagged_responses.get("OK", b""))
    typ, data = m.select("Trash")
    assert data == [b"1"]
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Flagged" in data[0] and b"Work" in data[0]
    m.store("1", "+FLAGS", "\\Deleted")
    typ, data = m.expunge()
    assert data == [b"1"]
    typ, data = m.status("Archive", "(MESSAGES UNSEEN UIDNEXT)")
    assert b"MESSAGES 1" in data[0] and b"UNSEEN 0" in data[0]
    m.logout()


def test_append_uidplus_and_uids_survive_a_restart(imap):
    m = connect(imap)
    msg = b"From: alice@localhost\r\nSubject: draft\r\n\r\nnot yet\r\n"
    typ, data = m.append("Drafts", "(\\Draft \\Seen)", None, msg)
    assert typ == "OK" and b"APPENDUID" in data[0]
    uidvalidity, uid = data[0].split(b"[APPENDUID ")[1].split(b"]")[0].split()
    m.select("Drafts")
    typ, data = m.uid("FETCH", uid.decode(), "(FLAGS BODY.PEEK[])")
    assert data[0][1] == msg and b"\\Draft" in data[0][0]
    typ, data = m.append("Nosuch", None, None, msg)
    assert typ == "NO" and b"TRYCREATE" in data[0]
    m.logout()
    ul = (maildir(imap) / ".Drafts" / "dovecot-uidlist").read_text()
    assert ul.startswith("3 V%s N" % uidvalidity.decode())
    imap.stop()
    imap.start()
    m = connect(imap)
    typ, data = m.select("Drafts")
    assert data == [b"1"]
    assert m.untagged_responses["UIDVALIDITY"] == [uidvalidity]
    typ, data = m.uid("FETCH", uid.decode(), "(UID)")
    assert b"UID " + uid in data[0]
    m.logout()


def test_folders_create_rename_delete_subscribe(imap):
    m = connect(imap)
    assert m.create("Projects/Tern")[0] == "OK"
    assert m.create("Projects/Tern")[0] == "NO"
    typ, data = m.list('""', "Projects*")
    text = b" ".join(data)
    assert b'(\\HasChildren) "/" "Projects"' in text
    assert b'"Projects/Tern"' in text
    assert (maildir(imap) / ".Projects.Tern" / "maildirfolder").exists()
    assert m.rename("Projects", "Work")[0] == "OK"
    typ, data = m.list('""', "%")
    assert b'"Work"' in b" ".join(data) and b"Projects" not in b" ".join(data)
    assert (maildir(imap) / ".Work.Tern").is_dir()
    assert m.subscribe("Work/Tern")[0] == "OK"
    typ, data = m.lsub('""', "*")
    assert data == [b'(\\HasNoChildren) "/" "Work/Tern"']
    assert (maildir(imap) / "subscriptions").read_text() == "V\t2\n\nWork\tTern\n"
    assert m.delete("Work/Tern")[0] == "OK"
    assert not (maildir(imap) / ".Work.Tern").exists()
    # modified UTF-7 names, as directories too
    assert m.create("Entw&APw-rfe")[0] == "OK"
    assert (maildir(imap) / ".Entw&APw-rfe").is_dir()
    # names that would leave the tree, or the folder scheme
    for bad in ("../x", "a/../b", ".hidden", "a.b", "/abs", "x//y", "bad&utf7",
                "INBOX/child"):
        typ, data = m.create(bad)
        assert typ == "NO", bad
    typ, data = m.select("../../bob")
    assert typ == "NO"
    m.logout()


def test_idle_sees_deliveries_others_and_files(imap):
    deliver(imap, subject="first")
    assert imap.wait_messages("alice", 1, domain="localhost")
    a = connect(imap)
    a.select("INBOX")
    sock = a.socket()
    tag = b"I1"
    sock.sendall(tag + b" IDLE\r\n")
    f = sock.makefile("rb")
    assert f.readline().startswith(b"+ ")

    def expect(want, timeout=15):
        sock.settimeout(timeout)
        seen = []
        while True:
            line = f.readline()
            assert line, "closed; saw %r" % seen
            seen.append(line)
            if want in line:
                return line

    # an SMTP delivery: seen without any scan interval
    deliver(imap, subject="second")
    expect(b"* 2 EXISTS")
    # another session's flag change
    b = connect(imap)
    b.select("INBOX")
    b.store("1", "+FLAGS", "\\Flagged")
    line = expect(b"FETCH")
    assert b"UID 1 " in line and b"\\Flagged" in line
    # another program: a file dropped into new/, one renamed in cur/
    new = maildir(imap) / "new" / "1700000000.M1P1.other,S=30"
    tmp = maildir(imap) / "tmp" / "x"
    tmp.write_bytes(b"Subject: dropped\n\nfrom outside\n")
    os.rename(tmp, new)
    expect(b"* 3 EXISTS")
    # expunge by the other session
    b.store("2", "+FLAGS", "\\Deleted")
    b.expunge()
    expect(b"* 2 EXPUNGE")
    b.logout()
    sock.sendall(b"DONE\r\n")
    expect(tag + b" OK")
    # the dropped file kept one UID and moved to cur/
    typ, data = a.fetch("2", "(UID BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert b"dropped" in data[0][1]
    a.logout()
    assert not list((maildir(imap) / "new").iterdir())


def raw(t):
    s = socket.create_connection(("127.0.0.1", t.imap_port), 10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    return s, f


def test_bad_input(imap):
    s, f = raw(imap)
    for line, want in ((b"a1 SELECT INBOX\r\n", b"a1 BAD"),
                       (b"a2 FROB\r\n", b"a2 BAD unknown command"),
                       (b"a3 LOGIN (unbalanced\r\n", b"a3 BAD"),
                       (b"a4 NOOP\n", b"* BAD Lines end in CRLF"),
                       (b" NOOP\r\n", b"* BAD"),
                       (b"a5 LOGIN {999999999999}\r\n", b"a5 NO [TOOBIG]"),
                       (b"a6 LIST " + b"(" * 10000 + b")" * 10000 + b"\r\n",
                        b"a6 BAD"),
                       (b"a7 CAPABILITY\r\n", b"* CAPABILITY")):
        s.sendall(line)
        got = f.readline()
        assert got.startswith(want), (line[:40], got)
    f.readline()                                  # a7 OK
    # a literal that lies about its length: it waits for more, then times
    # out or the client gives up; the server stays up for others
    s.sendall(b"a8 LOGIN {5}\r\n")
    assert f.readline().startswith(b"+")
    s.close()
    # too many bad commands: BYE
    s, f = raw(imap)
    s.sendall(b"".join(b"x%d FROB\r\n" % i for i in range(25)))
    lines = [f.readline() for _ in range(22)]
    assert any(l.startswith(b"* BYE Too many bad commands") for l in lines)
    s.close()
    m = connect(imap)
    assert m.noop()[0] == "OK"
    m.logout()


def test_a_user_sees_only_their_own_tree(imap):
    deliver(imap, rcpt="bob@localhost", subject="for bob")
    assert imap.wait_messages("bob", 1, domain="localhost")
    m = connect(imap)
    typ, data = m.list('""', "*")
    assert b"bob" not in b" ".join(data)
    typ, data = m.select("INBOX")
    assert data == [b"0"]
    m.logout()
    b = connect(imap, "bob", "bob pw")
    assert b.select("INBOX")[1] == [b"1"]
    b.logout()


def tree(root):
    """{folder: sorted [(Subject, flags)]} of a Maildir++ tree (mbsync's
    Verbatim layout: each folder a plain Maildir under root)."""
    import email
    out = {}
    for d, dirs, files in os.walk(root):
        if os.path.basename(d) not in ("cur", "new"):
            continue
        folder = os.path.relpath(os.path.dirname(d), root)
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                subj = email.message_from_bytes(fh.read())["Subject"]
            flags = f.split(":2,")[1] if ":2," in f else ""
            flags = "".join(c for c in flags if c.isupper())
            out.setdefault(folder, []).append((subj, flags))
    return {k: sorted(v) for k, v in out.items() if v}


def server_tree(t, user="alice"):
    m = connect(t, user, user + " pw")
    out = {}
    typ, data = m.list('""', "*")
    for line in data:
        name = line.decode().rsplit(' "/" ', 1)[1].strip('"')
        typ, d = m.select('"%s"' % name, readonly=True)
        if int(d[0]) == 0:
            continue
        typ, d = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])")
        msgs = []
        for item in d:
            if not isinstance(item, tuple):
                continue
            subj = item[1].decode().split(":", 1)[1].strip()
            fl = item[0].decode()
            letters = "".join(l for f, l in (("\\Draft", "D"),
                              ("\\Flagged", "F"), ("\\Answered", "R"),
                              ("\\Seen", "S"), ("\\Deleted", "T")) if f in fl)
            msgs.append((subj, letters))
        out[name] = sorted(msgs)
    m.logout()
    return out


def test_mbsync_two_way(imap, tmp_path):
    """isync's mbsync: the tree comes down, local changes go up, and both
    sides end the same."""
    import shutil
    if shutil.which("mbsync") is None:
        pytest.fail("mbsync is missing (scripts/deps test installs isync)")
    deliver(imap, subject="one")
    deliver(imap, subject="two")
    assert len(imap.wait_messages("alice", 2)) == 2
    local = tmp_path / "local"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        "IMAPAccount tern\nHost 127.0.0.1\nPort %d\nUser alice\n"
        "Pass \"alice pw\"\nSSLType STARTTLS\nCertificateFile %s\n\n"
        "IMAPStore tern-remote\nAccount tern\n\n"
        "MaildirStore tern-local\nPath %s/\nInbox %s/INBOX\n"
        "SubFolders Verbatim\n\n"
        "Channel tern\nFar :tern-remote:\nNear :tern-local:\nPatterns *\n"
        "Create Both\nExpunge Both\nSyncState *\n"
        % (imap.imap_port, imap.data / "tls" / "cert.pem", local, local))

    def sync():
        r = subprocess.run(["mbsync", "-c", str(rc), "-a"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr + imap.log()[-2000:]

    sync()
    assert tree(local)["INBOX"] == [("one", ""), ("two", "")]
    # locally: read one, flag two, a new message in Archive
    cur = local / "INBOX" / "cur"
    new = local / "INBOX" / "new"
    for d in (cur, new):
        for f in os.listdir(d):
            path = d / f
            msg = path.read_bytes()
            base = f.split(":2,")[0]
            flags = "S" if b"Subject: one" in msg else "F"
            os.rename(path, cur / (base + ":2," + flags))
    arch = local / "Archive"
    (arch / "cur").mkdir(parents=True, exist_ok=True)
    (arch / "cur" / "1700000000.M1P1.local:2,S").write_bytes(
        b"From: alice@localhost\nSubject: kept\n\nold mail\n")
    sync()
    s = server_tree(imap)
    assert s["INBOX"] == [("one", "S"), ("two", "F")]
    assert s["Archive"] == [("kept", "S")]
    # on the server: delete one; the next sync deletes it locally
    m = connect(imap)
    m.select("INBOX")
    typ, data = m.search(None, "SUBJECT", "one")
    m.store(data[0].decode(), "+FLAGS", "\\Deleted")
    m.expunge()
    m.logout()
    sync()
    assert tree(local)["INBOX"] == [("two", "F")]
    assert tree(local) == {k: v for k, v in server_tree(imap).items()}


def test_offlineimap_one_shot_sync(imap, tmp_path):
    """offlineimap3 over implicit TLS (imaps; it pins the self-signed
    certificate by fingerprint): down, then a local change up."""
    import hashlib
    import shutil
    if shutil.which("offlineimap") is None:
        pytest.fail("offlineimap is missing (scripts/deps test installs "
                    "offlineimap3)")
    deliver(imap, subject="for offlineimap")
    assert imap.wait_messages("alice", 1)
    der = ssl.PEM_cert_to_DER_cert((imap.data / "tls" / "cert.pem").read_text())
    local = tmp_path / "oi"
    rc = tmp_path / "offlineimaprc"
    rc.write_text(
        "[general]\naccounts = tern\nmetadata = %s/meta\n"
        "[Account tern]\nlocalrepository = local\nremoterepository = remote\n"
        "[Repository local]\ntype = Maildir\nlocalfolders = %s\n"
        "[Repository remote]\ntype = IMAP\nremotehost = 127.0.0.1\n"
        "remoteport = %d\nremoteuser = alice\nremotepass = alice pw\n"
        "ssl = yes\ncert_fingerprint = %s\n"
        % (tmp_path, local, imap.imaps_port, hashlib.sha512(der).hexdigest()))

    def sync():
        r = subprocess.run(["offlineimap", "-c", str(rc), "-o", "-u", "basic"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "ERROR" not in r.stdout + r.stderr, \
            r.stdout[-3000:] + r.stderr[-2000:]

    sync()
    assert tree(local)["INBOX"] == [("for offlineimap", "")]
    # read it locally; and file a message into Archive
    for d in ("new", "cur"):
        for f in os.listdir(local / "INBOX" / d):
            os.rename(local / "INBOX" / d / f, local / "INBOX" / "cur" /
                      (f.split(":2,")[0] + ":2,S"))
    arch = local / "Archive" / "new"
    (arch / "x").parent.mkdir(parents=True, exist_ok=True)
    (arch / "1700000000.M1P1.local").write_bytes(
        b"From: alice@localhost\nSubject: archived\n\nold\n")
    sync()
    s = server_tree(imap)
    assert s["INBOX"] == [("for offlineimap", "S")]
    assert s["Archive"] == [("archived", "")]
    assert tree(local) == s


def test_kill_during_appends_loses_no_announced_uid(imap):
    """SIGKILL while a client appends: after the restart every APPEND that
    was answered is there, under the UID its APPENDUID announced."""
    import threading
    acked = {}
    stop = threading.Event()

    def appender():
        try:
            m = connect(imap)
            for i in range(10000):
                if stop.is_set():
                    break
                body = b"Subject: a%d\r\n\r\nnumber %d\r\n" % (i, i)
                typ, data = m.append("INBOX", None, None, body)
                if typ == "OK":
                    uid = int(data[0].split(b"[APPENDUID ")[1].split()[1]
                              .rstrip(b"]"))
                    acked[uid] = body
        except (OSError, imaplib.IMAP4.abort, imaplib.IMAP4.error):
            pass

    th = threading.Thread(target=appender)
    th.start()
    assert wait_for(lambda: len(acked) >= 20, timeout=60)
    imap.kill9()
    stop.set()
    th.join(timeout=30)
    imap.start()
    m = connect(imap)
    typ, data = m.select("INBOX")
    assert typ == "OK", (typ, data)
    for uid, body in sorted(acked.items()):
        typ, data = m.uid("FETCH", str(uid), "(BODY.PEEK[])")
        assert typ == "OK" and data[0] and data[0][1] == body, uid
    m.logout()
    print("\nappends acknowledged before the kill: %d, all found" % len(acked))


def test_a_lock_left_by_a_killed_writer_is_taken_at_once(imap):
    """A dovecot-uidlist.lock whose maker is gone (its owner record names
    it, nobody holds the flock) does not block the folder for 120 s."""
    deliver(imap)
    m = connect(imap)
    assert m.select("INBOX")[0] == "OK"
    md = maildir(imap)
    lock = md / "dovecot-uidlist.lock"
    lock.write_bytes(b"3 V1 N2\n1 :half-written\n")
    st = lock.stat()
    (md / "tern-uidlist.lock").write_text("%d %d\n" % (st.st_dev, st.st_ino))
    typ, data = m.append("INBOX", None, None, b"Subject: after\r\n\r\nx\r\n")
    assert typ == "OK", data
    assert not lock.exists()
    assert (md / "tern-uidlist.lock").read_bytes() == b""
    typ, data = m.uid("SEARCH", "SUBJECT", "after")
    assert typ == "OK" and len(data[0].split()) == 1
    m.logout()


def test_a_live_dovecot_lock_is_waited_for_not_broken(imap):
    """A dotlock no ternd recorded (Dovecot's) is respected: the APPEND
    gives up with a temporary NO and the lock is left as it was."""
    deliver(imap)
    m = connect(imap)
    assert m.select("INBOX")[0] == "OK"
    md = maildir(imap)
    lock = md / "dovecot-uidlist.lock"
    lock.write_bytes(b"dovecot is writing\n")
    typ, data = m.append("INBOX", None, None, b"Subject: blocked\r\n\r\nx\r\n")
    assert typ == "NO", data
    assert lock.read_bytes() == b"dovecot is writing\n"
    lock.unlink()
    typ, data = m.append("INBOX", None, None, b"Subject: later\r\n\r\nx\r\n")
    assert typ == "OK", data
    m.logout()
