# SPDX-License-Identifier: ISC
"""make install (DESTDIR): what lands where, that it runs from there, and
that systemd accepts the unit."""
import shutil
import subprocess

import pytest

from conftest import BUILD


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    dest = tmp_path_factory.mktemp("destdir")
    r = subprocess.run(["make", "-C", str(BUILD), "install", "DESTDIR=%s" % dest],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    units = list(dest.rglob("ternd.service"))
    assert len(units) == 1, "no unit installed"
    prefix = units[0].parents[3]          # .../lib/systemd/system/ternd.service
    return dest, prefix, units[0]


def test_programs_pages_plugins_and_sample(installed):
    dest, prefix, unit = installed
    for p in ("sbin/ternd", "sbin/ternctl", "sbin/tern-sendmail", "bin/ternmail",
              "share/man/man8/ternd.8", "share/man/man1/ternmail.1",
              "share/tern/plugins/retry_default.lua", "etc/tern/tern.lua.sample"):
        assert (prefix / p).exists(), p
    for p in ("sbin/ternd", "sbin/ternctl", "sbin/tern-sendmail", "bin/ternmail"):
        r = subprocess.run([str(prefix / p), "--version"], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0 and "(Tern)" in r.stdout, (p, r.stdout, r.stderr)


def test_systemd_accepts_the_unit(installed, tmp_path):
    dest, prefix, unit = installed
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing (scripts/deps test installs systemd)")
    text = unit.read_text()
    root = str(prefix).replace(str(dest), "", 1)     # the configured prefix
    assert "ExecStart=%s/sbin/ternd -c %s/etc/tern/tern.lua" % (root, root) in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    for want in ("Type=forking", "PIDFile=/var/lib/tern/run/ternd.pid",
                 "ProtectSystem=strict", "ReadWritePaths=/var/lib/tern",
                 "NoNewPrivileges=yes", "PrivateTmp=yes"):
        assert want in text, want
    # systemd checks that the programs exist: point it at the DESTDIR copy
    # (the only change), and any warning counts (verify exits 0 on some)
    local = tmp_path / "ternd.service"
    local.write_text(text.replace(root + "/", str(prefix) + "/"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(local)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    # and it would say so: a broken unit is reported
    bad = tmp_path / "bad" / "ternd.service"
    bad.parent.mkdir()
    bad.write_text(local.read_text().replace("Type=forking", "Type=bogus"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert "bogus" in r.stderr
