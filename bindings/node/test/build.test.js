'use strict';
// What the addon links and exports: only the N-API entry points leave it; nghttp2, mbedTLS and jansson are
// inside it (neither imported nor exported), libuv is Node's, and the nghttp2 it runs is the one it was built with.
const test = require('node:test');
const assert = require('node:assert');
const path = require('path');
const { execFileSync } = require('child_process');
const apns = require('..');

const addon = path.resolve(__dirname, '..', 'build', 'Release', 'apns.node');

function dynsyms(flag) {
  return execFileSync('nm', ['-D', flag, addon], { encoding: 'utf8' }).split('\n').filter(Boolean)
    .map((l) => l.trim().split(/\s+/).pop().replace(/@.*/, ''));
}

test('the addon exports only the N-API entry points', () => {
  const exported = dynsyms('--defined-only').sort();
  assert.deepStrictEqual(exported, ['napi_register_module_v1', 'node_api_module_get_api_version_v1']);
});

test('nghttp2, mbedTLS, jansson and libapns are linked in, not imported; libuv and N-API are imported', () => {
  const undef = dynsyms('--undefined-only');
  const foreign = undef.filter((s) => /^(nghttp2_|mbedtls_|json_|jansson_|apns_)/.test(s));
  assert.deepStrictEqual(foreign, []);
  assert.ok(undef.includes('uv_tcp_connect'), 'libuv comes from the process');
  assert.ok(undef.includes('napi_make_callback'));
  const needed = execFileSync('readelf', ['-d', addon], { encoding: 'utf8' }).split('\n')
    .filter((l) => l.includes('(NEEDED)')).map((l) => l.replace(/.*\[(.*)\].*/, '$1'));
  for (const lib of needed) assert.doesNotMatch(lib, /uv|nghttp2|mbed|jansson|node/, `NEEDED ${lib}`);
});

test('the nghttp2 the addon calls is the one it was built with, not Node\'s', () => {
  const v = apns.versions();
  assert.strictEqual(v.nghttp2, v.nghttp2Built);
  if (process.versions.nghttp2 !== v.nghttp2Built) {
    // NodeSource's Node bundles its own nghttp2 (1.61 in Node 20): a binding to it would report that version.
    assert.notStrictEqual(v.nghttp2, process.versions.nghttp2);
  }
  assert.strictEqual(v.napi, 8);
});

test('libuv is the process\'s own', () => {
  const v = apns.versions();
  assert.strictEqual(v.uv, process.versions.uv);
  assert.strictEqual(v.uvBuilt.split('.')[0], process.versions.uv.split('.')[0]);
});
