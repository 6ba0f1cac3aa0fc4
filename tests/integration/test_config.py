# SPDX-License-Identifier: ISC
"""The Lua configuration: checked at start with file, line and reason."""
import subprocess

from conftest import TERND, TOP


def run(*args, **kw):
    return subprocess.run([str(TERND), *args], capture_output=True, text=True,
                          timeout=20, **kw)


def test_help_and_version():
    r = run("--help")
    assert r.returncode == 0 and "usage: ternd" in r.stdout
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("ternd (Tern) ")
    r = run("-x")
    assert r.returncode != 0


def test_embedded_default_printed(tmp_path):
    r = run("-n", cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert 'addr = "127.0.0.1:2525", role = "mx"' in r.stdout
    assert 'addr = "127.0.0.1:2587", role = "submission"' in r.stdout
    assert 'data_dir = "%s/var"' % tmp_path in r.stdout
    r = run("-n", cwd=tmp_path, env={"TERN_HOME": str(tmp_path / "h")})
    assert 'data_dir = "%s/h"' % tmp_path in r.stdout


def test_bad_configs_refused_with_line(tmp_path):
    cases = {
        'listen = {{ addr = "127.0.0.1:2525" }}\nbogus = 1\n': ":2: bogus: unknown setting",
        'listen = {{ addr = "127.0.0.1:2525" }}\n\nlimits = { max_foo = 1 }\n': ":3: limits: unknown key 'max_foo'",
        'listen = {{ addr = "nowhere" }}\n': ":1: listen: item 1",
        'listen = {{ addr = "127.0.0.1:25", role = "bogus" }}\n': "role must be",
        'listen = {{ addr = "127.0.0.1:25" }}\nhostname = 5\n': ":2: hostname: expected a string",
        'listen = {{ addr = "127.0.0.1:25" }}\nuser = 7\n': ":2: user: expected a string",
        'listen = {{ addr = "127.0.0.1:25" }}\nsmtp_client = { port = 0 }\n': "port must be at least 1",
        'listen = {\n': "unexpected symbol",
        'while true do end\n': "used more than its budget",
        'os.execute("true")\n': "attempt to call a nil value",
        'domains = { "ok.example" }\n': "listen: at least one listener",
        'listen = {{ addr = "127.0.0.1:25" }}\ndnssec = "maybe"\n': ":2: dnssec: expected true, false or \"resolver\"",
        'listen = {{ addr = "127.0.0.1:25" }}\ndnssec = "resolver"\n': 'dnssec = "resolver" trusts the AD bit of the resolver named by',
    }
    for i, (text, want) in enumerate(cases.items()):
        f = tmp_path / ("c%d.lua" % i)
        f.write_text(text)
        r = run("-n", "-c", str(f))
        assert r.returncode == 1, text
        assert want in r.stderr, (text, r.stderr)
        assert str(f) in r.stderr


def test_good_config_prints_effective_values(tmp_path):
    f = tmp_path / "t.lua"
    f.write_text('hostname = "mx.example.org"\n'
                 'listen = { { addr = "[::1]:2526", role = "mx" } }\n'
                 'domains = { "Example.ORG" }\n'
                 'limits = { max_message_size = 10*1024*1024 }\n'
                 'recipient_delimiter = "-"\n'
                 'data_dir = os.getenv("TMPDIR_T") .. "/d"\n')
    r = run("-n", "-c", str(f), env={"TMPDIR_T": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert 'domains = { "example.org" }' in r.stdout
    assert "max_message_size = 10485760" in r.stdout
    assert 'recipient_delimiter = "-"' in r.stdout
    assert 'data_dir = "%s/d"' % tmp_path in r.stdout


def test_port_in_use_is_a_clean_error(ternd, tmp_path):
    f = tmp_path / "dup.lua"
    f.write_text('data_dir = "%s/x"\nlisten = { { addr = "127.0.0.1:%d" } }\n'
                 % (tmp_path, ternd.port))
    r = run("-f", "-c", str(f))
    assert r.returncode == 1
    assert "cannot listen on 127.0.0.1:%d" % ternd.port in r.stderr


def test_daemon_mode_reports_and_writes_pid(tmp_path):
    from conftest import free_port
    import os, signal, time
    port = free_port()
    f = tmp_path / "d.lua"
    f.write_text('data_dir = "%s/var"\nlisten = { { addr = "127.0.0.1:%d" } }\n'
                 % (tmp_path, port))
    r = run("-c", str(f))
    assert r.returncode == 0, r.stderr
    pidfile = tmp_path / "var" / "run" / "ternd.pid"
    deadline = time.monotonic() + 5
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pidfile.exists()


def roundtrip(tmp_path, first, env=None, name="rt"):
    """ternd -n's output, loaded again, prints the same (but line 1, which
    names the source)."""
    assert first.returncode == 0, first.stderr
    printed = tmp_path / (name + ".lua")
    printed.write_text(first.stdout)
    again = run("-n", "-c", str(printed), env=env)
    assert again.returncode == 0, (first.stdout, again.stderr)
    a = first.stdout.split("\n", 1)[1]
    b = again.stdout.split("\n", 1)[1]
    assert a == b
    return first.stdout


def test_printed_config_round_trips(tmp_path):
    # the embedded default
    roundtrip(tmp_path, run("-n", cwd=tmp_path), name="embedded")
    # every kind of value, strings that need quoting, nested plugin_config
    recip = tmp_path / "recipients"
    recip.write_text("alice\n")
    d = tmp_path / 'dir "with" \\ quotes'
    f = tmp_path / "full.lua"
    f.write_text(
        'hostname = "mx.example.org"\n'
        'data_dir = %s\n'
        'listen = { { addr = "127.0.0.1:2526", role = "mx" },\n'
        '           { addr = "127.0.0.1:2466", role = "submissions" } }\n'
        'domains = { "example.org", "example.net" }\n'
        'trusted_networks = { "10.1.0.0/16" }\n'
        'resolver = "127.0.0.1:5353"\n'
        'dnssec = "resolver"\n'
        'relayhost = "smarthost.example:587"\n'
        'submission_from = "envelope"\n'
        'recipient_delimiter = ""\n'
        'limits = { max_header_size = 65536, max_header_fields = 500 }\n'
        'smtp_client = { tls = "verify", ca_file = "/etc/ssl/certs/ca-certificates.crt" }\n'
        'plugins = { "retry_default", "rcpt_users" }\n'
        'plugin_config = { rcpt_users = { file = %s, zz = { 1, 2.5, true, "a\\nb" }, aa = "x" } }\n'
        % (json_str(d), json_str(recip)))
    out = roundtrip(tmp_path, run("-n", "-c", str(f)), name="full")
    assert 'resolver = "127.0.0.1:5353"' in out
    assert 'dnssec = "resolver"' in out
    assert 'user = nil' in out
    assert 'submission_from = "envelope"' in out
    assert "max_header_fields = 500" in out
    assert '"a\\010b"' in out


def test_shipped_sample_config_is_valid(tmp_path):
    sample = (TOP / "systemd" / "tern.lua.sample").read_text()
    f = tmp_path / "tern.lua"
    # the sample's data_dir is /var/lib/tern: check it, run it elsewhere
    assert 'data_dir = "/var/lib/tern"' in sample
    f.write_text(sample.replace("/var/lib/tern", str(tmp_path / "var")))
    roundtrip(tmp_path, run("-n", "-c", str(f)), name="sample")


def json_str(p):
    """A Lua string literal for a path (json's escapes are Lua's too)."""
    import json
    return json.dumps(str(p))
