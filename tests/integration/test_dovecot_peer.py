# SPDX-License-Identifier: ISC
"""Dovecot as a peer on the same Maildir tree (Debian's dovecot-imapd,
started here on a loopback port): a tree Dovecot indexed keeps its
UIDVALIDITY, UIDs, flags and keywords in Tern, and what Tern appended and
flagged, Dovecot sees the same way."""
import imaplib
import os
import pwd
import signal
import subprocess
import time

import pytest

from conftest import free_port
from test_imap import connect, imap  # noqa: F401 (the fixture)


class Dovecot:
    def __init__(self, tmp_path, maildir):
        self.dir = tmp_path / "dovecot"
        (self.dir / "run").mkdir(parents=True)
        (self.dir / "home").mkdir()
        self.port = free_port()
        self.maildir = maildir
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(
            "base_dir = %(d)s/run\nlog_path = %(d)s/dovecot.log\n"
            "protocols = imap\nlisten = 127.0.0.1\nssl = no\n"
            "disable_plaintext_auth = no\nauth_mechanisms = plain\n"
            "first_valid_uid = 1\n"
            "mail_location = maildir:%(m)s\n"
            "passdb {\n  driver = static\n  args = password=pw\n}\n"
            "userdb {\n  driver = static\n"
            "  args = uid=dovecot gid=dovecot home=%(d)s/home\n}\n"
            "namespace inbox {\n  inbox = yes\n  separator = /\n}\n"
            "service imap-login {\n  chroot =\n"
            "  inet_listener imap {\n    port = %(p)d\n  }\n"
            "  inet_listener imaps {\n    port = 0\n  }\n}\n"
            "service anvil {\n  chroot =\n}\n"
            % {"d": self.dir, "m": maildir, "p": self.port})
        self.proc = None

    def start(self):
        # Dovecot's mail processes run as dovecot: the tree must be theirs
        pw = pwd.getpwnam("dovecot")
        for d, dirs, files in os.walk(self.maildir):
            for x in [d] + [os.path.join(d, f) for f in files]:
                os.chown(x, pw.pw_uid, pw.pw_gid)
        os.chown(self.dir / "home", pw.pw_uid, pw.pw_gid)
        # and it must reach the tree: search (x) for others on the way
        # down (test directories only; ternd keeps mail/ 0700 for real)
        p = self.maildir
        while str(p) != "/":
            p = p.parent
            if str(p).startswith("/tmp/"):
                os.chmod(p, os.stat(p).st_mode | 0o011)
        self.proc = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c",
                                      str(self.conf)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                m = imaplib.IMAP4("127.0.0.1", self.port, timeout=5)
                m.logout()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("dovecot did not start: " + self.log())

    def login(self):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=20)
        m.login("alice", "pw")
        return m

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.proc = None

    def log(self):
        p = self.dir / "dovecot.log"
        return p.read_text(errors="replace") if p.exists() else ""


def uid_flags(m):
    """{uid: set(flags)} of the selected folder."""
    typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
    out = {}
    for line in data:
        line = line.decode()
        uid = int(line.split("UID ")[1].split()[0].rstrip(")"))
        flags = line.split("FLAGS (")[1].split(")")[0].split()
        out[uid] = {f for f in flags if f != "\\Recent"}
    return out


def test_a_dovecot_tree_keeps_its_uids_both_ways(imap, tmp_path):  # noqa: F811
    if os.geteuid() != 0 or not os.path.exists("/usr/sbin/dovecot"):
        pytest.skip("needs root and dovecot-imapd (scripts/deps test)")
    md = imap.data / "mail" / "localhost" / "alice"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (md / "new" / ("17000000%02d.M1P1.old" % i)).write_bytes(
            b"Subject: old %d\n\nfrom before Tern\n" % i)
    dc = Dovecot(tmp_path, md)
    dc.start()
    try:
        m = dc.login()
        typ, data = m.select("INBOX")
        validity = m.untagged_responses["UIDVALIDITY"][0]
        m.store("1", "+FLAGS", "(\\Seen Work)")
        m.store("2", "+FLAGS", "(\\Flagged)")
        m.store("3", "+FLAGS", "(\\Deleted)")
        m.expunge()                       # uid 3 gone: uids are 1, 2
        m.create("Lists/Tern")
        m.subscribe("Lists/Tern")
        seen_by_dovecot = uid_flags(m)
        m.logout()
    finally:
        dc.stop()
    assert seen_by_dovecot == {1: {"\\Seen", "Work"}, 2: {"\\Flagged"}}

    t = connect(imap)
    t.select("INBOX")
    assert t.untagged_responses["UIDVALIDITY"] == [validity]
    assert uid_flags(t) == seen_by_dovecot
    typ, data = t.lsub('""', "*")
    assert data == [b'(\\HasNoChildren) "/" "Lists/Tern"']
    # Tern changes the tree
    t.uid("STORE", "2", "+FLAGS", "(\\Answered)")
    typ, data = t.append("INBOX", "(\\Flagged Work)", None,
                         b"Subject: from tern\r\n\r\nnew\r\n")
    new_uid = int(data[0].split(b"[APPENDUID ")[1].split(b"]")[0].split()[1])
    assert new_uid == 4                   # after Dovecot's uid 3, never reused
    t.logout()

    dc.start()
    try:
        m = dc.login()
        m.select("INBOX")
        assert m.untagged_responses["UIDVALIDITY"][0] == validity
        assert uid_flags(m) == {1: {"\\Seen", "Work"},
                                2: {"\\Flagged", "\\Answered"},
                                4: {"\\Flagged", "Work"}}
        m.logout()
    finally:
        dc.stop()
    assert "Error" not in dc.log(), dc.log()[-2000:]
