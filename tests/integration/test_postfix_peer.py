# SPDX-License-Identifier: ISC
"""Debian's Postfix as the peer, both ways: ternd relays remote mail to
a Postfix (relayhost) and that Postfix relays mail for ternd's domains
back (its relayhost). The DSN request is carried on in both directions
and the success report made by the final hop comes back through the
other; ternd's client sends BDAT to Postfix's CHUNKING (Postfix's own
client has no BDAT: it sends DATA, whatever the server offers)."""
import email
import shutil
import smtplib
import time

import pytest

from conftest import free_port
from peers import Postfix

pytestmark = pytest.mark.skipif(shutil.which("postfix") is None,
                                reason="Debian's postfix is not installed")


@pytest.fixture
def pair(make_ternd):
    t = make_ternd(start=False)
    pf_port = free_port()
    t.write_config('relayhost = "127.0.0.1:%d"\n'
                   "smtp_client = { idle_time = 1 }\n" % pf_port)
    t.start()
    pf = Postfix(pf_port, t.port)
    yield t, pf
    pf.stop()


def report(raw):
    m = email.message_from_bytes(raw)
    assert m.get_content_type() == "multipart/report", raw[:400]
    ds = [p for p in m.walk()
          if p.get_content_type() == "message/delivery-status"][0]
    blocks = ds.get_payload()
    return blocks[0], blocks[1:]


def send(port, sender, rcpt, rcpt_options, mail_options, subject):
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as s:
        s.ehlo("client.test")
        assert s.has_extn("dsn") and s.has_extn("chunking")
        s.mail(sender, mail_options)
        code, text = s.rcpt(rcpt, rcpt_options)
        assert code == 250, text
        code, text = s.data(("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n"
                             "through both\r\n" % (sender, rcpt, subject))
                            .encode())
        assert code == 250, text


def test_tern_to_postfix(pair):
    t, pf = pair
    send(t.port, "sender@localhost", "rita@pf.test",
         ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Rita@pf.test"],
         ["RET=HDRS", "ENVID=tern2pf"], "to postfix")
    msgs = pf.wait(1)
    assert len(msgs) == 1 and b"Subject: to postfix" in msgs[0]
    # our client sent one BDAT (Postfix counts the
    # commands when the connection closes: after ternd's idle second)
    deadline = time.monotonic() + 30
    while "bdat=1" not in pf.maillog() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = pf.maillog()
    assert "bdat=1" in log and " data=" not in log, log[-2000:]
    # Postfix's success report came back to the sender, through ternd
    raw = t.wait_messages("sender", 1, timeout=30)[0]
    per_msg, rcpts = report(raw)
    assert per_msg["Reporting-MTA"] == "dns; mx.pf.test"
    assert per_msg["Original-Envelope-Id"] == "tern2pf"
    assert rcpts[0]["Action"] == "delivered"
    assert rcpts[0]["Original-Recipient"] == "rfc822;Rita@pf.test"
    # and ternd said nothing itself ("relayed" is for hops without DSN)
    assert "success report" not in t.log()
    assert t.wait_queue_empty()


def test_postfix_to_tern(pair):
    t, pf = pair
    send(pf.port, "sam@pf.test", "vera@localhost",
         ["NOTIFY=SUCCESS", "ORCPT=rfc822;Vera@localhost"],
         ["RET=HDRS", "ENVID=pf2tern"], "to tern")
    msgs = t.wait_messages("vera", 1, timeout=30)
    assert len(msgs) == 1 and b"Subject: to tern" in msgs[0]
    # ternd's success report went back through Postfix to sam
    msgs = pf.wait(1)
    assert len(msgs) == 1
    per_msg, rcpts = report(msgs[0])
    assert per_msg["Reporting-MTA"] == "dns; mx.test"
    assert per_msg["Original-Envelope-Id"] == "pf2tern"
    assert rcpts[0]["Action"] == "delivered"
    assert rcpts[0]["Final-Recipient"] == "rfc822; vera@localhost"
    assert rcpts[0]["Original-Recipient"] == "rfc822;Vera@localhost"
    assert pf.queue_empty() and t.wait_queue_empty()
