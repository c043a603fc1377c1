/*
 * UDP sockets and their addresses, as the fast path's link socket and QEMU
 * datagram interfaces both open and compare them.
 */
#define _GNU_SOURCE
#include "capture.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int ip_sockaddr(int family, const char *ip, uint32_t port, struct sockaddr_storage *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  struct in_addr v4;
  if (family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    *len = sizeof *a;
    if (inet_pton(AF_INET, ip, &v4) == 1) {
      /* What a dual-stack socket reports for a v4 peer. */
      a->sin6_addr.s6_addr[10] = 0xff;
      a->sin6_addr.s6_addr[11] = 0xff;
      memcpy(&a->sin6_addr.s6_addr[12], &v4, 4);
      return 0;
    }
    return inet_pton(AF_INET6, ip, &a->sin6_addr) == 1 ? 0 : -1;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)out;
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  *len = sizeof *a;
  return inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : -1;
}

int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

int udp_bound(napi_env env, const char *host, uint32_t port, int buffer, int *family) {
  struct sockaddr_storage addr;
  socklen_t len;
  struct in6_addr v6;
  *family = inet_pton(AF_INET6, host, &v6) == 1 ? AF_INET6 : AF_INET;
  if (port > 65535 || ip_sockaddr(*family, host, port, &addr, &len) != 0) {
    napi_throw_error(env, NULL, "not an IP address and port");
    return -1;
  }
  int fd = socket(*family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int zero = 0;
  if (fd >= 0 && *family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, len) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    napi_value err, msg, code;
    char text[256];
    snprintf(text, sizeof text, "bind %s:%u: %s", host, port, strerror(e));
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_create_string_utf8(env, e == EADDRINUSE ? "EADDRINUSE" : e == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : e == EACCES ? "EACCES" : "EBIND", NAPI_AUTO_LENGTH, &code);
    napi_set_named_property(env, err, "code", code);
    napi_throw(env, err);
    return -1;
  }
  /* The kernel caps these at net.core.[rw]mem_max; the defaults still work, only bursts suffer. */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
  return fd;
}

void poll_resume(uv_poll_t *h, int fd, uv_poll_cb cb) {
  int err;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  uv_poll_start(h, UV_READABLE, cb);
}

int local_port(int fd) {
  struct sockaddr_storage a;
  socklen_t len = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &len) != 0) return -1;
  return ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port : ((struct sockaddr_in *)&a)->sin_port);
}

void mmsg_setup(struct mmsghdr *m, struct iovec *iov, unsigned char *bufs, size_t size, struct sockaddr_storage *from, char *control,
                size_t controllen, int n) {
  memset(m, 0, (size_t)n * sizeof *m);
  for (int i = 0; i < n; i++) {
    iov[i].iov_base = bufs + (size_t)i * size;
    iov[i].iov_len = size;
    m[i].msg_hdr.msg_iov = &iov[i];
    m[i].msg_hdr.msg_iovlen = 1;
    m[i].msg_hdr.msg_name = &from[i];
    if (control) m[i].msg_hdr.msg_control = control + (size_t)i * controllen;
  }
  mmsg_rearm(m, n, controllen);
}

void mmsg_rearm(struct mmsghdr *m, int n, size_t controllen) {
  for (int i = 0; i < n; i++) {
    m[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
    if (m[i].msg_hdr.msg_control) m[i].msg_hdr.msg_controllen = controllen;
  }
}
