# SPDX-License-Identifier: ISC
"""tern-sendmail: local programs queue mail, whether ternd runs or not."""
import email
import subprocess

from conftest import BUILD

SENDMAIL = BUILD / "mta" / "tern-sendmail"


def sendmail(t, args, text):
    return subprocess.run([str(SENDMAIL), "-C", str(t.config), *args],
                          input=text.encode(), capture_output=True, timeout=20)


def test_t_takes_recipients_and_strips_bcc(ternd):
    r = sendmail(ternd, ["-t", "-F", "Cron Daemon", "-f", "cron@mx.test"],
                 "To: Ann <ann@localhost>, bo@localhost\nBcc: hid@localhost\n"
                 "Subject: from cron\n\nhello\n.\nafter the dot\n")
    assert r.returncode == 0, r.stderr
    for who in ("ann", "bo", "hid"):
        raw = ternd.wait_messages(who, 1)[0]
        m = email.message_from_bytes(raw)
        assert m["Bcc"] is None
        assert m["From"] == '"Cron Daemon" <cron@mx.test>'
        assert m["Date"] and m["Message-ID"]
        assert raw.startswith(b"Return-Path: <cron@mx.test>\n")
        assert b"after the dot" not in raw          # "." ended the input
    assert b"with local id" in ternd.messages("ann")[0]


def test_i_and_arguments(ternd):
    r = sendmail(ternd, ["-oi", "cy@localhost"], "Subject: dots\n\n.\nmore\n")
    assert r.returncode == 0, r.stderr
    raw = ternd.wait_messages("cy", 1)[0]
    assert b"\n.\nmore\n" in raw.replace(b"..", b".")


def test_no_message_lost_while_ternd_is_down(ternd):
    ternd.stop()
    r = sendmail(ternd, ["dee@localhost"], "Subject: waiting\n\nx\n")
    assert r.returncode == 0, r.stderr
    assert list((ternd.data / "spool" / "pickup").iterdir())
    ternd.start()
    assert len(ternd.wait_messages("dee", 1)) == 1
    assert not list((ternd.data / "spool" / "pickup").iterdir())


def test_errors(ternd):
    assert sendmail(ternd, [], "Subject: nobody\n\nx\n").returncode == 64
    assert sendmail(ternd, ["bad address@@x"], "x\n").returncode == 64
    r = subprocess.run([str(SENDMAIL), "-C", "/nonexistent.lua", "a@localhost"],
                       input=b"x\n", capture_output=True)
    assert r.returncode == 78
    r = subprocess.run([str(SENDMAIL), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage: tern-sendmail" in r.stdout


def test_pickup_refuses_links(ternd, tmp_path):
    """Anyone may drop files into pickup: ternd must not follow links."""
    secret = tmp_path / "secret"
    body = b"Subject: stolen\n\nsecret\n"
    secret.write_bytes(b"tern-envelope: 1\nid: 0000000000000000\nfrom: <x@localhost>\n"
                       b"size: %d\nrcpt: <thief@localhost>\nend\n" % len(body) + body)
    pickup = ternd.data / "spool" / "pickup"
    assert pickup.stat().st_mode & 0o7777 == 0o1733
    (pickup / "evil-symlink").symlink_to(secret)
    (pickup / "evil-hardlink").hardlink_to(secret)
    r = subprocess.run([str(BUILD / "mta" / "ternctl"), "-c", str(ternd.config),
                        "pickup"], capture_output=True, text=True)
    assert r.returncode == 0
    assert ternd.messages("thief") == []
    assert "not a plain file" in ternd.log()
    assert not (pickup / "evil-symlink").exists()


def test_dsn_options(ternd):
    """-N, -R and -V: sendmail's DSN options (RFC 3461), kept in the
    queue file; -N success brings a success report, -N never none."""
    r = sendmail(ternd, ["-f", "me@localhost", "-N", "success,failure", "-R",
                         "hdrs", "-V", "id 1+2", "dee@localhost"],
                 "Subject: tell me\n\nhi\n")
    assert r.returncode == 0, r.stderr
    assert len(ternd.wait_messages("dee", 1)) == 1
    raw = ternd.wait_messages("me", 1)[0]
    assert b"Subject: Successful Mail Delivery Report" in raw
    assert b"Original-Envelope-Id: id 1+2" in raw
    assert b"Action: delivered" in raw
    for bad in (["-N", "sometimes"], ["-N", "never,success"], ["-R", "all"],
                ["-V", "x" * 101]):
        r = sendmail(ternd, bad + ["dee@localhost"], "Subject: x\n\nx\n")
        assert r.returncode == 64, (bad, r.stderr)
