# SPDX-License-Identifier: ISC
"""Email/query: every filter condition of RFC 8621 4.4.1 (the text ones
through the full-text index, and through the files for a needle the
index cannot look for), FilterOperators nested, the sorts by sentAt,
from, to, subject, size and keywords, and the errors of a bad filter
or sort.
"""
from test_imap import wait_for
from test_jmap import api, web  # noqa: F401
from test_jmap_write import acc, boxes, ids_in, send_raw

MAILS = {
    "m1": ("Ann Archer <ann@example.org>", "bob@localhost", "Budget 2027",
           "Mon, 01 Jun 2026 10:00:00 +0000", "", "The numbers are in."),
    "m2": ("Zed Zimmer <zed@example.org>", "alice@localhost",
           "Re: Budget 2027", "Tue, 02 Jun 2026 10:00:00 +0000",
           "X-Tag: green\r\nCc: Carl <carl@example.org>\r\n",
           "Looks fine to me, quokka."),
    "m3": ("Mia Moss <mia@example.org>", "alice@localhost", "Holiday",
           "Wed, 03 Jun 2026 10:00:00 +0000", "X-Tag: blue\r\n",
           "See the attached plan."),
}


def put(t):
    for key, (frm, to, subj, date, extra, body) in MAILS.items():
        text = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
                "Message-ID: <%s@x>\r\n%s" % (frm, to, subj, date, key, extra))
        if key == "m3":
            text += ('MIME-Version: 1.0\r\nContent-Type: multipart/mixed; '
                     'boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain'
                     '\r\n\r\n%s\r\n--b\r\nContent-Type: application/pdf\r\n'
                     'Content-Disposition: attachment; filename="p.pdf"\r\n'
                     'Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n'
                     '--b--\r\n' % body)
        else:
            text += "\r\n%s\r\n" % body
        send_raw(t, text)
    inbox = boxes(t)["inbox"]
    assert wait_for(lambda: len(ids_in(t, inbox)) == 3)
    a = acc(t)
    r = api(t, [["Email/query", {"accountId": a}, "q"],
                ["Email/get", {"accountId": a, "#ids": {
                    "resultOf": "q", "name": "Email/query", "path": "/ids"},
                    "properties": ["messageId"]}, "g"]])
    return {e["messageId"][0].split("@")[0]: e["id"]
            for e in r[1][1]["list"]}


def query(t, flt=None, sort=None, **kw):
    args = {"accountId": acc(t)}
    if flt is not None:
        args["filter"] = flt
    if sort is not None:
        args["sort"] = sort
    args.update(kw)
    return api(t, [["Email/query", args, "q"]])[0]


def test_filters(web):
    ids = put(web)
    name = {v: k for k, v in ids.items()}

    def found(flt):
        n, r, _ = query(web, flt)
        assert n == "Email/query", r
        return sorted(name[i] for i in r["ids"])
    assert found({"text": "quokka"}) == ["m2"]
    assert found({"text": "budget"}) == ["m1", "m2"]        # the subject
    assert found({"body": "budget"}) == []
    assert found({"body": "numbers"}) == ["m1"]
    assert found({"from": "zimmer"}) == ["m2"]
    assert found({"from": "mia@example"}) == ["m3"]
    assert found({"to": "bob"}) == ["m1"]
    assert found({"cc": "carl"}) == ["m2"]
    assert found({"bcc": "carl"}) == []
    assert found({"subject": "re: budget"}) == ["m2"]
    assert found({"subject": "27"}) == ["m1", "m2"]   # too short for the index
    assert found({"header": ["X-Tag"]}) == ["m2", "m3"]
    assert found({"header": ["x-tag", "BLUE"]}) == ["m3"]
    assert found({"hasAttachment": True}) == ["m3"]
    assert found({"hasAttachment": False}) == ["m1", "m2"]
    assert found({"after": "2026-01-01T00:00:00Z"}) == ["m1", "m2", "m3"]
    assert found({"before": "2026-01-01T00:00:00Z"}) == []
    assert found({"operator": "OR", "conditions": [
        {"from": "ann"}, {"header": ["X-Tag", "blue"]}]}) == ["m1", "m3"]
    assert found({"operator": "NOT", "conditions": [
        {"from": "ann"}, {"from": "mia"}]}) == ["m2"]
    assert found({"operator": "AND", "conditions": [
        {"text": "budget"}, {"operator": "NOT", "conditions": [
            {"subject": "re:"}]}]}) == ["m1"]
    # keywords, and of the thread (m2 replies to nothing: threads of one)
    api(web, [["Email/set", {"accountId": acc(web), "update": {
        ids["m2"]: {"keywords/$flagged": True}}}, "s"]])
    assert found({"hasKeyword": "$flagged"}) == ["m2"]
    assert found({"notKeyword": "$flagged"}) == ["m1", "m3"]
    assert found({"someInThreadHaveKeyword": "$flagged"}) == ["m2"]
    assert found({"noneInThreadHaveKeyword": "$flagged"}) == ["m1", "m3"]
    assert found({"allInThreadHaveKeyword": "$flagged"}) == ["m2"]
    inbox = boxes(web)["inbox"]
    assert found({"inMailbox": inbox, "text": "plan"}) == ["m3"]
    assert found({"inMailbox": boxes(web)["archive"], "text": "plan"}) == []


def test_sorts(web):
    ids = put(web)
    name = {v: k for k, v in ids.items()}

    def order(*sort):
        n, r, _ = query(web, sort=list(sort))
        assert n == "Email/query", r
        return [name[i] for i in r["ids"]]
    assert order({"property": "sentAt"}) == ["m1", "m2", "m3"]
    assert order({"property": "sentAt", "isAscending": False}) == \
        ["m3", "m2", "m1"]
    assert order({"property": "from"}) == ["m1", "m3", "m2"]    # Ann Mia Zed
    assert order({"property": "to"})[2] == "m1"      # alice, alice, bob
    # the base subject: "Re: Budget 2027" sorts as "budget 2027"
    assert sorted(order({"property": "subject"})[:2]) == ["m1", "m2"]
    assert order({"property": "subject"})[2] == "m3"
    assert order({"property": "size", "isAscending": False})[0] == "m3"
    api(web, [["Email/set", {"accountId": acc(web), "update": {
        ids["m3"]: {"keywords/$flagged": True}}}, "s"]])
    assert order({"property": "hasKeyword", "keyword": "$flagged",
                  "isAscending": False},
                 {"property": "sentAt"}) == ["m3", "m1", "m2"]
    assert order({"property": "someInThreadHaveKeyword",
                  "keyword": "$flagged"}, {"property": "sentAt"}) == \
        ["m1", "m2", "m3"]


def test_bad_filters_and_sorts(web):
    for flt in ({"operator": "XOR", "conditions": []},
                {"operator": "AND"},
                {"header": []}, {"header": ["Bad Name"]},
                {"hasAttachment": "yes"}, {"text": 1},
                {"before": "yesterday"}):
        n, r, _ = query(web, flt)
        assert n == "error" and r["type"] == "invalidArguments", (flt, r)
    n, r, _ = query(web, {"colour": "red"})
    assert r["type"] == "unsupportedFilter"
    for sort, kind in (([{"property": "colour"}], "unsupportedSort"),
                       ([{"property": "from", "collation": "i;klingon"}],
                        "unsupportedSort"),
                       ([{"property": "hasKeyword"}], "invalidArguments"),
                       ([{"property": "size", "isAscending": "no"}],
                        "invalidArguments")):
        n, r, _ = query(web, sort=sort)
        assert n == "error" and r["type"] == kind, (sort, r)


def test_search_snippets(web):
    ids = put(web)
    a = acc(web)
    r = api(web, [["SearchSnippet/get", {
        "accountId": a, "filter": {"operator": "OR", "conditions": [
            {"text": "budget"}, {"body": "quokka"}]},
        "emailIds": [ids["m1"], ids["m2"], ids["m3"], "Mnothere"]}, "s"]])
    name, res = r[0][0], r[0][1]
    assert name == "SearchSnippet/get", res
    got = {s["emailId"]: s for s in res["list"]}
    assert got[ids["m1"]]["subject"] == "<mark>Budget</mark> 2027"
    assert got[ids["m1"]]["preview"] is None
    assert got[ids["m2"]]["subject"] == "Re: <mark>Budget</mark> 2027"
    assert got[ids["m2"]]["preview"] == "Looks fine to me, <mark>quokka</mark>."
    assert got[ids["m3"]]["subject"] is None and got[ids["m3"]]["preview"] is None
    assert res["notFound"] == ["Mnothere"]
    # markup in the text is escaped, never passed on
    send_raw(web, "From: x@example.org\r\nTo: alice@localhost\r\n"
             "Subject: <b>tags</b> & more\r\n\r\n<script>tags</script>\r\n")
    assert wait_for(lambda: len(ids_in(web, boxes(web)["inbox"])) == 4)
    n, r, _ = query(web, {"text": "tags"})
    r = api(web, [["SearchSnippet/get", {"accountId": a, "filter": {
        "text": "tags"}, "emailIds": r["ids"]}, "s"]])[0][1]
    s = r["list"][0]
    assert s["subject"] == "&lt;b&gt;<mark>tags</mark>&lt;/b&gt; &amp; more"
    assert s["preview"] == "&lt;script&gt;<mark>tags</mark>&lt;/script&gt;"
    assert r["notFound"] is None


def test_mailbox_query(web):
    a = acc(web)
    r = api(web, [["Mailbox/set", {"accountId": a, "create": {
        "p": {"name": "Projects"}, "c": {"name": "Tern", "parentId": "#p"}}},
        "s"]])
    made = r[0][1]["created"]     # a parent made in the same call
    assert set(made) == {"p", "c"}, r
    bx = boxes(web)

    def q(**kw):
        args = {"accountId": a}
        args.update(kw)
        n, r, _ = api(web, [["Mailbox/query", args, "q"]])[0]
        assert n == "Mailbox/query", r
        return r
    every = q(calculateTotal=True)
    assert every["total"] == len(bx) and len(every["ids"]) == len(bx)
    assert q(filter={"role": "inbox"})["ids"] == [bx["inbox"]]
    assert set(q(filter={"hasAnyRole": False})["ids"]) == {
        bx["Projects"], bx["Tern"]}
    assert q(filter={"parentId": bx["Projects"]})["ids"] == [bx["Tern"]]
    assert q(filter={"name": "Tern"})["ids"] == [bx["Tern"]]
    assert q(filter={"operator": "NOT", "conditions": [
        {"hasAnyRole": True}]}, sort=[{"property": "name",
                                       "isAscending": False}])["ids"] == [
        bx["Tern"], bx["Projects"]]
    # a tree: the parent before the child; filterAsTree drops a child of
    # a Mailbox the filter leaves out
    ids = q(sortAsTree=True)["ids"]
    assert ids.index(bx["Projects"]) < ids.index(bx["Tern"])
    assert q(filter={"name": "Tern"}, filterAsTree=True)["ids"] == []
    assert q(sort=[{"property": "sortOrder"}])["ids"][0] == bx["inbox"]
    n, r, _ = api(web, [["Mailbox/query", {"accountId": a, "sort": [
        {"property": "colour"}]}, "q"]])[0]
    assert r["type"] == "unsupportedSort"
    n, r, _ = api(web, [["Mailbox/query", {"accountId": a, "filter": {
        "colour": 1}}, "q"]])[0]
    assert r["type"] == "unsupportedFilter"
