import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runVnetc, SAMPLES } from '../support/vnetc.js';

/** `vnetc plan` as users run it: files in a scratch directory, the built binary. */

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-plan-'));
  for (const f of ['star4.vnet', 'star8.vnet', 'udp-extended.vnet']) fs.copyFileSync(path.join(SAMPLES, f), path.join(dir, f));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const plan = (...args: string[]) => runVnetc(['plan', ...args], { cwd: dir });
const write = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text);

describe('vnetc plan', () => {
  test('no changes: says so, exit 0 even with --detailed-exitcode', () => {
    const r = plan('star4.vnet', '--state', 'star4.vnet', '--detailed-exitcode');
    expect(r.stdout).toBe('No changes. The daemons hold what the file describes.\n');
    expect(r.status).toBe(0);
  });

  test('changes: a terraform-style listing grouped by daemon, exit 2 with -detailed-exitcode (one dash, as terraform spells it)', () => {
    const r = plan('star8.vnet', '--state', 'star4.vnet', '-detailed-exitcode');
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(/^vnetc will make these changes \(\+ create, ~ replace, - delete\):\n\n  proxy \(Proxy\)\n    \+ FORWARD proxy ANY 00:50:56:00:21:05 proxy host5\n/);
    expect(r.stdout).toContain('  host5\n    + HOST vnet AT host5 5000 vmnet1  # a daemon to start\n    + LINK host5 proxy  # between host5 and proxy\n');
    expect(r.stdout.trimEnd().split('\n').pop()).toBe('Plan: 28 to add, 0 to replace, 0 to delete.');
    expect(plan('star8.vnet', '--state', 'star4.vnet').status).toBe(0);
  });

  test('colour only when asked, and never with NO_COLOR', () => {
    const forced = runVnetc(['plan', 'star8.vnet', '--state', 'star4.vnet'], { cwd: dir, env: { FORCE_COLOR: '1' } });
    expect(forced.stdout).toContain('\u001b[32m+\u001b[39m');
    const off = runVnetc(['plan', 'star8.vnet', '--state', 'star4.vnet'], { cwd: dir, env: { FORCE_COLOR: '1', NO_COLOR: '1' } });
    expect(off.stdout).not.toContain('\u001b[');
  });

  test('deleting a backbone link fails unless allowed', () => {
    const r = plan('star4.vnet', '--state', 'star8.vnet');
    expect(r.status).toBe(0); // host5..8 are not in star4.vnet: drift, not deletions
    const cut = fs.readFileSync(path.join(dir, 'star4.vnet'), 'utf8').replace(/^\s*LINK host4 proxy.*\n/m, '').replace(/^.*proxy host4\n/gm, '').replace(/^.*host4 proxy\n/gm, '');
    write('cut.vnet', cut);
    const refused = plan('cut.vnet', '--state', 'star4.vnet', '--detailed-exitcode');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("error[VN4001]: the plan deletes a backbone link of the Proxy 'proxy': LINK host4 proxy");
    expect(refused.stderr).toContain('--allow-backbone-delete');
    expect(refused.stdout).toContain('- LINK host4 proxy');
    const allowed = plan('cut.vnet', '--state', 'star4.vnet', '--allow-backbone-delete', '--detailed-exitcode');
    expect(allowed.status).toBe(2);
    expect(allowed.stderr).toBe('');
  });

  test('a plan saved with --allow-backbone-delete carries that consent: planned or saved again it needs no flag, for its own links only', () => {
    write('cut4.vnet', fs.readFileSync(path.join(dir, 'star4.vnet'), 'utf8').replace(/^.*(LINK host4 proxy|host4 proxy|proxy host4)\n/gm, ''));
    const allowed = plan('cut4.vnet', '--state', 'star4.vnet', '--allow-backbone-delete');
    expect(plan('cut4.vnet', '--state', 'star4.vnet', '--allow-backbone-delete', '--out', 'cut4-plan.vnet').status).toBe(0);
    const text = fs.readFileSync(path.join(dir, 'cut4-plan.vnet'), 'utf8');
    expect(text.split('\n')[1]).toBe('# vnetc plan: made with --allow-backbone-delete, for link.host4~proxy');
    expect(runVnetc(['validate', 'cut4-plan.vnet'], { cwd: dir }).status).toBe(0);
    expect(runVnetc(['fmt', '--check', 'cut4-plan.vnet'], { cwd: dir }).status).toBe(0);

    const again = plan('cut4-plan.vnet', '--state', 'star4.vnet', '--detailed-exitcode', '--out', 'cut4-again.vnet');
    expect(again.stderr).toBe('Saved the plan to cut4-again.vnet.\n');
    expect(again.status).toBe(2);
    expect(again.stdout).toBe(allowed.stdout);
    expect(fs.readFileSync(path.join(dir, 'cut4-again.vnet'), 'utf8').split('\n')[1]).toBe(text.split('\n')[1]);

    // Consent is for the links it names: without the line, or naming another link, the flag is needed, and the error is at the DELETE's LINK.
    const line = text.split('\n').indexOf('    LINK host4 proxy');
    for (const [name, edited, at] of [
      ['no-consent.vnet', text.replace(/^# vnetc plan: made with.*\n/m, ''), line],
      ['other-consent.vnet', text.replace('link.host4~proxy', 'link.host3~proxy'), line + 1],
    ] as const) {
      write(name, edited);
      const r = plan(name, '--state', 'star4.vnet');
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`${name}:${at}:5: error[VN4001]: the plan deletes a backbone link of the Proxy 'proxy': LINK host4 proxy\n ${at} |     LINK host4 proxy\n`);
    }
  });

  test('VN4001 points at the DELETE block that cuts the star, with a note at each other link it shows', () => {
    const star = fs.readFileSync(path.join(dir, 'star4.vnet'), 'utf8');
    const cut = ['  DELETE'];
    for (const h of [3, 4]) cut.push(`    FORWARD host${h} 00:50:56:00:21:0${h} NONE host${h} proxy`, `    FORWARD proxy ANY 00:50:56:00:21:0${h} proxy host${h}`, `    FORWARD proxy ANY ff:ff:ff:ff:ff:ff proxy host${h}`, `    LINK host${h} proxy`);
    write('del.vnet', star.replace(/^END/m, `${cut.join('\n')}\nEND`));
    // The last one: the ADD block above names the same links.
    const lineOf = (l: string): number => fs.readFileSync(path.join(dir, 'del.vnet'), 'utf8').split('\n').lastIndexOf(l) + 1;
    const r = plan('del.vnet', '--state', 'star4.vnet');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`del.vnet:${lineOf('    LINK host3 proxy')}:5: error[VN4001]: the plan deletes 2 backbone links of the Proxy 'proxy': LINK host3 proxy; LINK host4 proxy\n`);
    expect(r.stderr).toContain(`  note: del.vnet:${lineOf('    LINK host4 proxy')}:5: LINK host4 proxy is deleted here too\n`);
    const j = JSON.parse(plan('del.vnet', '--state', 'star4.vnet', '--json').stdout);
    expect(j.diagnostics).toMatchObject([{ code: 'VN4001', line: lineOf('    LINK host3 proxy'), column: 5 }]);
    expect(plan('del.vnet', '--state', 'star4.vnet', '--allow-backbone-delete').status).toBe(0);
  });

  test('a saved plan records its Proxy, and is planned again for that Proxy without --proxy; another --proxy is refused', () => {
    write('cut-for-host1.vnet', fs.readFileSync(path.join(dir, 'star4.vnet'), 'utf8').replace(/^.*(LINK host4 proxy|host4 proxy|proxy host4)\n/gm, ''));
    // With host1 as the Proxy, host4~proxy is not the backbone: no consent is needed, or recorded.
    expect(plan('cut-for-host1.vnet', '--state', 'star4.vnet', '--proxy', 'host1', '--out', 'for-host1.vnet').status).toBe(0);
    const text = fs.readFileSync(path.join(dir, 'for-host1.vnet'), 'utf8');
    expect(text.split('\n')[1]).toBe('# vnetc plan: made for the Proxy host1');

    // Without the record the Proxy would be 'proxy' again, and this deletion a backbone one.
    const again = plan('for-host1.vnet', '--state', 'star4.vnet');
    expect(again.stderr).toBe('');
    expect(again.status).toBe(0);
    expect(JSON.parse(plan('for-host1.vnet', '--state', 'star4.vnet', '--json').stdout).proxy).toBe('host1');
    expect(plan('for-host1.vnet', '--state', 'star4.vnet', '--proxy', 'host1').status).toBe(0);

    const other = plan('for-host1.vnet', '--state', 'star4.vnet', '--proxy', 'proxy');
    expect(other.status).toBe(1);
    expect(other.stderr).toContain("for-host1.vnet:2:34: error[VN4006]: this saved plan was made for the Proxy 'host1', but --proxy names 'proxy'\n");
    expect(other.stderr).toContain('drop --proxy to use the plan as it was reviewed, or plan again from the whole file with --proxy proxy');

    write('for-hots1.vnet', text.replace('made for the Proxy host1', 'made for the Proxy hots1'));
    const edited = plan('for-hots1.vnet', '--state', 'star4.vnet');
    expect(edited.status).toBe(1);
    expect(edited.stderr).toContain("for-hots1.vnet:2:34: error[VN4003]: the saved plan's Proxy line names 'hots1', which the file does not declare\n");
    expect(edited.stderr).toContain("did you mean 'host1'?");
  });

  test('--proxy must name a declared machine', () => {
    const r = plan('star4.vnet', '--state', 'star4.vnet', '--proxy', 'hots1');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("error[VN4003]: --proxy names 'hots1', which the file does not declare");
    expect(r.stderr).toContain("did you mean 'host1'?");
  });

  test('--json: versioned, terraform actions, before and after, no-ops for hosts and links', () => {
    const r = plan('star4.vnet', '--state', 'udp-extended.vnet', '--json', '--detailed-exitcode');
    expect(r.status).toBe(2);
    const j = JSON.parse(r.stdout);
    expect(j.format_version).toBe('1.0');
    expect(j.summary).toEqual({ add: 0, replace: 0, delete: 6, unchanged: { hosts: 5, links: 4, rules: 22 } });
    expect(j.live.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    const link = j.resource_changes.find((c: { address: string }) => c.address === 'link.host1~host2');
    expect(link).toEqual({
      address: 'link.host1~host2',
      type: 'link',
      daemons: ['host1', 'host2'],
      phase: 4,
      change: { actions: ['delete'], before: { a: 'host1', b: 'host2', proto: 'udp', dialer: 'host1' }, after: null },
    });
    const noop = j.resource_changes.find((c: { address: string }) => c.address === 'host.proxy');
    expect(noop.change.actions).toEqual(['no-op']);
    expect(j.diagnostics).toEqual([]);
  });

  test('a replace is ["delete","create"] in JSON and ~ in text', () => {
    write('udp.vnet', fs.readFileSync(path.join(dir, 'star4.vnet'), 'utf8').replace('LINK host1 proxy', 'LINK UDP host1 proxy'));
    const j = JSON.parse(plan('udp.vnet', '--state', 'star4.vnet', '--json').stdout);
    expect(j.resource_changes[0].change.actions).toEqual(['delete', 'create']);
    expect(plan('udp.vnet', '--state', 'star4.vnet').stdout).toContain('    ~ LINK UDP host1 proxy\n        was LINK host1 proxy\n');
  });

  test('--out saves a .vnet plan that validates, and that plan re-applies only to the same live state', () => {
    const saved = plan('star8.vnet', '--state', 'star4.vnet', '--out', 'change.vnet');
    expect(saved.status).toBe(0);
    expect(saved.stderr).toBe('Saved the plan to change.vnet.\n');
    const text = fs.readFileSync(path.join(dir, 'change.vnet'), 'utf8');
    expect(text.split('\n')[0]).toMatch(/^# vnetc plan: changes to live state sha256:[0-9a-f]{64}$/);
    expect(runVnetc(['validate', 'change.vnet'], { cwd: dir }).status).toBe(0);
    expect(runVnetc(['fmt', '--check', 'change.vnet'], { cwd: dir }).status).toBe(0);

    const again = plan('change.vnet', '--state', 'star4.vnet');
    expect(again.status).toBe(0);
    expect(again.stdout).toBe(plan('star8.vnet', '--state', 'star4.vnet').stdout);

    const stale = plan('change.vnet', '--state', 'udp-extended.vnet');
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain('change.vnet:1:1: error[VN4002]: this saved plan was computed against live state sha256:');
  });

  test('a saved plan is not live state', () => {
    plan('star8.vnet', '--state', 'star4.vnet', '--out', 'p.vnet');
    const r = plan('star8.vnet', '--state', 'p.vnet');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('error[VN4004]');
  });

  test('a saved plan whose first line is damaged is refused, not read as a whole network that deletes the rest', () => {
    plan('star8.vnet', '--state', 'star4.vnet', '--out', 'whole.vnet');
    const text = fs.readFileSync(path.join(dir, 'whole.vnet'), 'utf8');
    const header = text.slice(0, text.indexOf('\n'));
    for (const [name, line] of [
      ['zz.vnet', '# vnetc plan: changes to live state sha256:zz'],
      ['nohash.vnet', '# vnetc plan: changes to live state'],
    ]) {
      write(name!, text.replace(header, line!));
      for (const r of [plan(name!, '--state', 'star4.vnet', '--detailed-exitcode'), plan('star4.vnet', '--state', name!)]) {
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(`${name}:1:1: error[VN4005]: this file starts as a saved plan does, but its first line is damaged`);
        expect(r.stderr).toContain("hint: a saved plan's first line is '# vnetc plan: changes to live state sha256:' followed by 64 hexadecimal digits");
        expect(r.stdout).not.toContain('to delete');
      }
    }
  });

  test('errors in either file are diagnostics, exit 1 (never 2)', () => {
    write('bad.vnet', 'BEGIN\n  HOST vnet AT a 5000 eth0\n  ADD\n    LINK a b\nEND\n');
    const r = plan('bad.vnet', '--state', 'star4.vnet', '--detailed-exitcode');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('bad.vnet:4:12: error[VN3001]');
    const j = JSON.parse(plan('star4.vnet', '--state', 'bad.vnet', '--json').stdout);
    expect(j).toMatchObject({ format_version: '1.0', applyable: false, diagnostics: [{ code: 'VN3001', file: 'bad.vnet', line: 4 }] });
    const missing = plan('star4.vnet', '--state', 'nope.vnet', '--detailed-exitcode');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("cannot read 'nope.vnet': no such file");
  });

  test('usage errors exit 1 for plan, so they never read as "changes present"', () => {
    const r = plan('star4.vnet', '--state', 'star4.vnet', '--parallelism', '0', '--detailed-exitcode');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('--parallelism must be a whole number of at least 1, not 0');
    expect(plan('star4.vnet', '--state', 'star4.vnet', '--bogus').status).toBe(1);
  });
});
