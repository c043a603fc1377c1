import yargs from 'yargs';
import { version } from '../src/version.js';
import { UsageError, type Io } from './io.js';
import { CALIBRATION_ITERATIONS } from '../src/patterns/bsp.js';
import { DESCRIPTIONS as PATTERN_DESCRIPTIONS, KINDS as PATTERN_KINDS } from '../src/patterns/topology.js';

/**
 * The command line: yargs parses flags and picks a command; the command
 * itself is loaded only then, so `--version` and `--help` stay fast (the
 * language front end is most of vnetc's start-up cost). Returns the exit code.
 */
const RECURSIVE = { alias: 'r', type: 'boolean', default: false, describe: 'Look for .vnet files in subdirectories too' } as const;

const IFACE = {
  type: 'string',
  array: true,
  default: [] as string[],
  describe: "MACHINE=KIND:PARAMS: how a daemon vnetc starts opens its HOST line's interface (default: pcap on a remote host, a QEMU datagram socket on a local one)",
} as const;

/** How commands that talk to daemons reach them. */
function reachOptions<T>(y: import('yargs').Argv<T>) {
  return y
    .option('local', {
      type: 'boolean',
      default: false,
      describe: 'Run and reach every daemon on this machine (own loopback address each), without SSH',
    })
    .option('parallelism', { type: 'number', default: 10, describe: 'Daemons talked to at once' })
    .option('ssh-config', { alias: 'F', type: 'string', describe: 'Read this ssh_config instead of ~/.ssh/config' })
    .option('accept-new-host-keys', {
      type: 'boolean',
      default: false,
      describe: "Trust and record a host key on first contact (ssh's accept-new); a changed key is always refused",
    })
    .option('ssh-persist', {
      type: 'number',
      describe: "Seconds an SSH connection is kept open, unused, for later commands (ssh's ControlPersist); 0 keeps none (default: VNETC_SSH_PERSIST, else 60)",
    });
}

const reach = (a: { local: boolean; parallelism: number; 'ssh-config'?: string | undefined; 'accept-new-host-keys': boolean; 'ssh-persist'?: number | undefined }) => ({
  local: a.local,
  parallelism: a.parallelism,
  sshConfig: a['ssh-config'],
  acceptNewHostKeys: a['accept-new-host-keys'],
  sshPersist: a['ssh-persist'],
});

/** The width help is wrapped to. */
const WIDTH = Math.min(100, process.stdout.columns ?? 80);

/**
 * `label` then `text`, wrapped to `width` with every further line indented
 * under the text's first: yargs would wrap a long line back to the margin.
 */
function hanging(label: string, text: string, width: number): string {
  const room = Math.max(20, width - label.length);
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return label + lines.join('\n' + ' '.repeat(label.length));
}

/** Each command and its positionals, as yargs takes them: also what a misspelt or incomplete command line is told. */
const COMMANDS = {
  validate: 'validate [files..]',
  fmt: 'fmt [files..]',
  plan: 'plan <file>',
  apply: 'apply <file>',
  show: 'show [file]',
  infer: 'infer [file]',
  route: 'route <src> <dst>',
  up: 'up <file>',
  down: 'down <file>',
  'ssh-close': 'ssh-close',
  adapt: 'adapt',
  gen: 'gen <file>',
  demo: 'demo',
  patterns: 'patterns',
} as const;

export async function main(argv: string[], io: Io): Promise<number> {
  // yargs drops a lone `-`; carry it through as a token no path can contain.
  const STDIN_ARG = '\0-';
  // Files are the positionals, plus whatever follows `--` (yargs leaves that in `_`, after the command).
  const files = (a: { files?: string[]; _: (string | number)[] }): string[] =>
    [...(a.files ?? []), ...a._.slice(1).map(String)].map((f) => (f === STDIN_ARG ? '-' : f));
  // Terraform spells its long flags with one dash; people will type them so.
  const TERRAFORM_STYLE = new Set(['-detailed-exitcode', '-out', '-json', '-state', '-allow-backbone-delete', '-proxy', '-auto-approve', '-parallelism']);
  argv = argv.map((a) => (a === '-' ? STDIN_ARG : TERRAFORM_STYLE.has(a.split('=')[0]!) ? '-' + a : a));
  // A usage error of plan must not look like its "changes present" (2).
  const usageExit = argv[0] === 'plan' || argv[0] === 'apply' ? 1 : 2;
  let run: (() => Promise<number>) | undefined;
  let badChoice: string | undefined;
  let parserOptions: ParserOptions | undefined;
  const cli = yargs()
    .scriptName('vnetc')
    // vnetc speaks English, and reads yargs's own messages (a missing argument); yargs would follow LANG into another language mid-sentence.
    .locale('en')
    .usage('$0 <command> [options]\n\nCompiler and reconciler for VNET overlay topologies (.vnet files).')
    .option('color', {
      type: 'boolean',
      describe: 'Colour the output, even into a pipe; --no-color never (default: on a terminal, unless NO_COLOR is set)',
    })
    .command(
      // Optional here and checked in the command, so that yargs reports an unknown flag by name.
      COMMANDS.validate,
      'Check .vnet files and report every problem',
      (y) =>
        y
          .positional('files', { type: 'string', array: true, describe: 'Files or directories (- for stdin)' })
          .option('json', { type: 'boolean', default: false, describe: 'Print one JSON report (terraform validate -json shape)' })
          .option('recursive', RECURSIVE)
          .example('$0 validate samples/', 'check every .vnet file in samples/')
          .epilogue('Exit status: 0 valid (warnings allowed), 1 errors, 2 usage or I/O error.'),
      (a) => {
        run = async () =>
          (await import('./validate.js')).validate(io, {
            files: files(a),
            json: a.json,
            recursive: a.recursive,
            color: a.color,
          });
      },
    )
    .command(
      COMMANDS.fmt,
      'Print .vnet files in canonical form (or rewrite, check, diff)',
      (y) =>
        y
          .positional('files', {
            type: 'string',
            array: true,
            describe: 'Files or directories (default: the current directory; - for stdin)',
          })
          .option('write', { alias: 'w', type: 'boolean', default: false, describe: 'Rewrite files in place and list them' })
          .option('check', { type: 'boolean', default: false, describe: 'List files not in canonical form; exit 3 if any' })
          .option('diff', { type: 'boolean', default: false, describe: 'Show a unified diff of the changes' })
          .option('recursive', RECURSIVE)
          .epilogue('Exit status: 0 done or canonical, 1 a file does not parse, 2 usage or I/O error, 3 --check found files to format.'),
      (a) => {
        run = async () =>
          (await import('./fmt.js')).fmt(io, {
            files: files(a),
            write: a.write,
            check: a.check,
            diff: a.diff,
            recursive: a.recursive,
            color: a.color,
          });
      },
    )
    .command(
      COMMANDS.plan,
      'Show the changes that make the daemons hold what a .vnet file describes',
      (y) =>
        reachOptions(y)
          .positional('file', { type: 'string', demandOption: true, describe: 'The desired state (.vnet), or a saved plan' })
          .option('state', {
            type: 'string',
            describe: 'Take live state from this .vnet file (what the daemons hold; in CI, the version before the change)',
          })
          .option('out', { alias: 'o', type: 'string', describe: 'Save the plan as a .vnet program of changes, for apply' })
          .option('json', { type: 'boolean', default: false, describe: 'Print the plan as JSON (format in PLAN.md)' })
          .option('detailed-exitcode', {
            type: 'boolean',
            default: false,
            describe: 'Exit 2 when there are changes (0 none, 1 error), as terraform does',
          })
          .option('allow-backbone-delete', {
            type: 'boolean',
            default: false,
            describe: 'Allow the plan to delete links of the Proxy star (a plan saved with --out records it)',
          })
          .option('proxy', { type: 'string', describe: "The Proxy's machine (default: 'proxy', else the first HOST)" })
          .example('$0 plan net.vnet', 'what apply would change on the daemons net.vnet names')
          .example('$0 plan next.vnet --state current.vnet', 'review a change between two versions of a spec, offline')
          .example('$0 plan next.vnet --state current.vnet --out change.vnet', 'save it for apply')
          .epilogue('Exit status: 0 success, 1 error; with --detailed-exitcode 0 no changes, 1 error, 2 changes.'),
      (a) => {
        run = async () =>
          (await import('./plan.js')).plan(io, {
            file: a.file === STDIN_ARG ? '-' : a.file,
            state: a.state === STDIN_ARG ? '-' : a.state,
            out: a.out,
            json: a.json,
            detailedExitcode: a['detailed-exitcode'],
            allowBackboneDelete: a['allow-backbone-delete'],
            proxy: a.proxy,
            color: a.color,
            ...reach(a),
          });
      },
    )
    .command(
      COMMANDS.apply,
      'Make the daemons hold what a .vnet file (or a saved plan) describes',
      (y) =>
        reachOptions(y)
          .positional('file', { type: 'string', demandOption: true, describe: 'The desired state (.vnet), or a plan saved with plan --out' })
          .option('auto-approve', { type: 'boolean', default: false, describe: 'Do not ask before applying' })
          .option('iface', IFACE)
          .option('json', { type: 'boolean', default: false, describe: 'Print the outcome as JSON (format in APPLY.md)' })
          .option('allow-backbone-delete', { type: 'boolean', default: false, describe: 'Allow deleting links of the Proxy star' })
          .option('proxy', { type: 'string', describe: "The Proxy's machine (default: 'proxy', else the first HOST)" })
          .example('$0 apply net.vnet', 'show the plan, ask, apply')
          .example('$0 plan net.vnet --out change.vnet && $0 apply change.vnet', 'apply exactly what was reviewed')
          .epilogue('Exit status: 0 applied or nothing to do, 1 error (nothing or part applied: the report says which).'),
      (a) => {
        run = async () =>
          (await import('./apply.js')).apply(io, {
            file: a.file === STDIN_ARG ? '-' : a.file,
            autoApprove: a['auto-approve'],
            json: a.json,
            allowBackboneDelete: a['allow-backbone-delete'],
            proxy: a.proxy,
            color: a.color,
            iface: a.iface,
            ...reach(a),
          });
      },
    )
    .command(
      COMMANDS.show,
      'Show the topology the daemons hold: links with state and RTT, rules with counters',
      (y) =>
        reachOptions(y)
          .positional('file', { type: 'string', describe: "The .vnet file whose daemons to ask (default: every local daemon)" })
          .option('json', { type: 'boolean', describe: 'As JSON' })
          .option('vnet', { type: 'boolean', describe: 'As a .vnet program that describes it' })
          .option('dot', { type: 'boolean', describe: 'As a Graphviz graph' })
          .check((a) => {
            if ([a.json, a.vnet, a.dot].filter(Boolean).length > 1) throw new Error('choose one of --json, --vnet and --dot');
            return true;
          })
          .epilogue('Exit status: 0 shown (daemons that are not running are said to be), 1 error (a file that cannot be read or compiled, a machine that cannot be reached), 2 usage error.'),
      (a) => {
        run = async () =>
          (await import('./show.js')).show(io, {
            file: a.file,
            format: a.json ? 'json' : a.vnet ? 'vnet' : a.dot ? 'dot' : 'table',
            color: a.color,
            ...reach(a),
          });
      },
    )
    .command(
      COMMANDS.infer,
      "Show the application topology VTTIF infers from the VMs' traffic (turning inference on where it is off)",
      (y) =>
        reachOptions(y)
          .positional('file', { type: 'string', describe: 'The .vnet file whose daemons report (default: every local daemon)' })
          .option('json', { type: 'boolean', describe: 'As JSON: matrix, topology, VM-to-host map, parameters, timestamp' })
          .option('dot', { type: 'boolean', describe: 'As a Graphviz graph, edge width by intensity' })
          .option('svg', { type: 'string', describe: 'Also draw the topology and the traffic matrix (heat map) into this SVG file; with --watch, redrawn at each settled change' })
          .option('watch', { type: 'boolean', describe: 'Print a line for each settled change, until interrupted' })
          .option('max-changes', { type: 'number', describe: 'With --watch: stop after this many settled changes' })
          .option('collector', { type: 'string', describe: 'The daemon that aggregates (default: the one already set, else the star\'s hub)' })
          .option('rate', { type: 'number', describe: 'Update rate: reports per second from each daemon (at most 20)' })
          .option('sample-every', { type: 'number', describe: 'Count one frame in N at random and scale, as sFlow does (default 1: every frame)' })
          .option('window', { type: 'string', describe: "Smoothing interval in seconds, or 'auto' (twice the daemons' configuration time: their CONFIGTIME bound, else their longest commit)" })
          .option('threshold', { type: 'number', describe: 'Detection threshold: fraction of the most intense pair an edge must reach' })
          .check((a) => {
            if ([a.json, a.dot, a.watch].filter(Boolean).length > 1) throw new Error('choose one of --json, --dot and --watch');
            if (typeof a.window === 'string' && a.window !== 'auto' && !/^[0-9]*\.?[0-9]+$/.test(a.window)) throw new Error(`--window must be seconds or 'auto', not '${a.window}'`);
            return true;
          })
          .epilogue('Exit status: 0 shown (or, with --watch, stopped after --max-changes or by Ctrl-C), 1 error, 2 usage error.'),
      (a) => {
        run = async () =>
          (await import('./infer.js')).infer(io, {
            file: a.file,
            format: a.json ? 'json' : a.dot ? 'dot' : 'table',
            svg: a.svg,
            watch: a.watch ?? false,
            maxChanges: a['max-changes'],
            collector: a.collector,
            rate: a.rate,
            sampleEvery: a['sample-every'],
            window: a.window,
            threshold: a.threshold,
            color: a.color,
            ...reach(a),
          });
      },
    )
    .command(
      COMMANDS.route,
      'Print the path a frame from <src> to <dst> (MACs) takes, hop by hop, with the rule that matched at each',
      (y) =>
        reachOptions(y)
          .positional('src', { type: 'string', demandOption: true, describe: 'Source MAC' })
          .positional('dst', { type: 'string', demandOption: true, describe: 'Destination MAC (ff:ff:ff:ff:ff:ff for a broadcast)' })
          .option('from', { type: 'string', describe: "The daemon where the frame starts (default: the source VM's)" })
          .option('file', { alias: 'f', type: 'string', describe: 'The .vnet file whose daemons to ask (default: every local daemon)' })
          .option('json', { type: 'boolean', default: false, describe: 'As JSON' })
          .epilogue('Exit status: 0 every path ends in an interface, 1 a dead end, loop or missing link, 2 usage error.'),
      (a) => {
        run = async () =>
          (await import('./route.js')).route(io, {
            src: a.src,
            dst: a.dst,
            from: a.from,
            file: a.file,
            json: a.json,
            color: a.color,
            ...reach(a),
          });
      },
    )
    .command(
      COMMANDS.up,
      'Start the daemons a .vnet file names and establish its topology (apply without asking)',
      (y) =>
        reachOptions(y)
          .positional('file', { type: 'string', demandOption: true, describe: 'The .vnet file' })
          .option('json', { type: 'boolean', default: false, describe: 'Print the outcome as JSON' })
          .option('iface', IFACE)
          .option('proxy', { type: 'string', describe: "The Proxy's machine (default: 'proxy', else the first HOST)" })
          .epilogue('Exit status: 0 success, 1 error, 130 stopped by Ctrl-C (it starts no more daemons, and names those it started, which keep running, and how to stop them).'),
      (a) => {
        run = async () =>
          (await import('./up.js')).up(io, { file: a.file, json: a.json, allowBackboneDelete: false, proxy: a.proxy, color: a.color, iface: a.iface, ...reach(a) });
      },
    )
    .command(
      COMMANDS.down,
      "Remove a .vnet file's links and rules from its daemons, then stop them",
      (y) =>
        reachOptions(y)
          .positional('file', { type: 'string', demandOption: true, describe: 'The .vnet file given to up' })
          .option('json', { type: 'boolean', default: false, describe: 'Print the outcome as JSON' })
          .epilogue('Exit status: 0 removed and stopped, 1 error (the report says what was done where), 2 usage error.'),
      (a) => {
        run = async () => (await import('./up.js')).down(io, { file: a.file, json: a.json, color: a.color, ...reach(a) });
      },
    )
    .command(
      COMMANDS['ssh-close'],
      'Close the SSH connections kept open for later commands (stop every keeper)',
      (y) => y,
      () => {
        run = async () => (await import('./live.js')).sshClose(io);
      },
    )
    .command(
      COMMANDS.adapt,
      'Adapt a spec to inferred traffic: add fast paths (and with --placement move VMs), write the result as a .vnet file',
      (y) =>
        reachOptions(y)
          .option('matrix', { alias: 'm', type: 'string', describe: "The inference, as 'vnetc infer --json' prints it" })
          .option('live', { type: 'boolean', default: false, describe: "Ask the spec's collector for the inference instead (VTTIF must be on: vnetc infer)" })
          .option('watch', { type: 'boolean', default: false, describe: 'Live, and write NAME-1.vnet, NAME-2.vnet, … each time the inference settles on a change' })
          .option('max-changes', { type: 'number', describe: 'With --watch: stop after this many files' })
          .option('spec', { alias: 's', type: 'string', demandOption: true, describe: 'The .vnet file the daemons were set up from (the base)' })
          .option('k', { type: 'string', describe: "Add at most N fast paths, busiest host pairs first ('all': every pair with traffic; the default)" })
          .option('budget', { type: 'number', describe: 'Add fast paths while their total cost stays within B (cost model in docs/ADAPT.md)' })
          .option('placement', { type: 'boolean', default: false, describe: 'Also choose where VMs run (MapVM), and list the migrations' })
          .option('network', { alias: 'n', type: 'string', describe: 'Host-to-host bandwidth, latency, link costs and host capacity (JSON; docs/ADAPT.md)' })
          .option('algorithm', {
            choices: ['best', 'greedy', 'improved', 'optimal'] as const,
            default: 'best' as const,
            describe: "Which answer to write: the papers' greedy heuristics, the improving search, the exact optimum, or the best of all three",
          })
          .option('seed', { type: 'number', default: 1, describe: 'Seed of the improving search (the same seed gives the same file)' })
          .option('out', { alias: 'o', type: 'string', describe: 'Write the adapted .vnet here (default: standard output, the summary on standard error)' })
          .option('delta', { type: 'boolean', default: false, describe: 'Write only the changes, as a saved plan against the base spec' })
          .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON (needs --out)' })
          .example('$0 adapt -m m.json -s star8.vnet -k 4 -o adapted.vnet', 'the four busiest host pairs get fast paths')
          .example('$0 adapt -m m.json -s star8.vnet --placement -n net.json -o adapted.vnet', 'move VMs onto well-connected hosts, then add fast paths')
          .epilogue('Exit status: 0 written, 1 a bad input file, 2 usage error. Review the result with vnetc plan --state <base>.'),
      (a) => {
        run = async () =>
          (await import('./adapt.js')).adaptCommand(io, {
            matrix: a.matrix,
            live: a.live,
            watch: a.watch,
            maxChanges: a['max-changes'],
            ...reach(a),
            spec: a.spec,
            k: a.k,
            budget: a.budget,
            placement: a.placement,
            network: a.network,
            out: a.out,
            delta: a.delta,
            json: a.json,
            algorithm: a.algorithm,
            seed: a.seed,
            color: a.color,
          });
      },
    )
    .command(
      COMMANDS.gen,
      'Expand requirements (hosts, Proxy, VMs, a topology) into a complete .vnet file (format in docs/GEN.md)',
      (y) =>
        y
          .positional('file', { type: 'string', demandOption: true, describe: 'The requirements file (- for stdin)' })
          .option('out', { alias: 'o', type: 'string', describe: 'Write the .vnet here (default: standard output)' })
          .example('$0 gen samples/ring3.vgen -o ring3.vnet', 'a star of three hosts with a ring of fast paths')
          .epilogue('Exit status: 0 written, 1 the requirements are wrong, 2 usage or I/O error.'),
      (a) => {
        run = async () => (await import('./gen.js')).gen(io, { file: a.file === STDIN_ARG ? '-' : a.file, out: a.out });
      },
    )
    .command(
      COMMANDS.demo,
      'Run the whole workflow on this machine: local daemons, synthetic VMs, star, plan, apply a fast-path ring, show, route',
      (y) => y.option('keep', { type: 'boolean', default: false, describe: 'Leave the daemons running at the end' }),
      (a) => {
        run = async () => (await import('./demo.js')).demo(io, { color: a.color, keep: a.keep });
      },
    )
    .command(
      COMMANDS.patterns,
      'Run the patterns workload (a synthetic BSP application) on VMs attached to local daemons, and time it',
      (y) =>
        y
          .option('topology', {
            alias: 't',
            choices: PATTERN_KINDS,
            demandOption: true,
            describe: 'What the VMs exchange each iteration (docs/PATTERNS.md)',
          })
          .option('vms', { alias: 'n', type: 'number', demandOption: true, describe: 'Number of VMs (2 to 1024)' })
          .option('hosts', { type: 'number', describe: 'Number of hosts the VMs are spread over, round-robin (default: one per VM)' })
          .option('dims', { type: 'string', describe: 'Grid sizes for mesh2d/mesh3d/torus2d/torus3d, like 2x4 (default: most nearly square or cubic)' })
          .option('size', { type: 'number', default: 4096, describe: 'Message size in bytes (split into 1500-byte frames)' })
          .option('compute-ms', { type: 'number', describe: 'Compute phase per iteration, in ms (default 0)' })
          .option('ratio', {
            type: 'number',
            describe: `Compute/communicate ratio: the first ${CALIBRATION_ITERATIONS} iterations compute nothing; then each compute phase lasts this times their mean communication phase`,
          })
          .option('iterations', { alias: 'k', type: 'number', default: 100, describe: 'Iterations to run' })
          .option('timeout-ms', { type: 'number', default: 2000, describe: "How long a VM waits for a partner's message before it counts the iteration lost" })
          .option('shared-interface', { type: 'boolean', default: false, describe: "Put each host's VMs behind one interface (frames between them bypass vnetd)" })
          .option('link-proto', { choices: ['tcp', 'udp'] as const, default: 'tcp' as const, describe: 'Transport of the star links' })
          .option('json', { type: 'boolean', default: false, describe: 'Print the result as JSON' })
          .example('$0 patterns --topology ring --vms 8', 'neighbour exchange among 8 VMs on 8 hosts')
          .example('$0 patterns -t all-to-all -n 16 --hosts 4 --size 65536 --ratio 1', 'all-to-all, 4 VMs a host, compute as long as communication')
          .epilogue(
            'Topologies:\n' +
              PATTERN_KINDS.map((k) => hanging(`  ${k.padEnd(11)} `, PATTERN_DESCRIPTIONS[k], WIDTH)).join('\n') +
              '\n\nRuns on this machine alone (no root, no SSH) and removes everything it started, also on Ctrl-C. Exit status: 0 ran (or ran until Ctrl-C), 2 usage error, 130/143 stopped at once by a second Ctrl-C/SIGTERM.',
          ),
      (a) => {
        run = async () =>
          (await import('./patterns.js')).patterns(io, {
            topology: a.topology,
            vms: a.vms,
            hosts: a.hosts,
            dims: a.dims,
            size: a.size,
            computeMs: a['compute-ms'],
            ratio: a.ratio,
            iterations: a.iterations,
            timeoutMs: a['timeout-ms'],
            sharedInterface: a['shared-interface'],
            linkProto: a['link-proto'],
            json: a.json,
          });
      },
    )
    // yargs checks choices before .check runs, and says so in two lines of its own: this finds the bad one first, to say it in one.
    // (yargs passes itself as the second argument, which its typings leave out.)
    .middleware(
      ((a: Record<string, unknown>, y: { getOptions(): unknown }) => {
        parserOptions = y.getOptions() as ParserOptions;
        badChoice ??= invalidChoice(a, parserOptions);
      }) as (a: Record<string, unknown>) => void,
      true,
    )
    // yargs passes its parser options here, not the alias map its typings name.
    .check((a, o) => {
      const options = o as unknown as ParserOptions;
      const message = repeatedFlag(a, options) ?? notANumber(argv, a, options) ?? notASwitchValue(argv, options) ?? emptyValue(a, options);
      if (message) throw new Error(message);
      return true;
    })
    .demandCommand(1, 'say which command to run')
    .recommendCommands()
    .strict()
    .version(version())
    .help()
    .alias('h', 'help')
    .wrap(WIDTH)
    .exitProcess(false);

  let failure: string | undefined;
  let output = '';
  await cli.parseAsync(argv, {}, (err: Error | undefined, _argv: unknown, out: string) => {
    if (err) failure = badChoice ?? err.message;
    output = out;
  });
  const first = argv[0];
  const command = first !== undefined && Object.hasOwn(COMMANDS, first) ? (first as keyof typeof COMMANDS) : undefined;
  if (failure !== undefined) {
    if (command === undefined && first !== undefined && !first.startsWith('-')) {
      // yargs would say "Unknown arguments: valdate, x", and its own suggestion is lost to strict().
      const close = (await import('../src/lang/suggest.js')).suggest(first, Object.keys(COMMANDS));
      return usageError(io, `'${first}' is not a vnetc command${close ? `; did you mean '${close}'?` : ''}`, usageExit);
    }
    // A mistyped flag first: yargs may have taken the word after it as its value, and then says a file is missing.
    const unknown = parserOptions && (await unknownFlag(argv, parserOptions));
    if (unknown) return usageError(io, unknown, usageExit, command);
    const extra = /^Unknown arguments?: (.+)$/.exec(failure);
    if (extra && command) return usageError(io, `unexpected argument${extra[1]!.includes(', ') ? 's' : ''} ${extra[1]!.split(', ').map((w) => `'${w}'`).join(', ')}: vnetc ${COMMANDS[command]}`, usageExit, command);
    const missing = /^Not enough non-option arguments: got (\d+)/.exec(failure);
    if (missing && command) {
      const wanted = COMMANDS[command].split(' ').slice(1).filter((w) => w.startsWith('<'));
      failure = `'vnetc ${command}' needs ${wanted.slice(Number(missing[1])).join(' ')}: vnetc ${COMMANDS[command]}`;
    }
    return usageError(io, failure, usageExit, command);
  }
  if (output) {
    io.stdout.write(output + '\n'); // --help or --version
    return 0;
  }
  if (!run) return usageError(io, 'say which command to run', usageExit);
  try {
    return await run();
  } catch (e) {
    if (e instanceof UsageError) return usageError(io, e.message, usageExit, command);
    throw e;
  }
}

/**
 * A flag that takes one value, given more than once: yargs collects the values
 * into an array, which each command would then read as 'a,b' or trip on. Which
 * one the person meant is theirs to say, so it is a usage error.
 */
type ParserOptions = { alias: Record<string, string[]>; array: string[]; boolean: string[]; number: string[]; string: string[]; choices: Record<string, unknown[]>; key: Record<string, unknown> };

function repeatedFlag(a: Record<string, unknown>, o: ParserOptions): string | undefined {
  for (const key of canonical(o, Object.keys(o.key))) {
    const value = a[key];
    if (o.array.includes(key) || !Array.isArray(value)) continue;
    return `${flagName(key, o)} is given ${value.length} times (${value.map((v) => `'${String(v)}'`).join(', ')}); give it once`;
  }
  return undefined;
}

/** The words before `--`: after it, everything is an argument, however it looks. */
function flagWords(argv: readonly string[]): readonly string[] {
  const end = argv.indexOf('--');
  return end < 0 ? argv : argv.slice(0, end);
}

/**
 * A number flag given something else, or nothing: yargs keeps only the NaN it
 * made of it (and of a missing value, only the default; of an empty one, 0),
 * so the text is found again in the command line and echoed as typed.
 */
function notANumber(all: readonly string[], a: Record<string, unknown>, o: ParserOptions): string | undefined {
  const argv = flagWords(all);
  for (const key of canonical(o, o.number)) {
    const names = [key, ...(o.alias[key] ?? [])].map((n) => (n.length === 1 ? '-' : '--') + n);
    const value = a[key];
    for (let i = argv.length - 1; i >= 0; i--) {
      const t = argv[i]!;
      const name = names.find((n) => t === n || t.startsWith(n + '='));
      if (name === undefined) continue;
      const given = t === name ? argv[i + 1] : t.slice(name.length + 1);
      // An empty value (--size '', --size=) is no number, though yargs makes it 0.
      if (given === undefined || given.trim() === '' || (t === name && /^-[^\d.]/.test(given))) return `${flagName(key, o)} needs a number after it`;
      if (typeof value === 'number' && Number.isNaN(value)) return `${flagName(key, o)} takes a number, not '${given === '\0-' ? '-' : given}'`;
      break;
    }
  }
  return undefined;
}

/**
 * The first flag on the command line that the command does not take, said as
 * typed (yargs drops the dashes and splits -dxyz into letters), with the
 * nearest flag it does take.
 */
async function unknownFlag(argv: readonly string[], o: ParserOptions): Promise<string | undefined> {
  const known = new Set([...Object.keys(o.key), ...Object.values(o.alias).flat()]);
  // In -ofile, what follows a flag that takes a value is the value.
  const valued = new Set([...o.string, ...o.number].flatMap((k) => [k, ...(o.alias[k] ?? [])]));
  for (const t of flagWords(argv)) {
    // Not flags: words, '-' (standard input, rewritten), negative numbers.
    if (!t.startsWith('-') || t === '\0-' || /^-[\d.]/.test(t)) continue;
    const long = t.startsWith('--');
    const name = t.slice(long ? 2 : 1).split('=')[0]!;
    for (const n of long ? [name] : [...name]) {
      if (!long && valued.has(n)) break;
      if (known.has(n) || (n.startsWith('no-') && known.has(n.slice(3)))) continue;
      const close = (await import('../src/lang/suggest.js')).suggest(n, canonical(o, Object.keys(o.key)).filter((k) => k.length > 1));
      return `unknown flag '${long ? '--' : '-'}${n}'${close ? `; did you mean '--${close}'?` : ''}`;
    }
  }
  return undefined;
}

/**
 * A switch given a value other than true or false (`--check=5`): yargs
 * reads it as false, which would quietly turn `fmt --check` off in CI.
 */
function notASwitchValue(argv: readonly string[], o: ParserOptions): string | undefined {
  for (const t of flagWords(argv)) {
    const m = /^--?(?:no-)?([^=]+)=(.*)$/s.exec(t);
    if (!m || m[2] === 'true' || m[2] === 'false') continue;
    const key = canonical(o, o.boolean).find((k) => k === m[1] || (o.alias[k] ?? []).includes(m[1]!));
    if (key !== undefined) return `${flagName(key, o)} is a switch: write ${t.split('=')[0]} alone (or --no-${key}), not '${t}'`;
  }
  return undefined;
}

/** A flag with choices (--topology, --link-proto, --algorithm) given another value: the flag, the value and what it takes. */
function invalidChoice(a: Record<string, unknown>, o: ParserOptions): string | undefined {
  for (const [key, choices] of Object.entries(o.choices)) {
    for (const value of ([] as unknown[]).concat(a[key])) {
      if (value === undefined || choices.includes(value)) continue;
      const list = choices.map(String).join(', ');
      if (value === '') return `${flagName(key, o)} needs one of ${list} after it`;
      return `${flagName(key, o)} takes one of ${list}, not '${String(value)}'`;
    }
  }
  return undefined;
}

/** A string flag given nothing (`--proxy ''`, or `--proxy` last): no command has a use for an empty name or path. */
function emptyValue(a: Record<string, unknown>, o: ParserOptions): string | undefined {
  for (const key of canonical(o, o.string)) {
    if (a[key] === '') return `${flagName(key, o)} needs a value after it`;
  }
  return undefined;
}

/** Keys as declared, not their aliases (yargs sets every alias to the same value). */
function canonical(o: ParserOptions, keys: readonly string[]): string[] {
  const aliases = new Set(Object.values(o.alias).flat());
  return keys.filter((k) => !aliases.has(k));
}

/** A flag as the help spells it: --topology (-t). */
function flagName(key: string, o: ParserOptions): string {
  const others = (o.alias[key] ?? []).map((n) => (n.length === 1 ? '-' : '--') + n);
  return (key.length === 1 ? '-' : '--') + key + (others.length ? ` (${others.join(', ')})` : '');
}

/** One line saying what was wrong, and where the help for what was being run is. */
function usageError(io: Io, message: string, code: number, command?: string): number {
  io.stderr.write(`vnetc: error: ${message}\nRun 'vnetc ${command ? `${command} ` : ''}--help' for usage.\n`);
  return code;
}
