// SPDX-License-Identifier: ISC
// Tern's webmail: plain JavaScript on JMAP (RFC 8620/8621), nothing else.
// Mail content is only ever put into the page as text (textContent);
// HTML mail is shown by the server in a sandboxed frame with its own
// Content-Security-Policy (no script, no remote content until asked).

const CORE = "urn:ietf:params:jmap:core";
const MAIL = "urn:ietf:params:jmap:mail";
const SUB = "urn:ietf:params:jmap:submission";
const PAGE = 50;

const $ = (sel) => document.querySelector(sel);
const state = {
  csrf: "", user: "", session: null, account: "",
  boxes: [], box: null, ids: [], emails: new Map(), total: 0, position: 0,
  current: -1, open: null, identities: [], draftId: null, draftTimer: 0,
  replyTo: null, events: null, attachments: [],
  search: null,          // the filter of a search, or null: the folder
  threads: localStorage.getItem("tern.threads") === "1",
  snippets: new Map(), threadSize: new Map(),
};

function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function status(msg) {
  $("#status").textContent = msg;
  if (msg) setTimeout(() => { if ($("#status").textContent === msg) $("#status").textContent = ""; }, 4000);
}

// --- the server ----------------------------------------------------------

async function api(calls, using = [CORE, MAIL]) {
  const r = await fetch(state.session.apiUrl, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": state.csrf },
    body: JSON.stringify({ using, methodCalls: calls }),
  });
  if (r.status === 401 || r.status === 403) { showLogin(); throw new Error("logged out"); }
  if (!r.ok) throw new Error("server: " + r.status);
  const out = (await r.json()).methodResponses;
  for (const [name, args] of out)
    if (name === "error") throw new Error(args.type + (args.description ? ": " + args.description : ""));
  return out;
}

function downloadUrl(blobId, name, type, extra = "") {
  return state.session.downloadUrl
    .replace("{accountId}", encodeURIComponent(state.account))
    .replace("{blobId}", encodeURIComponent(blobId))
    .replace("{name}", encodeURIComponent(name || "download"))
    .replace("{type}", encodeURIComponent(type || "application/octet-stream")) + extra;
}

// --- log in --------------------------------------------------------------

function showLogin() {
  $("#app").hidden = true;
  $("#login").hidden = false;
  if (state.events) { state.events.close(); state.events = null; }
}

async function start(who) {
  state.csrf = who.csrf;
  state.user = who.username;
  const r = await fetch("/.well-known/jmap", { credentials: "same-origin" });
  if (!r.ok) { showLogin(); return; }
  state.session = await r.json();
  state.account = state.session.primaryAccounts[MAIL];
  $("#who").textContent = state.user;
  $("#login").hidden = true;
  $("#app").hidden = false;
  await loadBoxes();
  const inbox = state.boxes.find((b) => b.role === "inbox") || state.boxes[0];
  await openBox(inbox);
  const id = await api([["Identity/get", { accountId: state.account }, "i"]], [CORE, MAIL, SUB]);
  state.identities = id[0][1].list;
  listen();
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  $("#login-error").textContent = "";
  const r = await fetch("/webmail/login", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: f.username.value, password: f.password.value }),
  });
  if (r.status === 429) { $("#login-error").textContent = "Too many failed logins; try again in a minute."; return; }
  if (!r.ok) { $("#login-error").textContent = "Wrong user name or password."; return; }
  f.password.value = "";
  await start(await r.json());
});

$("#logout").addEventListener("click", async () => {
  await fetch("/webmail/logout", { method: "POST", credentials: "same-origin",
                                   headers: { "X-CSRF-Token": state.csrf } });
  showLogin();
});

// --- folders -------------------------------------------------------------

const ROLE_ORDER = ["inbox", "drafts", "sent", "archive", "junk", "trash"];

async function loadBoxes() {
  const r = await api([["Mailbox/get", { accountId: state.account }, "m"]]);
  const rank = (b) => { const i = ROLE_ORDER.indexOf(b.role); return i < 0 ? 99 : i; };
  state.boxes = r[0][1].list.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
  const nav = $("#folders");
  nav.replaceChildren(...state.boxes.map((b) => el("a", {
    href: "#", "data-id": b.id, class: state.box && b.id === state.box.id ? "current" : "",
    onclick: (ev) => { ev.preventDefault(); $("#folders").classList.remove("open"); openBox(b); },
  }, el("span", { text: b.name }), el("span", { class: "count", text: b.unreadEmails ? String(b.unreadEmails) : "" }))),
  el("div", { class: "folder-tools" },
    el("button", { text: "New folder", onclick: () => folderSet("create") }),
    el("button", { text: "Rename", id: "rename-folder", onclick: () => folderSet("rename") }),
    el("button", { text: "Delete", id: "delete-folder", onclick: () => folderSet("destroy") })));
  if (state.box) state.box = state.boxes.find((b) => b.id === state.box.id) || state.box;
  const special = !state.box || state.box.role;
  $("#rename-folder").disabled = !!special;
  $("#delete-folder").disabled = !!special;
}

// Folders: created at the top, renamed, deleted (with their mail, asked).
async function folderSet(what) {
  const b = state.box;
  let args = { accountId: state.account };
  if (what === "create") {
    const name = prompt("Name of the new folder");
    if (!name) return;
    args.create = { n: { name, isSubscribed: true } };
  } else if (what === "rename") {
    const name = prompt("New name of " + b.name, b.name);
    if (!name || name === b.name) return;
    args.update = { [b.id]: { name } };
  } else {
    if (!confirm(`Delete ${b.name}` + (b.totalEmails ? ` and its ${b.totalEmails} messages?` : "?"))) return;
    args.destroy = [b.id];
    args.onDestroyRemoveEmails = true;
  }
  const r = await api([["Mailbox/set", args, "m"]]);
  const res = r[0][1];
  const err = Object.values(res.notCreated || res.notUpdated || res.notDestroyed || {})[0];
  if (err) { status("Not done: " + (err.description || err.type)); return; }
  await loadBoxes();
  if (what === "destroy") await openBox(boxByRole("inbox"));
  else if (what === "create") await openBox(state.boxes.find((x) => x.id === res.created.n.id));
  else await loadList();
}

function boxByRole(role) { return state.boxes.find((b) => b.role === role); }

async function openBox(b, position = 0) {
  state.box = b;
  state.position = position;
  if (position === 0) endSearch();
  for (const a of $("#folders").children) a.classList.toggle("current", a.dataset.id === b.id);
  $("#rename-folder").disabled = $("#delete-folder").disabled = !!b.role;
  await loadList();
}

// --- the message list ----------------------------------------------------

async function loadList() {
  const ids = { resultOf: "q", name: "Email/query", path: "/ids" };
  const calls = [
    ["Email/query", { accountId: state.account, filter: state.search || { inMailbox: state.box.id },
                      sort: [{ property: "receivedAt", isAscending: false }], collapseThreads: state.threads,
                      position: state.position, limit: PAGE, calculateTotal: true }, "q"],
    ["Email/get", { accountId: state.account, "#ids": ids,
                    properties: ["from", "to", "subject", "receivedAt", "preview", "keywords", "mailboxIds",
                                 "threadId"] }, "g"],
  ];
  if (state.threads)
    calls.push(["Thread/get", { accountId: state.account, "#ids": { resultOf: "g", name: "Email/get",
                                                                  path: "/list/*/threadId" } }, "t"]);
  if (state.search)
    calls.push(["SearchSnippet/get", { accountId: state.account, filter: state.search,
                                       "#emailIds": ids }, "s"]);
  const r = await api(calls);
  state.ids = r[0][1].ids;
  state.total = r[0][1].total;
  for (const e of r[1][1].list) state.emails.set(e.id, e);
  for (const [name, args] of r.slice(2)) {
    if (name === "Thread/get") for (const t of args.list) state.threadSize.set(t.id, t.emailIds);
    if (name === "SearchSnippet/get") for (const s of args.list) state.snippets.set(s.emailId, s);
  }
  renderList();
}

// A snippet (HTML with <mark> and entities, from the server) as DOM
// nodes: split and unescaped, never parsed as HTML.
function marked(html) {
  const span = el("span");
  const unescape = (s) => s.replace(/&(lt|gt|quot|amp);/g, (_, n) => ({ lt: "<", gt: ">", quot: '"', amp: "&" })[n]);
  for (const [i, part] of html.split(/<\/?mark>/).entries())
    span.append(i % 2 ? el("mark", { text: unescape(part) }) : unescape(part));
  return span;
}

// "from:ann to:bob subject:\"q3 report\" budget" as a JMAP filter
function searchFilter(text) {
  const conds = [], words = [];
  for (const m of text.matchAll(/(?:(from|to|cc|subject):)?(?:"([^"]*)"|(\S+))/gi)) {
    const value = m[2] !== undefined ? m[2] : m[3];
    if (!value) continue;
    if (m[1]) conds.push({ [m[1].toLowerCase()]: value }); else words.push(value);
  }
  if (words.length) conds.push({ text: words.join(" ") });
  const away = ["trash", "junk"].map(boxByRole).filter(Boolean).map((b) => b.id);
  if (away.length) conds.push({ inMailboxOtherThan: away });
  return { operator: "AND", conditions: conds };
}

function endSearch() {
  state.search = null;
  state.snippets.clear();
  $("#search").q.value = "";
  $("#clear-search").hidden = true;
}

$("#search").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = ev.target.q.value.trim();
  if (!text) { endSearch(); await openBox(state.box); return; }
  state.search = searchFilter(text);
  state.snippets.clear();
  state.position = 0;
  state.current = -1;
  $("#clear-search").hidden = false;
  for (const a of $("#folders").children) a.classList.remove("current");
  await loadList();
});
$("#clear-search").addEventListener("click", () => openBox(state.box));
$("#threads").checked = state.threads;
$("#threads").addEventListener("change", async (ev) => {
  state.threads = ev.target.checked;
  localStorage.setItem("tern.threads", state.threads ? "1" : "0");
  state.position = 0;
  await loadList();
});

function who(addrs) {
  if (!addrs || !addrs.length) return "(nobody)";
  return addrs.map((a) => a.name || a.email).join(", ");
}

function shortDate(iso) {
  const d = new Date(iso), now = new Date();
  return d.toDateString() === now.toDateString()
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString([], { month: "short", day: "numeric" });
}

function renderList() {
  const ul = $("#messages");
  const sent = !state.search && (state.box.role === "sent" || state.box.role === "drafts");
  $("#listname").textContent = state.search ? "Search results" : state.box.name;
  ul.replaceChildren(...state.ids.map((id, i) => {
    const e = state.emails.get(id);
    const unread = !e.keywords.$seen;
    const snip = state.snippets.get(id);
    const n = state.threads ? (state.threadSize.get(e.threadId) || []).length : 0;
    return el("li", { class: (unread ? "unread " : "") + (i === state.current ? "current" : ""),
                      "data-id": id, onclick: () => { state.current = i; openEmail(id); } },
      el("div", { class: "top" },
        el("span", { class: "from", text: (sent ? "To: " + who(e.to) : who(e.from)) }),
        el("span", { class: "date", text: (e.keywords.$flagged ? "\u2691 " : "") + shortDate(e.receivedAt) })),
      el("div", { class: "subject" }, snip && snip.subject ? marked(snip.subject) : e.subject || "(no subject)",
         n > 1 ? el("span", { class: "thread-count", text: " " + n }) : ""),
      el("div", { class: "preview" }, snip && snip.preview ? marked(snip.preview) : e.preview));
  }));
  const last = Math.min(state.position + state.ids.length, state.total);
  $("#range").textContent = state.total ? `${state.position + 1}\u2013${last} of ${state.total}` : "No messages";
  $("#prev").disabled = state.position === 0;
  $("#next").disabled = last >= state.total;
}

$("#prev").addEventListener("click", () => { state.position = Math.max(0, state.position - PAGE); loadList(); });
$("#next").addEventListener("click", () => { state.position += PAGE; loadList(); });

// --- reading -------------------------------------------------------------

// Plain text with links and quote levels, as DOM nodes (never HTML).
function renderText(text) {
  const root = el("div", { class: "text" });
  const stack = [root];
  for (const line of text.split("\n")) {
    const m = /^((?:>\s?)*)/.exec(line);
    const depth = (m[1].match(/>/g) || []).length;
    while (stack.length - 1 < depth) { const q = el("blockquote"); stack[stack.length - 1].append(q); stack.push(q); }
    while (stack.length - 1 > depth) stack.pop();
    const body = line.slice(m[1].length);
    const target = stack[stack.length - 1];
    let last = 0;
    for (const u of body.matchAll(/\bhttps?:\/\/[^\s<>"]+[^\s<>".,;:!?)]/g)) {
      target.append(body.slice(last, u.index));
      target.append(el("a", { href: u[0], rel: "noopener noreferrer", target: "_blank", text: u[0] }));
      last = u.index + u[0].length;
    }
    target.append(body.slice(last) + "\n");
  }
  return root;
}

async function openEmail(id) {
  const r = await api([["Email/get", { accountId: state.account, ids: [id],
    properties: ["from", "to", "cc", "replyTo", "subject", "sentAt", "receivedAt", "messageId", "references",
                 "keywords", "mailboxIds", "textBody", "htmlBody", "attachments", "bodyValues", "threadId"],
    fetchTextBodyValues: true }, "g"]]);
  const e = r[0][1].list[0];
  if (!e) return;
  state.open = e;
  $("#composer").hidden = true;
  $("#help").hidden = true;
  const rd = $("#reader");
  rd.hidden = false;
  const text = e.textBody.map((p) => (e.bodyValues[p.partId] || {}).value || "").join("\n");
  state.openText = text;
  const html = e.htmlBody.find((p) => p.type === "text/html");
  const tools = el("div", { class: "tools" },
    el("button", { class: "back", text: "\u2190 Back", onclick: () => { $("#reader").hidden = true; } }),
    el("button", { text: "Reply", title: "r", onclick: () => compose("reply") }),
    el("button", { text: "Reply all", title: "R", onclick: () => compose("all") }),
    el("button", { text: "Forward", title: "f", onclick: () => compose("forward") }),
    el("button", { text: "Archive", title: "a", onclick: () => moveTo("archive") }),
    el("button", { text: "Delete", title: "#", onclick: () => remove() }),
    el("button", { text: state.box.role === "junk" ? "Not junk" : "Junk", onclick: () => junk() }),
    el("button", { text: "Mark unread", onclick: () => setKeyword("$seen", false) }),
    el("button", { text: e.keywords.$flagged ? "Unflag" : "Flag", onclick: () => setKeyword("$flagged", !e.keywords.$flagged) }),
    moveMenu());
  const body = el("div", { class: "body" });
  if (html) {
    const frame = el("iframe", { sandbox: "", title: "Message", referrerpolicy: "no-referrer",
      src: downloadUrl(html.blobId, "message.html", "text/html", "&view=1") });
    const note = el("div", { class: "notice" }, "Remote images are blocked. ",
      el("button", { text: "Show them for this message", onclick: () => {
        frame.src = downloadUrl(html.blobId, "message.html", "text/html", "&view=1&remote=1"); note.remove(); } }));
    body.append(note, frame);
  } else body.append(renderText(text));
  const att = el("div", { class: "attachments" }, ...e.attachments.map((a) =>
    el("a", { href: downloadUrl(a.blobId, a.name || "attachment", a.type), download: a.name || "attachment",
              text: "\u{1F4CE} " + (a.name || a.type) + " (" + Math.ceil(a.size / 1024) + " KB)" })));
  rd.replaceChildren(el("h2", { text: e.subject || "(no subject)" }),
    el("div", { class: "meta", text: `From ${who(e.from)} to ${who(e.to)}` +
      (e.cc && e.cc.length ? `, cc ${who(e.cc)}` : "") + " \u00b7 " + new Date(e.receivedAt).toLocaleString() }),
    tools, await conversation(e), att, body);
  if (!e.keywords.$seen) await setKeyword("$seen", true, true);
  renderList();
}

// The other messages of its thread, oldest first: one click away.
async function conversation(e) {
  if (!state.threads) return "";
  const t = await api([["Thread/get", { accountId: state.account, ids: [e.threadId] }, "t"],
    ["Email/get", { accountId: state.account, "#ids": { resultOf: "t", name: "Thread/get", path: "/list/*/emailIds" },
                    properties: ["from", "receivedAt", "keywords"] }, "g"]]);
  const list = t[1][1].list;
  if (list.length < 2) return "";
  return el("ol", { class: "conversation", "aria-label": "Conversation" }, ...list.map((m) =>
    el("li", { class: m.id === e.id ? "current" : "" },
      m.id === e.id ? el("span", { text: who(m.from) + " \u00b7 " + shortDate(m.receivedAt) })
        : el("a", { href: "#", text: who(m.from) + " \u00b7 " + shortDate(m.receivedAt),
                    onclick: (ev) => { ev.preventDefault(); openEmail(m.id); } }))));
}

function moveMenu() {
  const s = el("select", { "aria-label": "Move to", onchange: () => { if (s.value) moveToId(s.value); } },
    el("option", { value: "", text: "Move to\u2026" }),
    ...state.boxes.filter((b) => b.id !== state.box.id).map((b) => el("option", { value: b.id, text: b.name })));
  return s;
}

async function setKeyword(kw, on, quiet = false) {
  const e = state.open;
  await api([["Email/set", { accountId: state.account, update: { [e.id]: { ["keywords/" + kw]: on ? true : null } } }, "s"]]);
  e.keywords[kw] = on || undefined;
  const listed = state.emails.get(e.id);
  if (listed) { if (on) listed.keywords[kw] = true; else delete listed.keywords[kw]; }
  if (!quiet) { renderList(); status(kw === "$seen" ? (on ? "Marked read" : "Marked unread") : "Done"); }
  await loadBoxes();
}

async function moveToId(boxId, extra = {}) {
  const e = state.open;
  await api([["Email/set", { accountId: state.account, update: { [e.id]: { mailboxIds: { [boxId]: true }, ...extra } } }, "s"]]);
  $("#reader").hidden = true;
  state.open = null;
  status("Moved to " + (state.boxes.find((b) => b.id === boxId) || {}).name);
  await loadBoxes();
  await loadList();
}

async function moveTo(role) {
  const b = boxByRole(role);
  if (b && state.open) await moveToId(b.id);
}

async function remove() {
  if (!state.open) return;
  if (state.box.role === "trash") {
    await api([["Email/set", { accountId: state.account, destroy: [state.open.id] }, "s"]]);
    $("#reader").hidden = true;
    status("Deleted");
    await loadBoxes();
    await loadList();
  } else await moveTo("trash");
}

async function junk() {
  if (state.box.role === "junk") {
    await moveToId(boxByRole("inbox").id, { "keywords/$junk": null, "keywords/$notjunk": true });
  } else {
    await moveToId(boxByRole("junk").id, { "keywords/$junk": true, "keywords/$notjunk": null });
  }
}

// --- writing -------------------------------------------------------------

function parseAddrs(s) {
  return s.split(/[,;]/).map((x) => x.trim()).filter(Boolean).map((x) => {
    const m = /^(.*?)\s*<([^>]+)>$/.exec(x);
    return m ? { name: m[1].replace(/^"|"$/g, "") || null, email: m[2] } : { name: null, email: x };
  });
}

function fmtAddrs(list) {
  return (list || []).map((a) => (a.name ? `${a.name} <${a.email}>` : a.email)).join(", ");
}

function compose(mode = "new") {
  const f = $("#composer");
  const e = state.open;
  f.reset();
  state.draftId = null;
  state.replyTo = null;
  state.attachments = [];
  if (e && mode !== "new") {
    const me = new Set(state.identities.map((i) => i.email.toLowerCase()));
    const text = (state.openText || "").replace(/\s+$/, "");
    const quoted = text.split("\n").map((l) => "> " + l).join("\n");
    if (mode === "forward") {
      f.subject.value = /^fwd?:/i.test(e.subject || "") ? e.subject : "Fwd: " + (e.subject || "");
      f.body.value = `\n\n---- Forwarded message ----\nFrom: ${fmtAddrs(e.from)}\nSubject: ${e.subject || ""}\n\n${text}`;
      state.attachments = (e.attachments || []).map((a) => ({ blobId: a.blobId, name: a.name, type: a.type, size: a.size }));
    } else {
      f.subject.value = /^re:/i.test(e.subject || "") ? e.subject : "Re: " + (e.subject || "");
      f.to.value = fmtAddrs(e.replyTo && e.replyTo.length ? e.replyTo : e.from);
      if (mode === "all") {
        const others = [...(e.to || []), ...(e.cc || [])].filter((a) => !me.has(a.email.toLowerCase()));
        f.cc.value = fmtAddrs(others);
      }
      f.body.value = `\n\nOn ${new Date(e.sentAt || e.receivedAt).toLocaleString()}, ${who(e.from)} wrote:\n${quoted}\n`;
      state.replyTo = { inReplyTo: e.messageId, references: [...(e.references || []), ...(e.messageId || [])] };
    }
  }
  $("#reader").hidden = true;
  $("#help").hidden = true;
  f.hidden = false;
  renderAttached();
  $("#draft-state").textContent = "";
  (mode === "new" || mode === "forward" ? f.to : f.body).focus();
  if (mode !== "new" && mode !== "forward") f.body.setSelectionRange(0, 0);
}

function draftObject() {
  const f = $("#composer");
  const ident = state.identities[0];
  const o = {
    mailboxIds: { [boxByRole("drafts").id]: true },
    keywords: { $draft: true, $seen: true },
    from: [{ name: ident.name || null, email: ident.email }],
    subject: f.subject.value,
    textBody: [{ partId: "t", type: "text/plain" }],
    bodyValues: { t: { value: f.body.value } },
  };
  for (const k of ["to", "cc", "bcc"]) { const a = parseAddrs(f[k].value); if (a.length) o[k] = a; }
  if (state.attachments.length)
    o.attachments = state.attachments.map((a) => ({ blobId: a.blobId, type: a.type || "application/octet-stream",
                                                    name: a.name, disposition: "attachment" }));
  if (state.replyTo && state.replyTo.inReplyTo) {
    o.inReplyTo = state.replyTo.inReplyTo;
    o.references = state.replyTo.references;
  }
  return o;
}

// Attachments: uploaded as they are chosen (RFC 8620 6.1), sent by blobId.
function renderAttached() {
  $("#attached").replaceChildren(...state.attachments.map((a, i) =>
    el("li", {}, a.name + " (" + Math.ceil((a.size || 0) / 1024) + " KB) ",
      el("button", { type: "button", text: "Remove", "aria-label": "Remove " + a.name,
                     onclick: () => { state.attachments.splice(i, 1); renderAttached(); saveDraft().catch(() => {}); } }))));
}

$("#attach").addEventListener("change", async (ev) => {
  const url = state.session.uploadUrl.replace("{accountId}", encodeURIComponent(state.account));
  for (const file of ev.target.files) {
    status("Uploading " + file.name + "\u2026");
    const r = await fetch(url, { method: "POST", credentials: "same-origin", body: file,
      headers: { "Content-Type": file.type || "application/octet-stream", "X-CSRF-Token": state.csrf } });
    if (!r.ok) { status("Not attached: " + file.name); continue; }
    const up = await r.json();
    state.attachments.push({ blobId: up.blobId, name: file.name, type: file.type, size: up.size });
  }
  ev.target.value = "";
  renderAttached();
  status("");
  saveDraft().catch((e) => status(e.message));
});

// Saves the draft: a new one in Drafts, the one before destroyed.
async function saveDraft() {
  clearTimeout(state.draftTimer);
  const args = { accountId: state.account, create: { d: draftObject() } };
  if (state.draftId) args.destroy = [state.draftId];
  const r = await api([["Email/set", args, "s"]]);
  const c = r[0][1].created && r[0][1].created.d;
  if (c) { state.draftId = c.id; $("#draft-state").textContent = "Draft saved " + new Date().toLocaleTimeString(); }
  return state.draftId;
}

$("#composer").addEventListener("input", (ev) => {
  if (ev.target.type === "file") return;         // saved once uploaded
  clearTimeout(state.draftTimer);
  state.draftTimer = setTimeout(() => saveDraft().catch((e) => status(e.message)), 2000);
});

$("#composer").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = $("#composer");
  if (!parseAddrs(f.to.value + "," + f.cc.value + "," + f.bcc.value).length) { status("Who is it for?"); return; }
  clearTimeout(state.draftTimer);
  const drafts = boxByRole("drafts").id, sent = boxByRole("sent").id;
  const args = { accountId: state.account, create: { d: draftObject() } };
  if (state.draftId) args.destroy = [state.draftId];
  try {
    const r = await api([
      ["Email/set", args, "0"],
      ["EmailSubmission/set", { accountId: state.account,
        create: { s: { identityId: state.identities[0].id, emailId: "#d" } },
        onSuccessUpdateEmail: { "#s": { ["mailboxIds/" + drafts]: null, ["mailboxIds/" + sent]: true,
                                         "keywords/$draft": null } } }, "1"],
    ], [CORE, MAIL, SUB]);
    const nc = r[1][1].notCreated;
    if (nc && nc.s) { status("Not sent: " + (nc.s.description || nc.s.type)); return; }
    if (state.open && state.replyTo) await setKeyword("$answered", true, true).catch(() => {});
    f.hidden = true;
    state.draftId = null;
    status("Sent");
    await loadBoxes();
    await loadList();
  } catch (e) { status("Not sent: " + e.message); }
});

$("#discard").addEventListener("click", async () => {
  clearTimeout(state.draftTimer);
  if (state.draftId) await api([["Email/set", { accountId: state.account, destroy: [state.draftId] }, "s"]]);
  state.draftId = null;
  $("#composer").hidden = true;
});

$("#compose").addEventListener("click", () => compose("new"));
$("#menu").addEventListener("click", () => $("#folders").classList.toggle("open"));

// --- live updates (EventSource; the cookie logs it in) -------------------

function listen() {
  if (state.events) state.events.close();
  const url = state.session.eventSourceUrl.replace("{types}", "*").replace("{closeafter}", "no").replace("{ping}", "60");
  state.events = new EventSource(url, { withCredentials: true });
  let pending = 0;
  state.events.addEventListener("state", () => {
    clearTimeout(pending);
    pending = setTimeout(async () => { await loadBoxes(); await loadList(); }, 100);
  });
}

// --- keyboard ------------------------------------------------------------

document.addEventListener("keydown", (ev) => {
  if (ev.target.closest("input, textarea, select") || ev.ctrlKey || ev.metaKey || ev.altKey || $("#app").hidden) return;
  const go = (d) => {
    if (!state.ids.length) return;
    state.current = Math.max(0, Math.min(state.ids.length - 1, state.current + d));
    renderList();
    openEmail(state.ids[state.current]);
  };
  const keys = {
    j: () => go(1), k: () => go(-1),
    Enter: () => go(0), c: () => compose("new"),
    r: () => state.open && compose("reply"), R: () => state.open && compose("all"),
    f: () => state.open && compose("forward"), a: () => moveTo("archive"), "#": () => remove(),
    "?": () => { $("#help").hidden = !$("#help").hidden; },
    "/": () => $("#search").q.focus(),
  };
  if (keys[ev.key]) { ev.preventDefault(); keys[ev.key](); }
});

// --- start: logged in already (the cookie), or the login form ------------

(async () => {
  const r = await fetch("/webmail/session", { credentials: "same-origin" });
  if (r.ok) await start(await r.json()); else showLogin();
})();
