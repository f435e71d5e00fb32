'use strict';
// `npm test` runs this first: builds apns-mock from this repository with meson into build-mock/ (only the
// tools), unless APNS_MOCK names a binary already built. The tests then start it on 127.0.0.1.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

if (process.env.APNS_MOCK) {
  if (!fs.existsSync(process.env.APNS_MOCK)) {
    console.error(`APNS_MOCK=${process.env.APNS_MOCK}: no such file`);
    process.exit(1);
  }
  process.exit(0);
}
const pkg = path.resolve(__dirname, '..', '..');
const root = path.resolve(pkg, '..', '..');
const build = path.join(pkg, 'build-mock');
function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    console.error(`${cmd} ${args.join(' ')}: failed${r.error ? ` (${r.error.message})` : ''}`);
    process.exit(1);
  }
}
if (!fs.existsSync(path.join(build, 'build.ninja'))) {
  run('meson', ['setup', build, root, '-Dtests=false', '-Dbench=false', '-Dexamples=false', '--buildtype=release']);
}
run('ninja', ['-C', build, 'tools/apns-mock/apns-mock']);
