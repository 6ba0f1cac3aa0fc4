# SPDX-License-Identifier: ISC
"""ternctl against a running ternd: inspect and repair the queue."""
import json
import signal
import smtplib
import subprocess
import time

from conftest import BUILD

TERNCTL = BUILD / "mta" / "ternctl"


def ctl(t, *args):
    return subprocess.run([str(TERNCTL), "-c", str(t.config), *args],
                          capture_output=True, text=True, timeout=20)


def queued(t, n=1, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = ctl(t, "queue", "--json")
        if r.returncode == 0:
            q = json.loads(r.stdout)
            if len(q) >= n and all(m["attempts"] >= 1 for m in q):
                return q
        time.sleep(0.1)
    raise AssertionError("not queued: " + r.stdout + r.stderr)


CLOSED_DNS = 'resolver = "127.0.0.1:1"\n'


def stuck_message(t):
    """A message for a remote domain: DNS fails (the ternd's resolver is a
    closed loopback port, CLOSED_DNS)."""
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        s.sendmail("alice@localhost", ["bob@remote.example", "carol@localhost"],
                   b"Subject: stuck\r\n\r\nx\r\n")
    return queued(t)[0]


def test_queue_show_hold_release_flush_remove(make_ternd):
    t = make_ternd(CLOSED_DNS + "dns_timeout = 1")
    m = stuck_message(t)
    assert m["from"] == "<alice@localhost>"
    st = {r["to"]: r["status"] for r in m["rcpts"]}
    assert st == {"<bob@remote.example>": "pending", "<carol@localhost>": "done"}
    # the last delivery result of the pending recipient, in both forms
    last = {r["to"]: r.get("last") for r in m["rcpts"]}["<bob@remote.example>"]
    assert last and last.startswith("4"), m
    r = ctl(t, "queue")
    assert r.returncode == 0 and m["id"] in r.stdout and "attempts=1" in r.stdout
    line = [l for l in r.stdout.splitlines() if "<bob@remote.example>" in l][0]
    assert "last=" + last in line, r.stdout
    r = ctl(t, "show", m["id"])
    assert r.returncode == 0
    assert "rcpt: <bob@remote.example>" in r.stdout and "Subject: stuck" in r.stdout
    assert ctl(t, "hold", m["id"]).returncode == 0
    assert json.loads(ctl(t, "queue", "--json").stdout)[0]["held"] is True
    r = ctl(t, "flush", m["id"])
    assert r.returncode == 1 and "on hold" in r.stderr
    # held survives a restart
    t.stop()
    t.start()
    deadline = time.monotonic() + 10
    while "on hold" not in t.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(ctl(t, "queue", "--json").stdout)[0]["held"] is True
    assert ctl(t, "release", m["id"]).returncode == 0
    deadline = time.monotonic() + 10
    while t.log().count("status=deferred") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert t.log().count("status=deferred") >= 2     # released: tried again
    r = ctl(t, "flush")
    assert r.returncode == 0 and "scheduled now" in r.stdout
    for _ in range(50):
        r = ctl(t, "remove", m["id"])
        if r.returncode == 0:
            break
        assert "being delivered" in r.stderr
        time.sleep(0.1)
    assert r.returncode == 0
    assert ctl(t, "queue").stdout.strip() == "the queue is empty"
    assert t.queue_files() == []


def test_stats_reload_and_errors(make_ternd):
    t = make_ternd()
    before = json.loads(ctl(t, "stats", "--json").stdout)["sessions_total"]
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        s.sendmail("a@localhost", ["b@localhost"], b"Subject: s\r\n\r\nx\r\n")
    t.wait_messages("b", 1)
    st = json.loads(ctl(t, "stats", "--json").stdout)
    assert st["received"] == 1 and st["delivered"] == 1 and st["generation"] == 1
    assert st["sessions_open"] == 0 and st["sessions_total"] == before + 1
    r = ctl(t, "stats")
    assert "sessions open        0" in r.stdout
    assert "sessions since start %d" % (before + 1) in r.stdout
    r = ctl(t, "reload")
    assert r.returncode == 0 and "generation 2" in r.stdout
    t.config.write_text(t.config.read_text() + "nonsense = 1\n")
    # ternctl checks the file itself first and says where it is wrong
    r = ctl(t, "reload")
    assert r.returncode == 78 and "tern.lua:" in r.stderr and "nonsense" in r.stderr
    t.proc.send_signal(signal.SIGHUP)        # ternd refuses it too
    deadline = time.monotonic() + 5
    while "reload refused" not in t.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "reload refused" in t.log()
    r = ctl(t, "check-config")
    assert r.returncode == 78 and "nonsense" in r.stderr
    t.config.write_text(t.config.read_text().replace("nonsense = 1\n", ""))
    r = ctl(t, "check-config")
    assert r.returncode == 0 and "the configuration is valid" in r.stdout
    assert ctl(t, "show", "zzz").returncode == 1
    assert ctl(t, "remove", "0123456789abcdef").returncode == 1
    assert ctl(t, "frobnicate").returncode == 2
    assert ctl(t, "show").returncode == 2
    assert json.loads(ctl(t, "stats", "--json").stdout)["generation"] == 2
    t.stop()
    r = ctl(t, "queue")
    assert r.returncode == 69 and "is it running" in r.stderr


def test_control_socket_is_private(make_ternd):
    t = make_ternd()
    sock = t.data / "run" / "ternd.sock"
    assert sock.exists()
    # the daemon's user and its group (ternctl for the group's members);
    # run/ is 0750 under privilege separation, 0700 otherwise
    assert sock.stat().st_mode & 0o777 == 0o660
    assert (t.data / "run").stat().st_mode & 0o007 == 0
