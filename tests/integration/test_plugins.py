# SPDX-License-Identifier: ISC
"""Each shipped plugin, through a real ternd."""
import email
import smtplib
import time

from conftest import TOP, Raw


def start(make_ternd, names, config="", extra=""):
    t = make_ternd(start=False)
    t.write_config('plugin_path = { "%s" }\nplugins = { %s }\n%s\n%s' % (
        TOP / "plugins", ", ".join('"%s"' % n for n in names),
        "plugin_config = { %s }" % config if config else "", extra))
    t.start()
    return t


def send(t, rcpts, body=b"Subject: x\r\n\r\nx\r\n", sender="bob@example.org"):
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        return s.sendmail(sender, rcpts, body)


def test_retry_default_backs_off_then_bounces(make_ternd):
    # max_attempts, not give_up, ends it: a give-up age would cut the
    # second delay short on a slow machine (the last attempt lands on it)
    t = start(make_ternd, ["retry_default"],
              "retry_default = { first = 1, factor = 2, give_up = 3600, "
              "max_attempts = 3 }")
    blocker = t.data / "mail" / "localhost" / "never"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("x")
    send(t, ["never@localhost"], sender="me@localhost")
    bounce = t.wait_messages("me", 1, timeout=20)
    assert len(bounce) == 1
    assert b"Action: failed" in bounce[0]
    log = t.log()
    assert "next attempt in 1s" in log and "next attempt in 2s" in log
    assert t.wait_queue_empty()


def test_retry_default_defaults_follow_rfc5321(make_ternd):
    t = start(make_ternd, ["retry_default"])
    blocker = t.data / "mail" / "localhost" / "later"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("x")
    send(t, ["later@localhost"])
    deadline = time.monotonic() + 10
    while "next attempt in" not in t.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "next attempt in 1800s" in t.log()


def test_rcpt_users_table_aliases_and_catchall(make_ternd, tmp_path):
    table = tmp_path / "recipients"
    table.write_text("# users\nalice\nbob@example.test\ncarol@example.test\n"
                     "team: alice, carol@example.test\n"
                     "@example.test: alice\n")
    t = start(make_ternd, ["rcpt_users"],
              'rcpt_users = { file = "%s" }' % table)
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<x@remote.example>")
    assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
    assert c.cmd("RCPT TO:<Alice+tag@localhost>")[0] == 250
    code, lines = c.cmd("RCPT TO:<mallory@localhost>")
    assert code == 550 and "5.1.1" in lines[0] and "User unknown" in lines[0]
    assert c.cmd("RCPT TO:<bob@localhost>")[0] == 550      # bob is only @example.test
    assert c.cmd("RCPT TO:<anything@example.test>")[0] == 250  # catch-all
    c.cmd("QUIT")
    send(t, ["team@localhost"], b"Subject: to the team\r\n\r\nhi\r\n")
    assert len(t.wait_messages("alice", 1)) == 1
    assert len(t.wait_messages("carol", 1, domain="example.test")) == 1
    assert t.wait_queue_empty()
    # the catch-all target has no domain: it is local to the recipient's
    send(t, ["someone@example.test"], b"Subject: catch\r\n\r\nhi\r\n")
    got = t.wait_messages("alice", 1, domain="example.test")
    assert len(got) == 1 and b"Delivered-To: alice@example.test" in got[0]


def test_route_domains(make_ternd, tmp_path):
    root = tmp_path / "orgmail"
    t = start(make_ternd, ["route_domains"],
              'route_domains = { routes = { ["example.test"] = { maildir = "%s" },'
              ' ["mx.test"] = "reject" } }' % root)
    send(t, ["Dora+x@example.test", "eve@mx.test"], sender="s@localhost")
    d = root / "dora" / "new"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (d.is_dir() and any(d.iterdir())):
        time.sleep(0.05)
    assert len(list(d.iterdir())) == 1
    bounce = t.wait_messages("s", 1)
    assert b"Final-Recipient: rfc822; eve@mx.test" in bounce[0]
    assert b"Status: 5.1.2" in bounce[0]


def test_filter_folders(make_ternd):
    t = start(make_ternd, ["filter_folders"], '''filter_folders = { rules = {
        { header = "List-Id", contains = "tern-dev", folder = "Lists.tern" },
        { header = "Subject", glob = "*[list]*", folder = "Lists" },
        { header = "Subject", contains = "casino", reject = "550 5.7.1 No thanks" },
        { header = "From", glob = "*@example.org", add_header = { "X-Filed", "yes" } },
      } }''')
    send(t, ["fay@localhost"], b"From: a@example.org\r\nSubject: [list] hello\r\n\r\nx\r\n")
    send(t, ["fay@localhost"], b"List-Id: Tern developers <tern-dev.example>\r\n"
         b"Subject: patch\r\n\r\nx\r\n")
    send(t, ["fay@localhost"], b"Subject: plain\r\n\r\nx\r\n")
    try:
        send(t, ["fay@localhost"], b"Subject: Casino night\r\n\r\nx\r\n")
        raise AssertionError("not rejected")
    except smtplib.SMTPDataError as e:
        assert e.smtp_code == 550 and b"No thanks" in e.smtp_error
    md = t.maildir("fay")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not t.wait_queue_empty(0.1):
        pass
    lists = list((md / ".Lists" / "new").iterdir())
    tern = list((md / ".Lists.tern" / "new").iterdir())
    inbox = t.messages("fay")
    assert len(lists) == 1 and len(tern) == 1 and len(inbox) == 1
    assert email.message_from_bytes(lists[0].read_bytes())["X-Filed"] == "yes"


def test_greylist_survives_restart(make_ternd):
    t = start(make_ternd, ["greylist"], "greylist = { delay = 1 }")
    def attempt():
        c = Raw(t.port)
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<gray@example.org>")
        r = c.cmd("RCPT TO:<gus@localhost>")
        c.cmd("QUIT")
        return r
    code, lines = attempt()
    assert code == 450 and "Greylisted" in lines[0]
    assert attempt()[0] == 450           # too soon
    t.stop()                              # the triplet is saved at shutdown
    time.sleep(1.2)
    t.start()
    assert attempt()[0] == 250           # remembered across the restart
    assert attempt()[0] == 250           # and now passed
    # another sender starts over
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<other@example.org>")
    assert c.cmd("RCPT TO:<gus@localhost>")[0] == 450


def test_ratelimit(make_ternd):
    t = start(make_ternd, ["ratelimit"],
              "ratelimit = { per_ip = { count = 3, window = 3600 }, "
              "per_sender = { count = 2, window = 3600 } }")
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    for i in range(2):
        assert c.cmd("MAIL FROM:<one@example.org>")[0] == 250
        c.cmd("RSET")
    code, lines = c.cmd("MAIL FROM:<one@example.org>")
    assert code == 450 and "this sender" in lines[0]
    code, lines = c.cmd("MAIL FROM:<two@example.org>")
    assert code == 450 and "your address" in lines[0]
    d = Raw(t.port, source="127.0.0.8")
    d.cmd("EHLO client.test")
    assert d.cmd("MAIL FROM:<three@example.org>")[0] == 250


def test_helo_checks(make_ternd):
    t = start(make_ternd, ["helo_checks"], "helo_checks = { trusted = {} }")
    c = Raw(t.port, source="127.0.0.2")
    for name, ok in [("mx.test", False), ("localhost", False), ("nodots", False),
                     ("bad_name.example", False), ("[127.0.0.9]", False),
                     ("[127.0.0.2]", True), ("client.example.org", True)]:
        code, lines = c.cmd("EHLO " + name)
        assert (code == 250) == ok, (name, lines)
