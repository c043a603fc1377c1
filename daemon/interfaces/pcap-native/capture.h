/*
 * What vnetd_pcap.c (capture and injection) and fastpath.c (frames of known
 * flows forwarded without JavaScript) share.
 */
#ifndef VNETD_CAPTURE_H
#define VNETD_CAPTURE_H
#include "vnetd_session.h"
#include <pcap/pcap.h>
#include <uv.h>

typedef struct datapath datapath_t;

/* Returns NULL from an N-API function, with an exception, when an N-API call fails. */
#define CHECK(call)                                                         \
  do {                                                                      \
    if ((call) != napi_ok) {                                                \
      napi_throw_error(env, NULL, "vnetd-pcap: N-API call failed: " #call); \
      return NULL;                                                          \
    }                                                                       \
  } while (0)

typedef struct {
  pcap_t *pcap;
  unsigned char *stage;
  size_t stage_size, staged;
  /* The size of the last stage handed over: a busy device's next round needs as much. */
  size_t stage_hint;
  uv_poll_t poll;
  napi_env env;
  napi_ref on_frame;
  napi_async_context async;
  int dispatching;
  int closing;
  /* Set while the capture is a fast-path port: frames of cached flows leave from here and never reach JavaScript. */
  datapath_t *dp;
  int port;
} capture_t;

/* Calls JavaScript's `fn` with `arg` from a libuv callback; an exception it throws is the process's uncaught exception, as from any callback. */
void js_call(napi_env env, napi_async_context async, napi_ref fn, napi_value arg);
/* The capture behind a handle from open(), or NULL (an exception is pending). */
capture_t *capture_unwrap(napi_env env, napi_value handle);
/* A frame captured on fast-path port `port`: 1 when the fast path forwarded it, 0 when JavaScript must. */
int fp_captured(datapath_t *dp, int port, const unsigned char *frame, size_t len);
/* A native poll callback ended: the fast path sends its batches and hands JavaScript the rest. */
void fp_round_end(datapath_t *dp);
/* The capture is closing: the fast path lets go of it. */
void fp_forget_capture(datapath_t *dp, capture_t *c);
/* Adds the fast path's functions to the addon's exports. */
napi_status fp_define(napi_env env, napi_value exports);

#endif
