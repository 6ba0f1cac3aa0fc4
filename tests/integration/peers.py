# SPDX-License-Identifier: ISC
"""Remote peers for outbound tests: an unbound DNS server on loopback with
the test zone (or a DNSSEC-signed one), aiosmtpd SMTP servers that record
what they receive, and Debian's Postfix."""
import os
import signal
import socket
import struct
import subprocess
import time

from aiosmtpd.controller import Controller


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dns_answers(port, name="probe.test"):
    """Sends one A query for name; True on any answer."""
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode()
                  for p in name.split(".")) + b"\x00"
    q += struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(q, ("127.0.0.1", port))
            return len(s.recv(512)) > 12
        except OSError:
            return False


class Unbound:
    """unbound serving 'test.' from local-data on a loopback port."""

    probe = "probe.test"
    modules = "iterator"
    tcp = False

    def __init__(self, tmp_path, records, port=None):
        self.dir = tmp_path / "unbound"
        self.dir.mkdir()
        self._launch([
            '  local-zone: "test." static',
            '  local-data: "probe.test. A 127.0.0.1"',
        ] + [("  " + r) if r.startswith("local-zone:") else
             ("  local-data: '%s'" if '"' in r else '  local-data: "%s"') % r
             for r in records], port)

    def _launch(self, extra, port=None):
        # A UDP port free now may be taken before unbound binds it; try a
        # few fresh ones before giving up (a port asked for: that one).
        why = ""
        for attempt in range(1 if port else 5):
            self.port = port or free_udp_port()
            why = self._start(extra)
            if not why:
                return
        raise RuntimeError("unbound did not start: " + why)

    def _start(self, extra):
        lines = [
            "server:",
            "  interface: 127.0.0.1@%d" % self.port,
            "  port: %d" % self.port,
            "  do-tcp: %s" % ("yes" if self.tcp else "no"),
            "  do-daemonize: no",
            "  use-syslog: no",
            '  username: ""',
            '  chroot: ""',
            '  directory: "%s"' % self.dir,
            '  pidfile: "%s/unbound.pid"' % self.dir,
            "  access-control: 127.0.0.0/8 allow",
            "  do-ip6: no",
            '  module-config: "%s"' % self.modules,
        ] + extra + [
            # never the Internet's root servers: a name it does not
            # serve goes to a closed loopback port and fails at once
            "forward-zone:",
            '  name: "."',
            "  forward-addr: 127.0.0.1@1",
        ]
        conf = self.dir / "unbound.conf"
        conf.write_text("\n".join(lines) + "\n")
        errlog = self.dir / "unbound.stderr"
        with open(errlog, "wb") as err:
            self.proc = subprocess.Popen(["unbound", "-d", "-c", str(conf)],
                                         stdout=subprocess.DEVNULL,
                                         stderr=err)
        deadline = time.monotonic() + 10
        while not _dns_answers(self.port, self.probe):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                return "port %d: %s" % (
                    self.port, errlog.read_text(errors="replace").strip())
            time.sleep(0.05)
        return ""

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Recorder:
    """aiosmtpd handler: records messages; optional refusals."""

    def __init__(self, reject_rcpt=(), eightbit=True, data_reply=None,
                 smtputf8=True):
        self.messages = []
        self.smtputf8 = smtputf8
        self.ehlos = 0
        self.reject_rcpt = reject_rcpt
        self.eightbit = eightbit
        self.data_reply = data_reply
        self.tls = []
        self.quits = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.ehlos += 1
        session.host_name = hostname
        drop = ([] if self.eightbit else ["8BITMIME"]) + \
            ([] if self.smtputf8 else ["SMTPUTF8"])
        if drop:
            responses = [r for r in responses if r[4:] not in drop]
            # the last line must be a final "250 " line
            responses[-1] = "250 " + responses[-1][4:]
        return responses

    async def handle_QUIT(self, server, session, envelope):
        self.quits += 1
        return "221 Bye"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        for bad in self.reject_rcpt:
            if address.startswith(bad):
                return "550 5.1.1 <%s>: no such user here" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.original_content or envelope.content))
        self.tls.append(session.ssl is not None)
        return "250 2.0.0 OK: recorded"


def make_certs(d, names):
    """A test CA and one server certificate per name (openssl CLI)."""
    import subprocess as sp
    d.mkdir(exist_ok=True)
    run = lambda *a: sp.run(a, cwd=d, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=Tern Test CA")
    for n in names:
        (d / (n + ".ext")).write_text("subjectAltName=DNS:%s\n" % n)
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout",
            n + ".key", "-out", n + ".csr", "-subj", "/CN=" + n)
        run("openssl", "x509", "-req", "-in", n + ".csr", "-CA", "ca.crt",
            "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out",
            n + ".crt", "-extfile", n + ".ext")
    return d / "ca.crt"


class Peer:
    def __init__(self, host, port, size=None, cert=None, **kw):
        self.handler = Recorder(**kw)
        extra = {"data_size_limit": size} if size else {}
        if cert:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(cert) + ".crt", str(cert) + ".key")
            extra["tls_context"] = ctx
        self.controller = Controller(self.handler, hostname=host, port=port,
                                     decode_data=False, **extra)
        self.controller.start()

    @property
    def messages(self):
        return self.handler.messages

    def wait(self, n, timeout=15):
        deadline = time.monotonic() + timeout
        while len(self.handler.messages) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.handler.messages

    def stop(self):
        self.controller.stop()


MASTER_CF = """\
{port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


class Postfix:
    """Debian's Postfix as a peer: its own config, queue and log in a
    directory of its own (the postfix user must reach it, and pytest's
    tmp_path is root's alone), smtpd on 127.0.0.1:port, the domain pf.test delivered to
    one Maildir (maildir()), everything else relayed to [127.0.0.1]:
    relay_port (a ternd). Started with `postfix -c`, stopped the same
    way (its master is ours alone)."""

    def __init__(self, port, relay_port, settings=""):
        import pathlib
        import pwd
        import tempfile
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="tern-postfix-"))
        os.chmod(self.dir, 0o755)
        self.port = port
        for sub in ("etc", "queue", "data", "vmail"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        pw = pwd.getpwnam("postfix")
        for sub in ("data", "vmail"):
            os.chown(self.dir / sub, pw.pw_uid, pw.pw_gid)
        self.log = self.dir / "maillog"
        self.etc = self.dir / "etc"
        (self.etc / "main.cf").write_text("\n".join([
            "compatibility_level = 3.6",
            "queue_directory = %s/queue" % self.dir,
            "data_directory = %s/data" % self.dir,
            "maillog_file = %s" % self.log,
            "maillog_file_prefixes = %s" % self.dir,
            "mail_owner = postfix",
            "setgid_group = postdrop",
            "myhostname = mx.pf.test",
            "mydomain = pf.test",
            "myorigin = pf.test",
            "mydestination =",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            "smtpd_relay_restrictions = permit_mynetworks, "
            "reject_unauth_destination",
            "relayhost = [127.0.0.1]:%d" % relay_port,
            "smtp_dns_support_level = disabled",
            "virtual_mailbox_domains = pf.test",
            "virtual_mailbox_base = %s/vmail" % self.dir,
            "virtual_mailbox_maps = static:mail/",
            "virtual_uid_maps = static:%d" % pw.pw_uid,
            "virtual_gid_maps = static:%d" % pw.pw_gid,
            "virtual_minimum_uid = 1",
            "alias_maps =", "alias_database =", "biff = no",
            "smtputf8_enable = yes",
            "smtp_tls_security_level = none",
            "smtpd_tls_security_level = none",
            "delay_warning_time = 0",
            "queue_run_delay = 1s", "minimal_backoff_time = 1s",
            "maximal_backoff_time = 2s",
            "smtp_connection_cache_on_demand = no",
            settings, ""]))
        (self.etc / "master.cf").write_text(MASTER_CF.format(port=port))
        r = subprocess.run(["postfix", "-c", str(self.etc), "start"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("postfix did not start: " + r.stdout +
                               r.stderr + self.maillog())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.5) as s:
                    if s.recv(100).startswith(b"220"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("postfix does not answer: " + self.maillog())

    def maillog(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def messages(self):
        out = []
        for sub in ("new", "cur"):
            d = self.dir / "vmail" / "mail" / sub
            if d.is_dir():
                out += [p.read_bytes() for p in sorted(d.iterdir())]
        return out

    def wait(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while len(self.messages()) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.messages()

    def queue_empty(self, timeout=30):
        """True once the queue holds nothing (postqueue -p says so)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = subprocess.run(["postqueue", "-c", str(self.etc), "-p"],
                               capture_output=True, text=True, timeout=20)
            if "Mail queue is empty" in r.stdout:
                return True
            time.sleep(0.2)
        return False

    def stop(self):
        import shutil
        subprocess.run(["postfix", "-c", str(self.etc), "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def tlsa_data(cert_pem, selector=1, mtype=1):
    """The association data of a TLSA record for a PEM certificate, as
    hex: selector 0 the whole certificate, 1 its SubjectPublicKeyInfo;
    mtype 0 as it is, 1 SHA-256, 2 SHA-512."""
    import hashlib
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    cert = x509.load_pem_x509_certificate(open(cert_pem, "rb").read())
    der = cert.public_bytes(serialization.Encoding.DER) if selector == 0 \
        else cert.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
    return {0: der, 1: hashlib.sha256(der).digest(),
            2: hashlib.sha512(der).digest()}[mtype].hex()


class SignedZone(Unbound):
    """A DNSSEC-signed zone on loopback: keys made by ldns-keygen, the
    zone signed by ldns-signzone, served by unbound as an authority
    (auth-zone) on a UDP port. trust_anchor is a file with the zone's DS
    record, for ternd's dnssec_trust_anchor. Records named in `bogus`
    get their data changed after signing, so their signatures fail.
    validating: unbound is a validating resolver for the zone instead
    (the zone's DS its trust anchor, the zone its upstream, TCP too),
    whose answers carry the AD bit, for ternd's dnssec = "resolver"."""

    def __init__(self, tmp_path, zone, records, bogus=(), validating=False):
        self.dir = tmp_path / ("zone-" + zone)
        self.dir.mkdir()
        self.zone = zone
        run = lambda *a: subprocess.run(a, cwd=self.dir, check=True,
                                        capture_output=True, text=True)
        text = ["$ORIGIN %s." % zone, "$TTL 300",
                "@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 300"
                % (zone, zone), "@ IN NS ns.%s." % zone,
                "ns IN A 127.0.0.1"] + list(records)
        (self.dir / "zone").write_text("\n".join(text) + "\n")
        ksk = run("ldns-keygen", "-a", "ECDSAP256SHA256", "-k",
                  zone).stdout.strip()
        zsk = run("ldns-keygen", "-a", "ECDSAP256SHA256", zone).stdout.strip()
        run("ldns-signzone", "-n", "zone", ksk, zsk)
        signed = self.dir / "zone.signed"
        lines = signed.read_text().splitlines()
        for name in bogus:
            fq = name.rstrip(".") + "."
            for i, l in enumerate(lines):
                f = l.split()
                if f and f[0] == fq and "RRSIG" not in f and len(f) > 4 \
                        and f[3] in ("TLSA", "A", "MX"):
                    # flip the last hex digit / octet: the RRSIG no longer
                    # matches the data
                    last = f[-1]
                    f[-1] = last[:-1] + ("0" if last[-1] != "0" else "1")
                    lines[i] = "\t".join(f)
        signed.write_text("\n".join(lines) + "\n")
        self.trust_anchor = self.dir / "anchor.ds"
        self.trust_anchor.write_text((self.dir / (ksk + ".ds")).read_text())
        self.probe = "ns." + zone
        if validating:
            self.modules, self.tcp = "validator iterator", True
        self._launch([
            '  local-zone: "test." nodefault',
        ] + (['  trust-anchor-file: "%s"' % self.trust_anchor]
             if validating else []) + [
            "auth-zone:",
            '  name: "%s."' % zone,
            '  zonefile: "%s/zone.signed"' % self.dir,
            "  for-downstream: %s" % ("no" if validating else "yes"),
            "  for-upstream: %s" % ("yes" if validating else "no"),
        ] + ([
            # not forwarded with the rest: the iterator's own, so it
            # asks the auth-zone (the address is never used)
            "stub-zone:",
            '  name: "%s."' % zone,
            "  stub-addr: 127.0.0.1@1",
        ] if validating else []))


class PolicyServer:
    """An HTTPS server on 127.0.0.1 for MTA-STS policies: a certificate
    for mta-sts.DOMAIN from the test CA (cert: the path without its
    .crt/.key), serving `policy` at /.well-known/mta-sts.txt with
    `status` and `ctype`; the paths asked are in requests, and what was
    POSTed (TLS reports) in posts."""

    def __init__(self, cert, policy, status=200, ctype="text/plain"):
        import http.server
        import ssl
        import threading
        self.policy, self.status, self.ctype = policy, status, ctype
        self.requests = []
        self.posts = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Host")))
                body = server.policy.encode()
                self.send_response(server.status)
                self.send_header("Content-Type", server.ctype)
                self.send_header("Content-Length", str(len(body)))
                if server.status in (301, 302):
                    self.send_header("Location", "https://elsewhere.test/")
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                server.posts.append((self.path,
                                     self.headers.get("Content-Type"),
                                     self.rfile.read(n)))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert) + ".crt", str(cert) + ".key")
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
