# SPDX-License-Identifier: ISC
"""ternmail, the user agent: what it writes is checked by Python's email
package, what it reads comes from ternd and from Python's mailbox module,
and its flag changes are read back by mailbox (and mblaze where it is
installed). End to end through ternd's submission port."""
import email
import email.policy
import json
import mailbox
import os
import shutil
import smtplib
import subprocess
import time

import pytest

from conftest import BUILD

TERNMAIL = BUILD / "maildir-tools" / "ternmail"
TERNCTL = BUILD / "mta" / "ternctl"
SENDMAIL = BUILD / "mta" / "tern-sendmail"
FIXTURES = os.path.join(os.path.dirname(__file__), "mail")


def tm(home, *args, input=None, env=None, check=True):
    e = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
         "LANG": "C.UTF-8", "TZ": "UTC", "USER": "tester"}
    e.update(env or {})
    r = subprocess.run([str(TERNMAIL)] + [str(a) for a in args], input=input,
                       capture_output=True, env=e)
    if check:
        assert r.returncode == 0, (args, r.returncode, r.stderr.decode())
    return r


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.default)


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    (h / ".config" / "ternmail").mkdir(parents=True)
    (h / ".config" / "ternmail" / "config").write_text(
        'from = "me@example.test"\nname = "Renée Tester"\n')
    return h


def test_compose_round_trip_through_python_email(home, tmp_path):
    att = tmp_path / "données.bin"
    blob = bytes(range(256)) * 40
    att.write_bytes(blob)
    txt = tmp_path / "notes.txt"
    txt.write_text("plain attachment\n")
    body = "Grüße! — ünïcödé body\n" + "x" * 200 + "\nFrom the start\n.\n"
    r = tm(home, "-m", tmp_path / "M", "compose",
           "--to", "Zoë Ångström <zoe@example.net>, bob@example.net",
           "--cc", "carl@example.net", "--bcc", "hidden@example.net",
           "--subject", "Héllo wörld, a subject that is quite long indeed "
           "and goes past the fold point for sure",
           "--attach", att, "--attach", txt, "--body", "-", "--print",
           input=body.encode())
    raw = r.stdout
    assert all(b < 128 for b in raw), "compose must write 7-bit"
    assert max(len(l) for l in raw.split(b"\n")) <= 998
    m = parse(raw)
    assert m["Subject"] == ("Héllo wörld, a subject that is quite long "
                            "indeed and goes past the fold point for sure")
    assert m["To"].addresses[0].display_name == "Zoë Ångström"
    assert m["To"].addresses[0].addr_spec == "zoe@example.net"
    assert m["From"].addresses[0].display_name == "Renée Tester"
    assert m["From"].addresses[0].addr_spec == "me@example.test"
    assert m["Bcc"] is not None     # --print shows the whole message
    for h in ("Date", "Message-ID", "MIME-Version"):
        assert m[h], h
    parts = list(m.iter_parts())
    assert parts[0].get_content() == body
    assert parts[0]["Content-Transfer-Encoding"] == "quoted-printable"
    assert parts[1].get_filename() == "données.bin"
    assert parts[1]["Content-Transfer-Encoding"] == "base64"
    assert parts[1].get_content() == blob
    assert parts[2].get_content_type() == "text/plain"
    assert parts[2].get_filename() == "notes.txt"
    assert parts[2].get_content() == "plain attachment\n"


def test_compose_ascii_stays_7bit_plain(home, tmp_path):
    r = tm(home, "-m", tmp_path / "M", "compose", "--to", "a@b.example",
           "--subject", "plain", "--body", "-", "--print", input=b"hello\n")
    m = parse(r.stdout)
    assert m.get_content_type() == "text/plain"
    assert m["Content-Transfer-Encoding"] == "7bit"
    assert m.get_content() == "hello\n"


def test_compose_refuses_bad_input(home, tmp_path):
    r = tm(home, "-m", tmp_path / "M", "compose", "--to", "nodomain",
           "--subject", "x", "--print", input=b"", check=False)
    assert r.returncode == 65
    r = tm(home, "-m", tmp_path / "M", "compose", "--to", "a@b.example",
           "--subject", "x", "--attach", tmp_path / "missing", "--print",
           input=b"", check=False)
    assert r.returncode == 66
    r = tm(home, "-m", tmp_path / "M", "compose", "--subject", "x",
           input=b"", check=False)
    assert r.returncode == 64


def test_maildir_from_ternd_listed_and_shown(ternd, home):
    s = smtplib.SMTP("127.0.0.1", ternd.port)
    s.sendmail("ann@example.org", ["dora@localhost"],
               "From: =?UTF-8?Q?Ann_M=C3=BCller?= <ann@example.org>\r\n"
               "To: dora@localhost\r\n"
               "Subject: =?ISO-8859-1?Q?caf=E9?= time\r\n"
               "Date: Tue, 24 Nov 2026 09:30:00 +0000\r\n"
               "Content-Type: text/plain; charset=iso-8859-1\r\n"
               "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
               "Un caf=E9 cr=E8me?\r\n")
    s.quit()
    ternd.wait_messages("dora", 1)
    md = ternd.maildir("dora")
    r = tm(home, "-m", md, "list")
    line = r.stdout.decode()
    assert line.startswith("1 N ")
    assert "2026-11-24 09:30" in line
    assert "Ann Müller" in line and "café time" in line
    r = tm(home, "-m", md, "show", "1")
    out = r.stdout.decode()
    assert "Subject: café time" in out
    assert "Un café crème?" in out
    assert not list((md / "new").iterdir())
    cur = list((md / "cur").iterdir())
    assert len(cur) == 1 and cur[0].name.endswith(":2,S")
    r = tm(home, "-m", md, "list", "--json")
    j = json.loads(r.stdout)
    assert j[0]["flags"] == "S" and j[0]["subject"] == "café time"
    assert j[0]["from_address"] == "ann@example.org"


def test_list_without_from_shows_the_envelope_sender(home, tmp_path):
    md = tmp_path / "M"
    tm(home, "deliver", md, input=b"Return-Path: <bounce@example.org>\n"
       b"Subject: no from\n\nx\n")
    tm(home, "deliver", md, input=b"Subject: nothing\n\nx\n")
    out = tm(home, "-m", md, "list").stdout.decode().splitlines()
    assert "bounce@example.org" in out[0]
    assert "(no sender)" in out[1]


def test_columns_fit_the_terminal(home, tmp_path):
    md = tmp_path / "M"
    msg = ("From: Someone With A Very Long Name <x@example.org>\n"
           "Subject: " + "日本語の件名" * 10 + "\n\nbody\n")
    tm(home, "deliver", md, input=msg.encode())
    for cols in (60, 80, 120):
        r = tm(home, "-m", md, "list", env={"COLUMNS": str(cols)})
        line = r.stdout.decode().rstrip("\n")
        # wide characters take two columns each
        width = sum(2 if "\u3000" <= ch <= "\u9fff" else 1 for ch in line)
        assert width <= cols, (cols, line)
        assert line.endswith("…")


def python_maildir(tmp_path):
    md = mailbox.Maildir(str(tmp_path / "PM"), create=True)
    for i, (subj, flags) in enumerate((("first", ""), ("second", "S"),
                                       ("third", "FS"))):
        m = mailbox.MaildirMessage(
            "From: p%d@example.org\nTo: me@example.test\nSubject: %s\n"
            "Date: Mon, 2%d Nov 2026 10:00:00 +0000\n\nbody %d\n" %
            (i, subj, i, i))
        if flags:
            m.set_subdir("cur")
            m.set_flags(flags)
        md.add(m)
        time.sleep(0.01)
    return md


def test_maildir_from_python_mailbox_round_trip(home, tmp_path):
    md = python_maildir(tmp_path)
    path = tmp_path / "PM"
    r = tm(home, "-m", path, "list", "--json")
    got = {m["subject"]: m["flags"] for m in json.loads(r.stdout)}
    assert got == {"first": "N", "second": "S", "third": "FS"}
    nums = {m["subject"]: m["number"] for m in json.loads(r.stdout)}
    tm(home, "-m", path, "flag", nums["first"], "+F", "+R")
    tm(home, "-m", path, "flag", nums["third"], "-F")
    tm(home, "-m", path, "move", nums["second"], "Archive")
    md = mailbox.Maildir(str(path), create=False)
    flags = {md[k]["Subject"]: md[k].get_flags() for k in md.keys()}
    assert flags == {"first": "FR", "third": "S"}
    assert "Archive" in md.list_folders()
    arch = md.get_folder("Archive")
    assert [arch[k]["Subject"] for k in arch.keys()] == ["second"]
    assert [arch[k].get_flags() for k in arch.keys()] == ["S"]
    r = tm(home, "-m", path, "folders")
    assert "Archive" in r.stdout.decode()
    if shutil.which("mlist") and shutil.which("mflag"):
        # mblaze agrees: mlist -F lists flagged messages, mflag -f unflags
        r = subprocess.run(["mlist", "-F", str(path)], capture_output=True,
                           text=True)
        assert len(r.stdout.split()) == 1 and ":2,FR" in r.stdout
        f = r.stdout.split()[0]
        subprocess.run(["mflag", "-f", f], check=True, capture_output=True)
        r = tm(home, "-m", path, "list", "--json")
        got = {m["subject"]: m["flags"] for m in json.loads(r.stdout)}
        assert got["first"] == "NR"


def test_numbers_stay_put_between_list_and_next_command(home, tmp_path):
    python_maildir(tmp_path)
    path = tmp_path / "PM"
    tm(home, "-m", path, "list")
    tm(home, "-m", path, "delete", "--expunge", "1")
    r = tm(home, "-m", path, "show", "2")
    assert "Subject: second" in r.stdout.decode()
    r = tm(home, "-m", path, "show", "1", check=False)
    assert r.returncode == 66
    # a message arriving now gets the next number, the others keep theirs
    tm(home, "deliver", path, input=b"Subject: fourth\n\nx\n")
    r = tm(home, "-m", path, "show", "4")
    assert "Subject: fourth" in r.stdout.decode()
    r = tm(home, "-m", path, "show", "3")
    assert "Subject: third" in r.stdout.decode()
    # a new list renumbers
    r = tm(home, "-m", path, "list")
    assert len(r.stdout.decode().splitlines()) == 3


def test_delete_goes_to_trash_then_expunge(home, tmp_path):
    python_maildir(tmp_path)
    path = tmp_path / "PM"
    tm(home, "-m", path, "list")
    tm(home, "-m", path, "delete", "1")
    md = mailbox.Maildir(str(path), create=False)
    trash = md.get_folder("Trash")
    assert [trash[k].get_flags() for k in trash.keys()] == ["T"]
    r = tm(home, "-m", path, "list", "-f", "Trash")
    assert "first" in r.stdout.decode()
    tm(home, "-m", path, "delete", "-f", "Trash", "1")
    assert len(md.get_folder("Trash")) == 0


@pytest.mark.parametrize("name,expect", [
    ("alternative.eml", ["Plain version wins"]),
    ("html-only.eml", ["Big news", "* first item", "click here <https://"
                       "example.org/x>", "Caf\u00e9 & cr\u00e8me"]),
    ("nested.eml", ["Top text", "Inner text", "report.pdf (application/pdf"]),
    ("latin1.eml", ["Voil\u00e0 l'\u00e9t\u00e9"]),
    ("shift_jis.eml", ["\u65e5\u672c\u8a9e\u306e\u672c\u6587"]),
    ("utf8-base64.eml", ["\u041f\u0440\u0438\u0432\u0435\u0442"]),
    ("no-boundary.eml", ["(no boundary)"]),
    ("bad-base64.eml", ["Attachments:"]),
    ("no-charset-8bit.eml", ["na\u00efve"]),
    ("escape.eml", ["evil"]),
])
def test_real_world_fixtures(home, name, expect):
    r = tm(home, "show", os.path.join(FIXTURES, name))
    out = r.stdout.decode("utf-8")
    for e in expect:
        assert e in out, (name, e, out)
    assert "\x1b" not in out and "\r" not in out


def test_save_attachment(home, tmp_path):
    r = tm(home, "-m", tmp_path / "M", "compose", "--to", "a@b.example",
           "--subject", "s", "--attach", "/bin/true", "--print", input=b"")
    tm(home, "deliver", tmp_path / "M", input=r.stdout)
    tm(home, "-m", tmp_path / "M", "list")
    out = tmp_path / "saved"
    tm(home, "-m", tmp_path / "M", "save-attachment", "1", "1", out)
    assert out.read_bytes() == open("/bin/true", "rb").read()
    r = tm(home, "-m", tmp_path / "M", "save-attachment", "1", "1", out,
           check=False)
    assert r.returncode == 73    # never overwrites
    r = tm(home, "-m", tmp_path / "M", "save-attachment", "1", "2",
           check=False)
    assert r.returncode == 66


def test_attachment_names_are_never_paths(home, tmp_path):
    msg = (b"Subject: x\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
           b"Content-Type: text/plain\n\nhi\n--b\n"
           b"Content-Type: application/octet-stream\n"
           b"Content-Disposition: attachment; filename=\"../../evil.sh\"\n"
           b"Content-Transfer-Encoding: base64\n\naGVsbG8K\n--b--\n")
    tm(home, "deliver", tmp_path / "M", input=msg)
    tm(home, "-m", tmp_path / "M", "list")
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run([str(TERNMAIL), "-m", str(tmp_path / "M"),
                        "save-attachment", "1", "1"], cwd=work,
                       capture_output=True, env={"HOME": str(home)})
    assert r.returncode == 0, r.stderr
    assert (work / "evil.sh").read_bytes() == b"hello\n"
    assert not (tmp_path / "evil.sh").exists()


def test_reply_and_forward_print(home, tmp_path):
    md = tmp_path / "M"
    tm(home, "deliver", md, input=(
        "From: Ann <ann@example.org>\nReply-To: list@example.org\n"
        "To: me@example.test, Other <other@example.org>\n"
        "Cc: ME@example.test, third@example.org\n"
        "Subject: Re: [list] Ünïcode topic\n"
        "Message-ID: <orig@example.org>\nReferences: <root@example.org>\n"
        "Date: Tue, 24 Nov 2026 09:30:00 +0000\n\nLine one\n\nLine two\n"
    ).encode())
    tm(home, "-m", md, "list")
    r = tm(home, "-m", md, "reply", "1", "--print", "--body", "-",
           input=b"My answer\n")
    m = parse(r.stdout)
    assert m["Subject"] == "Re: [list] Ünïcode topic"
    assert m["In-Reply-To"] == "<orig@example.org>"
    assert m["References"].split() == ["<root@example.org>",
                                       "<orig@example.org>"]
    assert [a.addr_spec for a in m["To"].addresses] == ["list@example.org"]
    assert m["Cc"] is None
    body = m.get_content()
    assert "wrote:\n> Line one\n>\n> Line two\n" in body
    assert body.rstrip().endswith("My answer")
    r = tm(home, "-m", md, "reply", "1", "--all", "--print", input=b"")
    m = parse(r.stdout)
    assert [a.addr_spec for a in m["To"].addresses] == ["list@example.org"]
    assert sorted(a.addr_spec for a in m["Cc"].addresses) == [
        "other@example.org", "third@example.org"]
    # --print sends nothing and marks nothing
    assert not list((md / "cur").glob("*R*"))
    r = tm(home, "-m", md, "forward", "1", "--to", "x@example.net",
           "--print", input=b"FYI\n")
    m = parse(r.stdout)
    assert m["Subject"] == "Fwd: Re: [list] Ünïcode topic"
    parts = list(m.iter_parts())
    assert parts[0].get_content() == "FYI\n"
    assert parts[1].get_content_type() == "message/rfc822"
    inner = parts[1].get_content()
    assert inner["Message-ID"] == "<orig@example.org>"
    r = tm(home, "-m", md, "forward", "1", "--inline", "--to",
           "x@example.net", "--print", input=b"")
    m = parse(r.stdout)
    assert "---------- Forwarded message ----------" in m.get_content()
    assert "Line two" in m.get_content()


def test_draft_goes_to_drafts(home, tmp_path):
    md = tmp_path / "M"
    tm(home, "-m", md, "compose", "--to", "a@b.example", "--subject",
       "later", "--draft", input=b"unfinished\n")
    box = mailbox.Maildir(str(md), create=False)
    drafts = box.get_folder("Drafts")
    msgs = [drafts[k] for k in drafts.keys()]
    assert len(msgs) == 1 and "D" in msgs[0].get_flags()
    assert msgs[0]["Subject"] == "later"


def test_edit_uses_the_editor(home, tmp_path):
    ed = tmp_path / "ed.sh"
    ed.write_text("#!/bin/sh\nsed -i -e 's/^To: $/To: ed@example.net/' "
                  "-e 's/^Subject: $/Subject: edited/' \"$1\"\n"
                  "echo 'typed in the editor' >> \"$1\"\n")
    ed.chmod(0o755)
    r = tm(home, "-m", tmp_path / "M", "compose", "--edit", "--print",
           env={"EDITOR": str(ed)})
    m = parse(r.stdout)
    assert m["To"] == "ed@example.net"
    assert m["Subject"] == "edited"
    assert "typed in the editor" in m.get_content()


def test_deliver_is_a_local_delivery_agent(home, tmp_path):
    md = tmp_path / "D"
    r = tm(home, "deliver", md, input=b"From sender Tue Nov 24 2026\r\n"
           b"Subject: crlf\r\n\r\nline\r\n")
    files = list((md / "new").iterdir())
    assert len(files) == 1
    assert files[0].read_bytes() == b"Subject: crlf\n\nline\n"
    assert files[0].stat().st_mode & 0o077 == 0
    tm(home, "deliver", "-f", "Lists.tern", md, input=b"Subject: f\n\nx\n")
    assert len(list((md / ".Lists.tern" / "new").iterdir())) == 1
    assert (md / ".Lists.tern" / "maildirfolder").exists()
    r = tm(home, "deliver", "-f", "../etc", md, input=b"x", check=False)
    assert r.returncode == 64
    r = tm(home, "deliver", md, input=b"", check=False)
    assert r.returncode == 65
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    r = tm(home, "deliver", blocker / "M", input=b"Subject: x\n\ny\n",
           check=False)
    assert r.returncode == 75


def test_check_repairs(home, tmp_path):
    md = tmp_path / "C"
    tm(home, "deliver", md, input=b"Subject: a\n\nb\n")
    (md / ".Junk" / "new").mkdir(parents=True)
    old = md / "tmp" / "1.stale.host"
    old.write_text("x")
    t = time.time() - 40 * 3600
    os.utime(old, (t, t))
    fresh = md / "tmp" / "2.fresh.host"
    fresh.write_text("x")
    (md / "cur" / "1.bad.host:2,SF").write_text("x")
    r = tm(home, "check", "-n", md, check=False)
    assert r.returncode == 1
    assert old.exists()
    r = tm(home, "check", md, check=False)
    out = r.stdout.decode()
    assert "removed stale tmp file" in out
    assert "created missing directory" in out
    assert not old.exists() and fresh.exists()
    assert (md / ".Junk" / "cur").is_dir() and (md / ".Junk" / "tmp").is_dir()
    assert r.returncode == 1   # the odd name is reported, not removed
    (md / "cur" / "1.bad.host:2,SF").unlink()
    r = tm(home, "check", md)
    assert r.stdout.decode().strip().endswith(": ok")


@pytest.fixture
def msa(make_ternd, tmp_path):
    users = tmp_path / "users"
    users.write_text("")
    t = make_ternd(start=False)
    t.write_config('users = "%s"\n' % users)
    for user, pw in (("me", "pw with space"), ("dora", "dora's pw")):
        r = subprocess.run([str(TERNCTL), "-c", str(t.config), "passwd",
                            user], input=pw + "\n", capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
    t.start()
    return t


def test_end_to_end_through_submission(msa, tmp_path):
    t = msa
    home = tmp_path / "home2"
    (home / ".config" / "ternmail").mkdir(parents=True)
    (home / ".config" / "ternmail" / "config").write_text(
        'maildir = "%s"\nfrom = "me@localhost"\nname = "Me Myself"\n'
        "smtp_host = 127.0.0.1\nsmtp_port = %d\nsmtp_tls = starttls\n"
        "smtp_verify = no\nsmtp_user = me\n"
        "smtp_password_command = \"echo 'pw with space'\"\n"
        % (tmp_path / "MyMail", t.sub_port))
    r = tm(home, "compose", "--to", "Dora <dora@localhost>", "--bcc",
           "eve@localhost", "--subject", "Grüße", "--attach", "/etc/hostname",
           "--body", "-", input="Hallo Dora, schöne Grüße\n".encode())
    assert b"sent" in r.stdout
    dora = t.maildir("dora")
    assert len(t.wait_messages("dora", 1)) == 1
    assert len(t.wait_messages("eve", 1)) == 1
    got = parse(t.messages("dora")[0])
    assert got["Bcc"] is None
    assert got["Subject"] == "Grüße"
    # the copy in Sent keeps Bcc and is seen
    sent = mailbox.Maildir(str(tmp_path / "MyMail"),
                           create=False).get_folder("Sent")
    copies = [sent[k] for k in sent.keys()]
    assert len(copies) == 1 and copies[0]["Bcc"] == "eve@localhost"
    assert copies[0].get_flags() == "S"
    # Dora reads, replies and forwards
    dhome = tmp_path / "dhome"
    (dhome / ".config" / "ternmail").mkdir(parents=True)
    (dhome / ".config" / "ternmail" / "config").write_text(
        "from = dora@localhost\nsmtp_host = 127.0.0.1\nsmtp_port = %d\n"
        "smtp_verify = no\nsmtp_user = dora\n" % t.sub_port)
    env = {"TERNMAIL_PASSWORD": "dora's pw"}
    r = tm(dhome, "-m", dora, "list", env=env)
    assert "Me Myself" in r.stdout.decode() and "Grüße" in r.stdout.decode()
    r = tm(dhome, "-m", dora, "show", "1", env=env)
    assert "schöne Grüße" in r.stdout.decode()
    assert "hostname (application/octet-stream" in r.stdout.decode()
    tm(dhome, "-m", dora, "reply", "1", "--body", "-", env=env,
       input=b"Thanks!\n")
    assert len(t.wait_messages("me", 1)) == 1
    rep = parse(t.messages("me")[0])
    assert rep["Subject"] == "Re: Grüße"
    assert rep["In-Reply-To"] == got["Message-ID"]
    tm(dhome, "-m", dora, "forward", "1", "--to", "fred@localhost", env=env,
       input=b"")
    assert len(t.wait_messages("fred", 1)) == 1
    fwd = parse(t.messages("fred")[0])
    assert fwd["Subject"] == "Fwd: Grüße"
    r = tm(dhome, "-m", dora, "list", "--json", env=env)
    assert json.loads(r.stdout)[0]["flags"] == "SRP" or \
        sorted(json.loads(r.stdout)[0]["flags"]) == sorted("PRS")
    # a wrong password: refused for good, nothing sent, nothing stored
    r = tm(dhome, "-m", dora, "compose", "--to", "x@localhost", "--subject",
           "s", env={"TERNMAIL_PASSWORD": "wrong"}, input=b"", check=False)
    assert r.returncode == 69
    assert b"not sent" in r.stderr


def test_send_with_sendmail(ternd, home, tmp_path):
    wrapper = tmp_path / "sm"
    wrapper.write_text('#!/bin/sh\nexec "%s" -C "%s" "$@"\n'
                       % (SENDMAIL, ternd.config))
    wrapper.chmod(0o755)
    subprocess.run([str(TERNCTL), "-c", str(ternd.config), "pickup"],
                   capture_output=True)
    tm(home, "-m", tmp_path / "M", "compose", "--sendmail", "--to",
       "gus@localhost", "--subject", "via sendmail",
       env={"TERNMAIL_SENDMAIL": str(wrapper)}, input=b"body\n")
    subprocess.run([str(TERNCTL), "-c", str(ternd.config), "pickup"],
                   capture_output=True)
    msgs = ternd.wait_messages("gus", 1)
    assert len(msgs) == 1
    assert parse(msgs[0])["Subject"] == "via sendmail"
