// SPDX-License-Identifier: ISC
// The webmail in a real browser: Debian's Chromium, headless, driven by
// playwright-core, against a real ternd on loopback (started here, with
// its own data_dir, stopped by its PID). Log in, read a message that came
// by SMTP, answer it and see the answer land in the sender's Maildir,
// open an HTML mail whose script and remote image must not run or load
// (a loopback server counts what reaches it), archive and delete.
// Screenshots go to $TERN_BUILDDIR/artifacts/webmail/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitPort, smtpTo, until, writeConfig } from './helpers.mjs';
import { chromium } from 'playwright-core';

const top = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const build = process.env.TERN_BUILDDIR || top;
const terndBin = path.join(build, 'mta', 'ternd');
const ternctlBin = path.join(build, 'mta', 'ternctl');
const shots = path.join(build, 'artifacts', 'webmail');
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';

let dir, ternd, smtpPort, httpPort, trap, trapHits = [], browser;
const smtpSend = (from, to, text) => smtpTo(smtpPort, from, to, text);

function newMail(user) {
  const d = path.join(dir, 'var', 'mail', 'localhost', user, 'new');
  return fs.existsSync(d) ? fs.readdirSync(d).map((f) => fs.readFileSync(path.join(d, f), 'utf8')) : [];
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-web.'));
  fs.mkdirSync(shots, { recursive: true });
  smtpPort = freePort();
  httpPort = freePort();
  const cfg = writeConfig(dir, smtpPort, 'http', httpPort);
  for (const [u, p] of [['alice', 'alice pw'], ['bob', 'bob pw']])
    execFileSync(ternctlBin, ['-c', cfg, 'passwd', u], { input: p + '\n' });
  ternd = spawn(terndBin, ['-f', '-c', cfg], { stdio: ['ignore', fs.openSync(path.join(dir, 'ternd.log'), 'a'), 'inherit'] });
  // what a mail's script or remote image would reach
  trap = http.createServer((req, res) => { trapHits.push(req.url); res.end('x'); });
  await new Promise((r) => trap.listen(0, '127.0.0.1', r));
  await waitPort(httpPort);
  browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  if (trap) trap.close();
  if (ternd && ternd.exitCode === null) ternd.kill('SIGTERM');
  await new Promise((resolve) => {
    if (!ternd || ternd.exitCode !== null) resolve();
    else ternd.once('exit', resolve);
  });
  fs.rmSync(dir, { recursive: true, force: true });
});

test('webmail: log in, read, reply (delivered by SMTP), safe HTML, archive, delete', async () => {
  await smtpSend('bob@localhost', 'alice@localhost',
    'From: Bob <bob@localhost>\nTo: Alice <alice@localhost>\nSubject: Lunch?\n' +
    'Message-ID: <lunch@localhost>\n\nNoon at the usual place?\nSee https://example.org/menu\n> an old quote\n');
  const trapUrl = `http://127.0.0.1:${trap.address().port}`;
  await smtpSend('eve@example.org', 'alice@localhost',
    'From: Eve <eve@example.org>\nTo: alice@localhost\nSubject: Shiny offer\nMIME-Version: 1.0\n' +
    'Content-Type: text/html; charset=utf-8\n\n' +
    `<html><body><p id="p">Hello from HTML</p><img src="${trapUrl}/pixel.png">` +
    `<script>fetch("${trapUrl}/script");document.getElementById("p").textContent="SCRIPT RAN"</script>` +
    '</body></html>\n');

  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await ctx.newPage();
  // what the browser fetched (a request CSP blocks fails, it is not sent)
  const fetched = [];
  page.on('requestfinished', (r) => fetched.push(r.url()));
  const failed = [];
  page.on('requestfailed', (r) => failed.push(r.url() + ' ' + r.failure().errorText));
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`http://127.0.0.1:${httpPort}/`);
  await page.fill('input[name=username]', 'alice');
  await page.fill('input[name=password]', 'wrong');
  await page.click('#login-form button');
  await page.waitForFunction(() => document.querySelector('#login-error').textContent !== '');
  await page.fill('input[name=password]', 'alice pw');
  await page.click('#login-form button');
  await page.waitForSelector('#messages li');
  await until(async () => (await page.locator('#messages li').count()) === 2, 'two messages');
  const cookies = await page.context().cookies();
  const sess = cookies.find((c) => c.name === 'tern_session');
  assert.ok(sess && sess.httpOnly && sess.sameSite === 'Strict');
  assert.equal(await page.locator('#folders a.current').innerText().then((t) => t.split('\n')[0]), 'Inbox');
  await page.screenshot({ path: path.join(shots, '1-inbox.png') });

  // read Bob's message: text, a link, a quote
  await page.click('#messages li:has-text("Lunch?")');
  await page.waitForSelector('#reader h2:has-text("Lunch?")');
  assert.match(await page.locator('#reader .text').innerText(), /Noon at the usual place\?/);
  assert.equal(await page.locator('#reader .text a').getAttribute('href'), 'https://example.org/menu');
  assert.equal(await page.locator('#reader blockquote').count(), 1);
  await page.screenshot({ path: path.join(shots, '2-read.png') });

  // answer it; the answer goes through the queue into Bob's Maildir
  await page.keyboard.press('r');
  await page.waitForSelector('#composer:not([hidden])');
  assert.equal(await page.inputValue('#composer input[name=to]'), 'Bob <bob@localhost>');
  assert.equal(await page.inputValue('#composer input[name=subject]'), 'Re: Lunch?');
  await page.locator('#composer textarea').press('Control+Home');
  await page.locator('#composer textarea').type('Yes, see you there.');
  await page.screenshot({ path: path.join(shots, '3-reply.png') });
  await page.click('#composer button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#status').textContent === 'Sent');
  await until(() => newMail('bob').some((m) => m.includes('Subject: Re: Lunch?')), 'the reply in bob\'s Maildir');
  const reply = newMail('bob').find((m) => m.includes('Subject: Re: Lunch?'));
  assert.match(reply, /^In-Reply-To: <lunch@localhost>/m);
  assert.match(reply, /^From: alice@localhost/m);
  assert.match(reply, /Yes, see you there\./);
  assert.match(reply, /^> Noon at the usual place\?/m);

  // the HTML mail: shown, but its script does not run, its image does not load
  await page.click('#messages li:has-text("Shiny offer")');
  const frame = page.frameLocator('#reader iframe');
  await frame.locator('#p').waitFor();
  assert.equal(await frame.locator('#p').innerText(), 'Hello from HTML');
  await page.screenshot({ path: path.join(shots, '4-html-blocked.png') });
  assert.deepEqual(trapHits, [], 'nothing reached the remote server');
  assert.ok(!fetched.some((u) => u.startsWith(trapUrl)), 'the browser fetched nothing remote');
  assert.ok(failed.some((f) => f.startsWith(trapUrl + '/pixel.png')), 'the image was blocked');

  // archive it: gone from the Inbox, there in Archive
  await page.click('#reader button:has-text("Archive")');
  await until(async () => (await page.locator('#messages li').count()) === 1, 'the inbox without it');
  await page.click('#folders a:has-text("Archive")');
  await page.waitForSelector('#messages li:has-text("Shiny offer")');
  // delete it: into Trash
  await page.click('#messages li:has-text("Shiny offer")');
  await page.waitForSelector('#reader h2:has-text("Shiny offer")');
  await page.keyboard.press('#');
  await until(async () => (await page.locator('#messages li').count()) === 0, 'archive empty');
  await page.click('#folders a:has-text("Trash")');
  await page.waitForSelector('#messages li:has-text("Shiny offer")');
  // the answered message was marked so
  await page.click('#folders a:has-text("Sent")');
  await page.waitForSelector('#messages li:has-text("Re: Lunch?")');
  await page.screenshot({ path: path.join(shots, '5-sent.png') });

  // search: from: and a word, matches marked; Trash is not searched
  await page.keyboard.press('/');
  await page.keyboard.type('from:bob lunch');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#listname:has-text("Search results")');
  await until(async () => (await page.locator('#messages li').count()) === 1, 'one hit');
  assert.equal(await page.locator('#messages li mark').first().innerText(), 'Lunch');
  await page.screenshot({ path: path.join(shots, '7-search.png') });
  await page.fill('#search input', 'subject:offer');
  await page.press('#search input', 'Enter');
  await until(async () => (await page.locator('#messages li').count()) === 0, 'nothing outside Trash');
  await page.click('#clear-search');
  await page.waitForSelector('#listname:has-text("Sent")');

  // conversations: the Inbox's message and the reply in Sent are one
  await page.click('#folders a:has-text("Inbox")');
  await page.check('#threads');
  await page.waitForSelector('#messages li .thread-count:has-text("2")');
  await page.click('#messages li:has-text("Lunch?")');
  await until(async () => (await page.locator('#reader .conversation li').count()) === 2, 'two in the conversation');
  await page.screenshot({ path: path.join(shots, '8-conversation.png') });
  await page.uncheck('#threads');

  // a folder of one's own: made, renamed, deleted (the dialogs answered)
  page.once('dialog', (d) => d.accept('Receipts'));
  await page.click('.folder-tools button:has-text("New folder")');
  await page.waitForSelector('#folders a.current:has-text("Receipts")');
  page.once('dialog', (d) => d.accept('Bills'));
  await page.click('#rename-folder');
  await page.waitForSelector('#folders a:has-text("Bills")');
  assert.ok(fs.existsSync(path.join(dir, 'var', 'mail', 'localhost', 'alice', '.Bills', 'cur')));
  page.once('dialog', (d) => d.accept());
  await page.click('#delete-folder');
  await page.waitForSelector('#folders a.current:has-text("Inbox")');
  assert.equal(await page.locator('#folders a:has-text("Bills")').count(), 0);

  // a new message with a file attached: uploaded, sent, delivered with it
  await page.keyboard.press('c');
  await page.fill('#composer input[name=to]', 'bob@localhost');
  await page.fill('#composer input[name=subject]', 'The plan');
  await page.fill('#composer textarea', 'Attached.');
  await page.setInputFiles('#attach', { name: 'plan.txt', mimeType: 'text/plain',
                                         buffer: Buffer.from('step one\nstep two\n') });
  await page.waitForSelector('#attached li:has-text("plan.txt")');
  await page.screenshot({ path: path.join(shots, '9-attach.png') });
  await page.click('#composer button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#status').textContent === 'Sent');
  await until(() => newMail('bob').some((m) => m.includes('Subject: The plan')), 'the plan in bob\'s Maildir');
  const plan = newMail('bob').find((m) => m.includes('Subject: The plan'));
  assert.match(plan, /filename="?plan\.txt"?/);
  assert.match(plan, new RegExp(Buffer.from('step one\nstep two\n').toString('base64').slice(0, 16)));

  // at 360 px, in the dark
  const small = await ctx.newPage();                 // the same cookie jar
  await small.setViewportSize({ width: 360, height: 740 });
  await small.emulateMedia({ colorScheme: 'dark' });
  await small.goto(`http://127.0.0.1:${httpPort}/`);     // still logged in
  await small.waitForSelector('#messages li');
  const bg = await small.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.notEqual(bg, 'rgb(255, 255, 255)');
  const width = await small.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 360, 'no sideways scrolling at 360 px: ' + width);
  await small.screenshot({ path: path.join(shots, '6-phone-dark.png') });
  assert.deepEqual(errors, []);
});
