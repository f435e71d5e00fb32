'use strict';
// Prints, for binding.gyp, either the libapns sources (`sources`) or the static archives the addon links
// (`libs`): nghttp2, mbedTLS (tls, x509, crypto) and jansson, found where pkg-config or the multiarch libdir
// says. Override the directory with APNS_STATIC_LIBDIR. Fails loudly rather than letting the linker pick a
// shared library (which would bind the addon to whatever nghttp2 the process already has: Node's own).
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const root = path.resolve(__dirname, '..', '..', '..');

function sources() {
  const dir = path.join(root, 'lib');
  return fs.readdirSync(dir).filter((f) => f.endsWith('.c')).sort()
    .map((f) => path.relative(path.resolve(__dirname, '..'), path.join(dir, f)));
}

function tryRun(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

function libs() {
  const dirs = [];
  if (process.env.APNS_STATIC_LIBDIR) dirs.push(process.env.APNS_STATIC_LIBDIR);
  for (const pc of ['libnghttp2', 'jansson', 'mbedtls']) {
    const d = tryRun('pkg-config', ['--variable=libdir', pc]);
    if (d) dirs.push(d);
  }
  const multiarch = tryRun('cc', ['-print-multiarch']);
  if (multiarch) dirs.push(`/usr/lib/${multiarch}`);
  dirs.push('/usr/lib', '/usr/local/lib', '/usr/lib64');
  const names = ['nghttp2', 'mbedtls', 'mbedx509', 'mbedcrypto', 'jansson'];
  return names.map((n) => {
    for (const d of dirs) {
      const f = path.join(d, `lib${n}.a`);
      if (fs.existsSync(f)) return f;
    }
    process.stderr.write(`libapns addon: lib${n}.a not found in ${dirs.join(', ')} ` +
      '(Debian: apt-get install libnghttp2-dev libmbedtls-dev libjansson-dev; or set APNS_STATIC_LIBDIR)\n');
    process.exit(1);
  });
}

const what = process.argv[2];
const out = what === 'sources' ? sources() : what === 'libs' ? libs() : null;
if (!out) {
  process.stderr.write('usage: static-libs.js sources|libs\n');
  process.exit(2);
}
process.stdout.write(out.join('\n') + '\n');
