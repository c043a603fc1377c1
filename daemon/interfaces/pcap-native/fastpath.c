/*
 * vnetd's fast path: frames of flows the JavaScript forwarding table has
 * already decided are forwarded here, in C, inside libuv's poll callback,
 * and never enter JavaScript. Node's event loop costs 60-120 us of CPU per
 * wake-up that reaches JavaScript on a small machine (bench:dataplane's
 * floor), a C process about 20, and a round trip through one overlay hop
 * wakes the two daemons twice each.
 *
 * The split is Open vSwitch's: JavaScript owns the rules, the links and
 * every decision, and installs a flow here (ingress port, source MAC,
 * destination MAC -> egress ports) after it forwarded the flow's first frame
 * itself. Any change to the table flushes every flow. What the fast path
 * carries it counts per flow and per port in arrays JavaScript shares, and
 * JavaScript folds those counts into its rule, port, link and VTTIF counters
 * when they are read.
 *
 * Fast-path ports are local interfaces (vnetd_pcap.c: pcap captures and
 * QEMU datagram sockets; and QEMU stream connections, which JavaScript
 * hands over like a TCP link's and are read here the same way, without
 * sealing), UDP links and TCP links.
 * A link is its native session (vnetd_session.c, shared with JavaScript, so
 * both count the same sequence numbers) and where its records go: the
 * peer's address on the daemon's one UDP socket, which this file owns, or
 * the link's TCP connection, which JavaScript hands over once the handshake
 * is done. Datagrams that are not DATA records of a known session go to
 * JavaScript as they came; the other records of a handed-over connection,
 * and frames whose flow is not cached, go opened. Everything JavaScript
 * sends on a handed-over connection goes through here too, so records
 * leave in the order they were sealed. Frames for a TCP link are batched
 * per poll callback into one record, as JavaScript batches them per
 * event-loop turn. Frames for a UDP link stay one per datagram, but the
 * datagrams of one poll callback leave in one send (UDP GSO) when they fit
 * the path's MTU, and arrive in one receive (UDP GRO): on a small machine
 * the kernel's cost per packet, not per byte, is what bounds a UDP link.
 * A TCP segment opening a connection (SYN) to or from a UDP link goes to
 * JavaScript, which clamps its MSS so that the connection's frames fit.
 *
 * Everything here runs on the main thread, like the JavaScript that changes
 * it, so nothing locks.
 */
#define _GNU_SOURCE
#include "capture.h"
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAYS 4
#define MAX_OUT 8
#define MAX_DATAGRAM 65535
#define RECV_BATCH 32
#define DP_MAGIC 0x76647061u
/* One GSO send: at most 64 datagrams (the kernel's limit before 6.x raised it) and one IPv4 datagram's bytes. */
#define GSO_SEGMENTS 64
#define GSO_BYTES 65507
/* The path MTU is read from the kernel again after this long, or at once after a send it refused as too big. */
#define FIT_TTL_MS 1000
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* Per port, in the shared counts: what the fast path itself moved, and the errno of the last frame a device refused. */
enum { RX_FRAMES, RX_BYTES, TX_FRAMES, TX_BYTES, TX_ERRORS, LAST_ERRNO, PORT_FIELDS };
enum { PORT_NONE, PORT_IFACE, PORT_UDP, PORT_TCP };

/*
 * One upcall entry's header: u32le payload length, u8 kind, u8 extra, u16le
 * port, then (UP_RAW only) `extra` bytes of the sender's address as text.
 * UP_RAW: a datagram, port = the sender's UDP port. UP_OPENED: a DATA frame
 * of link port `port` with no cached flow. UP_RECORD: another record of
 * link port `port`, opened, extra = its type. UP_FAILED: the TCP connection
 * of port `port` failed, extra = why (TCP_*), the payload says it in words.
 */
#define UP_RAW 0
#define UP_OPENED 1
#define UP_RECORD 2
#define UP_FAILED 3
#define UP_HEADER 8
enum { TCP_CLOSED = 1, TCP_ERROR, TCP_FRAMING, TCP_REPLAY, TCP_AUTH, TCP_BATCH, TCP_SPENT };

#define LENGTH_BYTES 4
#define BATCH_ENTRY 2
#define MAX_FRAME 65535
#define MIN_FRAME 14
#define STR_(x) #x
#define STR(x) STR_(x)
#define TCP_MAX_PAYLOAD (MAX_FRAME + BATCH_ENTRY)
#define MAX_RECORD (TCP_MAX_PAYLOAD + VS_OVERHEAD)
#define TCP_RX_SIZE (4 * (LENGTH_BYTES + MAX_RECORD))
/* A plain stream's frames of one poll callback leave together up to this many bytes (the batch buffer's size). */
#define PLAIN_BATCH (LENGTH_BYTES + MAX_RECORD)
/* Unsent bytes beyond which frames for a TCP link are dropped, as JavaScript's link drops them (tcp.ts). */
#define TCP_TX_LIMIT (1 << 20)

/*
 * A connection read and written here: a TCP link's (sealed records, the
 * handshake done in JavaScript), or a QEMU stream netdev's (`plain`: each
 * frame bare after its length, as QEMU writes them).
 */
typedef struct tcp {
  uv_poll_t poll;
  datapath_t *dp;
  int fd;
  uint32_t port;
  int events;
  int plain;
  int failed, closing, dispatching;
  unsigned char *rx;
  size_t rx_len;
  /* Bytes the kernel has not taken yet, from tx + tx_off. */
  unsigned char *tx;
  size_t tx_off, tx_len, tx_size;
  /* The next DATA record: length prefix, header, frames (each after its u16 length), room for the tag. Plain: frames, each after its u32 length. */
  unsigned char *batch;
  size_t batch_fill;
} tcp_t;

/* A UDP link's datagrams of one poll callback, sealed back to back for one GSO send: all `seg` bytes long but the last. */
typedef struct {
  unsigned char *buf;
  size_t fill, seg;
  uint32_t count;
  /* Their frames' bytes, counted once they leave. */
  double bytes;
  /* The last datagram is shorter than `seg`: nothing may follow it in this send. */
  int closed;
} udp_batch_t;

typedef struct {
  int kind;
  capture_t *cap;
  tcp_t *tcp;
  vs_session *session;
  struct sockaddr_storage addr;
  socklen_t addrlen;
  udp_batch_t out;
  /* UDP: the largest record that reaches the peer unfragmented (0: none known), as of `fit_at` (the loop's ms). */
  size_t fit;
  uint64_t fit_at;
  /* On dp->dirty: a batch to send when the poll callback ends. */
  int dirty;
} port_t;

typedef struct {
  uint64_t src, dst;
  uint32_t ingress, gen;
  uint32_t nout;
  /* The flow enters or leaves by a UDP link: its SYNs go to JavaScript. Port kinds change only with a flush. */
  int via_udp;
  uint16_t out[MAX_OUT];
} flow_t;

struct datapath {
  uint32_t magic;
  int refs;
  napi_env env;
  uv_loop_t *loop;
  /* Where everything that is not forwarded here goes (UP_* entries, one buffer per poll callback). */
  napi_ref on_up;
  napi_async_context async;
  /* Ports whose batch has frames, to be sent when the current callback ends. */
  uint32_t *dirty;
  uint32_t ndirty;
  /* Shared with JavaScript: per flow slot (frames, bytes), per port PORT_FIELDS. */
  napi_ref flow_counts_ref, port_counts_ref;
  double *flow_counts, *port_counts;
  flow_t *flows;
  uint32_t nflows, set_shift, gen, victim;
  port_t *ports;
  uint32_t nports;
  /* UDP ports by peer address: open addressing over port ids, rebuilt when a link changes. */
  int32_t *by_addr;
  uint32_t by_addr_mask;
  /* The daemon's UDP socket. */
  int udp_fd;
  int udp_family;
  uv_poll_t udp_poll;
  int udp_open, udp_closing, udp_dispatching;
  /* The kernel segments UDP sends (UDP_SEGMENT): cleared for good when it says it cannot. Such sends so far, and their datagrams (STATS?). */
  int gso;
  double gso_sends, gso_datagrams;
  unsigned char *stage;
  size_t stage_size, staged;
  /* recvmmsg's buffers. */
  unsigned char *rx_bufs;
  struct mmsghdr rx_msgs[RECV_BATCH];
  struct iovec rx_iov[RECV_BATCH];
  struct sockaddr_storage rx_addr[RECV_BATCH];
  char rx_control[RECV_BATCH][CMSG_SPACE(sizeof(int))];
};

static void stage_up(datapath_t *dp, int kind, int extra, uint32_t port, const char *text, const unsigned char *data, size_t len);
static void deliver_up(datapath_t *dp);
static void tcp_failed(datapath_t *dp, tcp_t *t, int why, const char *text);
static void tcp_send(datapath_t *dp, tcp_t *t, const unsigned char *data, size_t len);
static void tcp_flush(datapath_t *dp, uint32_t id);
static void udp_flush(datapath_t *dp, uint32_t id);
static void on_tcp_event(uv_poll_t *h, int status, int events);
static void clear_port(datapath_t *dp, uint32_t id);

static void dp_release(datapath_t *dp) {
  if (--dp->refs > 0) return;
  for (uint32_t i = 0; i < dp->nports; i++) {
    if (dp->ports[i].session) vs_release(dp->ports[i].session);
    free(dp->ports[i].out.buf);
  }
  napi_delete_reference(dp->env, dp->flow_counts_ref);
  napi_delete_reference(dp->env, dp->port_counts_ref);
  free(dp->flows);
  free(dp->ports);
  free(dp->by_addr);
  free(dp->stage);
  free(dp->rx_bufs);
  free(dp->dirty);
  napi_delete_reference(dp->env, dp->on_up);
  napi_async_destroy(dp->env, dp->async);
  dp->magic = 0;
  free(dp);
}

/* --- flows ------------------------------------------------------------ */

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static uint64_t mac_at(const unsigned char *p) {
  return ((uint64_t)p[0] << 40) | ((uint64_t)p[1] << 32) | ((uint64_t)p[2] << 24) | ((uint64_t)p[3] << 16) | ((uint64_t)p[4] << 8) | p[5];
}

static uint32_t set_of(const datapath_t *dp, uint32_t ingress, uint64_t src, uint64_t dst) {
  uint64_t h = (src * 0x9e3779b97f4a7c15ull) ^ (dst * 0xc2b2ae3d27d4eb4full) ^ ((uint64_t)ingress << 48);
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  return (uint32_t)(h >> dp->set_shift) * WAYS;
}

static int find_flow(const datapath_t *dp, uint32_t ingress, uint64_t src, uint64_t dst) {
  uint32_t first = set_of(dp, ingress, src, dst);
  for (uint32_t w = 0; w < WAYS; w++) {
    const flow_t *f = &dp->flows[first + w];
    if (f->gen == dp->gen && f->src == src && f->dst == dst && f->ingress == ingress) return (int)(first + w);
  }
  return -1;
}

/* Forgets every flow in O(1): slots of older generations never match. */
static void flush_flows(datapath_t *dp) {
  if (++dp->gen == 0) {
    memset(dp->flows, 0, sizeof(flow_t) * dp->nflows);
    dp->gen = 1;
  }
}

/* --- sending ---------------------------------------------------------- */

static void count(datapath_t *dp, uint32_t port, int field, double n) {
  dp->port_counts[port * PORT_FIELDS + field] += n;
}

static void mark_dirty(datapath_t *dp, uint32_t id) {
  port_t *p = &dp->ports[id];
  if (p->dirty) return;
  p->dirty = 1;
  dp->dirty[dp->ndirty++] = id;
}

/*
 * The largest UDP payload that reaches `to` unfragmented: the MTU of the
 * kernel's route there (lowered by ICMP "fragmentation needed" as the kernel
 * learns it) less the IP and UDP headers; 0 when there is no route.
 */
static size_t path_room(const struct sockaddr_storage *to) {
  struct sockaddr_storage a = *to;
  const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)to;
  if (to->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a;
    memset(&a, 0, sizeof a);
    v4->sin_family = AF_INET;
    v4->sin_port = v6->sin6_port;
    memcpy(&v4->sin_addr, &v6->sin6_addr.s6_addr[12], 4);
  }
  int inet = a.ss_family == AF_INET, mtu = 0, headers = inet ? 20 + 8 : 40 + 8;
  socklen_t mlen = sizeof mtu;
  int fd = socket(a.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  /* A connected UDP socket sends nothing: it only looks the route up. */
  if (connect(fd, (struct sockaddr *)&a, inet ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) != 0 ||
      getsockopt(fd, inet ? IPPROTO_IP : IPPROTO_IPV6, inet ? IP_MTU : IPV6_MTU, &mtu, &mlen) != 0)
    mtu = 0;
  close(fd);
  return mtu > headers ? (size_t)(mtu - headers) : 0;
}

/* path_room for a UDP port's peer, read again once a second (or after a send the kernel found too big). */
static size_t port_fit(datapath_t *dp, port_t *p) {
  uint64_t now = uv_now(dp->loop);
  if (p->fit_at == 0 || now - p->fit_at >= FIT_TTL_MS) {
    p->fit = path_room(&p->addr);
    p->fit_at = now ? now : 1;
  }
  return p->fit;
}

/* Sends a UDP port's batch one datagram at a time; the kernel fragments what does not fit. */
static void udp_send_each(datapath_t *dp, uint32_t id) {
  port_t *p = &dp->ports[id];
  udp_batch_t *b = &p->out;
  for (size_t off = 0; off < b->fill; off += b->seg) {
    size_t dlen = b->fill - off < b->seg ? b->fill - off : b->seg;
    if (sendto(dp->udp_fd, b->buf + off, dlen, MSG_DONTWAIT, (struct sockaddr *)&p->addr, p->addrlen) < 0) {
      count(dp, id, TX_ERRORS, 1);
      continue;
    }
    count(dp, id, TX_FRAMES, 1);
    count(dp, id, TX_BYTES, (double)(dlen - VS_OVERHEAD));
  }
}

/* Sends a UDP port's batch: one GSO send, the kernel cutting it into the datagrams (and the peer's, with GRO, joining them again). */
static void udp_flush(datapath_t *dp, uint32_t id) {
  port_t *p = &dp->ports[id];
  udp_batch_t *b = &p->out;
  if (b->count == 0) return;
  if (b->count == 1 || !dp->gso) {
    udp_send_each(dp, id);
  } else {
    char control[CMSG_SPACE(sizeof(uint16_t))] = {0};
    struct iovec iov = {b->buf, b->fill};
    struct msghdr m = {.msg_name = &p->addr, .msg_namelen = p->addrlen, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    uint16_t seg = (uint16_t)b->seg;
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof seg);
    memcpy(CMSG_DATA(c), &seg, sizeof seg);
    if (sendmsg(dp->udp_fd, &m, MSG_DONTWAIT) >= 0) {
      dp->gso_sends++;
      dp->gso_datagrams += b->count;
      count(dp, id, TX_FRAMES, b->count);
      count(dp, id, TX_BYTES, b->bytes);
    } else if (errno == EMSGSIZE || errno == EIO || errno == EINVAL || errno == EOPNOTSUPP) {
      /*
       * EMSGSIZE: the path's MTU shrank since it was read; older kernels
       * said EINVAL for that, so EINVAL with a segment the path no longer
       * takes is that too. Otherwise this kernel or device cannot segment
       * UDP.
       */
      int err = errno;
      size_t room = err == EINVAL ? path_room(&p->addr) : 0;
      if (err == EMSGSIZE || (room && b->seg > room)) p->fit_at = 0;
      else dp->gso = 0;
      udp_send_each(dp, id);
    } else {
      /* A full socket buffer, no route: dropped, as a congested or unreachable link drops in JavaScript. */
      count(dp, id, TX_ERRORS, b->count);
    }
  }
  b->fill = b->seg = 0;
  b->count = 0;
  b->bytes = 0;
  b->closed = 0;
}

/* Seals a frame for a UDP port onto its batch; one that does not fit the path leaves at once, on its own, for the kernel to fragment. */
static void udp_queue(datapath_t *dp, uint32_t id, const unsigned char *frame, size_t len) {
  port_t *p = &dp->ports[id];
  udp_batch_t *b = &p->out;
  size_t dlen = len + VS_OVERHEAD;
  if (!b->buf && !(b->buf = malloc(GSO_BYTES))) {
    count(dp, id, TX_ERRORS, 1);
    return;
  }
  int batched = dp->gso && dlen <= port_fit(dp, p);
  if (b->count && (!batched || b->closed || dlen > b->seg || b->count == GSO_SEGMENTS || b->fill + dlen > GSO_BYTES)) udp_flush(dp, id);
  unsigned char *at = b->buf + b->fill;
  memcpy(at + VS_HEADER_BYTES, frame, len);
  if (vs_seal(p->session, VS_DATA, at, 0, len) != 0) {
    /*
     * Sequence numbers spent (or OpenSSL failed): what is sealed already
     * leaves, the port is let go (its datagrams then go to JavaScript, as no
     * address matches a cleared one), and JavaScript's next frame for the
     * link finds out and re-keys.
     */
    clear_port(dp, id);
    flush_flows(dp);
    count(dp, id, TX_ERRORS, 1);
    return;
  }
  if (b->count == 0) b->seg = dlen;
  else if (dlen < b->seg) b->closed = 1;
  b->count++;
  b->fill += dlen;
  b->bytes += (double)len;
  if (batched) mark_dirty(dp, id);
  else udp_flush(dp, id);
}

static void send_on(datapath_t *dp, uint32_t id, const unsigned char *frame, size_t len) {
  port_t *p = &dp->ports[id];
  if (p->kind == PORT_IFACE) {
    if (capture_send(p->cap, frame, len) < 0) {
      count(dp, id, TX_ERRORS, 1);
      dp->port_counts[id * PORT_FIELDS + LAST_ERRNO] = errno;
      return;
    }
  } else if (p->kind == PORT_UDP && len + VS_OVERHEAD <= MAX_DATAGRAM - 28) {
    /* Counted when it leaves. */
    udp_queue(dp, id, frame, len);
    return;
  } else if (p->kind == PORT_TCP && !p->tcp->failed && p->tcp->tx_len <= TCP_TX_LIMIT && len <= MAX_FRAME) {
    tcp_t *t = p->tcp;
    if (t->plain) {
      if (t->batch_fill + LENGTH_BYTES + len > PLAIN_BATCH) tcp_flush(dp, id);
      unsigned char *at = t->batch + t->batch_fill;
      put_be32(at, (uint32_t)len);
      memcpy(at + LENGTH_BYTES, frame, len);
      t->batch_fill += LENGTH_BYTES + len;
    } else {
      /* A full batch leaves now. */
      if (t->batch_fill + BATCH_ENTRY + len > TCP_MAX_PAYLOAD) tcp_flush(dp, id);
      unsigned char *at = t->batch + LENGTH_BYTES + VS_HEADER_BYTES + t->batch_fill;
      at[0] = (unsigned char)(len >> 8);
      at[1] = (unsigned char)len;
      memcpy(at + BATCH_ENTRY, frame, len);
      t->batch_fill += BATCH_ENTRY + len;
    }
    mark_dirty(dp, id);
  } else {
    count(dp, id, TX_ERRORS, 1);
    return;
  }
  count(dp, id, TX_FRAMES, 1);
  count(dp, id, TX_BYTES, (double)len);
}

/* A TCP segment with SYN set, over IPv4 (unfragmented) or IPv6, behind up to two VLAN tags: what mss.ts clamps. */
static int is_tcp_syn(const unsigned char *f, size_t len) {
  size_t o = 12;
  unsigned type = (unsigned)f[12] << 8 | f[13];
  for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88a8); tags++) {
    o += 4;
    if (o + 2 > len) return 0;
    type = (unsigned)f[o] << 8 | f[o + 1];
  }
  o += 2;
  size_t t;
  if (type == 0x0800) {
    if (len < o + 20 || f[o + 9] != 6 || ((f[o + 6] & 0x3f) | f[o + 7]) != 0) return 0;
    t = o + (size_t)(f[o] & 15) * 4;
  } else if (type == 0x86dd) {
    if (len < o + 40 || f[o + 6] != 6) return 0;
    t = o + 40;
  } else {
    return 0;
  }
  return len >= t + 20 && (f[t + 13] & 0x02) != 0;
}

/* Forwards a frame of a cached flow; 0 when the flow is not cached, or the frame is a SYN to or from a UDP link (JavaScript clamps it). */
static int forward(datapath_t *dp, uint32_t ingress, const unsigned char *frame, size_t len) {
  if (len < 14) return 0;
  int slot = find_flow(dp, ingress, mac_at(frame + 6), mac_at(frame));
  if (slot < 0) return 0;
  const flow_t *f = &dp->flows[slot];
  if (f->via_udp && is_tcp_syn(frame, len)) return 0;
  dp->flow_counts[2 * slot] += 1;
  dp->flow_counts[2 * slot + 1] += (double)len;
  count(dp, ingress, RX_FRAMES, 1);
  count(dp, ingress, RX_BYTES, (double)len);
  for (uint32_t i = 0; i < f->nout; i++) send_on(dp, f->out[i], frame, len);
  return 1;
}

int fp_captured(datapath_t *dp, int port, const unsigned char *frame, size_t len) {
  return port >= 0 && (uint32_t)port < dp->nports && dp->ports[port].kind == PORT_IFACE && forward(dp, (uint32_t)port, frame, len);
}

void fp_forget_capture(datapath_t *dp, capture_t *c) {
  for (uint32_t i = 0; i < dp->nports; i++)
    if (dp->ports[i].kind == PORT_IFACE && dp->ports[i].cap == c) memset(&dp->ports[i], 0, sizeof dp->ports[i]);
  flush_flows(dp);
  c->dp = NULL;
  dp_release(dp);
}

/* --- UDP ports by address --------------------------------------------- */

static uint32_t addr_hash(const struct sockaddr_storage *a) {
  uint32_t h = 2166136261u;
  const unsigned char *p;
  size_t n;
  uint16_t port;
  if (a->ss_family == AF_INET) {
    p = (const unsigned char *)&((const struct sockaddr_in *)a)->sin_addr;
    n = 4;
    port = ((const struct sockaddr_in *)a)->sin_port;
  } else {
    p = (const unsigned char *)&((const struct sockaddr_in6 *)a)->sin6_addr;
    n = 16;
    port = ((const struct sockaddr_in6 *)a)->sin6_port;
  }
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  h = (h ^ port) * 16777619u;
  return h ^ (h >> 15);
}

static int rebuild_addresses(datapath_t *dp) {
  uint32_t n = 0, size = 8;
  for (uint32_t i = 0; i < dp->nports; i++) n += dp->ports[i].kind == PORT_UDP;
  while (size < 2 * n) size *= 2;
  int32_t *t = malloc(sizeof *t * size);
  if (!t) return -1;
  for (uint32_t i = 0; i < size; i++) t[i] = -1;
  for (uint32_t i = 0; i < dp->nports; i++) {
    if (dp->ports[i].kind != PORT_UDP) continue;
    uint32_t j = addr_hash(&dp->ports[i].addr) & (size - 1);
    while (t[j] >= 0) j = (j + 1) & (size - 1);
    t[j] = (int32_t)i;
  }
  free(dp->by_addr);
  dp->by_addr = t;
  dp->by_addr_mask = size - 1;
  return 0;
}

static int port_by_addr(const datapath_t *dp, const struct sockaddr_storage *a) {
  for (uint32_t j = addr_hash(a) & dp->by_addr_mask;; j = (j + 1) & dp->by_addr_mask) {
    int32_t id = dp->by_addr[j];
    if (id < 0) return -1;
    if (same_addr(&dp->ports[id].addr, a)) return id;
  }
}

/* --- the UDP socket ------------------------------------------------------ */

static void stage_up(datapath_t *dp, int kind, int extra, uint32_t port, const char *text, const unsigned char *data, size_t len) {
  size_t tlen = text ? strlen(text) : 0, need = dp->staged + UP_HEADER + tlen + len;
  if (need > dp->stage_size) {
    size_t size = dp->stage_size ? dp->stage_size : 65536;
    while (size < need) size *= 2;
    unsigned char *grown = realloc(dp->stage, size);
    if (!grown) return; /* dropped, as a full socket buffer drops */
    dp->stage = grown;
    dp->stage_size = size;
  }
  unsigned char *at = dp->stage + dp->staged;
  uint32_t l = (uint32_t)len;
  at[0] = l & 0xff;
  at[1] = (l >> 8) & 0xff;
  at[2] = (l >> 16) & 0xff;
  at[3] = l >> 24;
  at[4] = (unsigned char)kind;
  at[5] = (unsigned char)(text ? tlen : (size_t)extra);
  at[6] = port & 0xff;
  at[7] = (port >> 8) & 0xff;
  if (tlen) memcpy(at + UP_HEADER, text, tlen);
  memcpy(at + UP_HEADER + tlen, data, len);
  dp->staged = need;
}

/* A datagram for JavaScript, with its sender as text (a v4 peer on a dual-stack socket is ::ffff:a.b.c.d, as node:dgram says it). */
static void stage_datagram(datapath_t *dp, const struct sockaddr_storage *from, const unsigned char *data, size_t len) {
  char text[INET6_ADDRSTRLEN] = "";
  uint16_t port;
  if (from->ss_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)from)->sin_addr, text, sizeof text);
    port = ntohs(((const struct sockaddr_in *)from)->sin_port);
  } else {
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)from)->sin6_addr, text, sizeof text);
    port = ntohs(((const struct sockaddr_in6 *)from)->sin6_port);
  }
  stage_up(dp, UP_RAW, 0, port, text, data, len);
}

static void deliver_up(datapath_t *dp) {
  napi_env env = dp->env;
  napi_value buf;
  void *data;
  size_t n = dp->staged;
  dp->staged = 0;
  if (n == 0) return;
  if (napi_create_buffer_copy(env, n, dp->stage, &data, &buf) != napi_ok) return;
  js_call(env, dp->async, dp->on_up, buf);
}

/* One datagram: forwarded here when it is a DATA record of a fast-path link whose flow is cached, else staged for JavaScript. */
static void received(datapath_t *dp, unsigned char *d, size_t len, const struct sockaddr_storage *from) {
  if (len >= VS_OVERHEAD && d[0] == VS_DATA) {
    int id = port_by_addr(dp, from);
    if (id >= 0) {
      /* A refusal leaves the record as it came: JavaScript opens it again and counts why. */
      if (vs_open(dp->ports[id].session, d, len) == VS_DATA) {
        const unsigned char *frame = d + VS_HEADER_BYTES;
        size_t flen = len - VS_OVERHEAD;
        if (!forward(dp, (uint32_t)id, frame, flen)) stage_up(dp, UP_OPENED, 0, (uint32_t)id, NULL, frame, flen);
        return;
      }
    }
  }
  stage_datagram(dp, from, d, len);
}

static void udp_closed(uv_handle_t *h) {
  dp_release((datapath_t *)h->data);
}

/* The descriptor closes now, not when libuv lets go of the handle: a daemon restarted at once can bind the port again. */
static void udp_really_close(datapath_t *dp) {
  uv_poll_stop(&dp->udp_poll);
  close(dp->udp_fd);
  dp->udp_fd = -1;
  uv_close((uv_handle_t *)&dp->udp_poll, udp_closed);
}

static void on_udp_readable(uv_poll_t *h, int status, int events) {
  datapath_t *dp = (datapath_t *)h->data;
  (void)events;
  if (dp->udp_closing) return;
  if (status < 0) poll_resume(h, dp->udp_fd, on_udp_readable);
  napi_handle_scope scope;
  napi_open_handle_scope(dp->env, &scope);
  dp->udp_dispatching = 1;
  /* Drain what is there, a batch at a time, so one busy socket cannot starve the loop for long. */
  for (int rounds = 0; rounds < 8 && !dp->udp_closing; rounds++) {
    mmsg_rearm(dp->rx_msgs, RECV_BATCH, sizeof dp->rx_control[0]);
    int got = recvmmsg(dp->udp_fd, dp->rx_msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
    if (got <= 0) break;
    for (int i = 0; i < got; i++) {
      struct msghdr *m = &dp->rx_msgs[i].msg_hdr;
      unsigned char *d = dp->rx_bufs + (size_t)i * MAX_DATAGRAM;
      size_t len = dp->rx_msgs[i].msg_len, seg = len;
      /* GRO joined datagrams of one sender: all `seg` bytes long but the last. */
      for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        int v;
        if (c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_GRO) continue;
        memcpy(&v, CMSG_DATA(c), sizeof v);
        if (v > 0 && (size_t)v < len) seg = (size_t)v;
      }
      /* A v4 peer on a dual-stack socket is ::ffff:a.b.c.d, as JavaScript's addresses are. An empty datagram is one too, counted as JavaScript counts it. */
      if (len == 0) received(dp, d, 0, &dp->rx_addr[i]);
      for (size_t off = 0; off < len; off += seg) received(dp, d + off, len - off < seg ? len - off : seg, &dp->rx_addr[i]);
    }
    fp_round_end(dp);
    if (got < RECV_BATCH) break;
  }
  dp->udp_dispatching = 0;
  napi_close_handle_scope(dp->env, scope);
  if (dp->udp_closing) udp_really_close(dp);
}

/* --- TCP links ---------------------------------------------------------- */

static void tcp_update_poll(tcp_t *t) {
  int want = t->failed || t->closing ? 0 : UV_READABLE | (t->tx_len ? UV_WRITABLE : 0);
  if (want == t->events) return;
  t->events = want;
  if (want) uv_poll_start(&t->poll, want, on_tcp_event);
  else uv_poll_stop(&t->poll);
}

static void tcp_failed(datapath_t *dp, tcp_t *t, int why, const char *text) {
  if (t->failed) return;
  t->failed = 1;
  tcp_update_poll(t);
  stage_up(dp, UP_FAILED, why, t->port, NULL, (const unsigned char *)text, strlen(text));
}

/* Writes what the kernel takes now and queues the rest, in order; a sealed record is never dropped (the peer would see a gap). */
static void tcp_send(datapath_t *dp, tcp_t *t, const unsigned char *data, size_t len) {
  if (t->failed || t->closing) return;
  if (t->tx_len == 0) {
    ssize_t n = send(t->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      tcp_failed(dp, t, TCP_ERROR, strerror(errno));
      return;
    }
    if (n > 0) {
      data += n;
      len -= (size_t)n;
    }
    if (len == 0) return;
  }
  if (t->tx_off + t->tx_len + len > t->tx_size) {
    /* Only when something was sent from the front: before the first queueing tx is NULL, which memmove may not be given. */
    if (t->tx_off) memmove(t->tx, t->tx + t->tx_off, t->tx_len);
    t->tx_off = 0;
    if (t->tx_len + len > t->tx_size) {
      size_t size = t->tx_size ? t->tx_size : 65536;
      while (size < t->tx_len + len) size *= 2;
      unsigned char *grown = realloc(t->tx, size);
      if (!grown) {
        tcp_failed(dp, t, TCP_ERROR, "out of memory for the send queue");
        return;
      }
      t->tx = grown;
      t->tx_size = size;
    }
  }
  memcpy(t->tx + t->tx_off + t->tx_len, data, len);
  t->tx_len += len;
  tcp_update_poll(t);
}

/* Seals the port's batch of frames into one DATA record and sends it (a plain stream's frames go as they are). */
static void tcp_flush(datapath_t *dp, uint32_t id) {
  port_t *p = &dp->ports[id];
  if (p->kind != PORT_TCP) return;
  tcp_t *t = p->tcp;
  size_t fill = t->batch_fill;
  if (fill == 0 || t->failed) return;
  t->batch_fill = 0;
  if (t->plain) {
    tcp_send(dp, t, t->batch, fill);
    return;
  }
  if (vs_seal(p->session, VS_DATA, t->batch, LENGTH_BYTES, fill) != 0) {
    tcp_failed(dp, t, TCP_SPENT, "sequence numbers used up; re-keying with a new handshake");
    return;
  }
  uint32_t rlen = (uint32_t)(fill + VS_OVERHEAD);
  put_be32(t->batch, rlen);
  tcp_send(dp, t, t->batch, LENGTH_BYTES + rlen);
}

/* A native poll callback is done: batches leave, and JavaScript gets what is left for it. */
void fp_round_end(datapath_t *dp) {
  for (uint32_t i = 0; i < dp->ndirty; i++) {
    uint32_t id = dp->dirty[i];
    dp->ports[id].dirty = 0;
    if (dp->ports[id].kind == PORT_TCP) tcp_flush(dp, id);
    else if (dp->ports[id].kind == PORT_UDP) udp_flush(dp, id);
  }
  dp->ndirty = 0;
  deliver_up(dp);
}

/* One record from a TCP link, its length prefix stripped. */
static void tcp_record(datapath_t *dp, tcp_t *t, unsigned char *rec, size_t len) {
  port_t *p = &dp->ports[t->port];
  int type = vs_open(p->session, rec, len);
  if (type < 0) {
    /* On TCP nothing arrives out of order or twice unless someone tampered with the stream, which cannot be resynchronised. */
    if (type == VS_REPLAY) tcp_failed(dp, t, TCP_REPLAY, "record out of sequence");
    else tcp_failed(dp, t, TCP_AUTH, "record failed authentication");
    return;
  }
  unsigned char *payload = rec + VS_HEADER_BYTES;
  size_t plen = len - VS_OVERHEAD, o = 0;
  if (type != VS_DATA) {
    stage_up(dp, UP_RECORD, type, t->port, NULL, payload, plen);
    return;
  }
  /* Checked whole before any frame goes out: half of a bad batch is no better than none. */
  while (o + BATCH_ENTRY <= plen) o += BATCH_ENTRY + ((size_t)payload[o] << 8 | payload[o + 1]);
  if (o != plen) {
    tcp_failed(dp, t, TCP_BATCH, "malformed frame batch from the peer");
    return;
  }
  for (o = 0; o < plen;) {
    size_t flen = (size_t)payload[o] << 8 | payload[o + 1];
    unsigned char *frame = payload + o + BATCH_ENTRY;
    o += BATCH_ENTRY + flen;
    if (!forward(dp, t->port, frame, flen)) stage_up(dp, UP_OPENED, 0, t->port, NULL, frame, flen);
  }
}

/* A frame from a QEMU stream; QEMU never sends one shorter than an Ethernet header. */
static void stream_frame(datapath_t *dp, tcp_t *t, unsigned char *frame, size_t len) {
  if (len < MIN_FRAME) {
    char why[32];
    snprintf(why, sizeof why, "a length of %zu", len);
    tcp_failed(dp, t, TCP_FRAMING, why);
    return;
  }
  if (!forward(dp, t->port, frame, len)) stage_up(dp, UP_OPENED, 0, t->port, NULL, frame, len);
}

static void tcp_read(datapath_t *dp, tcp_t *t) {
  uint32_t max = t->plain ? MAX_FRAME : MAX_RECORD;
  for (int rounds = 0; rounds < 16 && !t->failed && !t->closing; rounds++) {
    size_t room = TCP_RX_SIZE - t->rx_len;
    ssize_t n = recv(t->fd, t->rx + t->rx_len, room, MSG_DONTWAIT);
    if (n == 0) {
      tcp_failed(dp, t, TCP_CLOSED, "closed");
      return;
    }
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) tcp_failed(dp, t, TCP_ERROR, strerror(errno));
      return;
    }
    t->rx_len += (size_t)n;
    size_t off = 0;
    while (!t->failed && t->rx_len - off >= LENGTH_BYTES) {
      const unsigned char *h = t->rx + off;
      uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
      if (len == 0 || len > max) {
        /* In QEMU's words for a stream; a link's peer sent records, said as JavaScript's reader says it. */
        if (t->plain) tcp_failed(dp, t, TCP_FRAMING, len == 0 ? "a length of 0" : "a length over " STR(MAX_FRAME));
        else tcp_failed(dp, t, TCP_FRAMING, len == 0 ? "empty" : "oversize");
        return;
      }
      if (t->rx_len - off - LENGTH_BYTES < len) break;
      if (t->plain) stream_frame(dp, t, t->rx + off + LENGTH_BYTES, len);
      else tcp_record(dp, t, t->rx + off + LENGTH_BYTES, len);
      off += LENGTH_BYTES + len;
    }
    memmove(t->rx, t->rx + off, t->rx_len - off);
    t->rx_len -= off;
    if ((size_t)n < room) return;
  }
}

static void tcp_closed(uv_handle_t *h) {
  tcp_t *t = (tcp_t *)h->data;
  datapath_t *dp = t->dp;
  free(t->rx);
  free(t->tx);
  free(t->batch);
  free(t);
  dp_release(dp);
}

static void tcp_really_close(tcp_t *t) {
  uv_poll_stop(&t->poll);
  close(t->fd);
  uv_close((uv_handle_t *)&t->poll, tcp_closed);
}

static void on_tcp_event(uv_poll_t *h, int status, int events) {
  tcp_t *t = (tcp_t *)h->data;
  datapath_t *dp = t->dp;
  if (t->closing) return;
  napi_handle_scope scope;
  napi_open_handle_scope(dp->env, &scope);
  t->dispatching = 1;
  if (status < 0) {
    /* libuv says EBADF for any POLLERR; the socket knows what happened (a reset, a timeout). */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0) err = -status;
    tcp_failed(dp, t, TCP_ERROR, strerror(err));
  }
  if (!t->failed && (events & UV_WRITABLE) && t->tx_len) {
    ssize_t n = send(t->fd, t->tx + t->tx_off, t->tx_len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      t->tx_off += (size_t)n;
      t->tx_len -= (size_t)n;
      if (t->tx_len == 0) t->tx_off = 0;
      tcp_update_poll(t);
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      tcp_failed(dp, t, TCP_ERROR, strerror(errno));
    }
  }
  if (!t->failed && (events & UV_READABLE)) tcp_read(dp, t);
  fp_round_end(dp);
  t->dispatching = 0;
  napi_close_handle_scope(dp->env, scope);
  if (t->closing) tcp_really_close(t);
}

/* --- JavaScript's side ------------------------------------------------- */

static napi_value fail(napi_env env, const char *why) {
  napi_throw_error(env, NULL, why);
  return NULL;
}

static datapath_t *dp_unwrap(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p || ((datapath_t *)p)->magic != DP_MAGIC) {
    napi_throw_type_error(env, NULL, "not a datapath handle");
    return NULL;
  }
  return (datapath_t *)p;
}

static void dp_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  dp_release((datapath_t *)data);
}

static double *float64s(napi_env env, napi_value v, size_t *length) {
  napi_typedarray_type type;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, length, &data, NULL, NULL) != napi_ok || type != napi_float64_array) return NULL;
  return (double *)data;
}

/*
 * datapath(flowCounts: Float64Array(2 * flows), portCounts: Float64Array(6 * ports), onUp(staged)) -> handle;
 * flows a power of two, at least 8; onUp gets what is not forwarded here, as UP_* entries
 */
static napi_value datapath(napi_env env, napi_callback_info info) {
  size_t argc = 3, nf, np;
  napi_value argv[3], handle, name;
  napi_valuetype t;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  double *fc = argc == 3 ? float64s(env, argv[0], &nf) : NULL, *pc = argc == 3 ? float64s(env, argv[1], &np) : NULL;
  if (!fc || !pc || napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function) return fail(env, "datapath(flowCounts: Float64Array, portCounts: Float64Array, onUp)");
  uint32_t flows = (uint32_t)(nf / 2), ports = (uint32_t)(np / PORT_FIELDS);
  if (flows < 2 * WAYS || (flows & (flows - 1)) != 0 || ports == 0 || ports > 65535) return fail(env, "datapath: flows must be a power of two of at least 8, ports 1 to 65535");
  datapath_t *dp = calloc(1, sizeof *dp);
  if (!dp) return fail(env, "out of memory");
  dp->magic = DP_MAGIC;
  dp->refs = 1;
  dp->env = env;
  dp->flow_counts = fc;
  dp->port_counts = pc;
  dp->nflows = flows;
  dp->set_shift = 64 - __builtin_ctz(flows / WAYS);
  dp->gen = 1;
  dp->nports = ports;
  dp->udp_fd = -1;
  CHECK(napi_get_uv_event_loop(env, &dp->loop));
  dp->flows = calloc(flows, sizeof(flow_t));
  dp->ports = calloc(ports, sizeof(port_t));
  dp->dirty = calloc(ports, sizeof *dp->dirty);
  if (!dp->flows || !dp->ports || !dp->dirty || rebuild_addresses(dp) != 0) {
    dp_release(dp);
    return fail(env, "out of memory");
  }
  /* The counts stay where JavaScript reads them for as long as the datapath lives. */
  CHECK(napi_create_reference(env, argv[0], 1, &dp->flow_counts_ref));
  CHECK(napi_create_reference(env, argv[1], 1, &dp->port_counts_ref));
  CHECK(napi_create_reference(env, argv[2], 1, &dp->on_up));
  CHECK(napi_create_string_utf8(env, "vnetd-fast-path", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &dp->async));
  CHECK(napi_create_external(env, dp, dp_finalize, NULL, &handle));
  return handle;
}

static int get_port(napi_env env, datapath_t *dp, napi_value v, uint32_t *id) {
  if (napi_get_value_uint32(env, v, id) != napi_ok || *id >= dp->nports) {
    napi_throw_range_error(env, NULL, "fast path: no such port");
    return -1;
  }
  return 0;
}

/*
 * A call's `want` arguments into argv, the first a datapath handle: the
 * datapath, or NULL with an exception pending (`usage` when the count is off).
 */
static datapath_t *dp_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, const char *usage) {
  size_t argc = want;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != want) {
    fail(env, usage);
    return NULL;
  }
  return dp_unwrap(env, argv[0]);
}

/* dp_args for a call whose second argument is a port: that too, in `id`. */
static datapath_t *port_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, uint32_t *id, const char *usage) {
  datapath_t *dp = dp_args(env, info, want, argv, usage);
  return dp && get_port(env, dp, argv[1], id) == 0 ? dp : NULL;
}

static void clear_port(datapath_t *dp, uint32_t id) {
  port_t *p = &dp->ports[id];
  /* Sealed already: it leaves. */
  if (p->kind == PORT_UDP) udp_flush(dp, id);
  free(p->out.buf);
  if (p->session) vs_release(p->session);
  if (p->tcp) {
    /* The connection is closed here; JavaScript closes its own socket. While its callback runs, it closes itself after. */
    p->tcp->closing = 1;
    if (!p->tcp->dispatching) tcp_really_close(p->tcp);
  }
  if (p->cap && p->cap->dp == dp) {
    p->cap->dp = NULL;
    dp_release(dp);
  }
  /* Still listed on dp->dirty if it was: listed once, it is skipped there. */
  int dirty = p->dirty;
  memset(p, 0, sizeof *p);
  p->dirty = dirty;
}

/* attachCapture(dp, port, capture): the capture's frames enter the fast path as `port`, and frames for `port` leave by it */
static napi_value attach_capture(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint32_t id;
  datapath_t *dp = port_args(env, info, 3, argv, &id, "attachCapture(dp, port, capture)");
  if (!dp) return NULL;
  capture_t *c = capture_unwrap(env, argv[2]);
  if (!c) return NULL;
  if (c->dp) return fail(env, "fast path: the capture is attached already");
  clear_port(dp, id);
  dp->ports[id].kind = PORT_IFACE;
  dp->ports[id].cap = c;
  c->dp = dp;
  c->port = (int)id;
  dp->refs++;
  flush_flows(dp);
  return NULL;
}

/* setLink(dp, port, session, ip, udpPort): frames for `port` are sealed under `session` and sent to ip:udpPort, and its DATA records from there are opened here */
static napi_value set_link(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  uint32_t id, udp_port;
  char ip[INET6_ADDRSTRLEN + 1];
  size_t n;
  datapath_t *dp = port_args(env, info, 5, argv, &id, "setLink(dp, port, session, ip, udpPort)");
  if (!dp) return NULL;
  vs_session *s = vs_unwrap(env, argv[2]);
  if (!s) return NULL;
  if (napi_get_value_string_utf8(env, argv[3], ip, sizeof ip, &n) != napi_ok || napi_get_value_uint32(env, argv[4], &udp_port) != napi_ok || udp_port > 65535)
    return fail(env, "setLink(dp, port, session, ip, udpPort)");
  if (dp->udp_fd < 0) return fail(env, "fast path: the UDP socket is not open");
  struct sockaddr_storage addr;
  socklen_t len;
  if (ip_sockaddr(dp->udp_family, ip, udp_port, &addr, &len) != 0) return fail(env, "fast path: not an IP address of the socket's family");
  vs_retain(s);
  clear_port(dp, id);
  port_t *p = &dp->ports[id];
  p->kind = PORT_UDP;
  p->session = s;
  p->addr = addr;
  p->addrlen = len;
  /* Another port at the same address (a session replaced before the old one was cleared) gives way. */
  for (uint32_t i = 0; i < dp->nports; i++)
    if (i != id && dp->ports[i].kind == PORT_UDP && same_addr(&dp->ports[i].addr, &addr)) clear_port(dp, i);
  flush_flows(dp);
  if (rebuild_addresses(dp) != 0) return fail(env, "out of memory");
  return NULL;
}

/* clearPort(dp, port): nothing enters or leaves by `port` here any more */
static napi_value clear_port_js(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t id;
  datapath_t *dp = port_args(env, info, 2, argv, &id, "clearPort(dp, port)");
  if (!dp) return NULL;
  clear_port(dp, id);
  flush_flows(dp);
  if (rebuild_addresses(dp) != 0) return fail(env, "out of memory");
  return NULL;
}

/*
 * learn(dp, ingress, src, dst, egress: number[]) -> slot, or -1
 * Caches a flow JavaScript just forwarded: its frames from now on go to the
 * egress ports here. -1 when a port is not a fast-path port. The slot's
 * counts may still hold an evicted flow's frames: JavaScript folds them
 * before it reuses the slot.
 */
static napi_value learn(napi_env env, napi_callback_info info) {
  napi_value argv[5], out, v;
  uint32_t ingress, nout;
  double src, dst;
  uint16_t ports[MAX_OUT];
  datapath_t *dp = port_args(env, info, 5, argv, &ingress, "learn(dp, ingress, src, dst, egress: number[])");
  if (!dp) return NULL;
  CHECK(napi_get_value_double(env, argv[2], &src));
  CHECK(napi_get_value_double(env, argv[3], &dst));
  CHECK(napi_get_array_length(env, argv[4], &nout));
  int ok = dp->ports[ingress].kind != PORT_NONE && nout > 0 && nout <= MAX_OUT && src >= 0 && dst >= 0 && src < 281474976710656.0 && dst < 281474976710656.0;
  for (uint32_t i = 0; ok && i < nout; i++) {
    uint32_t id;
    CHECK(napi_get_element(env, argv[4], i, &v));
    if (napi_get_value_uint32(env, v, &id) != napi_ok || id >= dp->nports || dp->ports[id].kind == PORT_NONE || id == ingress) ok = 0;
    else ports[i] = (uint16_t)id;
  }
  int slot = -1;
  if (ok) {
    uint64_t s = (uint64_t)src, d = (uint64_t)dst;
    slot = find_flow(dp, ingress, s, d);
    if (slot < 0) {
      uint32_t first = set_of(dp, ingress, s, d), w = 0;
      while (w < WAYS && dp->flows[first + w].gen == dp->gen) w++;
      /* A full set gives up a flow in turn; an evicted flow's next frame goes to JavaScript, which caches it again. */
      if (w == WAYS) w = dp->victim++ % WAYS;
      slot = (int)(first + w);
    }
    flow_t *f = &dp->flows[slot];
    f->src = s;
    f->dst = d;
    f->ingress = ingress;
    f->gen = dp->gen;
    f->nout = nout;
    memcpy(f->out, ports, sizeof ports[0] * nout);
    f->via_udp = dp->ports[ingress].kind == PORT_UDP;
    for (uint32_t i = 0; i < nout; i++) f->via_udp |= dp->ports[ports[i]].kind == PORT_UDP;
  }
  CHECK(napi_create_int32(env, slot, &out));
  return out;
}

/* flush(dp): forgets every flow (the table changed); their counts stay for JavaScript to fold */
static napi_value flush(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  datapath_t *dp = dp_args(env, info, 1, argv, "flush(dp)");
  if (!dp) return NULL;
  flush_flows(dp);
  return NULL;
}

/* udpOpen(dp, host, port, bufferBytes) -> the bound port; throws an Error with `code` (EADDRINUSE, ...). Datagrams go to onUp. */
static napi_value udp_open(napi_env env, napi_callback_info info) {
  size_t n;
  napi_value argv[4], out;
  char host[INET6_ADDRSTRLEN + 1];
  uint32_t port, buffer;
  datapath_t *dp = dp_args(env, info, 4, argv, "udpOpen(dp, host, port, bufferBytes)");
  if (!dp) return NULL;
  if (napi_get_value_string_utf8(env, argv[1], host, sizeof host, &n) != napi_ok || napi_get_value_uint32(env, argv[2], &port) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &buffer) != napi_ok || port > 65535)
    return fail(env, "udpOpen(dp, host, port, bufferBytes)");
  if (dp->udp_fd >= 0 || dp->udp_open) return fail(env, "fast path: the UDP socket is open already");
  int fd = udp_bound(env, host, port, (int)buffer, &dp->udp_family);
  if (fd < 0) return NULL;
  /* Kernels before 4.18 (GSO) and 5.0 (GRO) refuse these: datagrams then go and come one by one. */
  int zero = 0, one = 1;
  dp->gso = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
  setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one);
  dp->rx_bufs = dp->rx_bufs ? dp->rx_bufs : malloc((size_t)RECV_BATCH * MAX_DATAGRAM);
  if (!dp->rx_bufs) {
    close(fd);
    return fail(env, "out of memory");
  }
  mmsg_setup(dp->rx_msgs, dp->rx_iov, dp->rx_bufs, MAX_DATAGRAM, dp->rx_addr, &dp->rx_control[0][0], sizeof dp->rx_control[0], RECV_BATCH);
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  dp->udp_fd = fd;
  dp->udp_open = 1;
  dp->udp_closing = 0;
  dp->refs++;
  uv_poll_init(loop, &dp->udp_poll, fd);
  dp->udp_poll.data = dp;
  uv_poll_start(&dp->udp_poll, UV_READABLE, on_udp_readable);
  CHECK(napi_create_uint32(env, (uint32_t)local_port(fd), &out));
  return out;
}

/* udpSend(dp, datagram, ip, port) -> 0, or the errno (EAGAIN: the socket buffer is full, and the datagram is dropped) */
static napi_value udp_send(napi_env env, napi_callback_info info) {
  size_t n, len;
  napi_value argv[4], out;
  char ip[INET6_ADDRSTRLEN + 1];
  uint32_t port;
  void *data;
  datapath_t *dp = dp_args(env, info, 4, argv, "udpSend(dp, datagram, ip, port)");
  if (!dp) return NULL;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || napi_get_value_string_utf8(env, argv[2], ip, sizeof ip, &n) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &port) != napi_ok || port > 65535)
    return fail(env, "udpSend(dp, datagram, ip, port)");
  struct sockaddr_storage addr;
  socklen_t alen;
  int e = 0;
  if (dp->udp_fd < 0 || dp->udp_closing) e = EBADF;
  else if (ip_sockaddr(dp->udp_family, ip, port, &addr, &alen) != 0) e = EAFNOSUPPORT;
  else if (sendto(dp->udp_fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&addr, alen) < 0) e = errno;
  CHECK(napi_create_int32(env, e, &out));
  return out;
}

/* udpGso(dp) -> { on, sends, datagrams }: whether UDP links' datagrams leave in segmented sends, and how many sends carried how many datagrams */
static napi_value udp_gso(napi_env env, napi_callback_info info) {
  napi_value argv[1], out, v;
  datapath_t *dp = dp_args(env, info, 1, argv, "udpGso(dp)");
  if (!dp) return NULL;
  CHECK(napi_create_object(env, &out));
  CHECK(napi_get_boolean(env, dp->udp_fd >= 0 && dp->gso, &v));
  CHECK(napi_set_named_property(env, out, "on", v));
  CHECK(napi_create_double(env, dp->gso_sends, &v));
  CHECK(napi_set_named_property(env, out, "sends", v));
  CHECK(napi_create_double(env, dp->gso_datagrams, &v));
  CHECK(napi_set_named_property(env, out, "datagrams", v));
  return out;
}

/* pathRoom(ip) -> the largest UDP payload that reaches ip unfragmented (path_room); 0 when there is no route */
static napi_value path_room_js(napi_env env, napi_callback_info info) {
  size_t argc = 1, n;
  napi_value argv[1], out;
  char ip[INET6_ADDRSTRLEN + 1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1 || napi_get_value_string_utf8(env, argv[0], ip, sizeof ip, &n) != napi_ok) return fail(env, "pathRoom(ip)");
  struct sockaddr_storage a;
  socklen_t alen;
  /* Any port will do: the route is per address. */
  int known = ip_sockaddr(AF_INET, ip, 9, &a, &alen) == 0 || ip_sockaddr(AF_INET6, ip, 9, &a, &alen) == 0;
  CHECK(napi_create_uint32(env, known ? (uint32_t)path_room(&a) : 0, &out));
  return out;
}

/* udpQueued(dp) -> bytes waiting in the socket's send queue */
static napi_value udp_queued(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  int queued = 0;
  datapath_t *dp = dp_args(env, info, 1, argv, "udpQueued(dp)");
  if (!dp) return NULL;
  if (dp->udp_fd >= 0) ioctl(dp->udp_fd, SIOCOUTQ, &queued);
  CHECK(napi_create_int32(env, queued, &out));
  return out;
}

/* udpClose(dp): stops receiving now; the socket is closed once libuv lets go of it */
static napi_value udp_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  datapath_t *dp = dp_args(env, info, 1, argv, "udpClose(dp)");
  if (!dp) return NULL;
  if (!dp->udp_open || dp->udp_closing) return NULL;
  dp->udp_closing = 1;
  /* Links sending by the socket are gone with it. */
  for (uint32_t i = 0; i < dp->nports; i++)
    if (dp->ports[i].kind == PORT_UDP) clear_port(dp, i);
  flush_flows(dp);
  rebuild_addresses(dp);
  if (!dp->udp_dispatching) udp_really_close(dp);
  return NULL;
}

/*
 * The connection on `fd` is read and written here from now on, as port `id`
 * (a duplicate of `fd`; JavaScript stops reading its socket first, with
 * nothing left unsent): sealed under `s`, or plain when `s` is NULL.
 * `pending` is what JavaScript had read of a record not yet complete.
 */
static napi_value conn_attach(napi_env env, datapath_t *dp, uint32_t id, vs_session *s, napi_value fd_v, napi_value pending_v, const char *usage) {
  int32_t fd;
  void *pending;
  size_t plen;
  if (napi_get_value_int32(env, fd_v, &fd) != napi_ok || fd < 0 || napi_get_buffer_info(env, pending_v, &pending, &plen) != napi_ok || plen >= LENGTH_BYTES + MAX_RECORD)
    return fail(env, usage);
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return fail(env, "fast path: cannot duplicate the socket");
  tcp_t *t = calloc(1, sizeof *t);
  if (t) {
    t->rx = malloc(TCP_RX_SIZE);
    t->batch = malloc(LENGTH_BYTES + MAX_RECORD);
  }
  if (!t || !t->rx || !t->batch) {
    if (t) {
      free(t->rx);
      free(t->batch);
    }
    free(t);
    close(own);
    return fail(env, "out of memory");
  }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  t->dp = dp;
  t->fd = own;
  t->port = id;
  t->plain = s == NULL;
  /* An empty Buffer's data is NULL, which memcpy may not be given even for no bytes. */
  if (plen) memcpy(t->rx, pending, plen);
  t->rx_len = plen;
  if (s) vs_retain(s);
  clear_port(dp, id);
  dp->ports[id].kind = PORT_TCP;
  dp->ports[id].tcp = t;
  dp->ports[id].session = s;
  dp->refs++;
  uv_poll_init(loop, &t->poll, own);
  t->poll.data = t;
  tcp_update_poll(t);
  flush_flows(dp);
  return NULL;
}

/* tcpAttach(dp, port, session, fd, pending: Buffer): a TCP link's connection, its records sealed under `session` */
static napi_value tcp_attach(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  uint32_t id;
  const char *usage = "tcpAttach(dp, port, session, fd, pending: Buffer)";
  datapath_t *dp = port_args(env, info, 5, argv, &id, usage);
  if (!dp) return NULL;
  vs_session *s = vs_unwrap(env, argv[2]);
  if (!s) return NULL;
  return conn_attach(env, dp, id, s, argv[3], argv[4], usage);
}

/* streamAttach(dp, port, fd, pending: Buffer): a QEMU stream netdev's connection, bare length-prefixed frames; tcpWrite, tcpQueued and tcpRelease serve it too */
static napi_value stream_attach(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint32_t id;
  const char *usage = "streamAttach(dp, port, fd, pending: Buffer)";
  datapath_t *dp = port_args(env, info, 4, argv, &id, usage);
  if (!dp) return NULL;
  return conn_attach(env, dp, id, NULL, argv[2], argv[3], usage);
}

/* port_args for a port with a connection: its connection, and the datapath and port. */
static tcp_t *tcp_of(napi_env env, napi_callback_info info, size_t want, napi_value *argv, datapath_t **dpp, uint32_t *id, const char *usage) {
  datapath_t *dp = port_args(env, info, want, argv, id, usage);
  if (!dp) return NULL;
  if (dp->ports[*id].kind != PORT_TCP) {
    napi_throw_error(env, NULL, "fast path: not a port with a connection");
    return NULL;
  }
  *dpp = dp;
  return dp->ports[*id].tcp;
}

/* tcpWrite(dp, port, bytes): sends them after everything sent before (false once the connection has failed) */
static napi_value tcp_write(napi_env env, napi_callback_info info) {
  size_t len;
  napi_value argv[3], out;
  void *data;
  datapath_t *dp = NULL;
  uint32_t id;
  tcp_t *t = tcp_of(env, info, 3, argv, &dp, &id, "tcpWrite(dp, port, bytes)");
  if (!t) return NULL;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) return fail(env, "tcpWrite(dp, port, bytes)");
  /* An empty Buffer's data is NULL, which memcpy may not be given even for no bytes; and there is nothing to send. */
  if (len) tcp_send(dp, t, data, len);
  CHECK(napi_get_boolean(env, !t->failed, &out));
  return out;
}

/* tcpQueued(dp, port) -> bytes the kernel has not taken yet */
static napi_value tcp_queued(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  datapath_t *dp = NULL;
  uint32_t id;
  tcp_t *t = tcp_of(env, info, 2, argv, &dp, &id, "tcpQueued(dp, port)");
  if (!t) return NULL;
  CHECK(napi_create_double(env, (double)t->tx_len, &out));
  return out;
}

/* tcpRelease(dp, port) -> the bytes the kernel has not taken yet; the connection is JavaScript's again (its link is going down) */
static napi_value tcp_release(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  void *data;
  datapath_t *dp = NULL;
  uint32_t id;
  tcp_t *t = tcp_of(env, info, 2, argv, &dp, &id, "tcpRelease(dp, port)");
  if (!t) return NULL;
  CHECK(napi_create_buffer_copy(env, t->tx_len, t->tx_len ? t->tx + t->tx_off : (void *)"", &data, &out));
  clear_port(dp, id);
  flush_flows(dp);
  return out;
}

/* The numbers JavaScript's half (fast-path.ts) and the wire format (wire.ts) must agree on, for it to check at start. */
static napi_status define_layout(napi_env env, napi_value exports) {
  static const struct {
    const char *name;
    int value;
  } layout[] = {
      {"portFields", PORT_FIELDS},      {"maxOut", MAX_OUT},         {"upHeader", UP_HEADER},   {"upRaw", UP_RAW},
      {"upOpened", UP_OPENED},          {"upRecord", UP_RECORD},     {"upFailed", UP_FAILED},   {"failedReplay", TCP_REPLAY},
      {"failedAuth", TCP_AUTH},         {"failedFraming", TCP_FRAMING}, {"failedBatch", TCP_BATCH}, {"maxFrame", MAX_FRAME},
      {"maxRecord", MAX_RECORD},
  };
  napi_value o, v;
  napi_status st = napi_create_object(env, &o);
  for (size_t i = 0; st == napi_ok && i < sizeof layout / sizeof layout[0]; i++) {
    st = napi_create_int32(env, layout[i].value, &v);
    if (st == napi_ok) st = napi_set_named_property(env, o, layout[i].name, v);
  }
  return st == napi_ok ? napi_set_named_property(env, exports, "layout", o) : st;
}

napi_status fp_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"datapath", NULL, datapath, NULL, NULL, NULL, napi_default, NULL},
      {"attachCapture", NULL, attach_capture, NULL, NULL, NULL, napi_default, NULL},
      {"setLink", NULL, set_link, NULL, NULL, NULL, napi_default, NULL},
      {"clearPort", NULL, clear_port_js, NULL, NULL, NULL, napi_default, NULL},
      {"learn", NULL, learn, NULL, NULL, NULL, napi_default, NULL},
      {"flush", NULL, flush, NULL, NULL, NULL, napi_default, NULL},
      {"udpOpen", NULL, udp_open, NULL, NULL, NULL, napi_default, NULL},
      {"udpSend", NULL, udp_send, NULL, NULL, NULL, napi_default, NULL},
      {"udpQueued", NULL, udp_queued, NULL, NULL, NULL, napi_default, NULL},
      {"pathRoom", NULL, path_room_js, NULL, NULL, NULL, napi_default, NULL},
      {"udpGso", NULL, udp_gso, NULL, NULL, NULL, napi_default, NULL},
      {"udpClose", NULL, udp_close, NULL, NULL, NULL, napi_default, NULL},
      {"tcpAttach", NULL, tcp_attach, NULL, NULL, NULL, napi_default, NULL},
      {"streamAttach", NULL, stream_attach, NULL, NULL, NULL, napi_default, NULL},
      {"tcpWrite", NULL, tcp_write, NULL, NULL, NULL, napi_default, NULL},
      {"tcpQueued", NULL, tcp_queued, NULL, NULL, NULL, napi_default, NULL},
      {"tcpRelease", NULL, tcp_release, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_status st = napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return st == napi_ok ? define_layout(env, exports) : st;
}
