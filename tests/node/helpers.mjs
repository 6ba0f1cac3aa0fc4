// SPDX-License-Identifier: ISC
// What the Node tests share: loopback ports for a ternd of their own.
import net from 'node:net';

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
