/*
 * One link session's record protection, in C: both directions' ChaCha20-
 * Poly1305 contexts, the sending sequence number and the receiving ordering
 * rule. daemon/links/session.ts uses it when it was built; the pcap addon's
 * fast path (daemon/interfaces/pcap-native/fastpath.c) seals and opens with
 * the same object, so the two never disagree on a sequence number.
 *
 * Records are PROTOCOL.md's: type (1), session tag (2), sequence number (6),
 * payload, 16-byte tag; the nonce is 4 zero bytes then the sequence number
 * as 8 big-endian bytes.
 */
#ifndef VNETD_SESSION_H
#define VNETD_SESSION_H
#define NAPI_VERSION 8
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

#define VS_HEADER_BYTES 9
#define VS_TAG_BYTES 16
#define VS_OVERHEAD (VS_HEADER_BYTES + VS_TAG_BYTES)
#define VS_DATA 0x10

/* vs_open's refusals. */
#define VS_MALFORMED (-1)
#define VS_REPLAY (-2)
#define VS_AUTH (-3)

/* vs_seal's results besides 0. */
#define VS_SPENT (-1)
#define VS_FAILED (-2)

typedef struct vs_session vs_session;

/* Seals the `len` payload bytes at rec + h + VS_HEADER_BYTES in place, writing the header at rec + h and the tag after the payload. */
int vs_seal(vs_session *s, unsigned type, unsigned char *rec, size_t h, size_t len);
/* Opens the record in place: its type (>= 0), the payload deciphered at rec + VS_HEADER_BYTES; or a refusal, the record unchanged. */
int vs_open(vs_session *s, unsigned char *rec, size_t len);
void vs_retain(vs_session *s);
void vs_release(vs_session *s);
/* The session behind a handle from `session()`, or NULL (a pending exception says why). */
vs_session *vs_unwrap(napi_env env, napi_value handle);
/* Adds session, sealRecord and openRecord to an addon's exports. */
napi_status vs_define(napi_env env, napi_value exports);

#endif
