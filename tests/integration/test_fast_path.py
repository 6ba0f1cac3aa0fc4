# SPDX-License-Identifier: ISC
"""The local fast path: mail for local recipients only is in their
Maildirs when the 250 comes, and no queue file is written; it is off
with local_fast_path = false, for a recipient who asked for a success
report, and when a plugin routes or hears of deliveries (those see every
message the usual way). A recipient it cannot deliver is queued before
the 250 (test_durability.py)."""
import os
import pathlib
import shutil
import smtplib
import tempfile

import pytest

from test_hooks import plugins

BODY = b"Subject: fast\r\n\r\nhi\r\n"


def send(t, rcpts, options=()):
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        s.ehlo("client.test")
        s.mail("bob@example.org")
        for r in rcpts:
            assert s.rcpt(r, list(options))[0] == 250
        code, text = s.data(BODY)
        assert code == 250, text
        return text.decode()


def queued(t, qid):
    return "%s: removed" % qid in t.log()


def qid_of(reply):
    return reply.split("queued as ")[1].split()[0]


def test_in_the_maildirs_at_the_250(make_ternd):
    t = make_ternd()
    qid = qid_of(send(t, ["ann@localhost", "ben@localhost"]))
    # no waiting: both copies are there when the 250 is
    assert len(t.messages("ann")) == 1 and len(t.messages("ben")) == 1
    assert t.queue_files() == []
    assert "%s: delivered before the commit: no queue file" % qid in t.log()
    assert not queued(t, qid)
    # one recipient: its copy names it
    send(t, ["ann@localhost"])
    raw = t.messages("ann")[1]
    assert raw.startswith(b"Return-Path: <bob@example.org>\n"
                          b"Delivered-To: ann@localhost\n")


def test_off_when_switched_off_or_a_report_is_wanted(make_ternd):
    t = make_ternd("local_fast_path = false")
    qid = qid_of(send(t, ["ann@localhost"]))
    assert len(t.wait_messages("ann", 1)) == 1 and t.wait_queue_empty()
    assert "no queue file" not in t.log() and queued(t, qid)
    # a success report asked for: the queue (which sends it)
    t = make_ternd(sub="b")
    qid = qid_of(send(t, ["ann@localhost"], ["NOTIFY=SUCCESS"]))
    assert len(t.wait_messages("ann", 1)) == 1 and t.wait_queue_empty()
    assert "no queue file" not in t.log() and queued(t, qid)
    assert "%s: success report" % qid in t.log()


def test_off_with_a_route_or_delivered_plugin(make_ternd):
    for hook in ("route", "delivered"):
        t = make_ternd(start=False, sub=hook)
        t.write_config(plugins(t, p="return { %s = function(m) end }\n"
                               % hook) + 'plugins = { "p" }\n')
        t.start()
        qid = qid_of(send(t, ["ann@localhost"]))
        assert len(t.wait_messages("ann", 1)) == 1 and t.wait_queue_empty()
        assert "no queue file" not in t.log(), hook
        assert queued(t, qid), hook


def files(t, local):
    d = t.maildir(local) / "new"
    return sorted(d.iterdir()) if d.is_dir() else []


def test_one_file_linked_into_several_maildirs(make_ternd):
    t = make_ternd()
    qid = qid_of(send(t, ["ann@localhost", "ben@localhost", "cy@localhost"]))
    paths = [files(t, u) for u in ("ann", "ben", "cy")]
    assert [len(p) for p in paths] == [1, 1, 1] and t.queue_files() == []
    st = [os.stat(p[0]) for p in paths]
    assert len({(s.st_dev, s.st_ino) for s in st}) == 1
    assert st[0].st_nlink == 3
    # each name is its own, with its recipient's tag for recovery
    names = [p[0].name for p in paths]
    assert len(set(names)) == 3
    for i, n in enumerate(names):
        assert "T%sR%d." % (qid, i) in n, n
    raw = paths[0][0].read_bytes()
    assert raw.startswith(b"Return-Path: <bob@example.org>\nReceived: ")
    assert b"Delivered-To:" not in raw
    assert "linked, before the 250" in t.log()
    # a copy removed (expunged) from one Maildir leaves the others
    paths[1][0].unlink()
    assert paths[0][0].read_bytes() == raw == paths[2][0].read_bytes()


def test_linked_copies_respect_each_quota(make_ternd):
    # room for one of these messages (about 400 octets), not two: not
    # full at RCPT time, too full for the copy itself
    t = make_ternd("limits = { quota_storage = 600 }")
    send(t, ["ben@localhost"])
    assert len(files(t, "ben")) == 1
    assert 300 < os.stat(files(t, "ben")[0]).st_size < 600
    qid = qid_of(send(t, ["ann@localhost", "ben@localhost", "cy@localhost"]))
    a, c = files(t, "ann"), files(t, "cy")
    assert len(a) == 1 and len(c) == 1
    assert os.stat(a[0]).st_ino == os.stat(c[0]).st_ino
    # ben is full: his copy waits in the queue, the others are done
    assert len(files(t, "ben")) == 1
    assert t.queue_files() != []
    assert "%s: to=<ben@localhost>" % qid in t.log()
    assert "4.2.2" in t.log()


def test_a_copy_each_with_hardlinks_off(make_ternd):
    t = make_ternd("hardlink_deliveries = false")
    send(t, ["ann@localhost", "ben@localhost"])
    a, b = files(t, "ann"), files(t, "ben")
    assert os.stat(a[0]).st_ino != os.stat(b[0]).st_ino
    assert b"Delivered-To: ann@localhost\n" in a[0].read_bytes()
    assert b"Delivered-To: ben@localhost\n" in b[0].read_bytes()


def test_a_maildir_on_another_filesystem_gets_a_copy(make_ternd, tmp_path):
    """A hard link cannot cross filesystems (EXDEV): that Maildir gets a
    copy of its own, with its Delivered-To; the others share one file."""
    shm = pathlib.Path("/dev/shm")
    if os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is on the test's filesystem")
    t = make_ternd()
    away = pathlib.Path(tempfile.mkdtemp(prefix="tern-test.", dir=shm))
    try:
        t.maildir("cy").parent.mkdir(parents=True, exist_ok=True)
        t.maildir("cy").symlink_to(away)
        qid = qid_of(send(t, ["ann@localhost", "ben@localhost",
                              "cy@localhost"]))
        a, b, c = files(t, "ann"), files(t, "ben"), files(t, "cy")
        assert len(a) == len(b) == len(c) == 1 and t.queue_files() == []
        assert os.stat(a[0]).st_ino == os.stat(b[0]).st_ino
        assert os.stat(c[0]).st_dev != os.stat(a[0]).st_dev
        assert "to=<cy@localhost> maildir=%s: not linked" % t.maildir("cy") \
            in t.log()
        assert b"Delivered-To: cy@localhost\n" in c[0].read_bytes()
        assert "%s: delivered before the commit: no queue file" % qid \
            in t.log()
    finally:
        shutil.rmtree(away, ignore_errors=True)
