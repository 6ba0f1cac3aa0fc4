# SPDX-License-Identifier: ISC
"""The local fast path: mail for local recipients only is in their
Maildirs when the 250 comes, and no queue file is written; it is off
with local_fast_path = false, for a recipient who asked for a success
report, and when a plugin routes or hears of deliveries (those see every
message the usual way). A recipient it cannot deliver is queued before
the 250 (test_durability.py)."""
import smtplib

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
    raw = t.messages("ann")[0]
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
