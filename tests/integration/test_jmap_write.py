# SPDX-License-Identifier: ISC
"""JMAP that reads bodies and writes: Email/get's bodyStructure,
textBody, htmlBody, attachments, bodyValues and header:Name:asForm, part
blobs; Email/set (keywords as Maildir flags seen over IMAP, mailboxIds
as moves, destroy, creating a draft); Identity/get and EmailSubmission/set
with onSuccessUpdateEmail, the message delivered through the queue into
another user's Maildir with the checks of port 587.
"""
import email
import email.policy
import json
import smtplib

from test_imap import connect, maildir, wait_for
from test_jmap import CORE, MAIL, api, request, web  # noqa: F401

SUB = "urn:ietf:params:jmap:submission"
MIXED = (
    "From: Carol <carol@example.org>\r\n"
    "To: alice@localhost\r\n"
    "Subject: =?UTF-8?B?UmVwb3J0IOKAkyBRMw==?=\r\n"
    "List-Post: <mailto:list@example.org>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="b1"\r\n'
    "\r\n"
    "--b1\r\n"
    'Content-Type: multipart/alternative; boundary="b2"\r\n'
    "\r\n"
    "--b2\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Caf=E9 at noon.\r\n"
    "--b2\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<p>Caf\xc3\xa9 at <b>noon</b>.</p>\r\n"
    "--b2--\r\n"
    "--b1\r\n"
    'Content-Type: application/pdf; name="q3.pdf"\r\n'
    "Content-Disposition: attachment\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "JVBERi0xLjQKJcOkw7zDtsOfCg==\r\n"
    "--b1--\r\n")


def ids_in(t, box_id, user="alice", pw="alice pw"):
    r = api(t, [["Email/query", {"accountId": acc(t, user, pw),
                                 "filter": {"inMailbox": box_id}}, "q"]],
            user=user, pw=pw)
    return r[0][1]["ids"]


def acc(t, user="alice", pw="alice pw"):
    r, data = request(t, "GET", "/.well-known/jmap", user=user, pw=pw)
    return json.loads(data)["primaryAccounts"][MAIL]


def boxes(t, user="alice", pw="alice pw"):
    r = api(t, [["Mailbox/get", {"accountId": acc(t, user, pw)}, "m"]],
            user=user, pw=pw)
    return {b["role"] or b["name"]: b["id"] for b in r[0][1]["list"]}


def send_raw(t, text, rcpt="alice@localhost"):
    with smtplib.SMTP("127.0.0.1", t.port) as s:
        s.sendmail("carol@example.org", [rcpt], text.encode("latin-1"))


def test_email_body_parts_values_and_header_forms(web):
    send_raw(web, MIXED)
    a = acc(web)
    assert wait_for(lambda: len(ids_in(web, boxes(web)["inbox"])) == 1)
    eid = ids_in(web, boxes(web)["inbox"])[0]
    r = api(web, [["Email/get", {
        "accountId": a, "ids": [eid],
        "properties": ["bodyStructure", "textBody", "htmlBody",
                       "attachments", "bodyValues", "header:Subject:asText",
                       "header:List-Post:asURLs", "header:X-None",
                       "header:To:asAddresses:all"],
        "fetchAllBodyValues": True}, "g"]])
    e = r[0][1]["list"][0]
    bs = e["bodyStructure"]
    assert bs["type"] == "multipart/mixed" and bs["partId"] is None
    assert [p["type"] for p in bs["subParts"]] == [
        "multipart/alternative", "application/pdf"]
    assert [p["partId"] for p in e["textBody"]] == ["1.1"]
    assert [p["partId"] for p in e["htmlBody"]] == ["1.2"]
    att = e["attachments"]
    assert len(att) == 1 and att[0]["name"] == "q3.pdf"
    assert att[0]["type"] == "application/pdf" and att[0]["size"] == 19
    assert e["bodyValues"]["1.1"]["value"] == "Caf\u00e9 at noon."
    assert e["bodyValues"]["1.1"]["isEncodingProblem"] is False
    assert "<b>noon</b>" in e["bodyValues"]["1.2"]["value"]
    assert e["header:Subject:asText"] == "Report \u2013 Q3"
    assert e["header:List-Post:asURLs"] == ["mailto:list@example.org"]
    assert e["header:X-None"] is None
    assert e["header:To:asAddresses:all"] == [
        [{"name": None, "email": "alice@localhost"}]]
    # truncation at a character boundary, text values only
    r = api(web, [["Email/get", {
        "accountId": a, "ids": [eid], "properties": ["bodyValues"],
        "fetchTextBodyValues": True, "maxBodyValueBytes": 4}, "g"]])
    v = r[0][1]["list"][0]["bodyValues"]
    assert list(v) == ["1.1"]
    assert v["1.1"]["value"] == "Caf" and v["1.1"]["isTruncated"] is True
    # the attachment's blob downloads decoded, with the asked-for type
    r, data = request(web, "GET", "/jmap/download/%s/%s/q3.pdf?accept="
                      "application/pdf" % (a, att[0]["blobId"]))
    assert r.status == 200 and data.startswith(b"%PDF-1.4")
    assert r.getheader("Content-Type") == "application/pdf"
    r = api(web, [["Email/get", {"accountId": a, "ids": [eid],
                                 "properties": ["header:Bad Name"]}, "g"]])
    assert r[0][0] == "error" and r[0][1]["type"] == "invalidArguments"


def test_email_set_keywords_moves_and_destroy_over_imap(web):
    from test_imap import deliver
    deliver(web, subject="one")
    deliver(web, subject="two")
    a = acc(web)
    b = boxes(web)
    assert wait_for(lambda: len(ids_in(web, b["inbox"])) == 2)
    r = api(web, [["Email/get", {"accountId": a, "ids": ids_in(web, b["inbox"]),
                                 "properties": ["subject"]}, "g"]])
    by = {e["subject"]: e["id"] for e in r[0][1]["list"]}
    one, two = by["one"], by["two"]
    r = api(web, [["Email/set", {"accountId": a, "update": {
        one: {"keywords/$seen": True, "keywords/$flagged": True,
              "keywords/Project-X": True}}}, "s"]])
    assert r[0][1]["updated"] == {one: None}, r
    assert r[0][1]["oldState"] != r[0][1]["newState"]
    m = connect(web)
    m.select("INBOX")
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    flags = {d[1].decode().strip(): d[0].decode() for d in data
             if isinstance(d, tuple)}
    assert "\\Seen" in flags["Subject: one"]
    assert "\\Flagged" in flags["Subject: one"]
    assert "project-x" in flags["Subject: one"].lower()
    assert "\\Seen" not in flags["Subject: two"]
    # a move into Archive: gone from INBOX for IMAP, there for JMAP
    r = api(web, [["Email/set", {"accountId": a, "update": {
        one: {"mailboxIds": {b["archive"]: True}}}}, "s"],
        ["Email/get", {"accountId": a, "ids": [one],
                       "properties": ["mailboxIds", "keywords"]}, "g"]])
    assert r[0][1]["updated"] == {one: None}, r
    got = r[1][1]["list"][0]
    assert got["mailboxIds"] == {b["archive"]: True}
    assert got["keywords"] == {"$seen": True, "$flagged": True,
                               "project-x": True}
    typ, data = m.search(None, "ALL")
    m.noop()
    typ, data = m.search(None, "ALL")
    assert len(data[0].split()) == 1
    m.select("Archive")
    typ, data = m.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"one" in data[0][1]
    m.logout()
    # errors: an unknown property, an empty mailbox set, an unknown id
    r = api(web, [["Email/set", {"accountId": a, "update": {
        two: {"subject": "x"}, "Mnope": {"keywords": {}},
        one: {"mailboxIds": {}}}}, "s"]])
    nu = r[0][1]["notUpdated"]
    assert nu[two]["type"] == "invalidProperties"
    assert nu["Mnope"]["type"] == "notFound"
    assert nu[one]["properties"] == ["mailboxIds"]
    r = api(web, [["Email/set", {"accountId": a, "ifInState": "nope",
                                 "destroy": [two]}, "s"]])
    assert r[0][1]["type"] == "stateMismatch"
    r = api(web, [["Email/set", {"accountId": a, "destroy": [two]}, "s"]])
    assert r[0][1]["destroyed"] == [two]
    assert ids_in(web, b["inbox"]) == []


def test_draft_then_submission_delivers_and_moves_to_sent(web):
    a = acc(web)
    b = boxes(web)
    r = api(web, [["Identity/get", {"accountId": a}, "i"]],
            using=(CORE, MAIL, SUB))
    idents = {i["email"]: i["id"] for i in r[0][1]["list"]}
    assert "alice@localhost" in idents
    draft = {
        "mailboxIds": {b["drafts"]: True},
        "keywords": {"$draft": True, "$seen": True},
        "from": [{"name": "Alice Liddell", "email": "alice@localhost"}],
        "to": [{"name": "Bob", "email": "bob@localhost"}],
        "bcc": [{"name": None, "email": "alice@localhost"}],
        "subject": "Lunch \u2615?",
        "textBody": [{"partId": "t", "type": "text/plain"}],
        "bodyValues": {"t": {"value": "Noon at the caf\u00e9?\n"}},
    }
    r = api(web, [
        ["Email/set", {"accountId": a, "create": {"d": draft}}, "0"],
        ["EmailSubmission/set", {
            "accountId": a,
            "create": {"s": {"identityId": idents["alice@localhost"],
                             "emailId": "#d"}},
            "onSuccessUpdateEmail": {"#s": {
                "mailboxIds/" + b["drafts"]: None,
                "mailboxIds/" + b["sent"]: True,
                "keywords/$draft": None}}}, "1"],
        ["Email/get", {"accountId": a, "ids": ["#d"],
                       "properties": ["mailboxIds", "keywords", "subject"]},
         "2"]], using=(CORE, MAIL, SUB))
    assert r[0][0] == "Email/set", r
    created = r[0][1]["created"]["d"]
    assert set(created) >= {"id", "blobId", "threadId", "size"}
    assert r[1][0] == "EmailSubmission/set", r
    sub = r[1][1]["created"]["s"]
    assert sub["undoStatus"] == "final"
    assert [x["email"] for x in sub["envelope"]["rcptTo"]] == [
        "bob@localhost", "alice@localhost"]
    assert r[2][0] == "Email/set" and r[2][2] == "1"
    assert r[2][1]["updated"] == {created["id"]: None}, r[2]
    got = r[3][1]["list"][0]
    assert got["mailboxIds"] == {b["sent"]: True}
    assert got["keywords"] == {"$seen": True}
    assert got["subject"] == "Lunch \u2615?"
    # delivered by the queue into Bob's Maildir, Bcc: gone
    new = maildir(web, "bob") / "new"
    assert wait_for(lambda: new.is_dir() and any(new.iterdir()))
    msg = email.message_from_bytes(next(new.iterdir()).read_bytes(),
                                   policy=email.policy.default)
    assert msg["Subject"] == "Lunch \u2615?"
    assert msg["From"].addresses[0].display_name == "Alice Liddell"
    assert msg["Bcc"] is None and msg["Message-ID"] and msg["Date"]
    assert "with HTTP" in msg["Received"]
    assert msg.get_content() == "Noon at the caf\u00e9?\n"
    # alice (Bcc) got her copy too
    assert wait_for(lambda: len(ids_in(web, b["inbox"])) == 1)


def test_submission_checks_of_port_587(web):
    a = acc(web)
    b = boxes(web)
    r = api(web, [["Identity/get", {"accountId": a}, "i"]],
            using=(CORE, MAIL, SUB))
    ident = r[0][1]["list"][0]["id"]

    def draft(**kw):
        d = {"mailboxIds": {b["drafts"]: True},
             "from": [{"email": "alice@localhost"}],
             "to": [{"email": "bob@localhost"}], "subject": "x",
             "textBody": [{"partId": "t"}],
             "bodyValues": {"t": {"value": "x"}}}
        d.update(kw)
        return d
    r = api(web, [
        ["Email/set", {"accountId": a, "create": {
            "forged": draft(**{"from": [{"email": "ceo@example.org"}]}),
            "nobody": draft(to=None),
            "ok": draft()}}, "0"],
        ["EmailSubmission/set", {"accountId": a, "create": {
            "f": {"identityId": ident, "emailId": "#forged"},
            "n": {"identityId": ident, "emailId": "#nobody"},
            "e": {"identityId": ident, "emailId": "#ok", "envelope": {
                "mailFrom": {"email": "ceo@example.org"},
                "rcptTo": [{"email": "bob@localhost"}]}},
            "i": {"identityId": "Inope", "emailId": "#ok"},
            "m": {"identityId": ident, "emailId": "Mnope"}}}, "1"]],
        using=(CORE, MAIL, SUB))
    assert set(r[0][1]["created"]) == {"forged", "nobody", "ok"}, r[0]
    nc = r[1][1]["notCreated"]
    assert nc["f"]["type"] == "forbiddenFrom"
    assert nc["n"]["type"] in ("noRecipients", "invalidEmail")
    assert nc["e"]["type"] == "forbiddenMailFrom"
    assert nc["i"]["properties"] == ["identityId"]
    assert nc["m"]["properties"] == ["emailId"]
    assert r[1][1]["created"] is None
    # a create that cannot be made says which property
    r = api(web, [["Email/set", {"accountId": a, "create": {
        "x": draft(**{"from": [{"email": "no at sign"}]}),
        "y": draft(mailboxIds={}), "z": draft(size=5)}}, "0"]])
    nc = r[0][1]["notCreated"]
    assert nc["x"]["properties"] == ["from"]
    assert nc["y"]["properties"] == ["mailboxIds"]
    assert nc["z"]["type"] == "invalidProperties"


def test_webmail_login_cookie_csrf_and_the_html_frame(web):
    r, data = request(web, "GET", "/", user=None)
    assert r.status == 200 and b"<script type=\"module\"" in data
    csp = r.getheader("Content-Security-Policy")
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp.split("style-src")[0]
    r, data = request(web, "POST", "/webmail/login", user=None,
                      body={"username": "alice", "password": "wrong"})
    assert r.status == 401 and r.getheader("Set-Cookie") is None
    r, data = request(web, "POST", "/webmail/login", user=None,
                      body={"username": "alice", "password": "alice pw"})
    assert r.status == 200, data
    cookie = r.getheader("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie          # plain http on loopback
    csrf = json.loads(data)["csrf"]
    jar = {"Cookie": cookie.split(";")[0]}
    r, data = request(web, "GET", "/webmail/session", user=None, headers=jar)
    assert json.loads(data)["username"] == "alice"
    call = {"using": [CORE, MAIL], "methodCalls": [["Core/echo", {}, "e"]]}
    r, data = request(web, "POST", "/jmap/api/", call, user=None, headers=jar)
    assert r.status == 403                 # no CSRF token: refused
    r, data = request(web, "POST", "/jmap/api/", call, user=None,
                      headers=dict(jar, **{"X-CSRF-Token": "0" * 32}))
    assert r.status == 403
    r, data = request(web, "POST", "/jmap/api/", call, user=None,
                      headers=dict(jar, **{"X-CSRF-Token": csrf}))
    assert r.status == 200, data
    # over https the cookie is Secure
    r, data = request(web, "POST", "/webmail/login", user=None, tls=True,
                      body={"username": "alice", "password": "alice pw"})
    assert "Secure" in r.getheader("Set-Cookie")
    # the HTML of a mail: inline, sandboxed, nothing remote
    send_raw(web, MIXED)
    assert wait_for(lambda: len(ids_in(web, boxes(web)["inbox"])) == 1)
    eid = ids_in(web, boxes(web)["inbox"])[0]
    r = api(web, [["Email/get", {"accountId": acc(web), "ids": [eid],
                                 "properties": ["htmlBody"]}, "g"]])
    blob = r[0][1]["list"][0]["htmlBody"][0]["blobId"]
    path = "/jmap/download/%s/%s/m.html?accept=text/html&view=1" % (
        acc(web), blob)
    r, data = request(web, "GET", path, user=None, headers=jar)
    assert r.status == 200 and r.getheader("Content-Type").startswith(
        "text/html; charset=utf-8")
    assert "Caf\u00e9" in data.decode()    # UTF-8, whatever it was sent in
    csp = r.getheader("Content-Security-Policy")
    assert csp.startswith("sandbox;") and "img-src data:;" in csp
    r, data = request(web, "GET", path + "&remote=1", user=None, headers=jar)
    assert "https:" in r.getheader("Content-Security-Policy")
    r, data = request(web, "POST", "/webmail/logout", user=None,
                      headers=dict(jar, **{"X-CSRF-Token": csrf}))
    assert r.status == 200
    r, data = request(web, "GET", "/webmail/session", user=None, headers=jar)
    assert r.status == 401


def test_mailbox_set_create_rename_move_destroy(web):
    a = acc(web)
    b = boxes(web)
    r = api(web, [["Mailbox/set", {"accountId": a, "create": {
        "p": {"name": "Projekte \u00e4", "isSubscribed": True},
        "bad": {"name": "a/b"}, "in": {"name": "INBOX"},
        "dup": {"name": "Archive"}}}, "s"]])
    res = r[0][1]
    pid = res["created"]["p"]["id"]
    assert res["notCreated"]["bad"]["properties"] == ["name"]
    assert res["notCreated"]["in"]["properties"] == ["name"]
    assert res["notCreated"]["dup"]["type"] == "alreadyExists"
    r = api(web, [["Mailbox/set", {"accountId": a, "create": {
        "c": {"name": "2026", "parentId": pid}}}, "s"]])
    cid = r[0][1]["created"]["c"]["id"]
    m = connect(web)
    typ, data = m.list()
    names = b" ".join(data).decode()
    assert "Projekte &AOQ-/2026" in names, names
    typ, data = m.lsub()
    assert b"Projekte &AOQ-" in b" ".join(data)
    # a message in the child; the parent cannot go, nor the full child
    assert m.append('"Projekte &AOQ-/2026"', None, None,
                    b"Subject: kept\r\n\r\nx\r\n")[0] == "OK"
    r = api(web, [["Mailbox/set", {"accountId": a,
                                   "destroy": [pid, cid, b["inbox"]]}, "s"]])
    nd = r[0][1]["notDestroyed"]
    assert nd[pid]["type"] == "mailboxHasChild"
    assert nd[cid]["type"] == "mailboxHasEmail"
    assert nd[b["inbox"]]["type"] == "forbidden"
    # rename the child and move it to the top: same id, same message
    r = api(web, [["Mailbox/set", {"accountId": a, "update": {
        cid: {"name": "Done", "parentId": None}}}, "s"],
        ["Mailbox/get", {"accountId": a, "ids": [cid],
                         "properties": ["name", "parentId", "totalEmails"]},
         "g"]])
    assert r[0][1]["updated"] == {cid: None}, r
    got = r[1][1]["list"][0]
    assert (got["name"], got["parentId"], got["totalEmails"]) == (
        "Done", None, 1)
    typ, data = m.select("Done")
    assert typ == "OK" and data == [b"1"]
    m.close()
    r = api(web, [["Mailbox/set", {"accountId": a, "destroy": [cid, pid],
                                   "onDestroyRemoveEmails": True}, "s"]])
    assert sorted(r[0][1]["destroyed"]) == sorted([cid, pid]), r
    typ, data = m.list()
    assert b"Done" not in b" ".join(data) and b"Projekte" not in b" ".join(data)
    m.logout()
    assert cid not in boxes(web).values()


def test_submission_runs_the_plugins(make_ternd):
    """A JMAP submission meets the mail, rcpt and data hooks as one on
    port 587 does (role http, HELO "jmap", the account's user): a
    refused recipient is forbiddenToSend, a tempfail rateLimit, a
    header a plugin adds is in the message delivered."""
    from test_jmap import web_ternd
    gate = """
        return {
          mail = function(tx, addr)
            local s = tx.session
            if s.role ~= "http" or s.helo ~= "jmap" or
               s.user ~= "alice" then
              return "reject", "550 5.7.1 not the session we thought"
            end
          end,
          rcpt = function(tx, addr)
            if addr:match("^blocked@") then
              return "reject", "550 5.7.1 not to them"
            end
            if addr:match("^later@") then
              return "tempfail", "451 4.7.1 slow down"
            end
          end,
          data = function(tx, msg)
            msg:add_header("X-Checked", tx.session.role .. "/" .. #tx.rcpts)
          end,
        }
    """
    t = web_ternd(make_ternd, 'plugins = { "gate" }\n', gate=gate)
    a = acc(t)
    b = boxes(t)
    ident = api(t, [["Identity/get", {"accountId": a}, "i"]],
                using=(CORE, MAIL, SUB))[0][1]["list"][0]["id"]

    def submit(to):
        r = api(t, [
            ["Email/set", {"accountId": a, "create": {"d": {
                "mailboxIds": {b["drafts"]: True},
                "from": [{"email": "alice@localhost"}],
                "to": [{"email": to}], "subject": "hooked",
                "textBody": [{"partId": "t", "type": "text/plain"}],
                "bodyValues": {"t": {"value": "hi\n"}}}}}, "0"],
            ["EmailSubmission/set", {"accountId": a, "create": {"s": {
                "identityId": ident, "emailId": "#d"}}}, "1"]],
            using=(CORE, MAIL, SUB))
        return r[1][1]
    res = submit("blocked@localhost")
    assert res["notCreated"]["s"]["type"] == "forbiddenToSend", res
    assert "not to them" in res["notCreated"]["s"]["description"]
    res = submit("later@localhost")
    assert res["notCreated"]["s"]["type"] == "rateLimit", res
    res = submit("bob@localhost")
    assert "s" in res["created"], res
    new = maildir(t, "bob") / "new"
    assert wait_for(lambda: new.is_dir() and any(new.iterdir()))
    msg = next(new.iterdir()).read_text()
    assert "X-Checked: http/1" in msg


def test_identity_changes(web):
    a = acc(web)
    r = api(web, [["Identity/get", {"accountId": a}, "i"]],
            using=(CORE, MAIL, SUB))[0][1]
    ids = sorted(i["id"] for i in r["list"])
    state = r["state"]
    assert len(ids) == 3            # one per configured domain

    def changes(since):
        return api(web, [["Identity/changes", {"accountId": a,
                                               "sinceState": since}, "c"]],
                   using=(CORE, MAIL, SUB))[0]
    n, c, _ = changes(state)
    assert n == "Identity/changes", c
    assert (c["created"], c["updated"], c["destroyed"]) == ([], [], [])
    assert c["newState"] == state
    # a state from before a domain was dropped and the others were added
    n, c, _ = changes("i0123456789abcdef.00000000")
    assert sorted(c["created"]) == ids
    assert c["destroyed"] == ["I0123456789abcdef"]
    # Identity/set: a name and signature on one, a second identity made
    # (an address of alice's only), destroyed again; the defaults stay
    r = api(web, [["Identity/set", {"accountId": a, "update": {ids[0]: {
        "name": "Alice Liddell", "textSignature": "-- \nAlice"}},
        "create": {"n": {"email": "alice@localhost", "name": "Work"},
                   "x": {"email": "bob@localhost"}},
        "destroy": [ids[1]]}, "s"]], using=(CORE, MAIL, SUB))[0][1]
    assert ids[0] in r["updated"]
    made = r["created"]["n"]["id"]
    assert r["created"]["n"]["mayDelete"] is True
    assert r["notCreated"]["x"]["type"] == "forbiddenFrom"
    assert r["notDestroyed"][ids[1]]["type"] == "forbidden"
    n, c, _ = changes(state)
    assert c["updated"] == [ids[0]] and c["created"] == [made]
    web.stop()
    web.start()                         # kept in the account's index
    got = {i["id"]: i for i in api(web, [["Identity/get", {
        "accountId": a}, "i"]], using=(CORE, MAIL, SUB))[0][1]["list"]}
    assert got[ids[0]]["name"] == "Alice Liddell"
    assert got[made]["name"] == "Work"
    # a submission may name the new identity
    b = boxes(web)
    r = api(web, [
        ["Email/set", {"accountId": a, "create": {"d": {
            "mailboxIds": {b["drafts"]: True},
            "from": [{"name": "Work", "email": "alice@localhost"}],
            "to": [{"email": "bob@localhost"}], "subject": "from work",
            "textBody": [{"partId": "t", "type": "text/plain"}],
            "bodyValues": {"t": {"value": "hi\n"}}}}}, "0"],
        ["EmailSubmission/set", {"accountId": a, "create": {"s": {
            "identityId": made, "emailId": "#d"}}}, "1"]],
        using=(CORE, MAIL, SUB))
    assert "s" in r[1][1]["created"], r
    r = api(web, [["Identity/set", {"accountId": a, "destroy": [made]},
                   "s"]], using=(CORE, MAIL, SUB))[0][1]
    assert r["destroyed"] == [made]
    n, c, _ = changes("x")
    assert c["type"] == "cannotCalculateChanges"


def test_submission_records_get_query_changes_destroy(web):
    a = acc(web)
    b = boxes(web)
    using = (CORE, MAIL, SUB)
    ident = api(web, [["Identity/get", {"accountId": a}, "i"]],
                using=using)[0][1]["list"][0]["id"]
    s0 = api(web, [["EmailSubmission/get", {"accountId": a, "ids": []}, "g"]],
             using=using)[0][1]["state"]

    def send(subject):
        r = api(web, [
            ["Email/set", {"accountId": a, "create": {"d": {
                "mailboxIds": {b["drafts"]: True},
                "from": [{"email": "alice@localhost"}],
                "to": [{"email": "bob@localhost"}], "subject": subject,
                "textBody": [{"partId": "t", "type": "text/plain"}],
                "bodyValues": {"t": {"value": "hi\n"}}}}}, "0"],
            ["EmailSubmission/set", {"accountId": a, "ifInState": None,
                                     "create": {"s": {
                                         "identityId": ident,
                                         "emailId": "#d"}}}, "1"]],
            using=using)
        res = r[1][1]
        assert res["oldState"] != res["newState"], res
        return r[0][1]["created"]["d"]["id"], res["created"]["s"]["id"]
    e1, s1 = send("first")
    e2, s2 = send("second")
    r = api(web, [["EmailSubmission/get", {"accountId": a,
                                           "ids": [s1, "Snope"]}, "g"]],
            using=using)[0][1]
    got = r["list"][0]
    assert got["id"] == s1 and got["emailId"] == e1
    assert got["identityId"] == ident and got["undoStatus"] == "final"
    assert got["threadId"].startswith("T") and got["sendAt"].endswith("Z")
    assert got["envelope"]["rcptTo"][0]["email"] == "bob@localhost"
    assert r["notFound"] == ["Snope"]
    r = api(web, [["EmailSubmission/query", {
        "accountId": a, "filter": {"emailIds": [e2]},
        "calculateTotal": True}, "q"]], using=using)[0][1]
    assert r["ids"] == [s2] and r["total"] == 1
    r = api(web, [["EmailSubmission/query", {
        "accountId": a, "sort": [{"property": "emailId"}]}, "q"]],
        using=using)[0][1]
    assert r["ids"] == [s for _, s in sorted([(e1, s1), (e2, s2)])]
    r = api(web, [["EmailSubmission/changes", {
        "accountId": a, "sinceState": s0, "maxChanges": 1}, "c"]],
        using=using)[0][1]
    assert r["created"] == [s1] and r["hasMoreChanges"] is True
    r = api(web, [["EmailSubmission/changes", {
        "accountId": a, "sinceState": r["newState"]}, "c"]],
        using=using)[0][1]
    assert r["created"] == [s2] and r["hasMoreChanges"] is False
    mid = r["newState"]
    # a record destroyed (the mail went anyway); a stale ifInState
    r = api(web, [["EmailSubmission/set", {"accountId": a, "ifInState": s0,
                                           "destroy": [s1]}, "x"]],
            using=using)[0]
    assert r[0] == "error" and r[1]["type"] == "stateMismatch"
    r = api(web, [["EmailSubmission/set", {"accountId": a,
                                           "destroy": [s1, "Snope"],
                                           "update": {s2: {"undoStatus":
                                                           "canceled"}}},
                   "x"]], using=using)[0][1]
    assert r["destroyed"] == [s1]
    assert r["notDestroyed"]["Snope"]["type"] == "notFound"
    assert r["notUpdated"][s2]["type"] == "cannotUnsend"
    r = api(web, [["EmailSubmission/changes", {
        "accountId": a, "sinceState": mid}, "c"]], using=using)[0][1]
    assert r["destroyed"] == [s1] and r["created"] == []
    r = api(web, [["EmailSubmission/get", {"accountId": a}, "g"]],
            using=using)[0][1]
    assert [x["id"] for x in r["list"]] == [s2]
    # kept across a restart
    web.stop()
    web.start()
    r = api(web, [["EmailSubmission/get", {"accountId": a, "ids": [s2]},
                   "g"]], using=using)[0][1]
    assert r["list"][0]["emailId"] == e2
