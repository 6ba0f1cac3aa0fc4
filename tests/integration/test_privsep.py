# SPDX-License-Identifier: ISC
"""Privilege separation: started as root with user = "tern", ternd binds
its ports and drops to tern before serving; its files are tern's and
closed to others; the control socket is for tern's group."""
import grp
import os
import pwd
import smtplib
import stat
import subprocess
import tempfile

import pytest

from conftest import BUILD, Ternd, check_sanitizers

TERNCTL = BUILD / "mta" / "ternctl"
SENDMAIL = BUILD / "mta" / "tern-sendmail"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def tern_user():
    try:
        return pwd.getpwnam("tern")
    except KeyError:
        pytest.skip("no user tern (scripts/deps creates it)")


@pytest.fixture
def tern_root():
    # pytest's tmp_path is under a 0700 root directory tern cannot
    # traverse; this one it can.
    d = tempfile.mkdtemp(prefix="tern-privsep-")
    os.chmod(d, 0o711)
    yield d
    subprocess.run(["rm", "-rf", d])


def ids(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                out[k] = v.split()
    return out


def test_drops_to_tern(tern_root):
    import pathlib
    pw = tern_user()
    t = Ternd(pathlib.Path(tern_root), 'user = "tern"\n')
    t.start()
    try:
        st = ids(t.proc.pid)
        assert st["Uid"] == [str(pw.pw_uid)] * 4
        assert st["Gid"] == [str(pw.pw_gid)] * 4
        assert st["Groups"] == []
        s = smtplib.SMTP("127.0.0.1", t.port)
        s.sendmail("a@example.org", ["pat@localhost"],
                   b"Subject: privsep\r\n\r\nhello\r\n")
        s.quit()
        assert len(t.wait_messages("pat", 1)) == 1
        # everything under data_dir is tern's; nothing is open to others
        for root, dirs, files in os.walk(t.data):
            for name in dirs + files:
                p = os.path.join(root, name)
                st = os.lstat(p)
                assert st.st_uid == pw.pw_uid, p
                rel = os.path.relpath(p, t.data)
                if rel in ("spool", "spool/pickup", "tls/cert.pem"):
                    continue
                if stat.S_ISSOCK(st.st_mode):
                    assert stat.S_IMODE(st.st_mode) == 0o660
                    assert st.st_gid == pw.pw_gid
                    continue
                assert st.st_mode & 0o007 == 0, (p, oct(st.st_mode))
        assert stat.S_IMODE(os.stat(t.data / "spool" / "pickup").st_mode) \
            == 0o1733
        assert stat.S_IMODE(os.stat(t.data / "run").st_mode) == 0o750
        # ternctl (root) still works; the socket is tern's group's
        r = subprocess.run([str(TERNCTL), "-c", str(t.config), "stats"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        # tern-sendmail as root: the file it drops is readable by tern
        r = subprocess.run([str(SENDMAIL), "-C", str(t.config),
                            "quinn@localhost"], input=b"Subject: sm\n\nx\n",
                           capture_output=True)
        assert r.returncode == 0, r.stderr
        assert len(t.wait_messages("quinn", 1, timeout=20)) == 1
        # a reload as tern reads the config and the TLS files again
        r = subprocess.run([str(TERNCTL), "-c", str(t.config), "reload"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr + r.stdout
    finally:
        t.stop()
    check_sanitizers(t)


def test_unknown_user_refused(tmp_path):
    t = Ternd(tmp_path, 'user = "no-such-user-here"\n')
    assert t.start(expect_fail=True) != 0
    assert "no such user" in t.log()


def test_root_as_user_refused(tmp_path):
    t = Ternd(tmp_path, 'user = "root"\n')
    assert t.start(expect_fail=True) != 0
    assert "refusing to run as root" in t.log()


def test_data_dir_tern_cannot_reach(tmp_path):
    tern_user()
    t = Ternd(tmp_path, 'user = "tern"\n')   # under a 0700 root directory
    assert t.start(expect_fail=True) != 0
    assert "cannot use" in t.log()
