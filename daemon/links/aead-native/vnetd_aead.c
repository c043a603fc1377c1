/*
 * vnetd's link record protection on the OpenSSL inside Node (its symbols
 * are resolved from the node binary, its headers ship with Node's), so
 * nothing is linked and only a C compiler is needed. node:crypto can only
 * make a new cipher object per message, and on the data path that object
 * cost more than the cipher itself; here each direction of a session keeps
 * one context. The records are the same bytes either way: daemon/links/
 * session.ts uses this when it was built and node:crypto when not, and the
 * tests check one against the other. The pcap addon builds the same session
 * code (vnetd_session.c) into itself for its fast path.
 */
#include "vnetd_session.h"

NAPI_MODULE_INIT() {
  return vs_define(env, exports) == napi_ok ? exports : NULL;
}
