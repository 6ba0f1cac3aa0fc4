# SPDX-License-Identifier: ISC
"""Blobs over JMAP: uploads (in memory, and past 64 KiB through a file,
chunked too), their download, an attachment made from one, Email/import
of an uploaded message (seen over IMAP with its flags) and Email/parse
of uploads and stored messages; the refusals (no login, a wrong account,
bad blobs, a cookie session without its CSRF header).
"""
import http.client
import json
import os

from test_imap import connect, wait_for
from test_jmap import MAIL, api, auth, request, web  # noqa: F401
from test_jmap_write import acc, boxes, ids_in

RAW = (b"From: Dora <dora@example.org>\r\nTo: alice@localhost\r\n"
       b"Subject: Imported\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\n"
       b"Message-ID: <imp@example.org>\r\n\r\nCarried over from the old "
       b"server.\r\n")


def upload(t, data, ctype="application/octet-stream", account=None,
           chunked=False, user="alice", pw="alice pw"):
    c = http.client.HTTPConnection("127.0.0.1", t.http_port, timeout=30)
    h = {"Content-Type": ctype}
    if user:
        h["Authorization"] = auth(user, pw)
    path = "/jmap/upload/%s/" % (account or acc(t))
    if chunked:
        c.putrequest("POST", path)
        for k, v in h.items():
            c.putheader(k, v)
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        for i in range(0, len(data), 50000):
            part = data[i:i + 50000]
            c.send(b"%x\r\n%s\r\n" % (len(part), part))
        c.send(b"0\r\n\r\n")
    else:
        c.request("POST", path, body=data, headers=h)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, (json.loads(body) if r.status == 201 else body)


def download(t, blob, name="f", typ="application/octet-stream"):
    r, data = request(t, "GET", "/jmap/download/%s/%s/%s?accept=%s" % (
        acc(t), blob, name, typ))
    return r, data


def test_upload_and_download(web):
    small = b"hello blob\n"
    st, r = upload(web, small, "text/plain")
    assert st == 201, r
    assert r["blobId"].startswith("U") and r["size"] == len(small)
    assert r["type"] == "text/plain" and r["accountId"] == acc(web)
    assert upload(web, small)[1]["blobId"] == r["blobId"]   # same octets
    resp, data = download(web, r["blobId"], "a.txt", "text/plain")
    assert resp.status == 200 and data == small
    assert resp.getheader("Content-Type") == "text/plain"
    # past 64 KiB: through a file; chunked, too
    big = os.urandom(300 * 1024)
    for chunked in (False, True):
        st, r = upload(web, big, chunked=chunked)
        assert st == 201 and r["size"] == len(big), r
        resp, data = download(web, r["blobId"])
        assert data == big
    root = web.dir / "var" / "mail" / "localhost" / "alice" / "tern-uploads"
    assert len([p for p in os.listdir(root) if p.startswith("U")]) == 2
    # refusals
    assert upload(web, small, user=None)[0] in (401, 413)
    assert upload(web, small, pw="wrong")[0] == 401
    assert upload(web, small, account="Anope")[0] == 404
    resp, _ = download(web, "U" + "0" * 32)
    assert resp.status == 404


def test_attachment_from_upload_import_and_parse(web):
    a = acc(web)
    bx = boxes(web)
    pdf = b"%PDF-1.4 not really\n" * 100
    st, up = upload(web, pdf, "application/pdf")
    assert st == 201
    r = api(web, [["Email/set", {"accountId": a, "create": {"d": {
        "mailboxIds": {bx["drafts"]: True}, "subject": "With a file",
        "from": [{"email": "alice@localhost"}],
        "to": [{"email": "bob@localhost"}],
        "textBody": [{"partId": "t", "type": "text/plain"}],
        "bodyValues": {"t": {"value": "See the file."}},
        "attachments": [{"blobId": up["blobId"], "type": "application/pdf",
                         "name": "q.pdf"}]}}}, "s"]])
    created = r[0][1]["created"]["d"]
    r = api(web, [["Email/get", {"accountId": a, "ids": [created["id"]],
                                 "properties": ["attachments"]}, "g"]])
    att = r[0][1]["list"][0]["attachments"]
    assert [x["name"] for x in att] == ["q.pdf"]
    resp, data = download(web, att[0]["blobId"], "q.pdf", "application/pdf")
    assert data == pdf

    # import: an uploaded message into the Inbox, as read
    st, raw = upload(web, RAW, "message/rfc822")
    r = api(web, [["Email/import", {"accountId": a, "emails": {
        "i": {"blobId": raw["blobId"], "mailboxIds": {bx["inbox"]: True},
              "keywords": {"$seen": True},
              "receivedAt": "2026-12-01T09:00:05Z"},
        "bad": {"blobId": up["blobId"], "mailboxIds": {bx["inbox"]: True}},
        "gone": {"blobId": "U" + "1" * 32, "mailboxIds": {bx["inbox"]: True}},
    }}, "im"]])
    name, res = r[0][0], r[0][1]
    assert name == "Email/import", res
    assert set(res["created"]) == {"i"}, res
    assert res["notCreated"]["bad"]["type"] == "invalidEmail"
    assert res["notCreated"]["gone"]["type"] == "blobNotFound"
    assert "updated" not in res and res["oldState"] != res["newState"]
    eid = res["created"]["i"]["id"]
    assert ids_in(web, bx["inbox"]) == [eid]
    m = connect(web)
    m.select("INBOX")
    typ, data = m.fetch("1", "(FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS "
                             "(SUBJECT)])")
    text = b"".join(x if isinstance(x, bytes) else b"".join(x)
                    for x in data)
    assert b"\\Seen" in text and b"Subject: Imported" in text
    assert b" 1-Dec-2026 09:00:05 +0000" in text
    m.logout()

    # parse: the upload, the stored message, and what is no message
    r = api(web, [["Email/parse", {"accountId": a, "blobIds": [
        raw["blobId"], "m" + eid, up["blobId"], "Mnothing"],
        "fetchTextBodyValues": True}, "p"]])
    res = r[0][1]
    p1 = res["parsed"][raw["blobId"]]
    assert p1["subject"] == "Imported"
    assert p1["from"] == [{"name": "Dora", "email": "dora@example.org"}]
    part = p1["textBody"][0]["partId"]
    assert p1["bodyValues"][part]["value"].startswith("Carried over")
    assert p1["textBody"][0]["blobId"] is None
    p2 = res["parsed"]["m" + eid]
    assert p2["subject"] == "Imported" and p2["textBody"][0]["blobId"]
    assert res["notParsable"] == [up["blobId"]]
    assert res["notFound"] == ["Mnothing"]


def test_cookie_upload_needs_the_csrf_header(web):
    r, data = request(web, "POST", "/webmail/login", {
        "username": "alice", "password": "alice pw"}, user=None)
    assert r.status == 200
    cookie = r.getheader("Set-Cookie").split(";")[0]
    csrf = json.loads(data)["csrf"]
    a = json.loads(request(web, "GET", "/.well-known/jmap")[1]
                   )["primaryAccounts"][MAIL]
    for hdr, want in (({}, 403), ({"X-CSRF-Token": csrf}, 201)):
        c = http.client.HTTPConnection("127.0.0.1", web.http_port, timeout=20)
        h = {"Cookie": cookie, "Content-Type": "text/plain"}
        h.update(hdr)
        c.request("POST", "/jmap/upload/%s/" % a, body=b"x" * 10, headers=h)
        resp = c.getresponse()
        resp.read()
        c.close()
        assert resp.status == want
