# SPDX-License-Identifier: ISC
"""The Lua hook API through real SMTP sessions (DESIGN.md section 5)."""
import email
import re
import signal
import smtplib
import textwrap
import threading
import time

from conftest import TOP, Raw


def plugins(t, **files):
    """Writes test plugins next to the config; returns the settings."""
    d = t.dir / "plugins"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / (name + ".lua")).write_text(textwrap.dedent(text))
    return 'plugin_path = { "%s", "%s" }\n' % (d, TOP / "plugins")


def with_plugins(make_ternd, names, extra="", **files):
    t = make_ternd(start=False)
    settings = plugins(t, **files)
    settings += "plugins = { %s }\n" % ", ".join('"%s"' % n for n in names)
    t.write_config(settings + extra)
    t.start()
    return t


def send(t, rcpts, body, sender="bob@example.org"):
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        return s.sendmail(sender, rcpts, body)


def test_connect_helo_mail_rcpt_verdicts(make_ternd):
    t = with_plugins(make_ternd, ["gate"], gate="""
        return {
          connect = function(s)
            if s.ip == "127.0.0.9" then return "reject", "554 5.7.1 go away" end
          end,
          helo = function(s, name)
            if name == "bad.example" then return "reject", "550 5.7.1 bad helo" end
          end,
          mail = function(tx, addr)
            if addr:match("^spammer@") then return "reject", "550 5.7.1 not you" end
            if tx.params.SIZE == "999" then return "tempfail", "452 4.3.1 later" end
          end,
          rcpt = function(tx, addr)
            if addr:match("^blocked@") then return "reject", "550 5.1.1 nobody here" end
            if addr:match("^second@") and #tx.rcpts ~= 1 then
              return "reject", "550 5.5.0 tx.rcpts wrong"
            end
            if addr:match("^anyone@remote") then return "accept" end
          end,
        }
    """)
    c = Raw(t.port, source="127.0.0.9")
    assert c.greeting[0] == 554 and "go away" in c.greeting[1][0]
    assert c.closed()
    c = Raw(t.port)
    code, lines = c.cmd("EHLO bad.example")
    assert code == 550 and "bad helo" in lines[0]
    assert c.cmd("EHLO good.example")[0] == 250
    code, lines = c.cmd("MAIL FROM:<spammer@x.example>")
    assert lines[0] == "550 5.7.1 not you"
    code, lines = c.cmd("MAIL FROM:<a@x.example> SIZE=999")
    assert lines[0] == "452 4.3.1 later"
    assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
    code, lines = c.cmd("RCPT TO:<blocked@localhost>")
    assert lines[0] == "550 5.1.1 nobody here"
    assert c.cmd("RCPT TO:<first@localhost>")[0] == 250
    assert c.cmd("RCPT TO:<second@localhost>")[0] == 250
    c.cmd("QUIT")
    # "accept" from a plugin overrides the relay rule (an admin's choice)
    t.stop()
    t.write_config(t.settings + 'trusted_networks = { "127.0.0.1/32" }\n')
    t.start()
    c = Raw(t.port, source="127.0.0.2")
    c.cmd("EHLO good.example")
    c.cmd("MAIL FROM:<a@x.example>")
    assert c.cmd("RCPT TO:<anyone@remote.example>")[0] == 250
    assert c.cmd("RCPT TO:<other@remote.example>")[0] == 550


def test_data_hook_edits_and_folders(make_ternd):
    t = with_plugins(make_ternd, ["filter"], filter="""
        return {
          data = function(tx, msg)
            local subject = msg:header("Subject") or ""
            if subject:find("[list]", 1, true) then
              for _, r in ipairs(tx.rcpts) do tx:set_folder(r, "Lists") end
            end
            if msg:body():find("VIRUS", 1, true) then
              return "reject", "554 5.7.1 infected"
            end
            if subject == "discard me" then return "discard" end
            msg:add_header("X-Tern-Test", "size=" .. msg.size .. " n=" .. #msg:headers())
            msg:remove_header("X-Remove-Me")
          end,
        }
    """)
    send(t, ["ann@localhost"], b"Subject: [list] news\r\nX-Remove-Me: 1\r\n"
         b"X-Remove-Me: 2\r\n\r\nhello\r\n")
    files = []
    deadline = time.monotonic() + 10
    lists = t.maildir("ann") / ".Lists" / "new"
    while time.monotonic() < deadline and not files:
        files = list(lists.glob("*")) if lists.is_dir() else []
        time.sleep(0.05)
    assert len(files) == 1, "not filed into .Lists"
    raw = files[0].read_bytes()
    msg = email.message_from_bytes(raw)
    assert msg["X-Remove-Me"] is None
    assert msg["X-Tern-Test"].startswith("size=")
    # the message's 3 fields (one removed), and our Authentication-Results
    assert "n=4" in msg["X-Tern-Test"]
    assert t.messages("ann") == []      # not in the INBOX
    try:
        send(t, ["ann@localhost"], b"Subject: x\r\n\r\nVIRUS inside\r\n")
        raise AssertionError("not rejected")
    except smtplib.SMTPDataError as e:
        assert e.smtp_code == 554 and b"infected" in e.smtp_error
    send(t, ["ann@localhost"], b"Subject: discard me\r\n\r\nbye\r\n")
    time.sleep(0.3)
    assert t.messages("ann") == [] and t.queue_files() == []
    assert "discarded by plugin" in t.log()


def test_route_hook_maildir_and_reject_bounces(make_ternd, tmp_path):
    custom = tmp_path / "custom"
    t = with_plugins(make_ternd, ["router"], router="""
        return {
          route = function(rcpt, m)
            if rcpt == "gone@localhost" then
              return "reject", "550 5.1.1 this user left"
            end
            if m.domain == "example.test" then
              return { maildir = "%s/" .. rcpt:match("^[^@]+"), folder = "Routed" }
            end
          end,
        }
    """ % custom)
    send(t, ["zed@example.test", "gone@localhost", "stay@localhost"],
         b"Subject: routed\r\nMessage-ID: <r1@example.org>\r\n\r\nhi\r\n",
         sender="sender@localhost")
    routed = custom / "zed" / ".Routed" / "new"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (routed.is_dir() and any(routed.iterdir())):
        time.sleep(0.05)
    assert len(list(routed.iterdir())) == 1
    assert len(t.wait_messages("stay", 1)) == 1
    # the rejected recipient produces one bounce to the (local) sender
    bounces = t.wait_messages("sender", 1)
    assert len(bounces) == 1
    b = email.message_from_bytes(bounces[0])
    assert b.get_content_type() == "multipart/report"
    assert b.get_param("report-type") == "delivery-status"
    assert b["From"].startswith("Mail Delivery System <MAILER-DAEMON@mx.test>")
    assert bounces[0].startswith(b"Return-Path: <>\n")
    parts = list(b.walk())
    status = [p for p in parts if p.get_content_type() == "message/delivery-status"][0]
    blocks = status.get_payload()
    rcpt_block = blocks[1]
    assert rcpt_block["Final-Recipient"] == "rfc822; gone@localhost"
    assert rcpt_block["Action"] == "failed"
    assert rcpt_block["Status"] == "5.1.1"
    assert "this user left" in rcpt_block["Diagnostic-Code"]
    headers = [p for p in parts if p.get_content_type() == "text/rfc822-headers"][0]
    assert b"<r1@example.org>" in headers.as_bytes()
    assert t.wait_queue_empty()


def test_retry_hook_one_second_then_bounce(make_ternd):
    t = with_plugins(make_ternd, ["fast"], fast="""
        return {
          retry = function(m)
            tern.log("info", "retry", m.id, m.attempts, m.rcpt, m.error)
            if m.attempts >= 4 then return "bounce" end
            return 1
          end,
          delivered = function(m) tern.log("info", "DELIVERED", m.rcpt) end,
          bounced = function(m) tern.log("info", "BOUNCED", m.rcpt) end,
        }
    """)
    for name in ("stuck", "late"):
        blocker = t.data / "mail" / "localhost" / name
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_text("not a directory")
    send(t, ["late@localhost"], b"Subject: late\r\n\r\nx\r\n", sender="from@localhost")
    send(t, ["stuck@localhost"], b"Subject: stuck\r\n\r\nx\r\n", sender="from@localhost")
    # fixed after its first attempt failed, before the retry
    deadline = time.monotonic() + 15
    while not re.search(r"to=<late@localhost> relay=local .*status=deferred",
                        t.log()) and time.monotonic() < deadline:
        time.sleep(0.02)
    (t.data / "mail" / "localhost" / "late").unlink()
    assert len(t.wait_messages("late", 1, timeout=10)) == 1
    bounces = t.wait_messages("from", 1, timeout=15)
    assert len(bounces) == 1
    b = email.message_from_bytes(bounces[0])
    assert b.get_content_type() == "multipart/report"
    assert b"Final-Recipient: rfc822; stuck@localhost" in bounces[0]
    log = t.log()
    assert "plugin=fast: DELIVERED late@localhost" in log
    assert "plugin=fast: BOUNCED stuck@localhost" in log
    assert "deferred, next attempt in 1s" in log
    assert t.wait_queue_empty()


def test_bounce_of_a_bounce_is_not_sent(make_ternd):
    t = with_plugins(make_ternd, ["router"], router="""
        return { route = function(rcpt) return "reject", "550 5.1.1 no" end }
    """)
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<>")
    c.cmd("RCPT TO:<nobody@localhost>")
    c.cmd("DATA")
    c.send(b"Subject: a bounce\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    assert t.wait_queue_empty()
    time.sleep(0.3)
    assert "no bounce sent" in t.log()
    assert not (t.data / "mail").exists() or not any((t.data / "mail").rglob("new/*"))


def test_broken_plugins_fail_closed_and_alone(make_ternd):
    t = with_plugins(make_ternd, ["bad"], bad="""
        local kept
        return {
          rcpt = function(tx, addr)
            if addr:match("^err@") then error("boom") end
            if addr:match("^loop@") then while true do end end
            if addr:match("^sneaky@") then
              -- the kill cannot be swallowed by the plugin's own pcall
              for i = 1, 100 do pcall(function() while true do end end) end
              return "accept"
            end
            if addr:match("^garbage@") then return 42 end
            if addr:match("^unknown@") then return "maybe" end
            if addr:match("^memory@") then
              -- one allocation over the cap: fails at once, however slow
              -- the machine, so the time budget can never come first
              local big = string.rep("x", 64 * 1024 * 1024)
              return #big
            end
            if addr:match("^stale@") then return kept:header("Subject") end
          end,
          data = function(tx, msg) kept = msg end,
        }
    """, extra="hook_budget_ms = 200\nplugin_memory = 16*1024*1024\n")
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<bob@example.org>")
    # each case meets exactly one limit; a stall would show as the
    # client's 10 s timeout, not as a timing assertion
    for who in ("err", "loop", "sneaky", "garbage", "unknown", "memory"):
        code, lines = c.cmd("RCPT TO:<%s@localhost>" % who)
        assert code == 451 and "4.3.0" in lines[0], (who, lines)
    # a normal message still flows, on the same connection and on another
    assert c.cmd("RCPT TO:<fine@localhost>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: kept\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 250
    code, lines = c.cmd("RCPT TO:<stale@localhost>")
    assert code == 451
    send(t, ["other@localhost"], b"Subject: other\r\n\r\nx\r\n")
    assert len(t.wait_messages("fine", 1)) == 1
    assert len(t.wait_messages("other", 1)) == 1
    log = t.log()
    assert "plugin=bad hook=rcpt error: bad.lua:5: boom" in log
    assert "time budget of 200 ms exceeded" in log
    assert "returned a number, not a verdict" in log
    assert "unknown verdict 'maybe'" in log
    assert "not enough memory" in log
    assert "message object used outside its data hook" in log
    assert t.proc.poll() is None


def test_sandbox(make_ternd):
    t = with_plugins(make_ternd, ["probe"], probe="""
        local function try(f) local ok = pcall(f) return ok and "open" or "closed" end
        return {
          data = function(tx, msg)
            local r = {
              "io=" .. type(io), "require=" .. type(require), "load=" .. type(load),
              "loadfile=" .. type(loadfile), "dofile=" .. type(dofile),
              "debug=" .. type(debug), "package=" .. type(package),
              "execute=" .. type(os.execute), "getenv=" .. type(os.getenv),
              "dump=" .. type(string.dump), "rawset=" .. type(rawset),
              "strmeta=" .. tostring(getmetatable("")),
              "setlib=" .. try(function() string.upper = nil end),
              "settern=" .. try(function() tern.log = nil end),
              "global=" .. try(function() myglobal = 1 end),
            }
            msg:add_header("X-Sandbox", table.concat(r, " "))
          end,
        }
    """)
    send(t, ["sb@localhost"], b"Subject: x\r\n\r\nx\r\n")
    m = email.message_from_bytes(t.wait_messages("sb", 1)[0])
    got = dict(kv.split("=") for kv in m["X-Sandbox"].split())
    for k in ("io", "require", "load", "loadfile", "dofile", "debug", "package",
              "execute", "getenv", "dump", "rawset"):
        assert got[k] == "nil", (k, got)
    assert got["strmeta"] == "false"
    assert got["setlib"] == "closed" and got["settern"] == "closed"
    assert got["global"] == "open"     # a plugin's own globals are its own


def test_bad_plugins_refused_at_start(make_ternd):
    t = make_ternd(start=False)
    cases = {
        "syntax": ("return {", "syntax.lua:1:"),
        "notable": ("return 5", "must return a table"),
        "badhook": ("return { rcpt = 1 }", "'rcpt' is not a hook function"),
        "nohook": ("return { frobnicate = function() end }", "'frobnicate' is not a hook"),
        "binary": ("\x1bLua", "attempt to load a binary chunk"),
    }
    for name, (text, want) in cases.items():
        settings = plugins(t, **{name: text}) + 'plugins = { "%s" }\n' % name
        t.write_config(settings)
        rc = t.start(expect_fail=True)
        assert rc == 1, name
        assert want in t.log(), (name, t.log()[-300:])
    t.write_config('plugins = { "missing" }\n')
    assert t.start(expect_fail=True) == 1
    assert "plugin 'missing' not found" in t.log()


def test_reload_applies_to_new_sessions_and_refuses_bad_config(make_ternd):
    t = with_plugins(make_ternd, ["policy"], policy="""
        return { rcpt = function(tx, a) if a:match("^x@") then return "reject" end end }
    """)
    old = Raw(t.port)
    old.cmd("EHLO client.test")
    assert old.cmd("MAIL FROM:<a@b.example>")[0] == 250
    (t.dir / "plugins" / "policy.lua").write_text(
        'return { rcpt = function(tx, a) if a:match("^y@") then return "reject" end end }\n')
    t.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reloaded: configuration generation 2" not in t.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "reloaded: configuration generation 2" in t.log()
    # the open session was not dropped and keeps its generation
    assert old.cmd("RCPT TO:<x@localhost>")[0] == 550
    new = Raw(t.port)
    new.cmd("EHLO client.test")
    new.cmd("MAIL FROM:<a@b.example>")
    assert new.cmd("RCPT TO:<x@localhost>")[0] == 250
    assert new.cmd("RCPT TO:<y@localhost>")[0] == 550
    # a broken config is refused; the running one stays
    good = t.config.read_text()
    t.config.write_text(good + "bogus_key = 1\n")
    t.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reload refused" not in t.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "reload refused" in t.log() and "bogus_key" in t.log()
    third = Raw(t.port)
    third.cmd("EHLO client.test")
    third.cmd("MAIL FROM:<a@b.example>")
    assert third.cmd("RCPT TO:<y@localhost>")[0] == 550
    assert old.cmd("QUIT")[0] == 221


def test_plugin_config_and_kv(make_ternd):
    t = with_plugins(make_ternd, ["counter"], counter="""
        return {
          rcpt = function(tx, addr)
            local n = tern.kv_incr("seen", 1)
            if n > config.limit then return "tempfail", "450 4.7.1 count " .. n end
          end,
        }
    """, extra="plugin_config = { counter = { limit = 2 } }\n")
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<a@b.example>")
    assert c.cmd("RCPT TO:<a@localhost>")[0] == 250
    assert c.cmd("RCPT TO:<b@localhost>")[0] == 250
    assert c.cmd("RCPT TO:<c@localhost>")[1][0] == "450 4.7.1 count 3"
    c.cmd("QUIT")
    # the store survives a restart
    t.stop()
    t.start()
    c = Raw(t.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<a@b.example>")
    assert c.cmd("RCPT TO:<d@localhost>")[1][0] == "450 4.7.1 count 4"
