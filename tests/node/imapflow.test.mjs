// SPDX-License-Identifier: ISC
// imapflow (a Node IMAP client: STARTTLS, ENABLE CONDSTORE/QRESYNC, IDLE)
// against a real ternd on loopback, started here with its own data_dir
// and stopped by its PID. What the client ends up believing about the
// folders must be what the Maildir files on disk say.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitPort, writeConfig } from './helpers.mjs';
import { ImapFlow } from 'imapflow';

const top = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const build = process.env.TERN_BUILDDIR || top;
const terndBin = path.join(build, 'mta', 'ternd');
const ternctlBin = path.join(build, 'mta', 'ternctl');

let dir, ternd, imapPort, smtpPort;
function client() {
  return new ImapFlow({
    host: '127.0.0.1', port: imapPort, secure: false,
    tls: { rejectUnauthorized: false },     // the self-signed certificate
    auth: { user: 'alice', pass: 'alice pw' },
    qresync: true, logger: false,
  });
}

// what the Maildir says: {uid: Set(flags)} from dovecot-uidlist + names
function diskFlags(folderDir) {
  const letters = { S: '\\Seen', R: '\\Answered', F: '\\Flagged', T: '\\Deleted', D: '\\Draft', P: '$Forwarded' };
  const byBase = {};
  for (const sub of ['cur', 'new']) {
    for (const name of fs.readdirSync(path.join(folderDir, sub))) {
      const [base, info] = name.split(':2,');
      byBase[base] = new Set([...(info || '')].filter(c => letters[c]).map(c => letters[c]));
    }
  }
  const out = {};
  const lines = fs.readFileSync(path.join(folderDir, 'dovecot-uidlist'), 'utf8').trim().split('\n').slice(1);
  for (const line of lines) {
    const uid = Number(line.split(' ')[0]);
    const base = line.slice(line.indexOf(':') + 1);
    if (byBase[base]) out[uid] = byBase[base];
  }
  return out;
}

async function clientFlags(c) {
  const out = {};
  for await (const m of c.fetch('1:*', { uid: true, flags: true })) {
    out[m.uid] = new Set([...m.flags].filter(f => f !== '\\Recent'));
  }
  return out;
}

function message(subject) {
  return `From: Node <node@localhost>\r\nTo: alice@localhost\r\nSubject: ${subject}\r\n\r\nSent by imapflow.\r\n`;
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-node.'));
  imapPort = freePort();
  smtpPort = freePort();
  const cfg = writeConfig(dir, smtpPort, 'imap', imapPort);
  execFileSync(ternctlBin, ['-c', cfg, 'passwd', 'alice'], { input: 'alice pw\n' });
  ternd = spawn(terndBin, ['-f', '-c', cfg], { stdio: ['ignore', fs.openSync(path.join(dir, 'ternd.log'), 'a'), 'inherit'] });
  await waitPort(imapPort);
});

after(() => {
  if (ternd && ternd.exitCode === null) ternd.kill('SIGTERM');
  return new Promise(resolve => {
    if (!ternd || ternd.exitCode !== null) { fs.rmSync(dir, { recursive: true, force: true }); resolve(); return; }
    ternd.once('exit', () => { fs.rmSync(dir, { recursive: true, force: true }); resolve(); });
  });
});

test('imapflow: QRESYNC, IDLE, flags, move and delete agree with the Maildir', async () => {
  const a = client();
  const b = client();
  await a.connect();
  await b.connect();
  assert.ok(a.capabilities.has('QRESYNC') && a.capabilities.has('CONDSTORE'));
  assert.ok(a.enabled.has('QRESYNC') || a.enabled.has('CONDSTORE'), [...a.enabled].join(' '));

  const box = await a.mailboxOpen('INBOX');
  assert.equal(box.exists, 0);
  const modseq0 = BigInt(box.highestModseq);

  // a waits in IDLE; b appends: a hears EXISTS
  const heard = new Promise(resolve => a.on('exists', d => { if (d.count >= 3) resolve(d); }));
  const idle = a.idle();
  const uids = [];
  for (const s of ['one', 'two', 'three']) {
    const r = await b.append('INBOX', message(s), ['\\Draft']);
    uids.push(r.uid);
  }
  const ev = await heard;
  assert.equal(ev.count, 3);
  // the next command ends the IDLE (imapflow sends DONE itself)
  idle.catch(() => {});

  // flags, by a, seen by b with CHANGEDSINCE
  await a.messageFlagsAdd({ uid: uids[0] }, ['\\Seen', '\\Flagged'], { uid: true });
  await a.messageFlagsRemove(`${uids[1]}`, ['\\Draft'], { uid: true });
  await b.mailboxOpen('INBOX');
  const changed = [];
  for await (const m of b.fetch('1:*', { uid: true, flags: true }, { changedSince: modseq0, uid: true })) {
    changed.push(m.uid);
  }
  assert.deepEqual(changed.sort(), [...uids].sort(), 'every message changed since modseq0');

  // move one to a folder, delete another
  await a.mailboxCreate('Archive/2026');
  const moved = await a.messageMove(`${uids[2]}`, 'Archive/2026', { uid: true });
  assert.ok(moved && moved.uidMap && moved.uidMap.size === 1);
  await a.messageDelete(`${uids[1]}`, { uid: true });

  // the client's view and the disk agree, in both folders
  const maildir = path.join(dir, 'var', 'mail', 'localhost', 'alice');
  assert.deepEqual(await clientFlags(a), diskFlags(maildir));
  await a.mailboxOpen('Archive/2026');
  assert.deepEqual(await clientFlags(a), diskFlags(path.join(maildir, '.Archive.2026')));
  const lst = (await a.list()).map(f => f.path).sort();
  assert.ok(lst.includes('Archive/2026') && lst.includes('INBOX') && lst.includes('Sent'), lst.join(','));

  await a.logout();
  await b.logout();
});
