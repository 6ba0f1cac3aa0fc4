# SPDX-License-Identifier: ISC
"""The HTTP listener (role http/https): the strict request parser seen
from a raw socket (smuggling cases, limits, slow heads, keep-alive and
pipelining), HTTP Basic, the JMAP session, requests and their errors
(RFC 8620 3.6), Mailbox/get, Email/query, Email/get, blob download, and
push over EventSource when smtplib delivers; IMAP and JMAP on one store.
"""
import base64
import http.client
import json
import socket
import ssl
import subprocess
import time

import pytest

from conftest import TOP, BUILD, free_port  # noqa: F401
from test_imap import connect, deliver, maildir, wait_for  # noqa: F401

TERNCTL = BUILD / "mta" / "ternctl"
CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"


def web_ternd(make_ternd, settings="", **plugin_files):
    """A ternd with settings (and the test plugins plugin_files), http,
    https and imap listeners besides mx and submission, and the users
    alice and bob; started."""
    from test_hooks import plugins
    t = make_ternd(start=False)
    if plugin_files:
        settings = plugins(t, **plugin_files) + settings
    t.http_port = free_port()
    t.https_port = free_port()
    t.imap_port = free_port()
    t.write_config(settings)
    t.config.write_text(t.config.read_text().replace(
        'role = "submission" },', 'role = "submission" },\n'
        '  { addr = "127.0.0.1:%d", role = "http" },\n'
        '  { addr = "127.0.0.1:%d", role = "https" },\n'
        '  { addr = "127.0.0.1:%d", role = "imap" },'
        % (t.http_port, t.https_port, t.imap_port)))
    t.write_config = lambda *a: None
    for user, pw in (("alice", "alice pw"), ("bob", "bob pw")):
        r = subprocess.run([str(TERNCTL), "-c", str(t.config), "passwd", user],
                           input=pw + "\n", capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    t.start()
    return t


@pytest.fixture
def web(make_ternd):
    return web_ternd(make_ternd)


def auth(user="alice", pw="alice pw"):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


def request(t, method, path, body=None, user="alice", pw="alice pw",
            headers=None, tls=False):
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", t.https_port,
                                        timeout=20, context=ctx)
    else:
        c = http.client.HTTPConnection("127.0.0.1", t.http_port, timeout=20)
    h = dict(headers or {})
    if user:
        h["Authorization"] = auth(user, pw)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def session(t, **kw):
    r, data = request(t, "GET", "/.well-known/jmap", **kw)
    assert r.status == 200, data
    return json.loads(data)


def api(t, calls, using=(CORE, MAIL), user="alice", pw="alice pw"):
    r, data = request(t, "POST", "/jmap/api/",
                      {"using": list(using), "methodCalls": calls},
                      user=user, pw=pw)
    assert r.status == 200, (r.status, data)
    return json.loads(data)["methodResponses"]


def read_to_close(s):
    """What comes on s until the server closes it (or the timeout)."""
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        pass
    s.close()
    return out


def raw(t, data, timeout=10):
    """Sends bytes on a fresh connection; what came back before the close."""
    s = socket.create_connection(("127.0.0.1", t.http_port), timeout)
    s.sendall(data)
    return read_to_close(s)


def test_smuggling_and_malformed_requests_are_refused(web):
    good = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert raw(web, good + b"GET / HTTP/1.1\r\nHost: x\r\n"
               b"Connection: close\r\n\r\n").count(b"HTTP/1.1 200") == 2
    cases = {
        "two content-lengths": b"POST /jmap/api/ HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        "cl and te": b"POST /jmap/api/ HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "te not chunked": b"POST /jmap/api/ HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
        "bare lf": b"GET / HTTP/1.1\nHost: x\n\n",
        "bare cr": b"GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",
        "space before colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "no host": b"GET / HTTP/1.1\r\n\r\n",
        "bad chunk": b"POST /jmap/api/ HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}X0\r\n\r\n",
    }
    for name, data in cases.items():
        out = raw(web, data + good)
        assert out.startswith(b"HTTP/1.1 400 "), (name, out)
        # the connection closes: the request after it is never answered
        assert out.count(b"HTTP/1.1") == 1, (name, out)
        assert b"Connection: close" in out, (name, out)
    out = raw(web, b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 +
              b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431 "), out
    out = raw(web, b"GET / HTTP/1.1\r\nHost: x\r\n" +
              b"".join(b"X%d: y\r\n" % i for i in range(101)) + b"\r\n")
    assert out.startswith(b"HTTP/1.1 431 "), out
    out = raw(web, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n")
    assert out.startswith(b"HTTP/1.1 414 "), out
    out = raw(web, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 505 "), out
    # a body over the route's limit is refused before it is read
    out = raw(web, b"POST /jmap/api/ HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 20000000\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413 "), out
    # a GET may carry no body at all
    out = raw(web, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    assert out.startswith(b"HTTP/1.1 413 "), out
    assert "status=400" in web.log()


def test_chunked_body_expect_continue_and_pipelining(web):
    acc = session(web)["primaryAccounts"][MAIL]
    body = json.dumps({"using": [CORE], "methodCalls": [
        ["Core/echo", {"hello": "chunked"}, "c1"]]}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                      for i in range(0, len(body), 7)) + b"0\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", web.http_port), 10)
    head = ("POST /jmap/api/ HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
            "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
            % auth()).encode()
    s.sendall(head)
    assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    # the body, then two more requests in the same packet
    s.sendall(chunks + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = read_to_close(s)
    parts = out.split(b"HTTP/1.1 ")
    assert [p[:3] for p in parts[1:]] == [b"200", b"200", b"404"], out
    assert b'"hello":"chunked"' in parts[1]
    assert acc


def test_auth_basic_and_failure_limit(web):
    r, _ = request(web, "GET", "/.well-known/jmap", user=None)
    assert r.status == 401
    assert r.getheader("WWW-Authenticate").startswith("Basic ")
    r, _ = request(web, "GET", "/.well-known/jmap", pw="wrong")
    assert r.status == 401
    s = session(web, tls=True)
    assert s["apiUrl"].startswith("https://127.0.0.1:%d/" % web.https_port)
    s = session(web)
    assert s["apiUrl"] == "http://127.0.0.1:%d/jmap/api/" % web.http_port
    assert s["username"] == "alice"
    acc = s["primaryAccounts"][MAIL]
    assert s["accounts"][acc]["accountCapabilities"][MAIL][
        "maxMailboxesPerEmail"] is None
    assert set(s["capabilities"]) == {CORE, MAIL, "urn:ietf:params:jmap:submission"}
    for k in ("downloadUrl", "uploadUrl", "eventSourceUrl", "state"):
        assert k in s
    r, _ = request(web, "GET", "/.well-known/jmap")
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    assert r.getheader("Referrer-Policy") == "no-referrer"
    r, _ = request(web, "POST", "/.well-known/jmap", body="x")
    assert r.status in (405, 413)
    # bob's password does not open alice's account, and failures count
    # against the address (shared with SMTP and IMAP): after the limit,
    # even the right password waits
    for _ in range(12):
        r, _ = request(web, "GET", "/.well-known/jmap", user="bob", pw="no")
        if r.status == 429:
            break
        assert r.status == 401
    assert r.status == 429, r.status


def test_request_errors(web):
    acc = session(web)["primaryAccounts"][MAIL]
    for body, kind in (("{", "notJSON"),
                       ('{"using":[],"using":[],"methodCalls":[]}', "notJSON"),
                       ('{"using":["\\ud800"],"methodCalls":[]}', "notJSON"),
                       ('[1]', "notRequest"),
                       ('{"using":[],"methodCalls":[["a",{}]]}', "notRequest"),
                       ('{"using":["urn:x"],"methodCalls":[]}',
                        "unknownCapability")):
        r, data = request(web, "POST", "/jmap/api/", body)
        assert r.status == 400, (body, data)
        assert r.getheader("Content-Type") == "application/problem+json"
        p = json.loads(data)
        assert p["type"] == "urn:ietf:params:jmap:error:" + kind, (body, p)
        assert p["status"] == 400
    calls = [["Core/echo", {"a": [1, {"b": None}]}, "e"],
             ["Mailbox/get", {"accountId": acc, "nope": 1}, "x"],
             ["Mailbox/get", {"accountId": "Anot-mine"}, "y"],
             ["Mailbox/get", {"accountId": acc, "ids": "no"}, "z"],
             ["Email/query", {"accountId": acc, "sort": [
                 {"property": "color"}]}, "s"],
             ["Email/query", {"accountId": acc, "filter": {"color": "x"}},
              "f"],
             ["Nope/get", {}, "n"],
             ["Email/get", {"accountId": acc, "#ids": {
                 "resultOf": "zz", "name": "Email/query", "path": "/ids"}},
              "r"]]
    res = api(web, calls)
    assert res[0] == ["Core/echo", {"a": [1, {"b": None}]}, "e"]
    assert [r[1]["type"] for r in res[1:]] == [
        "invalidArguments", "accountNotFound", "invalidArguments",
        "unsupportedSort", "unsupportedFilter", "unknownMethod",
        "invalidResultReference"], res
    # a method of a capability the request did not name is unknown
    res = api(web, [["Mailbox/get", {"accountId": acc}, "m"]], using=[CORE])
    assert res[0][1]["type"] == "unknownMethod"


def test_mailboxes_query_get_and_download(web):
    for i in range(5):
        deliver(web, subject="message %d" % i, body="Body number %d." % i)
        time.sleep(1.05 if i == 2 else 0)   # two distinct receivedAt
    assert len(web.wait_messages("alice", 5)) == 5
    acc = session(web)["primaryAccounts"][MAIL]
    res = api(web, [["Mailbox/get", {"accountId": acc}, "m"]])
    boxes = {b["role"]: b for b in res[0][1]["list"]}
    assert {"inbox", "sent", "drafts", "trash", "junk", "archive"} <= set(boxes)
    inbox = boxes["inbox"]
    assert inbox["name"] == "Inbox" and inbox["parentId"] is None
    assert inbox["totalEmails"] == 5 and inbox["unreadEmails"] == 5
    assert inbox["myRights"]["mayReadItems"] is True
    res = api(web, [
        ["Email/query", {"accountId": acc, "filter": {"inMailbox": inbox["id"]},
                         "sort": [{"property": "receivedAt",
                                   "isAscending": False}],
                         "limit": 3, "calculateTotal": True}, "q"],
        ["Email/get", {"accountId": acc, "#ids": {
            "resultOf": "q", "name": "Email/query", "path": "/ids"}}, "g"]])
    q, g = res[0][1], res[1][1]
    assert q["total"] == 5 and q["position"] == 0 and len(q["ids"]) == 3
    assert [e["id"] for e in g["list"]] == q["ids"]
    e = g["list"][0]
    assert e["subject"].startswith("message ")
    assert e["from"] == [{"name": "You", "email": "you@example.org"}]
    assert e["to"] == [{"name": None, "email": "alice@localhost"}]
    assert e["mailboxIds"] == {inbox["id"]: True}
    assert e["keywords"] == {}
    assert e["preview"].startswith("Body number")
    assert e["size"] > 50 and e["threadId"] and e["blobId"]
    assert e["receivedAt"].endswith("Z") and e["sentAt"] is None
    assert g["state"].startswith("e") and q["queryState"]
    # newest first: the last two came a second after the first three
    rest = api(web, [["Email/query", {"accountId": acc, "filter": {
        "inMailbox": inbox["id"]}, "position": 3}, "q"]])[0][1]
    assert rest["queryState"] == q["queryState"]    # nothing changed
    assert len(rest["ids"]) == 2 and not set(rest["ids"]) & set(q["ids"])
    old = api(web, [["Email/get", {"accountId": acc, "ids": rest["ids"],
                                   "properties": ["subject"]}, "g"]])
    assert {x["subject"] for x in old[0][1]["list"]} <= {
        "message 0", "message 1", "message 2"}, old
    # anchor, unknown ids, the properties asked for only
    res = api(web, [
        ["Email/query", {"accountId": acc, "anchor": q["ids"][1],
                         "anchorOffset": 0, "limit": 1}, "a"],
        ["Email/query", {"accountId": acc, "anchor": "Mnope"}, "b"],
        ["Email/get", {"accountId": acc, "ids": [q["ids"][0], "Mnope"],
                       "properties": ["subject", "size"]}, "c"]])
    assert res[0][1]["ids"] == [q["ids"][1]]
    assert res[1][1]["type"] == "anchorNotFound"
    assert res[2][1]["notFound"] == ["Mnope"]
    assert set(res[2][1]["list"][0]) == {"id", "subject", "size"}
    # the blob: the message as it is, CRLF
    r, data = request(web, "GET", "/jmap/download/%s/%s/m.eml?accept="
                      "message/rfc822" % (acc, e["blobId"]))
    assert r.status == 200
    assert r.getheader("Content-Type") == "message/rfc822"
    assert 'filename="m.eml"' in r.getheader("Content-Disposition")
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    assert b"\r\nSubject: " + e["subject"].encode() + b"\r\n" in data
    assert len(data) == e["size"]
    r, _ = request(web, "GET", "/jmap/download/%s/mnope/x?accept=a/b" % acc)
    assert r.status == 404
    r, _ = request(web, "GET", "/jmap/download/Aother/%s/x" % e["blobId"])
    assert r.status == 404


def test_imap_and_jmap_on_one_store(web):
    deliver(web, subject="seen over imap")
    web.wait_messages("alice", 1)
    acc = session(web)["primaryAccounts"][MAIL]
    m = connect(web)
    m.select("INBOX")
    m.store("1", "+FLAGS", "(\\Seen \\Flagged $Label1)")
    res = api(web, [["Email/query", {"accountId": acc}, "q"],
                    ["Email/get", {"accountId": acc, "#ids": {
                        "resultOf": "q", "name": "Email/query",
                        "path": "/ids"}, "properties": ["keywords"]}, "g"],
                    ["Email/query", {"accountId": acc, "filter": {
                        "notKeyword": "$seen"}}, "u"],
                    ["Mailbox/get", {"accountId": acc,
                                     "properties": ["unreadEmails", "role"]},
                     "m"]])
    assert res[1][1]["list"][0]["keywords"] == {
        "$seen": True, "$flagged": True, "$label1": True}
    assert res[2][1]["ids"] == []
    inbox = [b for b in res[3][1]["list"] if b["role"] == "inbox"][0]
    assert inbox["unreadEmails"] == 0
    # \Deleted mail is invisible to JMAP
    m.store("1", "+FLAGS", "(\\Deleted)")
    res = api(web, [["Email/query", {"accountId": acc,
                                     "calculateTotal": True}, "q"]])
    assert res[0][1]["total"] == 0
    m.logout()


def test_eventsource_push_on_delivery(web):
    s = socket.create_connection(("127.0.0.1", web.http_port), 20)
    s.sendall(("GET /jmap/eventsource/?types=*&closeafter=no&ping=0 HTTP/1.1"
               "\r\nHost: x\r\nAuthorization: %s\r\n\r\n" % auth()).encode())
    f = s.makefile("rb")
    status = f.readline()
    assert status.startswith(b"HTTP/1.1 200"), status
    headers = {}
    while True:
        line = f.readline().rstrip(b"\r\n")
        if not line:
            break
        k, v = line.decode().split(":", 1)
        headers[k.lower()] = v.strip()
    assert headers["content-type"] == "text/event-stream"

    def event():
        name, data = None, None
        while True:
            line = f.readline()
            assert line, "stream closed"
            line = line.rstrip(b"\n").decode()
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and name:
                return name, data

    name, first = event()            # the states now: the stream is live
    assert name == "state" and first["@type"] == "StateChange"
    acc = list(first["changed"])[0]
    before = first["changed"][acc]["Email"]
    deliver(web, subject="pushed")
    name, ev = event()
    assert name == "state"
    assert ev["changed"][acc]["Email"] != before
    # the state pushed is the state Email/get now answers with
    res = api(web, [["Email/get", {"accountId": acc, "ids": [],
                                   "properties": ["id"]}, "g"]])
    assert res[0][1]["state"] == ev["changed"][acc]["Email"]
    s.close()
    # closeafter=state: one event, then the response ends
    s = socket.create_connection(("127.0.0.1", web.http_port), 20)
    s.sendall(("GET /jmap/eventsource/?types=Email&closeafter=state&ping=0 "
               "HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n"
               % auth()).encode())
    out = read_to_close(s)
    assert out.count(b"event: state") == 1 and b'"Email"' in out
    assert b'"Mailbox"' not in out


def test_app_passwords_as_bearer_tokens(web):
    """ternctl token add/list/revoke: the token works as Authorization:
    Bearer (a JMAP client's app password) until it is revoked; only its
    hash is on disk."""
    def ctl(*args):
        return subprocess.run([str(TERNCTL), "-c", str(web.config), "token"]
                              + list(args), capture_output=True, text=True)
    r = ctl("add", "alice", "aerc on the laptop")
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip().splitlines()[0]
    assert tok.startswith("tern_") and len(tok) == 45
    assert "reloaded" in r.stdout
    on_disk = (web.dir / "var" / "users.tokens").read_text()
    assert tok not in on_disk and on_disk.startswith("alice:")
    listed = ctl("list", "alice").stdout
    tid = listed.split()[0]
    assert "aerc on the laptop" in listed and len(tid) == 8

    def who(token):
        r, data = request(web, "GET", "/.well-known/jmap", user=None,
                          headers={"Authorization": "Bearer " + token})
        return r.status, (json.loads(data)["username"] if r.status == 200
                          else None)
    assert who(tok) == (200, "alice")
    assert who(tok[:-1] + ("0" if tok[-1] != "0" else "1"))[0] == 401
    r, data = request(web, "POST", "/jmap/api/", {
        "using": [CORE], "methodCalls": [["Core/echo", {"x": 1}, "e"]]},
        user=None, headers={"Authorization": "Bearer " + tok})
    assert r.status == 200
    assert ctl("list", "bob").stdout == ""
    assert ctl("revoke", "alice", "nope").returncode == 1
    r = ctl("revoke", "alice", tid)
    assert r.returncode == 0, r.stderr
    assert who(tok)[0] == 401
    assert ctl("add").returncode == 2


def test_slow_heads_and_bodies_get_408(make_ternd):
    """limits.http_head_timeout and http_body_timeout: a head that does
    not come whole in time (a slowloris client), or a body that stops,
    gets 408 and the close. The limits are a second here; the client
    waits far longer, so a slow machine only makes the test slower (and
    well under the defaults, 30 and 60 s, so the limits must be the
    configured ones)."""
    t = web_ternd(make_ternd, "limits = { http_head_timeout = 1, "
                  "http_body_timeout = 1 }\n")
    s = socket.create_connection(("127.0.0.1", t.http_port), 20)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")       # and no more
    out = read_to_close(s)
    assert out.startswith(b"HTTP/1.1 408 "), out
    s = socket.create_connection(("127.0.0.1", t.http_port), 20)
    s.sendall(b"POST /jmap/api/ HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 100\r\n\r\n{\"using\"")
    out = read_to_close(s)
    assert out.startswith(b"HTTP/1.1 408 "), out
    # the limits are what check-config prints
    r = subprocess.run([str(TERNCTL), "-c", str(t.config), "check-config"],
                       capture_output=True, text=True)
    assert "http_head_timeout = 1, http_body_timeout = 1," in r.stdout


def test_public_url_names_the_session_urls(make_ternd):
    t = web_ternd(make_ternd,
                  'http_public_url = "https://mail.example.test/tern"\n')
    s = session(t)
    for k in ("apiUrl", "downloadUrl", "uploadUrl", "eventSourceUrl"):
        assert s[k].startswith("https://mail.example.test/tern/jmap/"), s[k]
    bad = t.dir / "bad.lua"
    bad.write_text(t.config.read_text().replace(
        '"https://mail.example.test/tern"', '"mail.example.test/"'))
    r = subprocess.run([str(TERNCTL), "-c", str(bad), "check-config"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "http_public_url" in r.stderr
