'use strict';
// `npm install` runs this: node-gyp rebuild against the headers of the Node that runs it, never downloaded.
// Node's headers are looked for at <prefix>/include/node (NodeSource and nodejs.org builds, and Debian's
// libnode-dev, all put node_api.h, uv.h and common.gypi there); APNS_NODEDIR or npm's --nodedir override it.
// node-gyp comes from this package's devDependencies, or the copy npm ships with itself.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

function nodedir() {
  const given = process.env.APNS_NODEDIR || process.env.npm_config_nodedir;
  const candidates = given ? [given] : [];
  let exe = process.execPath;
  try { exe = fs.realpathSync(exe); } catch { /* keep it */ }
  candidates.push(path.resolve(path.dirname(exe), '..'), path.resolve(path.dirname(process.execPath), '..'), '/usr',
    '/usr/local');
  for (const d of candidates) {
    const inc = path.join(d, 'include', 'node');
    if (!fs.existsSync(path.join(inc, 'node_api.h')) || !fs.existsSync(path.join(inc, 'common.gypi'))) continue;
    // A Node that bundles libuv ships its uv.h beside node_api.h; Debian's, which runs the system's libuv, relies
    // on libuv1-dev's /usr/include/uv.h. Either way the header is that of the libuv the process runs.
    if (!fs.existsSync(path.join(inc, 'uv.h')) && !fs.existsSync('/usr/include/uv.h')) {
      console.error(`libapns addon: ${inc} has no uv.h and neither has /usr/include (Debian: apt-get install libuv1-dev)`);
      process.exit(1);
    }
    return d;
  }
  console.error(`libapns addon: Node's headers (include/node/node_api.h, common.gypi) not found under ` +
    `${candidates.join(', ')}. Debian's nodejs: apt-get install libnode-dev; or set APNS_NODEDIR.`);
  process.exit(1);
}

function nodeGyp() {
  const tries = [];
  try { tries.push(require.resolve('node-gyp/bin/node-gyp.js', { paths: [path.resolve(__dirname, '..')] })); } catch { /* none */ }
  if (process.env.npm_config_node_gyp) tries.push(process.env.npm_config_node_gyp);
  const npmDir = path.resolve(path.dirname(fs.realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm');
  tries.push(path.join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    '/usr/share/nodejs/node-gyp/bin/node-gyp.js', '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
  const found = tries.find((f) => fs.existsSync(f));
  if (!found) {
    console.error(`libapns addon: node-gyp not found (tried ${tries.join(', ')}); npm install node-gyp`);
    process.exit(1);
  }
  return found;
}

const dir = nodedir();
const gyp = nodeGyp();
const args = [gyp, 'rebuild', `--nodedir=${dir}`, '--jobs=2'];
if (process.env.APNS_DEBUG) args.push('--debug');
console.error(`libapns addon: ${path.basename(process.execPath)} ${process.version}, headers ${dir}/include/node, ${gyp}`);
const r = spawnSync(process.execPath, args, { cwd: path.resolve(__dirname, '..'), stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
