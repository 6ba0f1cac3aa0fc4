# SPDX-License-Identifier: ISC
"""Crash safety: what got 250 is delivered after kill -9, exactly once."""
import email

from conftest import Raw


def send_batch(t, tag, n):
    """Sends n messages on one connection; returns the subjects acked."""
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    acked = []
    for i in range(n):
        subject = "%s-%d" % (tag, i)
        c.send(b"MAIL FROM:<bob@example.org>\r\nRCPT TO:<kill@localhost>\r\n"
               b"RCPT TO:<kill2@localhost>\r\nDATA\r\n")
        codes = [c.reply()[0] for _ in range(4)]
        assert codes == [250, 250, 250, 354]
        c.send(b"Subject: " + subject.encode() + b"\r\n\r\nx\r\n.\r\n")
        if c.reply()[0] == 250:
            acked.append(subject)
    return c, acked


def subjects(t, user):
    return sorted(email.message_from_bytes(m)["Subject"]
                  for m in t.messages(user))


def test_kill9_right_after_250_delivers_once(make_ternd):
    t = make_ternd()
    all_acked = []
    for cycle in range(8):
        c, acked = send_batch(t, "c%d" % cycle, 3)
        t.kill9()              # right after the last 250
        c.close()
        all_acked += acked
        t.start()
        assert t.wait_queue_empty(), t.queue_files()
    for user in ("kill", "kill2"):
        got = subjects(t, user)
        assert got == sorted(all_acked), (user, got)


def test_restart_delivers_what_was_queued(make_ternd):
    t = make_ternd()
    t.stop()
    # A queue file written by a previous run (as an administrator would
    # find it): the restarted daemon delivers it and removes it.
    q = t.data / "spool" / "queue"
    q.mkdir(parents=True, exist_ok=True)
    body = b"Subject: left behind\n\nhello\n"
    env = (b"tern-envelope: 1\nid: 00000000000000aa\ncreated: 1\n"
           b"client: 127.0.0.1\nhelo: x\nprotocol: ESMTP\n"
           b"from: <bob@example.org>\nbody: 7BIT\nsize: %d\n"
           b"rcpt: <left@localhost>\nend\n" % len(body))
    (q / "00000000000000aa").write_bytes(env + body)
    # a damaged one is moved aside, not delivered, not fatal
    (q / "00000000000000bb").write_bytes(b"tern-envelope: 1\nid: 0000")
    # a temp file that was never acknowledged is removed
    (t.data / "spool" / "tmp").mkdir(exist_ok=True)
    (t.data / "spool" / "tmp" / "00000000000000cc").write_bytes(b"partial")
    t.start()
    msgs = t.wait_messages("left", 1)
    assert len(msgs) == 1 and msgs[0].endswith(body)
    assert t.wait_queue_empty()
    assert (t.data / "spool" / "corrupt" / "00000000000000bb").exists()
    assert not (t.data / "spool" / "tmp" / "00000000000000cc").exists()


def test_delivery_failure_is_deferred_not_lost(make_ternd):
    t = make_ternd()
    # a file where the Maildir should be: delivery fails temporarily
    blocker = t.data / "mail" / "localhost" / "blocked"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory")
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<bob@example.org>")
    c.cmd("RCPT TO:<blocked@localhost>")
    c.cmd("RCPT TO:<fine@localhost>")
    c.cmd("DATA")
    c.send(b"Subject: half\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    assert len(t.wait_messages("fine", 1)) == 1
    import time
    # fine is delivered before the 250 (the local fast path) and said in
    # the state file; blocked is queued, and tried once more
    deadline = time.monotonic() + 10
    state = ""
    while time.monotonic() < deadline and "attempts: 1" not in state:
        files = t.queue_files()
        if len(files) == 2:
            state = (t.data / "spool" / "queue" / files[1]).read_text()
        time.sleep(0.05)
    assert len(files) == 2, files
    assert "attempts: 1" in state and "rcpt-done: 1" in state
    assert "status=deferred" in t.log()
    # the schedule survives a restart: not retried before its time
    t.stop()
    blocker.unlink()
    t.start()
    time.sleep(0.5)
    assert t.messages("blocked") == []
    assert len(t.messages("fine")) == 1
