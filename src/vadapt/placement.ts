import type { Problem } from './problem.js';

/**
 * VM placement (004 §9.3.2, Appendix B.2, MapVM), as the prose states it
 * (the appendix's pseudo-code has index slips):
 *
 * 1. the VM adjacency list, heaviest pair first (Problem.pairs);
 * 2. host pairs by decreasing bandwidth (the slower direction counts; ties:
 *    lower round-trip latency, then host order);
 * 3. first pass: each pair of communicating VMs neither of which is mapped
 *    goes to the best host pair neither of whose hosts has a VM yet;
 * 4. second pass, the stragglers, in adjacency-list order: each goes to the
 *    host with room that has the most bandwidth to its heaviest mapped
 *    partner (the partner's own host counts, with its internal bandwidth).
 *
 * VMs that exchange no traffic stay where they are when there is room.
 * Endpoints on the Proxy's LAN are never moved. Returns the new mapping.
 */
export function mapVms(p: Problem): Int32Array {
  const H = p.proxy;
  const n = p.vms.length;
  const place = new Int32Array(n).fill(-1);
  const load = new Int32Array(H);
  for (let v = 0; v < n; v++) if (!p.movable[v]) place[v] = H;
  const put = (v: number, h: number): void => {
    place[v] = h;
    load[h]!++;
  };

  const hostPairs = sortedHostPairs(p);
  const used = new Uint8Array(H);
  let next = 0;
  for (const { a, b } of p.pairs) {
    if (place[a]! >= 0 || place[b]! >= 0) continue;
    while (next < hostPairs.length) {
      const [i, j] = hostPairs[next]!;
      if (!used[i] && !used[j] && p.capacity[i]! > 0 && p.capacity[j]! > 0) break;
      next++;
    }
    if (next === hostPairs.length) break;
    const [i, j] = hostPairs[next++]!;
    used[i] = used[j] = 1;
    put(a, i);
    put(b, j);
  }

  const partners = partnerLists(p);
  const { bw, size } = p;
  const best = (v: number, score: (h: number) => number): number => {
    let pick = -1;
    let top = -Infinity;
    for (let h = 0; h < H; h++) {
      if (load[h]! >= p.capacity[h]!) continue;
      const s = score(h);
      // Ties: stay put (no migration), then host order.
      if (s > top || (s === top && h === p.current[v])) {
        top = s;
        pick = h;
      }
    }
    return pick;
  };
  const straggle = (v: number): void => {
    if (place[v]! >= 0) return;
    const partner = partners[v]!.find((u) => place[u]! >= 0);
    let h: number;
    if (partner === undefined) h = best(v, (x) => p.capacity[x]! - load[x]!);
    else {
      const at = place[partner]!;
      h = best(v, (x) => Math.min(bw[x * size + at]!, bw[at * size + x]!));
    }
    if (h < 0) throw new Error('no host has room: the capacity check must come first');
    put(v, h);
  };
  for (const { a, b } of p.pairs) {
    straggle(a);
    straggle(b);
  }
  for (let v = 0; v < n; v++) {
    if (place[v]! >= 0) continue;
    const here = p.current[v]!;
    if (load[here]! < p.capacity[here]!) put(v, here);
    else straggle(v);
  }
  return place;
}

/** Host pairs (i < j), best connected first. */
function sortedHostPairs(p: Problem): [number, number][] {
  const H = p.proxy;
  const { bw, lat, size } = p;
  const count = (H * (H - 1)) / 2;
  const key = new Float64Array(count);
  const rtt = new Float64Array(count);
  const idx = new Uint32Array(count);
  let k = 0;
  for (let i = 0; i < H; i++) {
    for (let j = i + 1; j < H; j++) {
      key[k] = Math.min(bw[i * size + j]!, bw[j * size + i]!);
      rtt[k] = lat[i * size + j]! + lat[j * size + i]!;
      idx[k] = k;
      k++;
    }
  }
  // k enumerates (i, j) in host order, so the last tie-break is k itself.
  idx.sort((x, y) => key[y]! - key[x]! || rtt[x]! - rtt[y]! || x - y);
  const rowStart = (i: number): number => i * H - (i * (i + 1)) / 2;
  const out: [number, number][] = new Array(count);
  let i = 0;
  for (let m = 0; m < count; m++) {
    const e = idx[m]!;
    // Find the row of pair e: rows hold H-1, H-2, ... pairs.
    i = 0;
    let lo = 0;
    let hi = H - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (rowStart(mid) <= e) lo = mid;
      else hi = mid - 1;
    }
    i = lo;
    out[m] = [i, i + 1 + (e - rowStart(i))];
  }
  return out;
}

/** Each VM's partners, heaviest first. */
function partnerLists(p: Problem): number[][] {
  const lists: number[][] = p.vms.map(() => []);
  for (const { a, b } of p.pairs) {
    lists[a]!.push(b);
    lists[b]!.push(a);
  }
  return lists;
}
