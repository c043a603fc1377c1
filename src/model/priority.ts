/**
 * The priority of a match (000 §2.1: "calculated dynamically based on the
 * strength of the match"). PROTOCOL.md "Forwarding semantics" holds the
 * table and the reasons for it; this is its one implementation.
 *
 * The destination slot counts first: Ethernet forwards by destination, and a
 * rule that names the frame's destination knows where that host is, while
 * one that names only the source does not. The source refines within a
 * destination strength. NONE sits below ANY in the destination slot, so
 * default rules rank below every other rule and among themselves by source.
 * Every (source, destination) shape has its own priority, so rules tie only
 * when they have the same shape.
 */
import type { Address } from './state.js';

export type SourceQualifier = 'exact' | 'not' | 'any';
export type DestinationQualifier = Address['q'];

const SOURCE_STRENGTH: Record<SourceQualifier, number> = { exact: 2, not: 1, any: 0 };
const DESTINATION_STRENGTH: Record<DestinationQualifier, number> = { exact: 3, not: 2, any: 1, none: 0 };

/** 1 (ANY source, NONE destination) to 12 (exact, exact). */
export function priorityOf(src: SourceQualifier, dst: DestinationQualifier): number {
  return DESTINATION_STRENGTH[dst] * 3 + SOURCE_STRENGTH[src] + 1;
}

export const MAX_PRIORITY = priorityOf('exact', 'exact');
