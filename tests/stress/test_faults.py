# SPDX-License-Identifier: ISC
"""Faults: a full disk, misbehaving remote servers, slow and many clients.
Each test is bounded in count and time; figures are printed, never
asserted as timings."""
import contextlib
import os
import pathlib
import resource
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
from conftest import BUILD, Raw, Ternd, check_sanitizers, rss_kib  # noqa

TERNCTL = BUILD / "mta" / "ternctl"


def ctl(t, *args):
    return subprocess.run([str(TERNCTL), "-c", str(t.config)] + list(args),
                          capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def running(t):
    t.start()
    try:
        yield t
    finally:
        t.stop()
        check_sanitizers(t)


# --- disk full -----------------------------------------------------------

@pytest.fixture
def small_fs():
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    d = tempfile.mkdtemp(prefix="tern-full-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", d],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.strip())
    yield pathlib.Path(d)
    subprocess.run(["umount", "-l", d])
    os.rmdir(d)


def fill(path, leave):
    """A filler file that leaves about `leave` bytes free."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    filler = path / "filler"
    with open(filler, "wb") as f:
        left = max(0, free - leave)
        while left > 0:
            n = min(left, 1 << 20)
            f.write(b"\0" * n)
            left -= n
    return filler


@pytest.mark.parametrize("threshold", [2 << 20, 0])
def test_disk_full(small_fs, threshold):
    """With a threshold, ternd refuses new mail (452 4.3.1) before the disk
    is full; with none, the disk really fills (ENOSPC in the middle of a
    write). Either way what was accepted is kept, and delivered once
    space returns."""
    t = Ternd(small_fs, "limits = { min_free_space = %d }\n" % threshold)
    with running(t):
        filler = fill(small_fs, 4 << 20)
        body = ("x" * 76 + "\r\n") * 2600          # ~200 KB
        acked, refused = [], None
        for i in range(60):
            try:
                s = smtplib.SMTP("127.0.0.1", t.port, timeout=10)
                s.sendmail("a@example.org", ["full@localhost"],
                           "Subject: m%d\r\n\r\n%s" % (i, body))
                s.quit()
                acked.append("m%d" % i)
            except smtplib.SMTPResponseException as e:
                refused = (e.smtp_code, e.smtp_error)
                break
            except smtplib.SMTPRecipientsRefused as e:
                refused = list(e.recipients.values())[0]
                break
        assert refused is not None, "the disk never filled"
        assert refused[0] == 452 and b"4.3.1" in refused[1], refused
        print("\ndisk full (threshold %d): %d accepted, then %r"
              % (threshold, len(acked), refused))
        # space returns: everything accepted is delivered, new mail is taken
        filler.unlink()
        ctl(t, "flush")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if len(t.messages("full")) >= len(acked) and not t.queue_files():
                break
            time.sleep(0.2)
        got = sorted(m.split(b"\n", 1)[0] for m in t.messages("full"))
        assert len(got) == len(acked), (len(got), len(acked))
        s = smtplib.SMTP("127.0.0.1", t.port, timeout=10)
        s.sendmail("a@example.org", ["full@localhost"], "Subject: after\r\n\r\nok\r\n")
        s.quit()
        assert len(t.wait_messages("full", len(acked) + 1)) == len(acked) + 1


# --- misbehaving remote servers ------------------------------------------

class BadPeer(threading.Thread):
    """An SMTP server on loopback that misbehaves in one of several ways,
    or behaves (mode "good"), switchable while it runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.mode = "good"
        self.received = 0
        self.connections = 0
        self.stopping = False

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self.serve, args=(c, self.mode),
                             daemon=True).start()

    def serve(self, c, mode):
        f = c.makefile("rb")
        try:
            if mode == "silent":
                time.sleep(8)
                return
            if mode == "garbage":
                c.sendall(b"\x00\xff\xfe hello? \r\n999 what\r\n")
                time.sleep(1)
                return
            if mode == "huge":
                c.sendall(b"220-" + b"A" * 200000)
                time.sleep(2)
                return
            if mode == "manylines":
                c.sendall(b"220-x\r\n" * 5000)
                time.sleep(2)
                return
            c.sendall(b"220 peer.test ESMTP\r\n")
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line[:4].upper()
                if mode == "slow":
                    time.sleep(4)
                if cmd in (b"EHLO", b"HELO"):
                    c.sendall(b"250-peer.test\r\n250 8BITMIME\r\n")
                elif cmd == b"DATA":
                    c.sendall(b"354 go\r\n")
                    if mode == "drop":
                        f.readline()
                        c.close()
                        return
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    if self.mode == "tempfail":   # may change meanwhile
                        c.sendall(b"451 4.3.0 try later\r\n")
                    else:
                        self.received += 1
                        c.sendall(b"250 ok\r\n")
                elif cmd == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                c.close()


@pytest.mark.parametrize("mode", ["drop", "slow", "garbage", "huge",
                                  "manylines", "silent", "tempfail"])
def test_peer_faults_keep_the_message_queued(tmp_path, mode):
    peer = BadPeer()
    peer.mode = mode
    peer.start()
    t = Ternd(tmp_path, 'domains = { "local.test" }\n'
              'relayhost = "127.0.0.1:%d"\n'
              "smtp_client = { connect_timeout = 2, command_timeout = 2, "
              "data_timeout = 2 }\n" % peer.port)
    with running(t):
        rss0 = rss_kib(t.proc.pid)
        s = smtplib.SMTP("127.0.0.1", t.port)
        for i in range(5):
            s.sendmail("a@example.org", ["r%d@remote.test" % i],
                       "Subject: %d\r\n\r\n%s" % (i, ("y" * 70 + "\r\n") * 70))
        s.quit()
        # a few attempts, each failing its own way
        for _ in range(3):
            deadline = time.monotonic() + 15
            before = peer.connections
            ctl(t, "flush")
            while peer.connections == before and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(2.5)
        assert len(t.queue_files()) >= 5, "a message left the queue"
        q = ctl(t, "queue").stdout
        assert "remote.test" in q
        rss1 = rss_kib(t.proc.pid)
        # the peer behaves again: everything is delivered once
        peer.mode = "good"
        ctl(t, "flush")
        assert t.wait_queue_empty(timeout=30), ctl(t, "queue").stdout
        assert peer.received == 5
        assert "Undelivered" not in "".join(
            m.decode(errors="replace") for m in t.messages("a", "example.org"))
        print("\npeer %s: %d connections, ternd RSS %d -> %d KiB"
              % (mode, peer.connections, rss0, rss1))
        assert rss1 - rss0 < 20000
        # failures do not turn into a flood of connections
        assert peer.connections < 200, peer.connections
    peer.stopping = True


# --- slow and many clients -----------------------------------------------

def latency_probe(port, n=30):
    """Times n whole transactions of a well-behaved client (ms)."""
    times = []
    for i in range(n):
        t0 = time.monotonic()
        s = smtplib.SMTP("127.0.0.1", port, timeout=20)
        s.sendmail("a@example.org", ["probe@localhost"],
                   "Subject: p%d\r\n\r\nx\r\n" % i)
        s.quit()
        times.append((time.monotonic() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def test_slow_and_many_clients(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 12000
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    # (loopback is trusted: its own per-address cap is the one that holds)
    t = Ternd(tmp_path, "limits = { command_timeout = 4, "
              "max_connections = 6000, max_connections_per_ip = 50, "
              "max_connections_per_trusted_ip = 50 }\n")
    with running(t):
        base = latency_probe(t.port)
        socks = []
        # 5,000 idle connections from 100 loopback addresses (50 each)
        for i in range(5000):
            src = "127.0.%d.%d" % (1 + i // 50 // 250, 2 + (i // 50) % 250)
            s = socket.socket()
            s.setblocking(False)
            s.bind((src, 0))
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", t.port))
            socks.append(s)
        # one more from an address already at its limit is turned away
        time.sleep(1)
        extra = Raw(t.port, source="127.0.1.2")
        code, text = extra.greeting
        assert code == 421, (code, text)
        extra.close()
        # slowloris: one byte a second
        slow = socket.create_connection(("127.0.0.1", t.port),
                                        source_address=("127.0.3.1", 0))
        slow.recv(512)
        # a client that sends and never reads its replies
        deaf = socket.create_connection(("127.0.0.1", t.port),
                                        source_address=("127.0.3.2", 0))
        deaf.setblocking(False)
        sent = 0
        for _ in range(2000):
            try:
                sent += deaf.send(b"NOOP\r\n" * 1000)
            except BlockingIOError:
                break
        during = latency_probe(t.port)
        rss = rss_kib(t.proc.pid)
        closed_slow = False
        for ch in b"EHLO slowloris.example\r\n"[:8]:
            try:
                slow.send(bytes([ch]))
            except OSError:
                closed_slow = True
                break
            time.sleep(1)
        # the command timeout (4 s) ends the slow client's session
        slow.settimeout(10)
        try:
            data = slow.recv(4096)
            closed_slow = closed_slow or b"421" in data or data == b""
        except OSError:
            closed_slow = True
        assert closed_slow
        print("\n5,000 idle + slowloris + a deaf client (%d bytes unread): "
              "normal client p50 %.2f ms, p95 %.2f ms (before: p50 %.2f, "
              "p95 %.2f); ternd RSS %d KiB"
              % (sent, during[0], during[1], base[0], base[1], rss))
        for s in socks:
            s.close()
        slow.close()
        deaf.close()
        assert len(t.wait_messages("probe", 60)) == 60


# --- big messages --------------------------------------------------------

def test_big_transfers_keep_memory_flat(tmp_path):
    """40 clients each in the middle of a 4 MiB message (2 MiB sent): their
    bodies are in spool/tmp, not in ternd's memory; then each ends its
    message and all 40 are delivered whole."""
    n, sent_part = 40, 2 * 1024 * 1024
    t = Ternd(tmp_path)
    line = b"y" * 78 + b"\r\n"
    with running(t):
        rss0 = rss_kib(t.proc.pid)
        conns = []
        for i in range(n):
            c = Raw(t.port)
            c.cmd("EHLO client.test")
            assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
            assert c.cmd("RCPT TO:<big@localhost>")[0] == 250
            assert c.cmd("DATA")[0] == 354
            c.send(b"Subject: big %d\r\n\r\n" % i + line * (sent_part // 80))
            conns.append(c)
        # wait (bounded) until ternd has read what was sent
        tmp = t.data / "spool" / "tmp"
        deadline = time.monotonic() + 120
        spooled = 0
        while time.monotonic() < deadline:
            spooled = sum(p.stat().st_size for p in tmp.glob("*.body"))
            if spooled >= n * (sent_part - 128 * 1024):
                break
            time.sleep(0.1)
        rss1 = rss_kib(t.proc.pid)
        for c in conns:
            c.send(line * (sent_part // 80) + b".\r\n")
        for c in conns:
            assert c.reply()[0] == 250
            c.cmd("QUIT")
        got = t.wait_messages("big", n, timeout=120)
        rss2 = rss_kib(t.proc.pid)
        print("\n%d open 4 MiB transfers at 2 MiB: %d KiB spooled, ternd RSS "
              "%d -> %d KiB (%.0f KiB each), %d KiB after delivery"
              % (n, spooled // 1024, rss0, rss1, (rss1 - rss0) / n, rss2))
        assert spooled >= n * (sent_part - 128 * 1024)
        assert len(got) == n
        assert all(len(m.split(b"\n\n", 1)[1]) == 2 * (sent_part // 80) * 79
                   for m in got)
        # in memory: a little of each (was 2 MiB each before spooling)
        assert rss1 - rss0 < n * 512
