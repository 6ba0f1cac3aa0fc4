# SPDX-License-Identifier: ISC
"""JMAP's /changes from the store's change log: Email/changes sees
arrivals, flags set over IMAP, \\Deleted and expunged mail and moves
made over JMAP, page by page under maxChanges, and its states still work
after ternd restarts; Mailbox/changes sees a folder made, its counts,
a rename and a destroy; states this server did not give out are
cannotCalculateChanges.
"""
from test_imap import connect, deliver, maildir, wait_for
from test_jmap import api, web  # noqa: F401
from test_jmap_write import acc, boxes, ids_in


def email_state(t):
    r = api(t, [["Email/get", {"accountId": acc(t), "ids": []}, "g"]])
    return r[0][1]["state"]


def changes(t, since, kind="Email", **kw):
    args = {"accountId": acc(t), "sinceState": since}
    args.update(kw)
    r = api(t, [[kind + "/changes", args, "c"]])
    return r[0][:2]


def test_email_changes_follow_imap_and_jmap(web):
    deliver(web, subject="first")
    inbox = boxes(web)["inbox"]
    assert wait_for(lambda: len(ids_in(web, inbox)) == 1)
    first = ids_in(web, inbox)[0]
    s0 = email_state(web)
    assert changes(web, s0)[1]["created"] == []

    deliver(web, subject="second")
    assert wait_for(lambda: len(ids_in(web, inbox)) == 2)
    name, r = changes(web, s0)
    assert name == "Email/changes", r
    second = r["created"][0]
    assert r["created"] == [second] and second != first
    assert r["updated"] == [] and r["destroyed"] == []
    assert r["oldState"] == s0 and r["newState"] == email_state(web)
    assert r["hasMoreChanges"] is False
    s1 = r["newState"]

    # a flag set over IMAP is an update
    m = connect(web)
    m.select("INBOX")
    typ, data = m.uid("SEARCH", "SUBJECT", "first")
    uid_first = data[0].decode()
    assert m.uid("STORE", uid_first, "+FLAGS", "(\\Flagged)")[0] == "OK"
    r = changes(web, s1)[1]
    assert (r["created"], r["updated"], r["destroyed"]) == ([], [first], [])
    s2 = r["newState"]

    # moved over JMAP: one Email, updated (its mailboxIds), not made anew
    arch = boxes(web)["archive"]
    r = api(web, [["Email/set", {"accountId": acc(web), "update": {
        second: {"mailboxIds": {arch: True}}}}, "s"]])
    assert second in r[0][1]["updated"], r
    r = changes(web, s2)[1]
    assert (r["created"], r["updated"], r["destroyed"]) == ([], [second], [])
    s3 = r["newState"]

    # \Deleted hides it from JMAP at once; the expunge changes nothing more
    assert m.uid("STORE", uid_first, "+FLAGS", "(\\Deleted)")[0] == "OK"
    r = changes(web, s3)[1]
    assert (r["created"], r["updated"], r["destroyed"]) == ([], [], [first])
    s4 = r["newState"]
    assert m.expunge()[0] == "OK"
    m.logout()
    r = changes(web, s3)[1]
    assert (r["created"], r["updated"], r["destroyed"]) == ([], [], [first])
    assert changes(web, s0)[1]["destroyed"] == [first]
    # (from s4 the expunge is named once more: the log does not say the
    # message was \Deleted already, and a client drops an unknown id)
    assert changes(web, s4)[1]["destroyed"] in ([], [first])
    s5 = email_state(web)

    # the state string carries what it needs: good after a restart
    web.stop()
    web.start()
    r = changes(web, s5)[1]
    assert (r["created"], r["updated"], r["destroyed"]) == ([], [], [])
    r = changes(web, s2)[1]
    assert sorted(r["updated"]) == [second] and r["destroyed"] == [first]


def test_email_changes_in_pages(web):
    s0 = email_state(web)
    for i in range(5):
        deliver(web, subject="page %d" % i)
    inbox = boxes(web)["inbox"]
    assert wait_for(lambda: len(ids_in(web, inbox)) == 5)
    seen, state, calls = [], s0, 0
    while True:
        r = changes(web, state, maxChanges=2)[1]
        assert len(r["created"]) + len(r["updated"]) <= 2, r
        seen += r["created"] + r["updated"]
        state = r["newState"]
        calls += 1
        assert calls <= 5
        if not r["hasMoreChanges"]:
            break
    assert sorted(seen) == sorted(ids_in(web, inbox))
    assert calls == 3
    assert state == email_state(web)
    name, r = changes(web, s0, maxChanges=0)
    assert name == "error" and r["type"] == "invalidArguments"


def test_states_not_ours_cannot_be_calculated(web):
    for bad in ("", "x", "e!!", "eF1.2", "eFb.1.1_Fa.1.1", "m"):
        name, r = changes(web, bad)
        assert name == "error" and r["type"] == "cannotCalculateChanges", \
            (bad, r)
    # a folder of the old state gone: its messages are not known any more
    s = email_state(web)
    assert "_" in s
    name, r = changes(web, s + "_Fzzzz.1.1")
    assert r["type"] == "cannotCalculateChanges", r
    name, r, _ = api(web, [["Email/queryChanges", {
        "accountId": acc(web), "sinceQueryState": "q1"}, "q"]])[0]
    assert r["type"] == "cannotCalculateChanges"


def test_mailbox_changes(web):
    a = acc(web)
    r = api(web, [["Mailbox/get", {"accountId": a, "ids": []}, "m"]])
    m0 = r[0][1]["state"]
    r = api(web, [["Mailbox/set", {"accountId": a, "create": {
        "n": {"name": "Projects"}}}, "s"]])
    pid = r[0][1]["created"]["n"]["id"]
    r = changes(web, m0, kind="Mailbox")[1]
    assert (r["created"], r["updated"], r["destroyed"]) == ([pid], [], [])
    m1 = r["newState"]

    deliver(web, subject="counts")
    inbox = boxes(web)["inbox"]
    assert wait_for(lambda: len(ids_in(web, inbox)) == 1)
    r = changes(web, m1, kind="Mailbox")[1]
    assert r["updated"] == [inbox] and r["created"] == []
    assert "unreadEmails" in r["updatedProperties"]
    m2 = r["newState"]

    api(web, [["Mailbox/set", {"accountId": a, "update": {
        pid: {"name": "Plans"}}}, "s"]])
    r = changes(web, m2, kind="Mailbox")[1]
    assert r["updated"] == [pid] and r["updatedProperties"] is None
    m3 = r["newState"]

    api(web, [["Mailbox/set", {"accountId": a, "destroy": [pid]}, "s"]])
    r = changes(web, m3, kind="Mailbox")[1]
    assert (r["created"], r["updated"], r["destroyed"]) == ([], [], [pid])
    # paged: one change at a time, three of them
    api(web, [["Mailbox/set", {"accountId": a, "create": {
        "x": {"name": "One"}, "y": {"name": "Two"}}}, "s"]])
    state, got = m3, []
    for _ in range(3):
        r = changes(web, state, kind="Mailbox", maxChanges=1)[1]
        got += r["created"] + r["updated"] + r["destroyed"]
        assert len(got) <= 3
        state = r["newState"]
    assert r["hasMoreChanges"] is False and len(got) == 3 and pid in got
    r = api(web, [["Mailbox/get", {"accountId": a, "ids": []}, "m"]])
    assert state == r[0][1]["state"]


def test_expunges_from_an_index_of_version_3(web):
    """Version 3 kept no Email id with an expunge: the index is upgraded
    in place, and changes that reach back to such an expunge cannot be
    calculated; later ones can."""
    import sqlite3
    from test_imap import maildir
    deliver(web, subject="old")
    inbox = boxes(web)["inbox"]
    assert wait_for(lambda: len(ids_in(web, inbox)) == 1)
    s0 = email_state(web)
    api(web, [["Email/set", {"accountId": acc(web),
                             "destroy": ids_in(web, inbox)}, "d"]])
    s1 = email_state(web)
    web.stop()
    path = str(maildir(web) / "tern-index.sqlite")
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM expunged WHERE email IS NOT NULL"
                      ).fetchone() == (1,)
    for q in ("ALTER TABLE expunged DROP COLUMN email",
              "ALTER TABLE expunged DROP COLUMN thread",
              "UPDATE meta SET v=3 WHERE k='version'"):
        db.execute(q)
    db.commit()
    db.close()
    web.start()
    name, r = changes(web, s0)
    assert name == "error" and r["type"] == "cannotCalculateChanges", r
    assert changes(web, s1)[1]["destroyed"] == []
    db = sqlite3.connect(path)
    assert db.execute("SELECT v FROM meta WHERE k='version'").fetchone() == (5,)
    db.close()


def mail(mid, subject, refs=None):
    head = ("From: Carol <carol@example.org>\r\nTo: alice@localhost\r\n"
            "Subject: %s\r\nMessage-ID: <%s>\r\n" % (subject, mid))
    if refs:
        head += "In-Reply-To: <%s>\r\nReferences: <%s>\r\n" % (refs, refs)
    return head + "\r\nText of %s.\r\n" % mid


def test_threads_get_counts_collapse_and_changes(web):
    from test_jmap_write import send_raw
    a = acc(web)
    inbox = boxes(web)["inbox"]
    send_raw(web, mail("a@x", "plans"))
    send_raw(web, mail("b@x", "Re: plans", refs="a@x"))
    send_raw(web, mail("c@x", "other"))
    assert wait_for(lambda: len(ids_in(web, inbox)) == 3)
    r = api(web, [["Email/query", {"accountId": a, "sort": [
        {"property": "receivedAt", "isAscending": True}]}, "q"],
        ["Email/get", {"accountId": a, "#ids": {
            "resultOf": "q", "name": "Email/query", "path": "/ids"},
            "properties": ["threadId", "messageId"]}, "g"]])
    got = {e["messageId"][0]: e for e in r[1][1]["list"]}
    ea, eb, ec = got["a@x"], got["b@x"], got["c@x"]
    assert ea["threadId"] == eb["threadId"] != ec["threadId"]
    ta, tc = ea["threadId"], ec["threadId"]
    r = api(web, [["Thread/get", {"accountId": a, "ids": [ta, tc, "Tnone"]},
                   "t"]])[0][1]
    threads = {t["id"]: t["emailIds"] for t in r["list"]}
    # oldest first: the query's order (the two may arrive either way)
    order = [x["id"] for x in got.values()]
    in_order = [e["id"] for e in sorted((ea, eb), key=lambda e: order.index(
        e["id"]))]
    assert threads == {ta: in_order, tc: [ec["id"]]}
    assert r["notFound"] == ["Tnone"]
    t0 = r["state"]
    assert t0.startswith("t")

    def counts():
        r = api(web, [["Mailbox/get", {"accountId": a, "ids": [inbox]},
                       "m"]])[0][1]["list"][0]
        return (r["totalEmails"], r["totalThreads"], r["unreadThreads"])
    assert counts() == (3, 2, 2)
    api(web, [["Email/set", {"accountId": a, "update": {
        ec["id"]: {"keywords/$seen": True}}}, "s"]])
    assert counts() == (3, 2, 1)

    r = api(web, [["Email/query", {"accountId": a, "filter": {
        "inMailbox": inbox}, "collapseThreads": True,
        "calculateTotal": True}, "q"]])[0][1]
    assert r["total"] == 2 and set(r["ids"]) == {eb["id"], ec["id"]}, r

    # a reply joins the thread, a new message is a thread, and the one
    # message of a thread destroyed takes the thread with it
    send_raw(web, mail("d@x", "Re: plans", refs="a@x"))
    send_raw(web, mail("e@x", "new"))
    assert wait_for(lambda: len(ids_in(web, inbox)) == 5)
    api(web, [["Email/set", {"accountId": a, "destroy": [ec["id"]]}, "d"]])
    name, r = changes(web, t0, kind="Thread")
    assert name == "Thread/changes", r
    assert r["updated"] == [ta] and r["destroyed"] == [tc], r
    assert len(r["created"]) == 1 and r["created"][0] not in (ta, tc)
    r2 = api(web, [["Thread/get", {"accountId": a, "ids": [ta]}, "t"]])
    assert len(r2[0][1]["list"][0]["emailIds"]) == 3
    assert r["newState"] == r2[0][1]["state"]
    # a flag is no change of a Thread
    api(web, [["Email/set", {"accountId": a, "update": {
        ea["id"]: {"keywords/$flagged": True}}}, "s"]])
    r = changes(web, r["newState"], kind="Thread")[1]
    assert (r["created"], r["updated"], r["destroyed"]) == ([], [], [])


def thread_map(t):
    """{threadId: sorted emailIds} of the INBOX, and {Message-ID: id}
    of the messages that head a collapsed query."""
    a = acc(t)
    inbox = boxes(t)["inbox"]
    r = api(t, [["Email/query", {"accountId": a, "filter": {
        "inMailbox": inbox}, "collapseThreads": True,
        "calculateTotal": True}, "q"],
        ["Email/get", {"accountId": a, "#ids": {
            "resultOf": "q", "name": "Email/query", "path": "/ids"},
            "properties": ["threadId"]}, "g"],
        ["Thread/get", {"accountId": a, "#ids": {
            "resultOf": "g", "name": "Email/get", "path": "/list/*/threadId"}},
         "t"]])
    assert r[2][0] == "Thread/get", r
    return {x["id"]: sorted(x["emailIds"]) for x in r[2][1]["list"]}


def test_threads_split_by_subject_and_by_size_and_keep_their_ids(web):
    from test_jmap_write import send_raw
    a = acc(web)
    inbox = boxes(web)["inbox"]
    send_raw(web, mail("r@x", "plans"))
    send_raw(web, mail("s@x", "Re: plans", refs="r@x"))
    # the same root, another subject: another conversation
    send_raw(web, mail("u@x", "Re: something else", refs="r@x"))
    # a reply with no subject stays with its root
    send_raw(web, mail("v@x", "", refs="r@x"))
    assert wait_for(lambda: len(ids_in(web, inbox)) == 4)
    r = api(web, [["Email/query", {"accountId": a}, "q"],
                  ["Email/get", {"accountId": a, "#ids": {
                      "resultOf": "q", "name": "Email/query", "path": "/ids"},
                      "properties": ["threadId", "messageId"]}, "g"]])
    tid = {e["messageId"][0]: e["threadId"] for e in r[1][1]["list"]}
    assert tid["r@x"] == tid["s@x"] == tid["v@x"] != tid["u@x"], tid

    # IMAP's THREADID (RFC 8474) is the same id
    m = connect(web)
    m.select("INBOX")
    typ, data = m.uid("SEARCH", "SUBJECT", "something")
    typ, data = m.uid("FETCH", data[0].decode(), "(THREADID)")
    assert ("THREADID (%s)" % tid["u@x"]).encode() in data[0], data
    m.logout()

    # a thread takes 500 messages: the next reply starts a part of its
    # own (files put straight into cur/, as another program would)
    md = maildir(web)

    def put(i, body):
        name = "1700000000.M%dP7.elsewhere,S=%d" % (i, len(body))
        (md / "tmp" / name).write_bytes(body.encode())
        (md / "tmp" / name).rename(md / "cur" / (name + ":2,"))
    put(0, mail("big@x", "big"))
    for i in range(1, 501):
        put(i, mail("big%d@x" % i, "Re: big", refs="big@x"))
    assert wait_for(lambda: len(ids_in(web, inbox)) == 505, timeout=60)
    threads = thread_map(web)
    assert sorted(len(v) for v in threads.values()) == [1, 1, 3, 500], [
        len(v) for v in threads.values()]

    # ids given are kept: the same threads after a restart
    web.stop()
    web.start()
    assert thread_map(web) == threads


def query_changes(t, since, **kw):
    args = {"accountId": acc(t), "sinceQueryState": since}
    args.update(kw)
    return api(t, [["Email/queryChanges", args, "c"]])[0][:2]


def apply_changes(ids, r):
    """A client's cache of a query's ids, brought up to date by a
    queryChanges answer (RFC 8620 5.6)."""
    gone = set(r["removed"])
    ids = [x for x in ids if x not in gone]
    for a in sorted(r["added"], key=lambda a: a["index"]):
        ids.insert(a["index"], a["id"])
    return ids


def test_email_query_changes_bring_a_cached_list_up_to_date(web):
    a = acc(web)
    inbox = boxes(web)["inbox"]
    for i in range(3):
        deliver(web, subject="note %d" % i)
    assert wait_for(lambda: len(ids_in(web, inbox)) == 3)
    flt = {"inMailbox": inbox, "notKeyword": "$seen"}
    srt = [{"property": "receivedAt", "isAscending": False}]

    def query():
        r = api(web, [["Email/query", {"accountId": a, "filter": flt,
                                       "sort": srt}, "q"]])[0][1]
        return r["ids"], r["queryState"], r["canCalculateChanges"]
    ids0, q0, can = query()
    assert can is True and len(ids0) == 3
    name, r = query_changes(web, q0, filter=flt, sort=srt)
    assert name == "Email/queryChanges", r
    assert r["oldQueryState"] == q0 == r["newQueryState"]
    assert (r["removed"], r["added"]) == ([], [])

    # one read (leaves the results), one new, one destroyed
    api(web, [["Email/set", {"accountId": a, "update": {
        ids0[1]: {"keywords/$seen": True}}, "destroy": [ids0[2]]}, "s"]])
    deliver(web, subject="note 3")
    assert wait_for(lambda: len(ids_in(web, inbox)) == 3)
    ids1, q1, _ = query()
    name, r = query_changes(web, q0, filter=flt, sort=srt,
                            calculateTotal=True)
    assert name == "Email/queryChanges", r
    assert r["newQueryState"] == q1 and r["total"] == len(ids1) == 2
    assert apply_changes(ids0, r) == ids1
    assert {ids0[1], ids0[2]} <= set(r["removed"])
    # maxChanges below what changed: tooManyChanges
    name, r = query_changes(web, q0, filter=flt, sort=srt, maxChanges=1)
    assert name == "error" and r["type"] == "tooManyChanges", r

    # the state survives a restart
    web.stop()
    web.start()
    name, r = query_changes(web, q0, filter=flt, sort=srt)
    assert name == "Email/queryChanges" and apply_changes(ids0, r) == ids1

    # results that depend on threads cannot be followed
    r = api(web, [["Email/query", {"accountId": a, "collapseThreads": True},
                   "q"]])[0][1]
    assert r["canCalculateChanges"] is False
    name, r = query_changes(web, q1, collapseThreads=True)
    assert name == "error" and r["type"] == "cannotCalculateChanges"
    name, r = query_changes(web, q1, filter={
        "someInThreadHaveKeyword": "$flagged"})
    assert name == "error" and r["type"] == "cannotCalculateChanges"
    name, r = query_changes(web, q1, filter={"inMailbox": 7})
    assert name == "error" and r["type"] == "invalidArguments", r
    # a bad sinceQueryState
    name, r = query_changes(web, "q!!", filter=flt)
    assert name == "error" and r["type"] == "cannotCalculateChanges"
