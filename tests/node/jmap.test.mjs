// SPDX-License-Identifier: ISC
// A JMAP client library against a real ternd: jmap-jam (npm), logged in
// with an app password from `ternctl token add` (a bearer token), for
// the methods a mail client uses: session, Mailbox/get|query|changes|set,
// Email/query|get|set|changes|queryChanges|import|parse, Thread/get, SearchSnippet,
// uploads and downloads, Identity/get, EmailSubmission/set|get; raw fetch
// for what a library never sends (malformed requests); and push with the
// eventsource package: a message sent by SMTP shows up as a StateChange.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import JamClient from 'jmap-jam';
import { EventSource } from 'eventsource';
import { freePort, waitPort, smtpTo, until, writeConfig } from './helpers.mjs';

const top = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const build = process.env.TERN_BUILDDIR || top;
const terndBin = path.join(build, 'mta', 'ternd');
const ternctlBin = path.join(build, 'mta', 'ternctl');

let dir, ternd, smtpPort, httpPort, token, base;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-jam.'));
  smtpPort = freePort();
  httpPort = freePort();
  base = `http://127.0.0.1:${httpPort}`;
  const cfg = writeConfig(dir, smtpPort, 'http', httpPort);
  execFileSync(ternctlBin, ['-c', cfg, 'passwd', 'alice'], { input: 'alice pw\n' });
  token = execFileSync(ternctlBin, ['-c', cfg, 'token', 'add', 'alice', 'jam'],
    { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split('\n')[0];
  ternd = spawn(terndBin, ['-f', '-c', cfg], { stdio: ['ignore', fs.openSync(path.join(dir, 'ternd.log'), 'a'), 'inherit'] });
  await waitPort(httpPort);
});

after(async () => {
  if (ternd && ternd.exitCode === null) ternd.kill('SIGTERM');
  await new Promise((resolve) => {
    if (!ternd || ternd.exitCode !== null) resolve();
    else ternd.once('exit', resolve);
  });
  fs.rmSync(dir, { recursive: true, force: true });
});

const SUB = 'urn:ietf:params:jmap:submission';

test('jmap-jam: read, search, thread, write, upload, import, send', async () => {
  const jam = new JamClient({ sessionUrl: `${base}/.well-known/jmap`, bearerToken: token });
  const session = await jam.session;
  assert.equal(session.username, 'alice');
  assert.ok(session.capabilities['urn:ietf:params:jmap:mail']);
  const accountId = await jam.getPrimaryAccount();

  await smtpTo(smtpPort, 'carol@example.org', 'alice@localhost',
    'From: Carol <carol@example.org>\nTo: alice@localhost\nSubject: Quarterly numbers\n' +
    'Message-ID: <q1@example.org>\n\nThe quokka figures are attached in spirit.\n');
  await smtpTo(smtpPort, 'dave@example.org', 'alice@localhost',
    'From: Dave <dave@example.org>\nTo: alice@localhost\nSubject: Re: Quarterly numbers\n' +
    'Message-ID: <q2@example.org>\nIn-Reply-To: <q1@example.org>\nReferences: <q1@example.org>\n\nLooks good.\n');

  const [boxes] = await jam.api.Mailbox.get({ accountId });
  const inbox = boxes.list.find((b) => b.role === 'inbox');
  const [mq] = await jam.api.Mailbox.query({ accountId, filter: { role: 'inbox' } });
  assert.deepEqual(mq.ids, [inbox.id]);
  await until(async () => (await jam.api.Email.query({ accountId, filter: { inMailbox: inbox.id } }))[0].ids.length === 2,
    'two messages');
  const [state0] = await jam.api.Email.get({ accountId, ids: [] });

  // a query, and the Emails by a result reference, in one request
  const [r] = await jam.requestMany((t) => {
    const q = t.Email.query({ accountId, filter: { inMailbox: inbox.id }, sort: [{ property: 'receivedAt', isAscending: true }] });
    const g = t.Email.get({ accountId, ids: q.$ref('/ids'), properties: ['subject', 'from', 'threadId', 'preview'] });
    return { q, g };
  });
  assert.equal(r.g.list.length, 2);
  // the two may be delivered in either order: told by their subjects
  const first = r.g.list.find((e) => e.subject === 'Quarterly numbers');
  const reply = r.g.list.find((e) => e.subject === 'Re: Quarterly numbers');
  assert.equal(first.threadId, reply.threadId);
  const [threads] = await jam.api.Thread.get({ accountId, ids: [first.threadId] });
  assert.deepEqual(new Set(threads.list[0].emailIds), new Set([first.id, reply.id]));
  assert.deepEqual(threads.list[0].emailIds, r.g.list.map((e) => e.id));   // oldest first, as the query

  // search and its snippets
  const [found] = await jam.api.Email.query({ accountId, filter: { text: 'quokka' } });
  assert.deepEqual(found.ids, [first.id]);
  const [snip] = await jam.api.SearchSnippet.get({ accountId, filter: { text: 'quokka' }, emailIds: found.ids });
  assert.match(snip.list[0].preview, /<mark>quokka<\/mark>/);

  // keywords and a move; the changes since say so
  const [inq] = await jam.api.Email.query({ accountId, filter: { inMailbox: inbox.id } });
  assert.equal(inq.canCalculateChanges, true);
  const archive = boxes.list.find((b) => b.role === 'archive');
  const [set] = await jam.api.Email.set({ accountId, update: {
    [first.id]: { 'keywords/$seen': true, mailboxIds: { [archive.id]: true } } } });
  assert.ok(first.id in set.updated);
  const [ch] = await jam.api.Email.changes({ accountId, sinceState: state0.state });
  assert.deepEqual(ch.updated, [first.id]);
  assert.deepEqual(ch.created, []);
  // the INBOX query's cached ids brought up to date: the moved one left
  const [qch] = await jam.api.Email.queryChanges({ accountId, filter: { inMailbox: inbox.id },
    sinceQueryState: inq.queryState });
  assert.ok(qch.removed.includes(first.id));
  assert.deepEqual(qch.added, []);
  const [mch] = await jam.api.Mailbox.changes({ accountId, sinceState: boxes.state });
  assert.ok(mch.updated.includes(inbox.id) && mch.updated.includes(archive.id));

  // an upload, imported as a message, parsed, downloaded
  const raw = 'From: Old <old@example.org>\r\nTo: alice@localhost\r\nSubject: From the old server\r\n' +
    'Message-ID: <old@example.org>\r\n\r\nKept.\r\n';
  const up = await jam.uploadBlob(accountId, new Blob([raw], { type: 'message/rfc822' }));
  assert.match(up.blobId, /^U[0-9a-f]{32}$/);
  const [imp] = await jam.request(['Email/import', { accountId, emails: {
    i: { blobId: up.blobId, mailboxIds: { [inbox.id]: true }, keywords: { $seen: true } } } }]);
  assert.ok(imp.created.i.id);
  const [parsed] = await jam.request(['Email/parse', { accountId, blobIds: [up.blobId] }]);
  assert.equal(parsed.parsed[up.blobId].subject, 'From the old server');
  const dl = await jam.downloadBlob({ accountId, blobId: up.blobId, mimeType: 'message/rfc822', fileName: 'old.eml' });
  assert.equal(await dl.text(), raw);

  // send: a draft, submitted, moved to Sent; the record is there after
  const drafts = boxes.list.find((b) => b.role === 'drafts');
  const sent = boxes.list.find((b) => b.role === 'sent');
  const [ids] = await jam.api.Identity.get({ accountId });
  const [made] = await jam.api.Email.set({ accountId, create: { d: {
    mailboxIds: { [drafts.id]: true }, from: [{ email: 'alice@localhost' }],
    to: [{ email: 'carol@example.org' }], subject: 'Re: Quarterly numbers',
    textBody: [{ partId: 't', type: 'text/plain' }], bodyValues: { t: { value: 'Thanks!\n' } } } } });
  // request(), not requestMany(): the implicit Email/set of
  // onSuccessUpdateEmail answers under the same call id (RFC 8621 7.5),
  // which requestMany's map by id would keep instead
  const [out] = await jam.request(['EmailSubmission/set', { accountId,
    create: { s: { identityId: ids.list[0].id, emailId: made.created.d.id } },
    onSuccessUpdateEmail: { '#s': { [`mailboxIds/${drafts.id}`]: null, [`mailboxIds/${sent.id}`]: true } } }],
  { using: [SUB] });
  const subId = out.created.s.id;
  const [subs] = await jam.request(['EmailSubmission/get', { accountId, ids: [subId] }], { using: [SUB] });
  assert.equal(subs.list[0].undoStatus, 'final');
  const [inSent] = await jam.api.Email.query({ accountId, filter: { inMailbox: sent.id } });
  assert.equal(inSent.ids.length, 1);
});

test('raw fetch: what a library never sends is refused, with problem details', async () => {
  const auth = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  for (const [body, type] of [
    ['{', 'urn:ietf:params:jmap:error:notJSON'],
    ['{"using":[],"methodCalls":[],"using":[]}', 'urn:ietf:params:jmap:error:notJSON'],
    ['[1,2]', 'urn:ietf:params:jmap:error:notRequest'],
    ['{"using":["urn:x"],"methodCalls":[]}', 'urn:ietf:params:jmap:error:unknownCapability'],
  ]) {
    const r = await fetch(`${base}/jmap/api/`, { method: 'POST', headers: auth, body });
    assert.equal(r.status, 400, body);
    assert.equal((await r.json()).type, type, body);
  }
  const bad = await fetch(`${base}/.well-known/jmap`, { headers: { Authorization: 'Bearer tern_nope' } });
  assert.equal(bad.status, 401);
  assert.match(bad.headers.get('www-authenticate'), /Bearer/);
});

test('eventsource: a message sent by SMTP is a StateChange', async () => {
  const url = `${base}/jmap/eventsource/?types=Email,Mailbox&closeafter=no&ping=0`;
  const es = new EventSource(url, {
    fetch: (u, init) => fetch(u, { ...init, headers: { ...init.headers, Authorization: `Bearer ${token}` } }),
  });
  const events = [];
  es.addEventListener('state', (ev) => events.push(JSON.parse(ev.data)));
  try {
    await until(() => events.length >= 1, 'the first state');
    assert.equal(events[0]['@type'], 'StateChange');
    const before = Object.values(events[0].changed)[0].Email;
    await smtpTo(smtpPort, 'erin@example.org', 'alice@localhost',
      'From: erin@example.org\nTo: alice@localhost\nSubject: push\n\nnew\n');
    await until(() => events.some((e) => {
      const c = Object.values(e.changed)[0];
      return c.Email && c.Email !== before;
    }), 'a StateChange for the new message');
  } finally {
    es.close();
  }
});
