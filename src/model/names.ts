/**
 * What a machine, user or interface name may contain. These names travel to
 * ssh command lines and daemon configuration, so they are held to a strict
 * alphabet here, once, rather than escaped ad hoc downstream.
 */

/** Host names, IPv4 literals and ssh_config aliases. */
const MACHINE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
/** POSIX portable user names (no leading '-', which ssh would read as an option). */
const USER = /^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}$/;
/** Linux IFNAMSIZ is 16 including the terminator. */
const INTERFACE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$/;

export const isMachineName = (s: string): boolean => MACHINE.test(s);
export const isUserName = (s: string): boolean => USER.test(s);
export const isInterfaceName = (s: string): boolean => INTERFACE.test(s);
