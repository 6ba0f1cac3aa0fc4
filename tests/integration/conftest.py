# SPDX-License-Identifier: ISC
"""Fixtures for integration tests: a real ternd on free loopback ports
with a temporary data_dir, stopped by its PID; raw SMTP clients."""
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

TOP = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("TERN_BUILDDIR", TOP))
TERND = BUILD / "mta" / "ternd"


_given = set()


def free_port():
    """A loopback TCP port free now, below the ephemeral range (Linux:
    32768-60999): a port the kernel hands out itself may be taken by any
    outgoing connection before ternd binds it. Never the same twice in a
    run."""
    import random
    for _ in range(1000):
        port = random.randrange(20000, 32000)
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


class Ternd:
    """One ternd process with its own config and data directory."""

    def __init__(self, tmp_path, settings=""):
        self.dir = tmp_path
        self.data = tmp_path / "var"
        self.port = free_port()
        self.sub_port = free_port()
        self.hostname = "mx.test"
        self.settings = settings
        self.proc = None
        self.logfile = tmp_path / "ternd.log"
        self.config = tmp_path / "tern.lua"
        self.write_config()

    def write_config(self, settings=None):
        if settings is not None:
            self.settings = settings
        self.config.write_text(
            f'hostname = "{self.hostname}"\n'
            f'data_dir = "{self.data}"\n'
            "listen = {\n"
            f'  {{ addr = "127.0.0.1:{self.port}", role = "mx" }},\n'
            f'  {{ addr = "127.0.0.1:{self.sub_port}", role = "submission" }},\n'
            "}\n"
            'domains = { "localhost", "mx.test", "example.test" }\n'
            # Never the system resolver: tests talk to loopback only. A
            # test that needs DNS sets its own (a server it started);
            # the others get one that says NXDOMAIN to everything at
            # once (SPF and DKIM of mail on port 25 ask it).
            + ('resolver = "127.0.0.1:%d"\n' % nxdomain_dns_port()
               if "resolver" not in self.settings else "")
            # The test resolvers serve unsigned local data: no DNSSEC
            # validation (which the root's trust anchor would fail)
            # unless a test asks for it (test_dane.py).
            + ('dnssec = false\n' if "dnssec" not in self.settings else "")
            + self.settings + "\n")

    def start(self, expect_fail=False):
        log = open(self.logfile, "ab")
        self.proc = subprocess.Popen([str(TERND), "-f", "-c", str(self.config)],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if expect_fail:
            self.proc.wait(timeout=10)
            return self.proc.returncode
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ternd exited: " + self.log())
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                    s.recv(100)
                return 0
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("ternd did not start: " + self.log())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def maildir(self, local, domain="localhost"):
        return self.data / "mail" / domain / local

    def messages(self, local, domain="localhost", folder=None):
        md = self.maildir(local, domain)
        if folder:
            md = md / ("." + folder)
        out = []
        for sub in ("new", "cur"):
            d = md / sub
            if d.is_dir():
                out += [p.read_bytes() for p in sorted(d.iterdir())]
        return out

    def wait_messages(self, local, n, domain="localhost", timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = self.messages(local, domain)
            if len(msgs) >= n:
                return msgs
            time.sleep(0.02)
        return self.messages(local, domain)

    def queue_files(self):
        q = self.data / "spool" / "queue"
        return sorted(p.name for p in q.iterdir()) if q.is_dir() else []

    def wait_queue_empty(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.queue_files():
                return True
            time.sleep(0.02)
        return False


_nx = None


def nxdomain_dns_port():
    """A DNS server on a loopback port, started once, that answers every
    query NXDOMAIN at once (a thread of the test process)."""
    global _nx
    if _nx is None:
        import threading
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))

        def serve():
            while True:
                try:
                    q, addr = sock.recvfrom(4096)
                except OSError:
                    return
                if len(q) < 12:
                    continue
                i = 12
                while i < len(q) and q[i] != 0:
                    i += 1 + q[i]
                head = bytearray(q[:12])
                head[2] = 0x80 | (q[2] & 0x01)     # a response; RD as asked
                head[3] = 0x80 | 3                 # RA; NXDOMAIN
                head[6:12] = b"\0\0\0\0\0\0"
                try:
                    sock.sendto(bytes(head) + q[12:i + 5], addr)
                except OSError:
                    pass
        threading.Thread(target=serve, daemon=True).start()
        _nx = sock.getsockname()[1]
    return _nx


class Raw:
    """A byte-exact SMTP client: send anything, read whole replies."""

    def __init__(self, port, source="127.0.0.1", timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout,
                                             source_address=(source, 0))
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        """Reads one (possibly multi-line) reply: (code, [lines])."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed; got %r" % (lines,))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("latin-1"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), lines

    def cmd(self, line):
        self.send(line.encode("latin-1") + b"\r\n")
        return self.reply()

    def closed(self, timeout=3):
        """True if the server closed the connection (EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:")


def rss_kib(pid):
    """A process's resident memory, KiB (from /proc)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def check_sanitizers(t):
    """In the ASan/UBSan build, any report in ternd's log fails the test."""
    log = t.log()
    for mark in SANITIZER_MARKS:
        if mark in log:
            i = log.index(mark)
            raise AssertionError("sanitizer report in ternd's log:\n" +
                                 log[max(0, i - 200):i + 3000])


@pytest.fixture
def ternd(tmp_path):
    t = Ternd(tmp_path)
    t.start()
    yield t
    t.stop()
    check_sanitizers(t)


@pytest.fixture
def make_ternd(tmp_path):
    made = []

    def make(settings="", start=True, sub="a"):
        d = tmp_path / sub
        d.mkdir(exist_ok=True)
        t = Ternd(d, settings)
        if start:
            t.start()
        made.append(t)
        return t

    yield make
    for t in made:
        t.stop()
    for t in made:
        check_sanitizers(t)
