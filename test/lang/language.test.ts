import { allRules, linkKey, ruleCount, tableKey } from '../../src/model/state.js';
import { countErrors } from '../../src/diag/diagnostic.js';
import { codesOf, diagnosticsOf, errorCount, program, programOf, stateOf } from '../support/compile.js';

const M1 = '00:50:56:00:21:01';
const M2 = '00:50:56:00:21:02';

describe('HOST', () => {
  it('declares a daemon: user, machine, port, interface', () => {
    const s = stateOf('BEGIN HOST pdinda AT host1.cluster.edu 5000 vmnet1 END');
    expect([...s.hosts.values()]).toEqual([{ machine: 'host1.cluster.edu', user: 'pdinda', port: 5000, iface: 'vmnet1' }]);
    expect(s.tables.get('host1.cluster.edu')?.size).toBe(0);
  });

  it('accepts a program with hosts and no blocks, and an empty program', () => {
    expect(stateOf('BEGIN END').hosts.size).toBe(0);
    expect(stateOf('BEGIN HOST u AT a 1 e HOST u AT b 65535 e END').hosts.size).toBe(2);
  });
});

describe('LINK', () => {
  it('Fig. 4 form: TCP, the first end dials', () => {
    const s = stateOf(program('ADD LINK h1 proxy'));
    expect(s.links.get(linkKey('h1', 'proxy'))).toEqual({ a: 'h1', b: 'proxy', proto: 'tcp', dialer: 'h1' });
  });

  it('Fig. 5 form: type and dialer', () => {
    const s = stateOf(program('ADD LINK UDP h1 h2 h2 LINK tcp proxy h1'));
    expect(s.links.get(linkKey('h1', 'h2'))).toEqual({ a: 'h1', b: 'h2', proto: 'udp', dialer: 'h2' });
    expect(s.links.get(linkKey('h1', 'proxy'))).toEqual({ a: 'proxy', b: 'h1', proto: 'tcp', dialer: 'proxy' });
  });

  it('is one link whichever way it is written', () => {
    expect(codesOf(program('ADD LINK h1 h2 LINK h2 h1'))).toEqual(['VN3008@5:16']);
    expect(stateOf(program('ADD LINK h1 h2\nDELETE LINK h2 h1')).links.size).toBe(0);
  });

  it('a DELETE must agree with the type and dialer it writes out', () => {
    expect(codesOf(program('ADD LINK UDP h1 h2\nDELETE LINK TCP h1 h2'))).toEqual(['VN3018@6:8']);
    expect(codesOf(program('ADD LINK h1 h2\nDELETE LINK h1 h2 h2'))).toEqual(['VN3018@6:19']);
    expect(stateOf(program('ADD LINK UDP h1 h2 h2\nDELETE LINK h1 h2')).links.size).toBe(0);
  });

  it('the dialer is one of the ends; a link joins two machines', () => {
    expect(codesOf(program('ADD LINK h1 h2 proxy'))).toEqual(['VN3013@5:16']);
    expect(codesOf(program('ADD LINK h1 h1'))).toEqual(['VN3007@5:13']);
  });
});

describe('FORWARD', () => {
  const table = (text: string) => [...stateOf(text).tables.get('h1')!.values()];

  it('exact, NOT, ANY and NONE address slots', () => {
    expect(table(program(`ADD LINK h1 proxy FORWARD h1 NOT ${M1} ff:ff:ff:ff:ff:ff vmnet1 FORWARD h1 ${M1} NONE h1 proxy`))).toEqual([
      { machine: 'h1', src: { q: 'not', mac: M1 }, dst: { q: 'exact', mac: 'ff:ff:ff:ff:ff:ff' }, dest: { kind: 'interface', iface: 'vmnet1' } },
      { machine: 'h1', src: { q: 'exact', mac: M1 }, dst: { q: 'none' }, dest: { kind: 'link', to: 'proxy' } },
    ]);
  });

  it('ANY <mac> means ANY; in the source slot the MAC is ANY\'s only if an address follows', () => {
    const [a, b, c] = table(program(`ADD FORWARD h1 ANY ${M1} vmnet1 FORWARD h1 ANY ${M2} NOT ${M1} vmnet1 FORWARD h1 ${M1} ANY ${M2} vmnet1`));
    expect([a!.src, a!.dst]).toEqual([{ q: 'any' }, { q: 'exact', mac: M1 }]);
    expect([b!.src, b!.dst]).toEqual([{ q: 'any' }, { q: 'not', mac: M1 }]);
    // ANY <mac> <mac> is the same rule as ANY <mac>.
    expect(codesOf(program(`ADD FORWARD h1 ANY ${M1} vmnet1 FORWARD h1 ANY ${M2} ${M1} vmnet1`))).toEqual(['VN3009@5:45']);
    expect([c!.src, c!.dst]).toEqual([{ q: 'exact', mac: M1 }, { q: 'any' }]);
  });

  it('MAC spellings are one address', () => {
    const rules = table(program('ADD FORWARD h1 ANY 00:50:56:00:21:0A vmnet1'));
    expect(rules[0]!.dst).toEqual({ q: 'exact', mac: '00:50:56:00:21:0a' });
    for (const spelling of ['0:50:56:0:21:a', '00-50-56-00-21-0A', '00:50:56:00:21:0a']) {
      expect(codesOf(program(`ADD FORWARD h1 ANY 00:50:56:00:21:0A vmnet1\nFORWARD h1 ANY ${spelling} vmnet1`))).toEqual(['VN3009@6:1']);
    }
  });

  it('Fig. 5 rule types must agree with the destination', () => {
    expect(errorCount(program('ADD LINK h1 proxy FORWARD EDGE h1 ANY NONE h1 proxy FORWARD INTERFACE h1 ANY ANY vmnet1'))).toBe(0);
    expect(codesOf(program('ADD FORWARD EDGE h1 ANY NONE vmnet1'))).toEqual(['VN3014@5:30']);
    expect(codesOf(program('ADD LINK h1 proxy FORWARD INTERFACE h1 ANY NONE h1 proxy'))).toEqual(['VN3014@5:49']);
  });

  it('a rule is identified by all of it: same match, other destination, is another rule', () => {
    const s = stateOf(program('ADD LINK proxy h1 LINK proxy h2 FORWARD proxy ANY ff:ff:ff:ff:ff:ff proxy h1 FORWARD proxy ANY ff:ff:ff:ff:ff:ff proxy h2'));
    expect(s.tables.get('proxy')!.size).toBe(2);
    expect(ruleCount(s)).toBe(2);
  });

  it('checks hops, links, sources and interfaces', () => {
    expect(codesOf(program('ADD LINK h1 proxy FORWARD h1 ANY NONE proxy h1'))).toEqual(['VN3005@5:39']);
    expect(codesOf(program('ADD FORWARD h1 ANY NONE h1 h2'))).toEqual(['VN3006@5:25']);
    expect(codesOf(program(`ADD FORWARD h1 NONE ${M1} vmnet1`))).toEqual(['VN3004@5:16']);
    expect(codesOf(program(`ADD FORWARD h1 ff:ff:ff:ff:ff:ff ${M1} vmnet1`))).toEqual(['VN3019@5:16']);
    expect(diagnosticsOf(program(`ADD FORWARD h1 ANY ${M1} eth3`)).map((d) => [d.code, d.severity])).toEqual([['VN3010', 'warning']]);
  });
});

describe('evaluation in order', () => {
  it('a later block may add the link an earlier rule sends over', () => {
    expect(errorCount(program('ADD FORWARD h1 ANY NONE h1 h2\nADD LINK h1 h2'))).toBe(0);
  });

  it('a rule left without its link is reported at the rule, pointing to the DELETE', () => {
    const d = diagnosticsOf(program('ADD LINK h1 h2 FORWARD h1 ANY NONE h1 h2\nDELETE LINK h1 h2'));
    expect(d.map((x) => x.code)).toEqual(['VN3006']);
    expect(d[0]!.message).toBe('rule sends over link h1–h2, which does not exist any more');
    expect(d[0]!.related?.[0]?.message).toBe('deleted here');
  });

  it('deletes, re-adds, and refuses deleting what is not there', () => {
    const s = stateOf(program(`ADD LINK h1 h2 FORWARD h1 ANY ${M2} h1 h2\nDELETE FORWARD h1 ANY ${M2} h1 h2 LINK h1 h2\nADD LINK h1 h2 h1`));
    expect(s.links.size).toBe(1);
    expect(ruleCount(s)).toBe(0);
    expect(codesOf(program(`ADD LINK h1 h2\nDELETE LINK h1 h2 LINK h1 h2 FORWARD h1 ANY ${M2} h1 h2`))).toEqual(['VN3011@6:19', 'VN3012@6:30']);
  });

  it('keys tables by machine and rules by tableKey', () => {
    const s = stateOf(program(`ADD LINK h1 h2 FORWARD h1 ${M1} ${M2} h1 h2 FORWARD h2 ANY ${M2} vmnet1`));
    const [r1] = allRules(s);
    expect(s.tables.get('h1')!.get(tableKey(r1!))).toBe(r1);
    expect([...s.tables.get('h1')!.keys()]).toEqual([`${M1} ${M2} >h2`]);
    expect([...s.tables.get('h2')!.keys()]).toEqual([`* ${M2} @vmnet1`]);
  });
});

describe('declarations', () => {
  it('suggests the declared machine closest to a typo', () => {
    const [d] = diagnosticsOf(program('ADD LINK hots1 proxy', 'HOST u AT proxy 1 eth0 HOST u AT host1 1 e'));
    expect([d!.code, d!.hint]).toEqual(['VN3001', "did you mean 'host1'?"]);
  });

  it('checks names, ports and duplicates', () => {
    expect(codesOf('BEGIN HOST -u AT a 0 e HOST u AT a;b 70000 e-- HOST u AT a 1 this-name-is-too-long END')).toEqual([
      'VN3016@1:12',
      'VN3003@1:20',
      'VN3015@1:34',
      'VN3003@1:38',
      'VN3002@1:58',
      'VN3017@1:62',
    ]);
  });

  it('refuses an IPv6 address as a machine with a way forward, and reads on', () => {
    const text = 'BEGIN HOST u AT fe80::1 5000 e HOST u AT 00:11:22:33:44:55 1 e HOST u AT b 1 e ADD LINK b c END';
    // One mistake, one diagnostic: the scanner's malformed-MAC report on fe80::1 is taken back.
    expect(codesOf(text)).toEqual(['VN3015@1:17', 'VN3015@1:42', 'VN3001@1:91']);
    expect(diagnosticsOf(text)[0]!.hint).toMatch(/IPv6 address cannot name a machine.*SSH alias/);
    // A VM's MAC in that place is not said to be an IPv6 address.
    expect(diagnosticsOf(text)[1]!.hint).toMatch(/^a MAC address names a VM, not the machine its daemon runs on: .*SSH alias/);
    // Read as a machine, it is no syntax error: fmt formats the line as it does any other bad name.
    expect(programOf(text.replace(' ADD LINK b c', '')).hosts[0]!.machine.text).toBe('fe80::1');
  });

  it('still calls a colon word a malformed MAC where an address may stand', () => {
    // A HOST line that does not stand (the machine is not read as one); the same word as an address.
    expect(codesOf('BEGIN HOST u AT fe80::1 5000 END')).toEqual(['VN1007@1:17', 'VN2006@1:30']);
    expect(codesOf('BEGIN HOST u AT fe80::1 5000 e ADD FORWARD a fe80::1 ANY e END')).toEqual(['VN3015@1:17', 'VN3001@1:44', 'VN1007@1:46']);
  });

  it('reports a colon word where only a name may stand once, as a misplaced word with a hint', () => {
    // No port after it, so the parser wants a machine and finds an address.
    expect(codesOf('BEGIN HOST u AT fe80::1 e END')).toEqual(['VN2001@1:17']);
    expect(diagnosticsOf('BEGIN HOST u AT fe80::1 e END')[0]!.hint).toMatch(/^an IPv6 address cannot name a machine/);
    expect(diagnosticsOf('BEGIN HOST u AT [::1] 5000 e END')[0]!.hint).toMatch(/^an IPv6 address cannot name a machine/);
    const cases: [string, string, RegExp][] = [
      ['BEGIN HOST vn:et AT m 1 e END', 'VN2001@1:12', /^names have no colons/],
      ['BEGIN HOST u AT m 1 vm:net1 END', 'VN2001@1:21', /^names have no colons/],
      ['BEGIN HOST u AT m 1 00:50:56:00:21:01 END', 'VN2001@1:21', /^a MAC address names a VM, not a machine, user or interface/],
      ['BEGIN HOST u AT m 1 e ADD LINK m ho:st1 END', 'VN2001@1:34', /^names have no colons/],
    ];
    // A colon word meant as a FORWARD's interface, after an ANY whose filler MAC would leave no destination.
    cases.push(['BEGIN HOST u AT m 1 e ADD FORWARD m ANY 00:50:56:00:21:01 eth0:1 END', 'VN2001@1:59', /^names have no colons/]);
    // Read as a HOST line's machine, a colon word that is neither an IPv6 address nor a MAC is not said to be one.
    cases.push(['BEGIN HOST u AT ho:st1 5000 e END', 'VN3015@1:17', /^names have no colons/]);
    for (const [text, code, hint] of cases) {
      expect(codesOf(text)).toEqual([code]);
      expect(diagnosticsOf(text)[0]!.hint).toMatch(hint);
    }
  });

  it('reads a colon word after a FORWARD\'s first hop as its second, which the name check then refuses', () => {
    const text = 'BEGIN HOST u AT m 1 e HOST u AT proxy 1 e ADD LINK m proxy FORWARD m 00:50:56:00:21:02 NONE m pr:oxy END';
    expect(codesOf(text)).toEqual(['VN3001@1:95']);
    expect(diagnosticsOf(text)[0]!.hint).toBe("did you mean 'proxy'?");
    // ANY's filler MAC is still read as one where a destination follows the next address.
    expect(codesOf('BEGIN HOST u AT m 1 e ADD FORWARD m ANY 00:50:56:00:21:03 00:50:56:00:21:01 e END')).toEqual([]);
  });

  it('counts a taken-back report that came past the error cap as not made', () => {
    // 100 malformed interface names fill the list before fe80::1 is scanned.
    const hosts = Array.from({ length: 100 }, (_, i) => `HOST u AT m${i} 1 e:${i}`).join('\n');
    const d = diagnosticsOf(`BEGIN\n${hosts}\nHOST u AT fe80::1 5000 e\nEND`);
    // Each e:N line: VN2001 alone, its scanner's VN1007 taken back (past the cap for most); the IPv6 machine: VN3015 alone.
    expect(countErrors(d)).toBe(101);
  });
});

describe('syntax and recovery', () => {
  it('reads keywords in any case and statements across lines', () => {
    const p = programOf('begin\nhost u\nat m\n1 e add\nlink m\nm2 end');
    expect(p.hosts.map((h) => h.machine.text)).toEqual(['m']);
    expect(p.blocks[0]!.statements[0]).toMatchObject({ kind: 'link', proto: null, a: { text: 'm' }, b: { text: 'm2' } });
  });

  it('reports the first error of each statement and carries on', () => {
    // `vmnet1 extra` reads as a link destination, whose first hop is then wrong.
    const text = program(`ADD\nLINK h1\nFORWARD h1 ANY NONE vmnet1 extra\nLINK TCP h1 proxy\nFORWARD h1 NOT NONE h1 proxy`);
    expect(codesOf(text)).toEqual(['VN2008@6:8', 'VN3005@7:21', 'VN2007@9:12']);
  });

  it('places HOST and LINK correctly, and says so when they are not', () => {
    expect(codesOf('BEGIN LINK a b HOST u AT a 1 e END')).toEqual(['VN2005@1:7']);
    expect(codesOf('BEGIN HOST u AT a 1 e ADD HOST u AT b 1 e LINK a b END')).toEqual(['VN2004@1:27']);
  });

  it('ends lines, and comments, at a lone CR as at LF and CRLF', () => {
    for (const eol of ['\n', '\r\n', '\r']) {
      const text = ['BEGIN # a comment', 'HOST u AT a 1 e', 'HOST u AT b 99999 e', 'END'].join(eol);
      expect(codesOf(text)).toEqual(['VN3003@3:13']);
      const d = diagnosticsOf(text)[0]!;
      expect(d.file.lineText(3)).toBe('HOST u AT b 99999 e');
    }
  });

  it('a HOST line cut short says which name it lacks', () => {
    const said = (text: string): string[] => diagnosticsOf(text).map((d) => `${d.code} ${d.message}`);
    expect(said('BEGIN HOST')).toEqual(["VN2008 expected a user name after 'HOST'"]);
    expect(said('BEGIN HOST u AT\nEND')).toEqual(["VN2008 expected a machine name after 'AT'"]);
  });

  it('names a missing END, text after END, and a missing BEGIN', () => {
    expect(codesOf('BEGIN HOST u AT a 1 e')).toEqual(['VN2003@1:22']);
    expect(codesOf('BEGIN END BEGIN END')).toEqual(['VN2002@1:11']);
    expect(codesOf('HOST u AT a 1 e END')).toEqual(['VN2001@1:1']);
  });

  it('recovers the same way deep inside a large file, where the token window is streaming', () => {
    const lines = ['BEGIN', 'HOST u AT a 1 e', 'HOST u AT b 1 e', 'ADD', 'LINK a b'];
    for (let i = 0; i < 20_000; i++) lines.push(`FORWARD a ANY 00:00:00:${((i >> 16) & 255).toString(16)}:${((i >> 8) & 255).toString(16)}:${(i & 255).toString(16)} a b`);
    lines[10_000] = 'FORWARD a ANY';
    lines[15_000] = 'FORWARD a NOT NONE a b';
    lines.push('END');
    const text = lines.join('\n');
    expect(codesOf(text)).toEqual(['VN2008@10001:14', 'VN2007@15001:11']);
    // The same file without the errors evaluates every rule.
    lines[10_000] = 'LINK a b';
    lines[15_000] = 'DELETE LINK a b ADD LINK a b';
    expect(codesOf(lines.join('\n'))).toEqual(['VN3008@10001:1']);
  });

  it('never recovers by swallowing the next statement\'s keyword', () => {
    // The FORWARD after an unfinished LINK is kept and checked, not blamed.
    const text = program('ADD LINK TCP\nFORWARD h1 ANY ANY h1 h2\nLINK h1 h2');
    expect(codesOf(text)).toEqual(['VN2008@5:13']);
  });

  it('reads a keyword in a HOST line as the name it plainly is, with one error', () => {
    const d = diagnosticsOf('BEGIN HOST vnet AT host 5000 e HOST end AT h1 1 e ADD LINK host h1 END');
    expect(d.map((x) => `${x.code} ${x.message}`)).toEqual([
      "VN2006 expected a machine name, found the keyword 'host'",
      "VN2006 expected a user name, found the keyword 'end'",
      "VN2006 expected a machine name, found the keyword 'host'", // in LINK, where it cannot be read as a name
    ]);
  });

  it('a statement keyword on the same line is a name; on the next line, the statement stopped short', () => {
    expect(codesOf(program('ADD LINK host h2\nLINK h1 h2'))).toEqual(['VN2006@5:10']);
    expect(codesOf(program('ADD LINK h1\nLINK h1 h2'))).toEqual(['VN2008@5:12']);
    expect(codesOf(program('ADD LINK h1\rLINK h1 h2'))).toEqual(['VN2008@5:12']);
  });

  it('still checks the whole program when only END is missing or text follows it', () => {
    expect(codesOf(program('ADD LINK h1 gateway').replace('END\n', ''))).toEqual(['VN3001@5:13', 'VN2003@5:20']);
    expect(codesOf(program('ADD LINK h1 gateway') + 'trailing')).toEqual(['VN3001@5:13', 'VN2002@7:1']);
  });
});

describe('limits', () => {
  it('lists 100 errors and counts the rest, whichever stage found them', () => {
    const undeclared = program(`ADD\n${Array.from({ length: 105 }, (_, i) => `LINK h1 x${i}`).join('\n')}`);
    const d = diagnosticsOf(undeclared);
    expect(d.length).toBe(101);
    expect(d[100]!.code).toBe('VN1006');
    expect(d[100]!.message).toBe('too many errors: 5 more not shown');
    expect(countErrors(d)).toBe(105);
  });

  it('stops reading a file of stray characters, and says where', () => {
    const d = diagnosticsOf('BEGIN ' + 'x\u0001'.repeat(150));
    expect(d.map((x) => x.code).filter((c) => c === 'VN1001').length).toBe(100);
    expect(d[d.length - 1]!.message).toBe('too many errors: stopped reading the file here');
    expect(d[d.length - 1]!.span).toEqual({ start: 206, end: 206 });
  });

  it('does not call a malformed source MAC a group address', () => {
    expect(codesOf(program('ADD FORWARD h1 01:02 ANY vmnet1 FORWARD h1 : ANY vmnet1'))).toEqual(['VN1007@5:16', 'VN1007@5:44']);
  });

  it('compares machine names without case, and does not suggest the other end of a link', () => {
    const d = diagnosticsOf('BEGIN HOST u AT proxy 1 e HOST u AT Proxy 1 e HOST u AT a 1 e ADD LINK b a END');
    expect(d.map((x) => [x.code, x.hint])).toEqual([
      ['VN3002', "machine names are not case-sensitive: 'Proxy' is 'proxy'"],
      ['VN3001', 'declare it with a HOST line: HOST <user> AT b <port> <interface>'],
    ]);
  });

  it('suggests the declared spelling of a machine written in another case, however long its name', () => {
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.example`;
    const text = program(`ADD LINK h1 ${long.toUpperCase()}`, `HOST u AT h1 1 e HOST u AT ${long} 1 e`);
    const [d] = diagnosticsOf(text);
    expect([d!.code, d!.hint]).toEqual(['VN3001', `did you mean '${long.slice(0, 59)}…'?`]);
    // The hint clips the name; the note points at it in full.
    const at = d!.related![0]!.span;
    expect(text.slice(at.start, at.end)).toBe(long);
  });
});

