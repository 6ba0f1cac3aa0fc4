#!/usr/bin/python3
# SPDX-License-Identifier: ISC
"""Kill test: clients send numbered messages over several connections and
record which got 250; ternd is killed with SIGKILL at random moments and
restarted; at the end every acknowledged message must be in its Maildir.

    kill.py [--cycles N] [--mode local|relay] [--clients N] [--seed S]
            [--big K]

local: one ternd delivers into Maildirs. relay: ternd A (the one killed)
relays everything to ternd B over SMTP, B delivers. Prints acknowledged /
delivered / duplicated / lost; exits 1 if anything acknowledged was lost.
One message in K (--big, 10) is of 300-1,500 KiB, so its body is spooled
as it arrives (past 32 KiB), and over 1 MiB it is delivered from its
queue file without being read whole: the kills hit both paths too.
Bounded: the cycles given, and a deadline for the final drain."""
import argparse
import collections
import email
import os
import pathlib
import random
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
from conftest import Ternd, check_sanitizers  # noqa: E402


class Sender(threading.Thread):
    """Sends numbered messages until stopped; records those acked."""

    def __init__(self, n, port, rcpt, stop, big):
        super().__init__(daemon=True)
        self.n, self.port, self.rcpt, self.stop = n, port, rcpt, stop
        self.big = big
        self.acked = []
        self.seq = 0

    def run(self):
        while not self.stop.is_set():
            try:
                s = smtplib.SMTP("127.0.0.1", self.port, timeout=5)
            except OSError:
                time.sleep(0.02)
                continue
            try:
                for _ in range(random.randint(1, 20)):
                    if self.stop.is_set():
                        break
                    tag = "c%d-%d" % (self.n, self.seq)
                    self.seq += 1
                    if self.big and random.randrange(self.big) == 0:
                        text = ("big body line %s\r\n" % tag) * (
                            random.randint(300, 1500) * 1024 // 30)
                    else:
                        text = "body " * random.randint(1, 400) + "\r\n"
                    s.sendmail("load@example.org", [self.rcpt],
                               ("Subject: %s\r\nX-Tag: %s\r\n\r\n%s"
                                % (tag, tag, text)).encode())
                    # sendmail returned: the server said 250
                    self.acked.append(tag)
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass


_seen = {}


def delivered_tags(maildir):
    """How often each X-Tag is in the Maildir (each file read once)."""
    tags = collections.Counter()
    for sub in ("new", "cur"):
        d = maildir / sub
        if d.is_dir():
            for p in d.iterdir():
                uniq = p.name.split(":")[0]
                if uniq not in _seen:
                    with open(p, "rb") as f:
                        head = f.read(4096).split(b"\n\n", 1)[0]
                    _seen[uniq] = email.message_from_bytes(head)["X-Tag"]
                tags[_seen[uniq]] += 1
    return tags


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--mode", choices=("local", "relay"), default="local")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--drain", type=float, default=60.0)
    ap.add_argument("--big", type=int, default=10)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    random.seed(seed)

    work = pathlib.Path(tempfile.mkdtemp(prefix="tern-kill-"))
    b = None
    if a.mode == "relay":
        (work / "b").mkdir()
        b = Ternd(work / "b")
        b.start()
        (work / "a").mkdir()
        t = Ternd(work / "a", 'domains = { "a.test" }\n'
                  'relayhost = "127.0.0.1:%d"\n' % b.port)
        rcpt_domain = "example.test"
        box = lambda: b.maildir("kill", "example.test")  # noqa: E731
    else:
        t = Ternd(work)
        rcpt_domain = "localhost"
        box = lambda: t.maildir("kill")  # noqa: E731
    t.start()

    stop = threading.Event()
    senders = [Sender(i, t.port, "kill@" + rcpt_domain, stop, a.big)
               for i in range(a.clients)]
    for s in senders:
        s.start()
    start = time.monotonic()
    for cycle in range(a.cycles):
        time.sleep(random.uniform(0.05, 0.6))
        t.kill9()
        time.sleep(random.uniform(0, 0.1))
        t.start()
    stop.set()
    for s in senders:
        s.join(timeout=30)
    acked = [tag for s in senders for tag in s.acked]

    # drain: everything queued reaches the Maildir (bounded)
    deadline = time.monotonic() + a.drain
    while time.monotonic() < deadline:
        got = delivered_tags(box())
        queued = t.queue_files() + (b.queue_files() if b else [])
        if not queued and all(got[x] for x in acked):  # noqa: E501
            break
        time.sleep(0.2)
    got = delivered_tags(box())
    acked_set = set(acked)
    lost = [x for x in acked if got[x] == 0]
    dup = sum(1 for x in acked if got[x] > 1)
    # messages delivered without a 250 (killed after queueing, before the
    # reply reached us) are fine: the client would send them again
    unacked = sum(1 for x in got if x not in acked_set)
    elapsed = time.monotonic() - start
    t.stop()
    if b:
        b.stop()
    print("kill test (%s, seed %d): %d cycles in %.1f s: acknowledged %d, "
          "delivered %d, duplicated %d, lost %d, delivered without 250 %d"
          % (a.mode, seed, a.cycles, elapsed, len(acked),
             sum(1 for x in acked if got[x]), dup, len(lost), unacked))
    if lost:
        print("lost:", " ".join(lost[:20]))
        print("kept for inspection:", work)
        return 1
    for x in (t, b):
        if x:
            check_sanitizers(x)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
