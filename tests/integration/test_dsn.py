# SPDX-License-Identifier: ISC
"""DSN (RFC 3461): NOTIFY and ORCPT on RCPT, RET and ENVID on MAIL,
checked as they arrive and kept in the queue file (ternctl show); a
success report ("delivered") for local delivery and ("relayed") for a
next hop without DSN; NOTIFY=NEVER silences a failure, RET=FULL returns
the whole message; a next hop that has DSN (a second ternd) gets the
parameters, and its report is the only one the sender sees."""
import email
import json
import smtplib

from conftest import Raw, free_port
from peers import Unbound
from test_outbound import bounce_of, world  # noqa: F401 (a fixture)
from test_jmap import web  # noqa: F401 (a fixture)
from test_ternctl import CLOSED_DNS, ctl, queued


def report(raw):
    """(per-message fields, [per-recipient fields]) of a DSN."""
    m = email.message_from_bytes(raw)
    assert m.get_content_type() == "multipart/report"
    ds = [p for p in m.walk()
          if p.get_content_type() == "message/delivery-status"][0]
    blocks = ds.get_payload()
    return blocks[0], blocks[1:], m


def submit(t, rcpts, options, mail_options=(), body=None,
           sender="sender@localhost"):
    body = body or (b"From: sender@localhost\r\nTo: someone\r\n"
                    b"Subject: dsn test\r\n\r\nthe body text\r\n")
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test") as s:
        s.ehlo("client.test")
        assert s.has_extn("dsn")
        s.mail(sender, list(mail_options))
        for r in rcpts:
            code, text = s.rcpt(r, options)
            assert code == 250, text
        code, text = s.data(body)
        assert code == 250, text


def test_parameters_checked(make_ternd):
    t = make_ternd()
    c = Raw(t.port)
    code, lines = c.cmd("EHLO client.test")
    assert "250-DSN" in lines or "250 DSN" in lines
    for bad in ("RET=ALL", "RET", "ENVID=a+2", "ENVID=a+0Ab",
                "ENVID=" + "x" * 101):
        code, lines = c.cmd("MAIL FROM:<a@sender.test> " + bad)
        assert code == 501 and "5.5.4" in lines[0], (bad, lines)
    # a parameter twice is malformed (555, as an unknown one)
    code, lines = c.cmd("MAIL FROM:<a@sender.test> RET=FULL RET=HDRS")
    assert code == 555 and "5.5.4" in lines[0]
    assert c.cmd("MAIL FROM:<a@sender.test> RET=hdrs ENVID=QQ+2B1")[0] == 250
    for bad in ("NOTIFY=NEVER,SUCCESS", "NOTIFY=SOMETIMES", "NOTIFY",
                "ORCPT=bob@x.test", "ORCPT=rfc822;", "ORCPT=rfc822;a+0D"):
        code, lines = c.cmd("RCPT TO:<vera@localhost> " + bad)
        assert code == 501 and "5.5.4" in lines[0], (bad, lines)
    # an ORCPT of 490 octets makes a RCPT line longer than 512: allowed
    code, lines = c.cmd("RCPT TO:<vera@localhost> NOTIFY=SUCCESS,FAILURE "
                        "ORCPT=rfc822;" + "o" * 470 + "@x.test")
    assert code == 250, lines
    # other commands keep the 512 limit
    assert c.cmd("NOOP " + "x" * 600)[0] == 500
    c.cmd("RSET")
    # HELO is not ESMTP: no parameters at all
    c.cmd("HELO client.test")
    code, lines = c.cmd("MAIL FROM:<a@sender.test> RET=FULL")
    assert code == 555
    c.cmd("QUIT")


def test_success_report_for_local_delivery(make_ternd):
    t = make_ternd()
    submit(t, ["vera@localhost", "walt@localhost"],
           ["NOTIFY=SUCCESS", "ORCPT=rfc822;Vera+2BWalt@Example.test"],
           ["RET=HDRS", "ENVID=QQ314159"])
    assert len(t.wait_messages("vera", 1)) == 1
    assert len(t.wait_messages("walt", 1)) == 1
    raw = t.wait_messages("sender", 1)[0]
    assert t.wait_queue_empty()
    per_msg, rcpts, m = report(raw)
    assert m["Subject"] == "Successful Mail Delivery Report"
    assert m["To"] == "<sender@localhost>"
    assert per_msg["Original-Envelope-Id"] == "QQ314159"
    assert per_msg["Reporting-MTA"] == "dns; mx.test"
    got = sorted((r["Final-Recipient"], r["Action"], r["Status"],
                  r["Original-Recipient"]) for r in rcpts)
    assert got == [
        ("rfc822; vera@localhost", "delivered", "2.0.0",
         "rfc822;Vera+Walt@Example.test"),
        ("rfc822; walt@localhost", "delivered", "2.0.0",
         "rfc822;Vera+Walt@Example.test")]
    # our Maildir file names stay ours; only the header comes back
    assert b"the body text" not in raw
    assert b"Diagnostic-Code" not in raw
    assert b"relayed" not in raw          # nothing was, so not explained
    # one report for both, and none asked for by the report itself
    assert len(t.messages("sender")) == 1
    assert "success report for 2 recipient(s)" in t.log()


def test_default_is_no_success_report(make_ternd):
    t = make_ternd()
    submit(t, ["vera@localhost"], [])
    assert len(t.wait_messages("vera", 1)) == 1
    assert t.wait_queue_empty()
    assert t.messages("sender") == []


def test_never_silences_a_failure_and_ret_full(world):
    w = world()
    w.peer("127.0.0.4", reject_rcpt=("bad",))
    submit(w.t, ["bad1@reject.test"], ["NOTIFY=NEVER"])
    assert w.t.wait_queue_empty()
    assert w.t.messages("sender") == []
    assert "status=failed" in w.t.log()
    # the default (FAILURE): a bounce, with the whole message (RET=FULL)
    submit(w.t, ["bad2@reject.test"], ["ORCPT=rfc822;bad2@reject.test"],
           ["RET=FULL", "ENVID=run1"])
    raw = bounce_of(w.t)[0]
    per_msg, rcpts, m = report(raw)
    assert per_msg["Original-Envelope-Id"] == "run1"
    assert rcpts[0]["Action"] == "failed" and rcpts[0]["Status"] == "5.1.1"
    assert rcpts[0]["Original-Recipient"] == "rfc822;bad2@reject.test"
    full = [p for p in m.walk() if p.get_content_type() == "message/rfc822"]
    assert len(full) == 1 and b"the body text" in raw


def test_relayed_to_a_hop_without_dsn(world):
    w = world()
    p = w.peer("127.0.0.3")                    # aiosmtpd: no DSN
    submit(w.t, ["u@aonly.test", "v@aonly.test"],
           ["NOTIFY=SUCCESS,FAILURE"], ["ENVID=relay+2Btest"])
    assert len(p.wait(1)) == 1
    raw = w.t.wait_messages("sender", 1)[0]
    per_msg, rcpts, m = report(raw)
    assert per_msg["Original-Envelope-Id"] == "relay+test"
    assert [r["Action"] for r in rcpts] == ["relayed", "relayed"]
    assert rcpts[0]["Remote-MTA"].startswith("dns; ")
    assert rcpts[0]["Diagnostic-Code"].startswith("smtp; 250")
    assert "relayed" in m.get_payload()[0].get_payload()
    assert w.t.wait_queue_empty()


def test_queue_file_keeps_them(make_ternd):
    t = make_ternd(CLOSED_DNS + "dns_timeout = 1")
    submit(t, ["u@remote.example"], ["NOTIFY=SUCCESS,DELAY",
                                     "ORCPT=rfc822;u+40x@remote.example"],
           ["RET=FULL", "ENVID=keep+20me"])
    qid = queued(t)[0]["id"]     # no DNS: it stays queued
    for round in ("running", "after a restart"):
        out = ctl(t, "show", qid)
        assert out.returncode == 0, out.stderr
        text = out.stdout
        assert "ret: FULL\n" in text and "envid: keep+20me\n" in text, round
        assert "notify: 0 SUCCESS,DELAY\n" in text, round
        assert "orcpt: 0 rfc822;u+40x@remote.example\n" in text, round
        t.stop()
        t.start()


def test_parameters_go_on_to_a_hop_with_dsn(make_ternd, tmp_path):
    """near (sender's server) relays to far by MX; far has DSN, so near
    passes NOTIFY/ORCPT/ENVID/RET on and sends no "relayed" report; far
    delivers and its success report comes back to the sender at near."""
    port = free_port()
    dns = Unbound(tmp_path, ["far.test. MX 10 mxfar.test.",
                             "mxfar.test. A 127.0.0.2",
                             "near.test. MX 10 mxnear.test.",
                             "mxnear.test. A 127.0.0.3"])
    try:
        ends = {}
        for name, addr in (("far", "127.0.0.2"), ("near", "127.0.0.3")):
            t = make_ternd(start=False, sub=name)
            t.hostname = "mx%s.test" % name
            t.write_config(
                'listen = { { addr = "127.0.0.1:%d", role = "mx" },\n'
                '  { addr = "%s:%d", role = "mx" } }\n'
                'domains = { "%s.test" }\nresolver = "%s"\n'
                "smtp_client = { port = %d }\n"
                % (t.port, addr, port, name, dns.address, port))
            t.start()
            ends[name] = t
        far, near = ends["far"], ends["near"]
        submit(near, ["rita@far.test"],
               ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Rita@far.test"],
               ["RET=HDRS", "ENVID=chain1"], sender="sam@near.test",
               body=b"From: sam@near.test\r\nTo: rita@far.test\r\n"
                    b"Subject: two hops\r\n\r\nhi\r\n")
        assert len(far.wait_messages("rita", 1, domain="far.test")) == 1
        raw = near.wait_messages("sam", 1, domain="near.test")[0]
        per_msg, rcpts, m = report(raw)
        assert per_msg["Reporting-MTA"] == "dns; mxfar.test"
        assert per_msg["Original-Envelope-Id"] == "chain1"
        assert rcpts[0]["Action"] == "delivered"
        assert rcpts[0]["Original-Recipient"] == "rfc822;Rita@far.test"
        assert near.wait_queue_empty() and far.wait_queue_empty()
        # near sent no report of its own ("relayed"): just far's
        assert len(near.messages("sam", domain="near.test")) == 1
        assert "success report" not in near.log()
        assert "success report" in far.log()
    finally:
        dns.stop()


def test_jmap_submission_parameters(web):
    """EmailSubmission's envelope parameters (RFC 8621 7) are DSN's, as
    on port 587; the capability says so, and others are refused."""
    from test_jmap import CORE, MAIL, api, request
    from test_jmap_write import SUB, acc, boxes
    r, data = request(web, "GET", "/.well-known/jmap")
    session = json.loads(data)
    acct = session["accounts"][session["primaryAccounts"][SUB]]
    assert acct["accountCapabilities"][SUB]["submissionExtensions"] == {
        "DSN": []}
    a = acc(web)
    b = boxes(web)
    ident = api(web, [["Identity/get", {"accountId": a}, "i"]],
                using=(CORE, MAIL, SUB))[0][1]["list"][0]["id"]
    draft = {"mailboxIds": {b["drafts"]: True},
             "from": [{"email": "alice@localhost"}],
             "to": [{"email": "bob@localhost"}], "subject": "dsn over jmap",
             "textBody": [{"partId": "t"}],
             "bodyValues": {"t": {"value": "hello"}}}

    def env(mail_params, rcpt_params):
        return {"mailFrom": {"email": "alice@localhost",
                             "parameters": mail_params},
                "rcptTo": [{"email": "bob@localhost",
                            "parameters": rcpt_params}]}
    r = api(web, [
        ["Email/set", {"accountId": a, "create": {"d": draft}}, "0"],
        ["EmailSubmission/set", {"accountId": a, "create": {
            "bad": {"identityId": ident, "emailId": "#d",
                    "envelope": env({"HOLDFOR": "60"}, None)},
            "worse": {"identityId": ident, "emailId": "#d",
                      "envelope": env(None, {"NOTIFY": "NEVER,SUCCESS"})},
            "ok": {"identityId": ident, "emailId": "#d",
                   "envelope": env({"ENVID": "jmap1", "RET": "HDRS"},
                                   {"NOTIFY": "SUCCESS"})}}}, "1"]],
        using=(CORE, MAIL, SUB))
    nc = r[1][1]["notCreated"]
    assert nc["bad"]["type"] == "invalidProperties"
    assert nc["worse"]["type"] == "invalidProperties"
    sub = r[1][1]["created"]["ok"]
    assert sub["envelope"]["mailFrom"]["parameters"] == {
        "ENVID": "jmap1", "RET": "HDRS"}
    assert sub["envelope"]["rcptTo"][0]["parameters"] == {"NOTIFY": "SUCCESS"}
    assert len(web.wait_messages("bob", 1)) == 1
    raw = web.wait_messages("alice", 1)[0]
    per_msg, rcpts, m = report(raw)
    assert per_msg["Original-Envelope-Id"] == "jmap1"
    assert rcpts[0]["Action"] == "delivered"
    assert rcpts[0]["Final-Recipient"] == "rfc822; bob@localhost"
