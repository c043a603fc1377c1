/*
 * vnetd's binding to libpcap, kept to what the daemon needs: open a device
 * in promiscuous, immediate mode capturing only inbound frames
 * (pcap_setdirection(PCAP_D_IN), so frames the daemon injects are never
 * captured and forwarded again), inject frames, list devices, count drops.
 * Frames reach JavaScript from libuv's poll on pcap's selectable fd, on the
 * main thread, with no threads of our own: each pcap_dispatch round is copied
 * into one buffer and handed over in one call, because a call into
 * JavaScript and a buffer per frame cost more than the frame's forwarding.
 * Frames of flows the fast path has cached (fastpath.c) are forwarded there
 * instead and never reach JavaScript.
 *
 * The same handles, and the same fast path, serve QEMU's datagram netdev
 * (openDatagram): a UDP socket that exchanges one frame per datagram with
 * one peer, the VM's QEMU, which needs neither libpcap nor root.
 */
#define _GNU_SOURCE /* sendmmsg */
#define NAPI_VERSION 8
#include <node_api.h>
#include <arpa/inet.h> /* INET6_ADDRSTRLEN */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_packet.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "capture.h"

#define BATCH 64

/* One round's frames as JavaScript receives them: per frame a 4-byte
 * little-endian header (the captured length, bit 31 set when the frame was
 * cut short by the snap length), then the frame. */
#define FRAME_HEADER 4
#define TRUNCATED 0x80000000u
/* A datagram on a QEMU socket from anyone but its peer is staged as an empty entry marked truncated: JavaScript counts it, nothing more. */
#define NOT_FROM_PEER TRUNCATED
/* QEMU sockets read this many datagrams per recvmmsg, each into a buffer as large as any datagram. */
#define DGRAM_BATCH 16
#define DGRAM_MAX 65536

/*
 * Those buffers and recvmmsg's headers for them, set up once: one set for
 * every QEMU socket of a thread (each reads on its loop's thread, and a
 * batch is staged or forwarded before the next read).
 */
typedef struct {
  unsigned char bufs[DGRAM_BATCH * DGRAM_MAX];
  struct mmsghdr m[DGRAM_BATCH];
  struct iovec iov[DGRAM_BATCH];
  struct sockaddr_storage from[DGRAM_BATCH];
} dgram_rx_t;
static _Thread_local dgram_rx_t *dgram_rx;
/* Rounds at least this large are handed to JavaScript as they are; smaller ones (a ping) are copied, keeping the stage. */
#define HANDOVER 16384

/* `code` (an errno's name, or NULL) is the thrown error's .code, for what JavaScript acts on rather than only says. */
static napi_value throw_coded(napi_env env, const char *code, const char *what, const char *detail) {
  char buf[PCAP_ERRBUF_SIZE + 256];
  snprintf(buf, sizeof buf, "%s: %s", what, detail);
  napi_throw_error(env, code, buf);
  return NULL;
}

static napi_value throw_msg(napi_env env, const char *what, const char *detail) {
  return throw_coded(env, NULL, what, detail);
}

static int get_string(napi_env env, napi_value v, char *out, size_t size) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, out, size, &len) != napi_ok) return -1;
  return len + 1 < size ? 0 : -1;
}

/* Stages one entry for JavaScript: a u32le header (`header`), then `len` bytes. */
static void stage(capture_t *c, uint32_t header, const u_char *bytes, size_t len) {
  size_t need = c->staged + FRAME_HEADER + len;
  if (need > c->stage_size) {
    size_t size = c->stage_size ? c->stage_size : c->stage_hint ? c->stage_hint : 65536;
    while (size < need) size *= 2;
    unsigned char *grown = realloc(c->stage, size);
    if (!grown) return; /* dropped, as the kernel drops when its buffer is full */
    c->stage = grown;
    c->stage_size = size;
  }
  unsigned char *at = c->stage + c->staged;
  at[0] = header & 0xff;
  at[1] = (header >> 8) & 0xff;
  at[2] = (header >> 16) & 0xff;
  at[3] = header >> 24;
  if (len) memcpy(at + FRAME_HEADER, bytes, len);
  c->staged = need;
}

static void on_frame(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes) {
  capture_t *c = (capture_t *)user;
  if (c->dp && h->caplen == h->len && fp_captured(c->dp, c->port, bytes, h->caplen)) return;
  stage(c, h->caplen | (h->caplen < h->len ? TRUNCATED : 0), bytes, h->caplen);
}

static void free_stage(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* Hands the staged frames to JavaScript in one buffer and one call. */
static void deliver(capture_t *c) {
  napi_env env = c->env;
  napi_value buf;
  void *data;
  size_t n = c->staged;
  c->staged = 0;
  if (n == 0 || c->closing) return;
  if (n < HANDOVER) {
    if (napi_create_buffer_copy(env, n, c->stage, &data, &buf) != napi_ok) return;
  } else {
    /* A full round is handed over rather than copied; the next round gets a new stage. */
    if (napi_create_external_buffer(env, n, c->stage, free_stage, NULL, &buf) != napi_ok) return;
    c->stage_hint = c->stage_size;
    c->stage = NULL;
    c->stage_size = 0;
  }
  js_call(env, c->async, c->on_frame, buf);
}

void js_call(napi_env env, napi_async_context async, napi_ref fn, napi_value arg) {
  napi_value cb, recv, result;
  napi_get_reference_value(env, fn, &cb);
  napi_get_global(env, &recv);
  if (napi_make_callback(env, async, recv, cb, 1, &arg, &result) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
      napi_fatal_exception(env, e);
    }
  }
}

static void free_capture(uv_handle_t *h) {
  capture_t *c = (capture_t *)h->data;
  if (c->pcap) pcap_close(c->pcap);
  free(c->stage);
  free(c);
}

static void really_close(capture_t *c) {
  if (c->dp) fp_forget_capture(c->dp, c);
  uv_poll_stop(&c->poll);
  /* A QEMU socket closes now, not when libuv lets go of the handle: an interface opened again at once can bind the port. */
  if (!c->pcap) close(c->fd);
  napi_delete_reference(c->env, c->on_frame);
  napi_async_destroy(c->env, c->async);
  uv_close((uv_handle_t *)&c->poll, free_capture);
}

/* Reads a QEMU socket's datagrams, a batch at a time: each from the peer is a frame, anything else is counted and dropped. */
static void read_datagrams(capture_t *c) {
  dgram_rx_t *rx = dgram_rx;
  if (!rx) {
    if (!(rx = dgram_rx = malloc(sizeof *rx))) return;
    mmsg_setup(rx->m, rx->iov, rx->bufs, DGRAM_MAX, rx->from, NULL, 0, DGRAM_BATCH);
  }
  struct mmsghdr *m = rx->m;
  struct sockaddr_storage *from = rx->from;
  for (int rounds = 0; rounds < 16 && !c->closing; rounds++) {
    mmsg_rearm(m, DGRAM_BATCH, 0);
    int got = recvmmsg(c->fd, m, DGRAM_BATCH, MSG_DONTWAIT, NULL);
    if (got <= 0) break;
    for (int i = 0; i < got; i++) {
      const unsigned char *frame = rx->iov[i].iov_base;
      size_t len = m[i].msg_len;
      if (!same_addr(&from[i], &c->peer)) stage(c, NOT_FROM_PEER, NULL, 0);
      else if (!c->dp || !fp_captured(c->dp, c->port, frame, len)) stage(c, (uint32_t)len, frame, len);
    }
    deliver(c);
    if (got < DGRAM_BATCH) break;
  }
}

static void on_readable(uv_poll_t *h, int status, int events) {
  capture_t *c = (capture_t *)h->data;
  (void)events;
  if (c->closing) return;
  /* A device set down and up again is captured again; one that is gone, attached() tells JavaScript. */
  if (status < 0) poll_resume(h, c->fd, on_readable);
  napi_handle_scope scope;
  napi_open_handle_scope(c->env, &scope);
  c->dispatching = 1;
  if (c->pcap) {
    /* Drain what is there, a batch at a time, so one busy device cannot starve the loop for long. */
    for (int rounds = 0; rounds < 16 && !c->closing; rounds++) {
      int got = pcap_dispatch(c->pcap, BATCH, on_frame, (u_char *)c);
      deliver(c);
      if (got < BATCH) break;
    }
  } else {
    read_datagrams(c);
  }
  if (c->dp) fp_round_end(c->dp);
  c->dispatching = 0;
  napi_close_handle_scope(c->env, scope);
  if (c->closing) really_close(c);
}

/* Starts reading a new capture's descriptor; its handle for JavaScript. */
static napi_value watch(napi_env env, capture_t *c, napi_value on_frames) {
  uv_loop_t *loop;
  napi_value name, handle;
  c->env = env;
  CHECK(napi_get_uv_event_loop(env, &loop));
  CHECK(napi_create_reference(env, on_frames, 1, &c->on_frame));
  CHECK(napi_create_string_utf8(env, "vnetd-pcap", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &c->async));
  uv_poll_init(loop, &c->poll, c->fd);
  c->poll.data = c;
  uv_poll_start(&c->poll, UV_READABLE, on_readable);
  CHECK(napi_create_external(env, c, NULL, NULL, &handle));
  return handle;
}

/* open(device, filter | null, snaplen, bufferBytes, onFrames(staged)) -> handle; staged as above FRAME_HEADER */
static napi_value open_capture(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  char device[256], filter[4096], err[PCAP_ERRBUF_SIZE] = "";
  int32_t snaplen, buffer;
  napi_valuetype t;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5 || get_string(env, argv[0], device, sizeof device) != 0 || strlen(device) >= IF_NAMESIZE) return throw_msg(env, "open", "device name missing or too long");
  CHECK(napi_typeof(env, argv[1], &t));
  int has_filter = t == napi_string;
  if (has_filter && get_string(env, argv[1], filter, sizeof filter) != 0) return throw_msg(env, "open", "filter too long");
  CHECK(napi_get_value_int32(env, argv[2], &snaplen));
  CHECK(napi_get_value_int32(env, argv[3], &buffer));
  CHECK(napi_typeof(env, argv[4], &t));
  if (t != napi_function) return throw_msg(env, "open", "onFrames must be a function");

  pcap_t *p = pcap_create(device, err);
  if (!p) return throw_msg(env, device, err);
  pcap_set_snaplen(p, snaplen);
  pcap_set_promisc(p, 1);
  pcap_set_immediate_mode(p, 1);
  pcap_set_buffer_size(p, buffer);
  int rc = pcap_activate(p);
  if (rc < 0) {
    const char *why = rc == PCAP_ERROR_NO_SUCH_DEVICE ? "no such device"
                      : rc == PCAP_ERROR_PERM_DENIED ? "permission denied (vnetd needs root or CAP_NET_RAW and CAP_NET_ADMIN)"
                      : rc == PCAP_ERROR_IFACE_NOT_UP ? "the interface is not up"
                      : pcap_geterr(p);
    snprintf(err, sizeof err, "%s", why);
    pcap_close(p);
    return throw_coded(env, rc == PCAP_ERROR_NO_SUCH_DEVICE ? "ENODEV" : rc == PCAP_ERROR_IFACE_NOT_UP ? "ENETDOWN" : NULL, device, err);
  }
  if (pcap_datalink(p) != DLT_EN10MB) {
    pcap_close(p);
    return throw_msg(env, device, "not an Ethernet device (vnetd carries Ethernet frames)");
  }
  if (pcap_setdirection(p, PCAP_D_IN) != 0) {
    snprintf(err, sizeof err, "cannot capture inbound only: %s", pcap_geterr(p));
    pcap_close(p);
    return throw_msg(env, device, err);
  }
  if (has_filter) {
    struct bpf_program prog;
    if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0 || pcap_setfilter(p, &prog) != 0) {
      snprintf(err, sizeof err, "bad filter: %s", pcap_geterr(p));
      pcap_close(p);
      return throw_msg(env, device, err);
    }
    pcap_freecode(&prog);
  }
  int fd = pcap_get_selectable_fd(p);
  if (fd < 0 || pcap_setnonblock(p, 1, err) != 0) {
    pcap_close(p);
    return throw_msg(env, device, fd < 0 ? "no selectable file descriptor" : err);
  }

  capture_t *c = calloc(1, sizeof *c);
  if (!c) {
    pcap_close(p);
    return throw_msg(env, device, "out of memory");
  }
  c->pcap = p;
  memcpy(c->device, device, strlen(device) + 1);
  c->fd = fd;
  return watch(env, c, argv[4]);
}

/*
 * openDatagram(host, port, peerIp, peerPort, bufferBytes, onFrames) -> handle:
 * a UDP socket bound to host:port (port 0: any) whose datagrams from
 * peerIp:peerPort are frames, staged as open()'s are, and to which frames
 * for the VM are sent.
 */
static napi_value open_datagram(napi_env env, napi_callback_info info) {
  size_t argc = 6, n;
  napi_value argv[6];
  char host[INET6_ADDRSTRLEN + 1], peer[INET6_ADDRSTRLEN + 1];
  uint32_t port, peer_port, buffer;
  napi_valuetype t;
  int family;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6 || napi_get_value_string_utf8(env, argv[0], host, sizeof host, &n) != napi_ok || napi_get_value_uint32(env, argv[1], &port) != napi_ok ||
      napi_get_value_string_utf8(env, argv[2], peer, sizeof peer, &n) != napi_ok || napi_get_value_uint32(env, argv[3], &peer_port) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &buffer) != napi_ok || napi_typeof(env, argv[5], &t) != napi_ok || t != napi_function)
    return throw_msg(env, "openDatagram", "(host, port, peerIp, peerPort, bufferBytes, onFrames)");
  capture_t *c = calloc(1, sizeof *c);
  if (!c) return throw_msg(env, "openDatagram", "out of memory");
  c->fd = udp_bound(env, host, port, (int)buffer, &family);
  if (c->fd < 0) {
    free(c);
    return NULL;
  }
  if (peer_port == 0 || peer_port > 65535 || ip_sockaddr(family, peer, peer_port, &c->peer, &c->peerlen) != 0) {
    close(c->fd);
    free(c);
    return throw_msg(env, peer, "the peer is not an IP address and port of the socket's family");
  }
  return watch(env, c, argv[5]);
}

capture_t *capture_unwrap(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p || ((capture_t *)p)->closing) {
    napi_throw_error(env, NULL, "vnetd-pcap: closed or not a capture handle");
    return NULL;
  }
  return (capture_t *)p;
}

/* A QEMU socket is non-blocking: a VM that does not keep up loses frames, as a full device queue loses them. */
int capture_send(capture_t *c, const unsigned char *frame, size_t len) {
  const struct sockaddr *to = c->pcap ? NULL : (const struct sockaddr *)&c->peer;
  return sendto(c->fd, frame, len, 0, to, c->pcap ? 0 : c->peerlen) < 0 ? -1 : 0;
}

/* The capture handle a one-argument call was given; NULL with an exception when it is not one. */
static capture_t *handle_arg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  return capture_unwrap(env, argv[0]);
}

/* boundPort(handle) -> the UDP port an openDatagram() socket is bound to (it may have asked for any) */
static napi_value bound_port(napi_env env, napi_callback_info info) {
  napi_value out;
  capture_t *c = handle_arg(env, info);
  if (!c) return NULL;
  int port = c->pcap ? -1 : local_port(c->fd);
  if (port < 0) return throw_msg(env, "boundPort", "not a datagram socket");
  CHECK(napi_create_uint32(env, (uint32_t)port, &out));
  return out;
}

/*
 * attached(handle) -> whether a pcap capture's device is still there. When a
 * device is unregistered (a VM's tap removed as QEMU exits, a veth deleted),
 * the kernel leaves its packet sockets open and silent, bound to no device
 * (ifindex -1), and libpcap in non-blocking mode never says so; a device
 * made later under the same name is another device, which they do not see.
 * A device merely set down keeps its sockets, and they capture again once it
 * is up. A device renamed keeps them too, bound to its ifindex, and would go
 * on being captured under a name vnetd was not given, while a device made
 * with the configured name went uncaptured: so, as Open vSwitch does with a
 * port's renamed device, the capture counts as attached only while its
 * name it was opened by still names its ifindex. QEMU sockets have no device:
 * always attached.
 */
static napi_value attached(napi_env env, napi_callback_info info) {
  napi_value out;
  capture_t *c = handle_arg(env, info);
  if (!c) return NULL;
  int on = 1;
  if (c->pcap) {
    struct sockaddr_ll sll;
    socklen_t len = sizeof sll;
    /*
     * By the name's index, not the index's name: a capture opened by one of
     * the device's alternative names (ip link property add altname) is
     * attached too. Asked on the capture's own socket (if_nametoindex opens
     * one of its own each time, and says 0, "gone", when it cannot).
     */
    struct ifreq r;
    memset(&r, 0, sizeof r);
    on = getsockname(c->fd, (struct sockaddr *)&sll, &len) == 0 && sll.sll_ifindex > 0 && strlen(c->device) < sizeof r.ifr_name;
    if (on) {
      memcpy(r.ifr_name, c->device, strlen(c->device));
      on = ioctl(c->fd, SIOCGIFINDEX, &r) == 0 && r.ifr_ifindex == sll.sll_ifindex;
    }
  }
  CHECK(napi_get_boolean(env, on, &out));
  return out;
}

/*
 * sendMany(handle, frames: Buffer[]) -> { sent, sentBytes, failed, errno? }
 * One sendmmsg(2) on the capture's own packet socket (what pcap_inject
 * sends on), or the QEMU socket, for up to BATCH frames: a record's frames
 * leave in one system call, not one each. A frame the kernel will not take (over the MTU, say)
 * is counted in `failed`, with the last one's errno, and the rest still go.
 */
static napi_value send_many(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out, v;
  uint32_t count, sent = 0, failed = 0;
  double sent_bytes = 0;
  int last_errno = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  capture_t *c = capture_unwrap(env, argv[0]);
  if (!c) return NULL;
  CHECK(napi_get_array_length(env, argv[1], &count));
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  for (uint32_t next = 0; next < count;) {
    unsigned n = 0;
    for (; n < BATCH && next + n < count; n++) {
      void *data;
      size_t len;
      CHECK(napi_get_element(env, argv[1], next + n, &v));
      CHECK(napi_get_buffer_info(env, v, &data, &len));
      iov[n].iov_base = data;
      iov[n].iov_len = len;
      memset(&msgs[n], 0, sizeof msgs[n]);
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      if (!c->pcap) {
        msgs[n].msg_hdr.msg_name = &c->peer;
        msgs[n].msg_hdr.msg_namelen = c->peerlen;
      }
    }
    int r = sendmmsg(c->fd, msgs, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) r = 0;
    for (int i = 0; i < r; i++) sent_bytes += (double)iov[i].iov_len;
    sent += (uint32_t)r;
    next += (uint32_t)r;
    if ((unsigned)r < n) {
      /* The kernel stopped at this frame: send it alone to learn why (or to send it, if that passed). */
      if (capture_send(c, iov[r].iov_base, iov[r].iov_len) < 0) {
        failed++;
        last_errno = errno;
      } else {
        sent++;
        sent_bytes += (double)iov[r].iov_len;
      }
      next++;
    }
  }
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_uint32(env, sent, &v));
  CHECK(napi_set_named_property(env, out, "sent", v));
  CHECK(napi_create_double(env, sent_bytes, &v));
  CHECK(napi_set_named_property(env, out, "sentBytes", v));
  CHECK(napi_create_uint32(env, failed, &v));
  CHECK(napi_set_named_property(env, out, "failed", v));
  if (failed) {
    CHECK(napi_create_int32(env, last_errno, &v));
    CHECK(napi_set_named_property(env, out, "errno", v));
  }
  return out;
}

/* stats(handle) -> { received, dropped, ifDropped } as libpcap counts them */
static napi_value stats(napi_env env, napi_callback_info info) {
  napi_value out, v;
  struct pcap_stat s;
  capture_t *c = handle_arg(env, info);
  if (!c) return NULL;
  if (!c->pcap) return throw_msg(env, "stats", "not a pcap capture");
  memset(&s, 0, sizeof s);
  pcap_stats(c->pcap, &s);
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_uint32(env, s.ps_recv, &v));
  CHECK(napi_set_named_property(env, out, "received", v));
  CHECK(napi_create_uint32(env, s.ps_drop, &v));
  CHECK(napi_set_named_property(env, out, "dropped", v));
  CHECK(napi_create_uint32(env, s.ps_ifdrop, &v));
  CHECK(napi_set_named_property(env, out, "ifDropped", v));
  return out;
}

/* close(handle): stops capturing now; the pcap handle is released once libuv lets go of the fd. */
static napi_value close_capture(napi_env env, napi_callback_info info) {
  capture_t *c = handle_arg(env, info);
  if (!c) return NULL;
  c->closing = 1;
  /* Closed from a frame's callback: on_readable closes it once its reading stops (a QEMU socket's loop checks `closing`). */
  if (!c->dispatching) really_close(c);
  else if (c->pcap) pcap_breakloop(c->pcap);
  return NULL;
}

/* devices() -> [{ name, description, loopback, up, running }] */
static napi_value devices(napi_env env, napi_callback_info info) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_if_t *all, *d;
  napi_value out, o, v;
  uint32_t i = 0;
  (void)info;
  if (pcap_findalldevs(&all, err) != 0) return throw_msg(env, "listing devices", err);
  CHECK(napi_create_array(env, &out));
  for (d = all; d; d = d->next) {
    CHECK(napi_create_object(env, &o));
    CHECK(napi_create_string_utf8(env, d->name, NAPI_AUTO_LENGTH, &v));
    CHECK(napi_set_named_property(env, o, "name", v));
    CHECK(napi_create_string_utf8(env, d->description ? d->description : "", NAPI_AUTO_LENGTH, &v));
    CHECK(napi_set_named_property(env, o, "description", v));
    CHECK(napi_get_boolean(env, (d->flags & PCAP_IF_LOOPBACK) != 0, &v));
    CHECK(napi_set_named_property(env, o, "loopback", v));
    CHECK(napi_get_boolean(env, (d->flags & PCAP_IF_UP) != 0, &v));
    CHECK(napi_set_named_property(env, o, "up", v));
    CHECK(napi_get_boolean(env, (d->flags & PCAP_IF_RUNNING) != 0, &v));
    CHECK(napi_set_named_property(env, o, "running", v));
    CHECK(napi_set_element(env, out, i++, o));
  }
  pcap_freealldevs(all);
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"open", NULL, open_capture, NULL, NULL, NULL, napi_default, NULL},
      {"openDatagram", NULL, open_datagram, NULL, NULL, NULL, napi_default, NULL},
      {"boundPort", NULL, bound_port, NULL, NULL, NULL, napi_default, NULL},
      {"attached", NULL, attached, NULL, NULL, NULL, napi_default, NULL},
      {"sendMany", NULL, send_many, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, stats, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_capture, NULL, NULL, NULL, napi_default, NULL},
      {"devices", NULL, devices, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  /* The same sessions as vnetd-aead's, so the fast path can seal and open the records of the links it carries. */
  if (vs_define(env, exports) != napi_ok || fp_define(env, exports) != napi_ok) return NULL;
  return exports;
}
