/**
 * The bounds of an Ethernet frame as vnetd carries it, one definition for
 * interfaces, the table and the links.
 */

/** Destination and source MAC, then the EtherType: a shorter frame is malformed. */
export const MIN_FRAME = 14;
/** 64 KiB less one: any Ethernet frame, jumbo or not, with room to spare (and it fits a two-byte length). */
export const MAX_FRAME = 65535;
