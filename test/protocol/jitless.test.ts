/**
 * The supervisor verifies statements under `node --jitless`, where loading
 * libsodium-wrappers crashes the process. Two proofs that the verifier path
 * never loads it: a walk of the compiled import graph, and a real --jitless
 * child whose module resolver refuses any libsodium URL. Each has a control
 * showing it does catch libsodium where it is imported.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createIncarnationKey, signStatement } from '../../dist/protocol/incarnation-key.js';
import { encodePublicKeyFile } from '../../dist/protocol/index.js';
import { workDir } from '../support/tmp.js';
import { INCARNATION, SESSION, statementBodies } from './support.js';

const dist = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/protocol');
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g;

/** Every bare (package) specifier reachable from a compiled file through relative imports, and the files walked. */
function importGraph(entry: string): { packages: Set<string>; files: Set<string> } {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      if (spec!.startsWith('.')) visit(resolve(dirname(file), spec!));
      else packages.add(spec!);
    }
  };
  visit(join(dist, entry));
  return { packages, files: seen };
}

describe('the supervisor path never loads libsodium', () => {
  it.each(['statement-verifier.js', 'index.js', 'public-key-file.js', 'statement-sequence.js', 'helper-messages.js', 'supervisor-requests.js'])(
    '%s: its compiled import graph reaches node: built-ins only',
    (entry) => {
      const { packages, files } = importGraph(entry);
      expect([...packages].filter((p) => !p.startsWith('node:'))).toEqual([]);
      expect(files).toContain(join(dist, 'errors.js')); // the walk does follow imports
    },
  );

  it('control: the walk finds libsodium where it is imported', () => {
    expect([...importGraph('incarnation-key.js').packages]).toContain('libsodium-wrappers');
  });

  const tmp = workDir('protocol-jitless');
  afterAll(() => tmp.remove());
  const hooks = join(tmp.path, 'hooks.mjs');
  const register = join(tmp.path, 'register.mjs');
  writeFileSync(hooks, `export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (result.url.includes('libsodium')) throw new Error('FORBIDDEN ' + result.url);
  return result;
}\n`);
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);

  /** Runs an ESM script under --jitless with the libsodium-refusing resolver; env carries the test data. */
  function jitless(script: string, env: Record<string, string>) {
    return spawnSync(process.execPath, ['--jitless', '--import', pathToFileURL(register).href, '--input-type=module', '-e', script], {
      env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000,
    });
  }

  it('a --jitless child verifies a libsodium-made signature with the node:crypto verifier, reading the public key file', async () => {
    const key = await createIncarnationKey(INCARNATION);
    const body = statementBodies()[1]!; // granted
    const signed = signStatement(key, body);
    const script = `
      import { parsePublicKeyFile, verifyStatement } from ${JSON.stringify(pathToFileURL(join(dist, 'index.js')).href)};
      const file = parsePublicKeyFile(process.env.PUBKEY_FILE);
      const body = verifyStatement(file.publicKey, JSON.parse(process.env.SIGNED), { incarnation: file.incarnation, sessionId: process.env.SESSION });
      let tampered;
      try { verifyStatement(file.publicKey, { ...JSON.parse(process.env.SIGNED), body: process.env.SIGNED_OTHER }, { incarnation: file.incarnation }); }
      catch (e) { tampered = e.code; }
      console.log(JSON.stringify({ jitless: process.execArgv.includes('--jitless'), wasm: typeof WebAssembly, body, tampered }));`;
    const run = jitless(script, {
      PUBKEY_FILE: encodePublicKeyFile(key), SIGNED: JSON.stringify(signed), SESSION,
      SIGNED_OTHER: signed.body.replace('"lver":7', '"lver":8'),
    });
    expect({ status: run.status, stderr: run.stderr.slice(0, 2000) }).toEqual({ status: 0, stderr: expect.not.stringContaining('Error') });
    expect(JSON.parse(run.stdout)).toEqual({ jitless: true, wasm: 'undefined', body, tampered: 'PROTO_BAD_SIGNATURE' });
  });

  it('control: the same child refuses to load the helper-side incarnation key module', () => {
    const run = jitless(`await import(${JSON.stringify(pathToFileURL(join(dist, 'incarnation-key.js')).href)}); console.log('loaded');`, {});
    expect(run.status).not.toBe(0);
    expect(run.stdout).not.toContain('loaded');
    expect(run.stderr).toMatch(/FORBIDDEN file:\S*libsodium/);
  });
});
