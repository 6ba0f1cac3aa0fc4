# SPDX-License-Identifier: ISC
"""DKIM interop with OpenDKIM (Debian's opendkim-tools, libopendkim):
mail that Tern signs verifies with opendkim-testmsg, an RSA signature and
an Ed25519 one each on its own, and a changed copy does not.
opendkim-testmsg asks for the keys through the C library's resolver,
which reads /etc/resolv.conf and port 53: it runs in a network namespace
made for it (loopback only, `unshare -n -m`), with its own resolv.conf
bind-mounted and a loopback unbound on 127.0.0.1:53 serving the records
`ternctl dkim keygen` printed. Its signatures are rsa-sha1 (it has no
other), which Tern refuses as RFC 8301 says."""
import json
import re
import subprocess
import sys

import pytest

from conftest import TOP
from test_dkim import keys, mx_send, results_of, txt_record  # noqa: F401
from test_submission import login, start_msa

# Run as root inside `unshare -n -m`: loopback up, resolv.conf ours,
# unbound on port 53, opendkim-testmsg on each file; prints the results.
HELPER = r"""
import json, subprocess, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from peers import Unbound
tmp, records, files = Path(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4:]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
(tmp / "resolv.conf").write_text("nameserver 127.0.0.1\n")
subprocess.run(["mount", "--bind", str(tmp / "resolv.conf"),
                "/etc/resolv.conf"], check=True)
dns = Unbound(tmp, records, port=53)
out = []
try:
    for f in files:
        with open(f, "rb") as m:
            r = subprocess.run(["opendkim-testmsg"], stdin=m,
                               capture_output=True, text=True, timeout=60)
        out.append([r.returncode, r.stderr.strip()])
finally:
    dns.stop()
print(json.dumps(out))
"""


def opendkim_verify(tmp_path, records, messages):
    """(exit status, stderr) of opendkim-testmsg for each message."""
    files = []
    for i, m in enumerate(messages):
        f = tmp_path / ("msg%d.eml" % i)
        f.write_bytes(m)
        files.append(str(f))
    zone = ['local-zone: "localhost." static'] + [
        txt_record(n, r) for n, r in records.items()]
    work = tmp_path / "netns"
    work.mkdir()
    r = subprocess.run(["unshare", "-n", "-m", sys.executable, "-c", HELPER,
                        str(TOP / "tests" / "integration"), str(work),
                        json.dumps(zone)] + files,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def without(raw, kind):
    """raw with the DKIM-Signature fields of the other algorithm taken
    out (each signature covers no DKIM-Signature field)."""
    fields = re.findall(rb"(?m)^DKIM-Signature:[^\n]*\n(?:[ \t][^\n]*\n)*",
                        raw)
    for f in fields:
        if kind not in f:
            raw = raw.replace(f, b"")
    assert raw.count(b"DKIM-Signature:") == 1
    return raw


def test_tern_signatures_verify_with_opendkim(make_ternd, tmp_path, keys):
    conf, records = keys
    msa = start_msa(make_ternd, tmp_path, conf)
    s = login(msa)
    s.sendmail("alice@localhost", ["gail@localhost"],
               b"From: Alice <alice@localhost>\r\nTo: gail@localhost\r\n"
               b"Subject: for OpenDKIM\r\n\r\nHello  Gail,\r\n\r\n"
               b"  spaces  and\ttabs stay.\r\n\r\n\r\n")
    s.quit()
    raw = msa.wait_messages("gail", 1)[0]
    rsa = without(raw, b"a=rsa-sha256")
    ed = without(raw, b"a=ed25519-sha256")
    changed = rsa.replace(b"for OpenDKIM", b"for OpenDKIM!")
    got = opendkim_verify(tmp_path, records, [rsa, ed, changed])
    assert got[0] == [0, ""], got
    assert got[1] == [0, ""], got
    assert got[2][0] != 0 and "Bad signature" in got[2][1], got


def test_opendkim_rsa_sha1_is_refused(make_ternd, tmp_path):
    """What opendkim-testmsg signs (rsa-sha1) is a permerror here."""
    from test_dkim import MSG, keygen
    from test_hooks import plugins
    from peers import Unbound
    key, rec = keygen(tmp_path / "k", "sender.test", "s1", "rsa")
    dns = Unbound(tmp_path, [txt_record("s1._domainkey.sender.test.", rec)])
    try:
        t = make_ternd(start=False)
        t.write_config('resolver = "%s"\n' % dns.address)
        t.start()
        m = (MSG % (b"sha1", b"sha1")).replace(b"\r\n", b"\n")
        r = subprocess.run(["opendkim-testmsg", "-d", "sender.test", "-k",
                            str(key), "-s", "s1"], input=m,
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert b"a=rsa-sha1" in r.stdout
        mx_send(t, r.stdout.replace(b"\n", b"\r\n"))
        res, text = results_of(t.wait_messages("vera", 1)[0])
        assert res == ["permerror"] and "rsa-sha1" in text, text
    finally:
        dns.stop()
