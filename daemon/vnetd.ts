#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';

/**
 * vnetd's entry point. A daemon compiles its code at start, not on first use:
 * V8 normally compiles each function the first time it runs, so a freshly
 * started daemon spent most of its first commit compiling (the configuration
 * `vnetc up` pushes right after starting it), and one idle for a while had
 * its unused code flushed and paid again. Eagerly, start-up takes about 50 ms
 * longer and a few MB more, once. `vnetd ctl` is a short-lived pipe and keeps
 * V8's defaults. The flags must be set before the rest is compiled, hence the
 * dynamic import.
 */
if (process.argv[2] !== 'ctl') setFlagsFromString('--no-lazy --no-flush-bytecode');
await import('./vnetd-cli.js');
