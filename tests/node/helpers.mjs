// SPDX-License-Identifier: ISC
// What the Node tests share: loopback ports for a ternd of their own,
// an SMTP client, and waiting for a condition.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const usedPorts = new Set();

// A port below the ephemeral range, as the Python tests take them.
export function freePort() {
  for (;;) {
    const p = 20000 + Math.floor(Math.random() * 12000);
    if (!usedPorts.has(p)) { usedPorts.add(p); return p; }
  }
}

// Resolves once something listens on 127.0.0.1:port.
export function waitPort(port, ms = 10000) {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tryOnce = () => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(); });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error('ternd did not start'));
        else setTimeout(tryOnce, 50);
      });
    };
    tryOnce();
  });
}

// One SMTP transaction over a plain socket (what a peer MTA would send).
export function smtpTo(port, from, to, text) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const steps = [`EHLO node.test`, `MAIL FROM:<${from}>`, `RCPT TO:<${to}>`, 'DATA',
      text.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..') + '\r\n.', 'QUIT'];
    let buf = '', i = 0;
    s.setEncoding('utf8');
    s.on('data', (d) => {
      buf += d;
      let m;
      while ((m = /^(\d{3})([ -]).*\r\n/m.exec(buf))) {
        buf = buf.slice(m.index + m[0].length);
        if (m[2] === '-') continue;
        if (m[1][0] === '4' || m[1][0] === '5') { s.destroy(); reject(new Error('SMTP ' + m[0])); return; }
        if (i < steps.length) s.write(steps[i++] + '\r\n');
        else { s.end(); resolve(); return; }
      }
    });
    s.on('error', reject);
  });
}

// Polls cond (bounded: ms) until it holds.
export async function until(cond, what, ms = 15000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail('timed out waiting for ' + what);
}

// A ternd configuration in dir: an mx listener on smtpPort and one of
// role on port, the local domain localhost, no DNS. Its path.
export function writeConfig(dir, smtpPort, role, port) {
  const cfg = path.join(dir, 'tern.lua');
  fs.writeFileSync(cfg,
    `hostname = "mx.test"\ndata_dir = "${dir}/var"\n` +
    `listen = {\n  { addr = "127.0.0.1:${smtpPort}", role = "mx" },\n` +
    `  { addr = "127.0.0.1:${port}", role = "${role}" },\n}\n` +
    'domains = { "localhost" }\nresolver = "127.0.0.1:1"\n');
  return cfg;
}
