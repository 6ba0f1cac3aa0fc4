# SPDX-License-Identifier: ISC
"""/metrics in Prometheus text format, each counter moved by what it
counts: SMTP connections and messages (accepted and rejected), local
deliveries and their delay, connections by role (IMAP), JMAP requests
and method times, EventSource streams, failed logins by protocol, and
plugin errors; loopback clients only. And Thunderbird's autoconfig
file naming the IMAP, submission and JMAP endpoints.
"""
import base64
import imaplib
import re
import smtplib
import ssl
import socket

import xml.etree.ElementTree as ET

import pytest

from test_imap import connect, wait_for
from test_jmap import CORE, api, request, web_ternd


@pytest.fixture
def mt(make_ternd):
    return web_ternd(make_ternd, 'plugins = { "oops" }\n', oops="""
        return {
          rcpt = function(tx, addr)
            if addr:match("^oops@") then error("on purpose") end
          end,
        }
    """)


def scrape(t):
    r, data = request(t, "GET", "/metrics", user=None)
    assert r.status == 200, data
    assert r.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    out = {}
    for line in data.decode().splitlines():
        if line.startswith("#") or not line:
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out, data.decode()


def value(t, series):
    return scrape(t)[0].get(series, 0.0)


def test_counters_move(mt):
    m0, text = scrape(mt)
    assert "# TYPE tern_uptime_seconds gauge" in text
    # SMTP: a connection, an accepted message, delivered into a Maildir
    with smtplib.SMTP("127.0.0.1", mt.port) as s:
        s.sendmail("bob@example.org", ["alice@localhost"],
                   b"Subject: one\r\n\r\nbody\r\n")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("bob@example.org", ["oops@localhost"], b"x\r\n")
    assert mt.wait_queue_empty()
    assert value(mt, 'tern_smtp_connections_total{role="mx"}') >= 1
    assert value(mt, 'tern_smtp_messages_total{result="accepted"}') == 1
    assert wait_for(lambda: value(
        mt, 'tern_deliveries_total{relay="local",result="delivered"}') == 1)
    assert value(mt, 'tern_delivery_delay_seconds_count{relay="local"}') == 1
    assert value(mt, 'tern_delivery_delay_seconds_bucket{relay="local",'
                     'le="+Inf"}') == 1
    assert value(mt, 'tern_plugin_errors_total{plugin="oops",hook="rcpt"}') \
        == 1
    # a message refused at its end: submission without From:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", mt.sub_port) as s:
        s.starttls(context=ctx)
        s.login("alice", "alice pw")
        with pytest.raises(smtplib.SMTPDataError):
            s.sendmail("alice@localhost", ["bob@localhost"],
                       b"To: bob@localhost\r\nSubject: no from\r\n\r\nx\r\n")
    assert value(mt, 'tern_smtp_messages_total{result="rejected"}') == 1
    assert value(mt, 'tern_smtp_connections_total{role="submission"}') == 1
    # IMAP: open connections by role; a failed login
    im = connect(mt)
    assert value(mt, 'tern_imap_connections') == 1
    assert value(mt, 'tern_connections{role="imap"}') == 1
    im.logout()
    assert wait_for(lambda: value(mt, 'tern_imap_connections') == 0)
    m = imaplib.IMAP4("127.0.0.1", mt.imap_port)
    m.starttls(ssl_context=ctx)
    with pytest.raises(imaplib.IMAP4.error):
        m.login("alice", "wrong")
    m.logout()
    assert value(mt, 'tern_auth_failures_total{protocol="imap"}') == 1
    # HTTP: a failed login, JMAP requests and method times
    r, _ = request(mt, "GET", "/.well-known/jmap", pw="wrong")
    assert r.status == 401
    assert value(mt, 'tern_auth_failures_total{protocol="http"}') == 1
    api(mt, [["Core/echo", {"x": 1}, "e"]], using=(CORE,))
    r, _ = request(mt, "POST", "/jmap/api/", "{not json")
    assert r.status == 400
    assert value(mt, 'tern_jmap_requests_total{result="ok"}') == 1
    assert value(mt, 'tern_jmap_requests_total{result="error"}') == 1
    assert value(mt, 'tern_jmap_method_duration_seconds_count'
                     '{method="Core/echo"}') == 1
    # EventSource: one stream open while it is
    s = socket.create_connection(("127.0.0.1", mt.http_port), timeout=10)
    cred = base64.b64encode(b"alice:alice pw").decode()
    s.sendall(("GET /jmap/eventsource/?types=*&closeafter=no&ping=0 "
               "HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n\r\n"
               % cred).encode())
    assert b"200" in s.recv(4096)
    assert wait_for(lambda: value(mt, 'tern_eventsource_connections') == 1)
    s.close()
    assert wait_for(lambda: value(mt, 'tern_eventsource_connections') == 0)
    # the queue's gauges are there
    _, text = scrape(mt)
    assert re.search(r'^tern_queue_messages\{state="waiting"\} 0$', text,
                     re.M), text


def test_autoconfig_names_the_endpoints(mt):
    r, data = request(mt, "GET", "/.well-known/autoconfig/mail/"
                      "config-v1.1.xml?emailaddress=alice@localhost",
                      user=None, headers={"Host": "mail.example.test:8080"})
    assert r.status == 200
    assert r.getheader("Content-Type").startswith("application/xml")
    root = ET.fromstring(data)
    prov = root.find("emailProvider")
    assert "localhost" in [d.text for d in prov.findall("domain")]
    servers = {(s.tag, s.get("type"), s.findtext("socketType")):
               (s.findtext("hostname"), s.findtext("port"))
               for s in prov if s.tag.endswith("Server") and s.get("type")
               != "jmap"}
    assert servers[("incomingServer", "imap", "STARTTLS")] == \
        ("mail.example.test", str(mt.imap_port))
    assert servers[("outgoingServer", "smtp", "STARTTLS")] == \
        ("mail.example.test", str(mt.sub_port))
    jmap = [s for s in prov if s.get("type") == "jmap"][0]
    assert jmap.findtext("url").endswith("/.well-known/jmap")
    # hostile Host values come back escaped, never as markup
    r, data = request(mt, "GET", "/mail/config-v1.1.xml", user=None,
                      headers={"Host": "<x>&"})
    ET.fromstring(data)
