/*
 * What vnetd_pcap.c (capture and injection) and fastpath.c (frames of known
 * flows forwarded without JavaScript) share.
 */
#ifndef VNETD_CAPTURE_H
#define VNETD_CAPTURE_H
#include "vnetd_session.h"
#include <net/if.h> /* IF_NAMESIZE */
#include <pcap/pcap.h>
#include <sys/socket.h>
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

/*
 * Where a local interface's frames come from and go: a device opened
 * through libpcap, or (pcap NULL) a UDP socket that exchanges one frame per
 * datagram with one peer, QEMU's datagram netdev. Both are fast-path ports.
 */
typedef struct {
  pcap_t *pcap;
  /* The device name the capture was opened by (empty for a UDP socket): the device is this interface only while it has that name. */
  char device[IF_NAMESIZE];
  /* pcap's selectable descriptor, or the UDP socket. */
  int fd;
  /* The UDP socket's peer: the only sender whose datagrams are frames, and where frames go. */
  struct sockaddr_storage peer;
  socklen_t peerlen;
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
/* The capture behind a handle from open() or openDatagram(), or NULL (an exception is pending). */
capture_t *capture_unwrap(napi_env env, napi_value handle);
/* Sends one frame towards the device or the peer; -1 with errno when the kernel refuses it. */
int capture_send(capture_t *c, const unsigned char *frame, size_t len);
/* A frame captured on fast-path port `port`: 1 when the fast path forwarded it, 0 when JavaScript must. */
int fp_captured(datapath_t *dp, int port, const unsigned char *frame, size_t len);
/* A native poll callback ended: the fast path sends its batches and hands JavaScript the rest. */
void fp_round_end(datapath_t *dp);
/* The capture is closing: the fast path lets go of it. */
void fp_forget_capture(datapath_t *dp, capture_t *c);
/* ip:port as a socket address of `family` (a v4 address on an AF_INET6 socket is v4-mapped); -1 when ip is not one. */
int ip_sockaddr(int family, const char *ip, uint32_t port, struct sockaddr_storage *out, socklen_t *len);
int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/*
 * A non-blocking UDP socket bound to host:port (IPv6 ones dual-stack), with
 * `buffer` bytes of socket buffers each way: its descriptor and family; -1
 * with a JavaScript exception (code EADDRINUSE and the like) when it cannot
 * be bound.
 */
int udp_bound(napi_env env, const char *host, uint32_t port, int buffer, int *family);
/* The port a socket is bound to (port 0 asks for any); -1 when it is not. */
int local_port(int fd);
/*
 * Points `n` recvmmsg headers at `n` buffers of `size` bytes each from
 * `bufs`, at `n` addresses and (unless NULL) at `n` control buffers of
 * `controllen` bytes each. Once; mmsg_rearm before every recvmmsg.
 */
void mmsg_setup(struct mmsghdr *m, struct iovec *iov, unsigned char *bufs, size_t size, struct sockaddr_storage *from, char *control,
                size_t controllen, int n);
/* Resets what recvmmsg both reads and overwrites: the address and control lengths. */
void mmsg_rearm(struct mmsghdr *m, int n, size_t controllen);
/*
 * After a poll callback with status < 0: libuv stops a poll on POLLERR and
 * says EBADF, whatever the socket's error was. For a socket that stays
 * usable (a packet socket whose device was set down: ENETDOWN, and it
 * captures again once the device is up) this takes the error, which clears
 * it, and polls again; otherwise the socket would never be read again. The
 * UDP sockets take it the same way, should one ever report an error.
 */
void poll_resume(uv_poll_t *h, int fd, uv_poll_cb cb);
/* Adds the fast path's functions to the addon's exports. */
napi_status fp_define(napi_env env, napi_value exports);

#endif
