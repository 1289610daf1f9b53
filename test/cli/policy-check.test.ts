/**
 * `vmlease policy check` on its own (no helper): usage, a bad policy file,
 * XML that is refused before any disk is looked at, and a domain without
 * leases accepted with its unleased disks listed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vmlease } from '../support/cli.js';
import { workDir } from '../support/tmp.js';

const UUID = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
let dir: ReturnType<typeof workDir>;
let policy: string;
let image: string;

beforeAll(() => {
  dir = workDir('policy-check');
  mkdirSync(join(dir.path, 'leases'));
  image = join(dir.path, 'local.img');
  writeFileSync(image, Buffer.alloc(4096));
  policy = join(dir.path, 'policy.json');
  writeFileSync(policy, JSON.stringify({ leaseRoots: [join(dir.path, 'leases')] }));
});
afterAll(() => dir.remove());

const domain = (body: string) => `<domain type='kvm'><name>local</name><uuid>${UUID}</uuid><devices>${body}</devices></domain>`;
const check = (args: string[], input?: string) => vmlease(['policy', 'check', '--policy', policy, ...args], undefined, input);

describe('vmlease policy check', () => {
  it('needs --domain-xml and the subcommand check (exit 2)', () => {
    expect(vmlease(['policy', 'check', '--policy', policy])).toMatchObject({ status: 2, stderr: "vmlease policy: --domain-xml FILE|- is required (see 'vmlease policy --help')\n" });
    expect(vmlease(['policy', 'list'])).toMatchObject({ status: 2, stderr: `vmlease policy: unknown subcommand "list": expected check (see 'vmlease policy --help')\n` });
    expect(check(['--domain-xml', join(dir.path, 'missing.xml')]).status).toBe(2);
  });

  it('reports a bad policy file naming the key (exit 1)', () => {
    const bad = join(dir.path, 'bad-policy.json');
    writeFileSync(bad, JSON.stringify({ leaseRoots: ['relative'] }));
    const result = vmlease(['policy', 'check', '--policy', bad, '--domain-xml', '-'], undefined, domain(''));
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(`vmlease policy: bad configuration: ${bad}: leaseRoots[0]: "relative" is not an absolute path\n`);
  });

  it('refuses malformed XML and a domain without uuid (exit 4), as JSON too', () => {
    const malformed = check(['--domain-xml', '-'], '<domain><name>x</name>');
    expect(malformed.status).toBe(4);
    expect(malformed.stderr).toMatch(/^vmlease policy check: refused: POLICY_XML: /);
    const noUuid = check(['--domain-xml', '-', '--json'], '<domain type="kvm"><name>x</name></domain>');
    expect(noUuid.status).toBe(4);
    const parsed = JSON.parse(noUuid.stdout) as { ok: boolean; refusal: { rule: string; element: string; message: string } };
    expect(parsed).toMatchObject({ ok: false, refusal: { rule: 'POLICY_NO_UUID' } });
    expect(noUuid.stderr).toBe(`vmlease policy check: refused: ${parsed.refusal.message}\n`);
  });

  it('refuses an auto lease directory on a local file system unless the policy allows it', () => {
    const leases = join(dir.path, 'leases');
    const disks = join(leases, 'local-disks');
    const images = join(dir.path, 'images');
    mkdirSync(disks);
    mkdirSync(images);
    writeFileSync(join(images, 'a.img'), Buffer.alloc(4096));
    expect(vmlease(['init-lease-directory', '--allow-local-fs', `cluster:${disks}`]).status).toBe(0);
    const autoPolicy = (allowLocalDirectory: boolean) => {
      const path = join(dir.path, `auto-policy-${allowLocalDirectory}.json`);
      writeFileSync(path, JSON.stringify({ leaseRoots: [leases], autoDiskLeases: { enabled: true, lockspace: 'cluster', directory: disks, sharedFileRoots: [{ name: 'images', path: images }], allowLocalDirectory } }));
      return path;
    };
    const xml = domain(`<emulator>/usr/local/libexec/vmlease/qemu-shim</emulator><disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='${join(images, 'a.img')}'/><target dev='vda' bus='virtio'/></disk>`);
    const refused = vmlease(['policy', 'check', '--policy', autoPolicy(false), '--domain-xml', '-', '--json'], undefined, xml);
    expect(refused.status).toBe(4);
    expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, refusal: { rule: 'LEASE_DIR_LOCAL_FS', element: 'autoDiskLeases.directory' } });
    expect(refused.stderr).toMatch(new RegExp(`^vmlease policy check: refused: LEASE_DIR_LOCAL_FS: ${disks}: lease directory is on a local file system `));
    const allowed = vmlease(['policy', 'check', '--policy', autoPolicy(true), '--domain-xml', '-', '--json'], undefined, xml);
    expect(allowed.stderr).toBe('');
    expect(allowed.status).toBe(0);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ ok: true, leases: [{ lockspace: 'cluster', mode: 'exclusive', exists: false }] });
    const leasePath = (JSON.parse(allowed.stdout) as { leases: { path: string }[] }).leases[0]!.path;
    expect(vmlease(['policy', 'check', '--policy', autoPolicy(true), '--domain-xml', '-'], undefined, xml).stdout).toContain(`${leasePath}:0 (created at register)`);
    writeFileSync(leasePath, '');
    const existing = vmlease(['policy', 'check', '--policy', autoPolicy(true), '--domain-xml', '-', '--json'], undefined, xml);
    expect(existing.status).toBe(0);
    expect(JSON.parse(existing.stdout)).toMatchObject({ ok: true, leases: [{ path: leasePath, exists: true }] });
  });

  it('accepts a domain with no leases when the policy requires none, listing its unleased writable disk', () => {
    const xml = domain(`<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='${image}'/><target dev='vda' bus='virtio'/></disk>`);
    const result = check(['--domain-xml', '-', '--json'], xml);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ ok: true, vm: { uuid: UUID, name: 'local' }, leases: [], unleasedDisks: [{ target: 'vda', reason: expect.stringMatching(/auto disk leases are off/) as string }] });
    const human = check(['--domain-xml', '-'], xml);
    expect(human.stdout).toBe(`VM ${UUID} (local): 0 leases\nno lease for disk vda: ${(JSON.parse(result.stdout) as { unleasedDisks: { reason: string }[] }).unleasedDisks[0]!.reason}\n`);
  });
});
