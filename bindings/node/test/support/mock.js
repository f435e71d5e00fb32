'use strict';
// Starts apns-mock (built by build-mock.js, or APNS_MOCK) on 127.0.0.1 with a port the kernel picks and
// throwaway certificates (--self-signed), and stops it. Waits on the mock's own output, never on time.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const MOCK = process.env.APNS_MOCK ||
  path.resolve(__dirname, '..', '..', 'build-mock', 'tools', 'apns-mock', 'apns-mock');

async function startMock(args = []) {
  if (!fs.existsSync(MOCK)) throw new Error(`apns-mock not built at ${MOCK} (npm test builds it; or set APNS_MOCK)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apns-node-'));
  const proc = spawn(MOCK, ['--listen', '127.0.0.1:0', '--self-signed', dir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve({ code, sig })));
  const port = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(Number(out.slice(0, nl)));
    });
    proc.on('exit', (code) => reject(new Error(`apns-mock exited (${code}) before listening: ${stderr}`)));
  });
  const files = {
    ca: path.join(dir, 'ca.pem'),
    cert: path.join(dir, 'client.pem'),
    key: path.join(dir, 'client-key.pem'),
    tokenKey: path.join(dir, 'token-key.p8'),
  };
  return {
    port, dir, proc, ...files,
    stderr: () => stderr,
    // Client options for certificate auth against this mock.
    certOptions(extra = {}) {
      return { host: '127.0.0.1', port, ca: files.ca, cert: files.cert, key: files.key, topic: 'com.example.app',
        servername: 'localhost', ...extra };
    },
    tokenOptions(extra = {}) {
      return { host: '127.0.0.1', port, ca: files.ca, tokenKey: files.tokenKey, keyId: 'ABC123DEFG',
        teamId: 'DEF123GHIJ', topic: 'com.example.app', servername: 'localhost', ...extra };
    },
    signal(sig) { proc.kill(sig); },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const r = await exited;
      fs.rmSync(dir, { recursive: true, force: true });
      return r;
    },
  };
}

// A 64-hex-character device token from a number.
function token(i) {
  return (i >>> 0).toString(16).padStart(8, '0').repeat(8);
}

module.exports = { startMock, token, MOCK };
