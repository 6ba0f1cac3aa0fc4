#!/usr/bin/python3
# SPDX-License-Identifier: ISC
"""Runs ternd under valgrind's memcheck for the lifetime of a few
sessions (plain, STARTTLS, pipelined, refused, relayed to a peer that
fails, ternctl, an IMAP session through most commands and IDLE, an IMAP
client that vanishes mid-literal) and a clean stop; prints the leak summary and exits 1 on
any memory error or any definitely or indirectly lost block."""
import imaplib
import pathlib
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
from conftest import BUILD, TERND, Ternd, free_port  # noqa: E402

TERNCTL = BUILD / "mta" / "ternctl"


def wait_port(port, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5) as s:
                s.recv(100)
            return True
        except OSError:
            time.sleep(0.2)
    return False


def imap_session(port, ctx):
    """Most IMAP commands once, IDLE, and a client that vanishes."""
    m = imaplib.IMAP4("127.0.0.1", port, timeout=120)
    m.starttls(ssl_context=ctx)
    m.login("vg", "vg pw")
    m.list()
    m.select("INBOX")
    m.fetch("1:*", "(UID FLAGS ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER] "
            "BODY[TEXT])")
    m.search(None, "OR", "TEXT", "body", "NOT", "SEEN")
    m.store("1", "+FLAGS", "(\\Deleted Keyword)")
    m.copy("2", "Archive")
    m.uid("MOVE", "3", "Trash")
    m.expunge()
    m.status("Trash", "(MESSAGES UIDNEXT)")
    m.append("Drafts", "(\\Draft)", None, b"Subject: d\r\n\r\nx\r\n")
    m.create("A/B")
    m.rename("A", "C")
    m.delete("C/B")
    m.subscribe("C")
    m.lsub('""', "*")
    s = m.socket()
    s.sendall(b"I1 IDLE\r\n")
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"DONE\r\n")
    f.readline()
    m.logout()
    with socket.create_connection(("127.0.0.1", port), 30) as x:
        x.recv(500)
        x.sendall(b"a1 STARTTLS\r\n")     # and leave during the handshake
    with socket.create_connection(("127.0.0.1", port), 30) as x:
        x.recv(500)
        x.sendall(b"a1 LOGIN {5}\r\n")    # and leave mid-literal
        x.recv(100)
    time.sleep(1)


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="tern-vg-"))
    t = Ternd(work, 'relayhost = "127.0.0.1:1"\n')
    imap_port = free_port()
    t.config.write_text(t.config.read_text().replace(
        'role = "submission" },', 'role = "submission" },\n'
        '  { addr = "127.0.0.1:%d", role = "imap" },' % imap_port))
    subprocess.run([str(TERNCTL), "-c", str(t.config), "passwd", "vg"],
                   input="vg pw\n", capture_output=True, text=True, timeout=60)
    log = work / "valgrind.log"
    proc = subprocess.Popen(
        ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
         "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
         "--log-file=%s" % log, str(TERND), "-f", "-c", str(t.config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(t.port, proc):
        print("valgrind: ternd did not start")
        return 1
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for i in range(5):
        with smtplib.SMTP("127.0.0.1", t.port, timeout=60) as s:
            s.sendmail("a@example.org", ["vg@localhost", "x@remote.test"],
                       "Subject: %d\r\n\r\nbody\r\n" % i)
    with smtplib.SMTP("127.0.0.1", t.port, timeout=60) as s:
        s.starttls(context=ctx)
        s.ehlo()
        s.sendmail("a@example.org", ["vg@localhost"], "Subject: tls\r\n\r\nx\r\n")
    with socket.create_connection(("127.0.0.1", t.port), 30) as s:
        s.recv(512)
        s.sendall(b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<../x@localhost>\r\n"
                  b"BOGUS\r\nDATA\r\n")
        time.sleep(1)
    with socket.create_connection(("127.0.0.1", t.port), 30) as s:
        s.sendall(b"EHLO half-a-session")   # and hang up mid-line
    subprocess.run([str(TERNCTL), "-c", str(t.config), "stats"],
                   capture_output=True, timeout=60)
    subprocess.run([str(TERNCTL), "-c", str(t.config), "queue"],
                   capture_output=True, timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(t.messages("vg")) < 6:
        time.sleep(0.3)
    delivered = len(t.messages("vg"))
    imap_session(imap_port, ctx)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=120)
    text = log.read_text(errors="replace")
    summary = {}
    for kind in ("definitely lost", "indirectly lost", "possibly lost",
                 "still reachable"):
        m = re.search(r"%s: ([\d,]+) bytes in ([\d,]+) blocks" % kind, text)
        summary[kind] = m.group(1) + " bytes" if m else "0 bytes"
    errs = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    nerr = int(errs.group(1)) if errs else -1
    print("valgrind session: %d delivered; exit %d; %d errors; %s" % (
        delivered, rc, nerr, "; ".join("%s %s" % kv for kv in summary.items())))
    ok = rc == 0 and nerr == 0 and delivered == 6
    if not ok:
        print(text[-6000:])
    else:
        subprocess.run(["rm", "-rf", str(work)])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
