/*
 * Sends UDP datagrams with a segment size (UDP_SEGMENT, GSO), which Node's
 * dgram cannot: on loopback such a send reaches a UDP_GRO socket as one
 * joined buffer with the segment size alongside, as GRO makes of a burst
 * from the network. It sends on the socket it is given as fd 3 (a dgram
 * socket the caller bound, so the datagrams come from the caller's address)
 * to HOST PORT.
 *
 * stdin: requests of a 2-byte segment size (0: no UDP_SEGMENT), a 4-byte
 * length (both big-endian) and that many bytes. stdout: one line per
 * request, "0" when the kernel took it, or the errno it refused it with
 * (segment sizes and counts it does not take are part of what is tried).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

static int read_all(void *p, size_t n) {
  for (size_t got = 0; got < n;) {
    ssize_t r = read(0, (char *)p + got, n - got);
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s HOST PORT (the socket to send on as fd 3)\n", argv[0]);
    return 2;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV}, *to;
  int err = getaddrinfo(argv[1], argv[2], &hints, &to);
  if (err) {
    fprintf(stderr, "%s port %s: %s\n", argv[1], argv[2], gai_strerror(err));
    return 2;
  }
  /* A v4 destination from a dual-stack (v6) socket is ::ffff:a.b.c.d. */
  struct sockaddr_storage dst;
  socklen_t dst_len = to->ai_addrlen;
  memcpy(&dst, to->ai_addr, to->ai_addrlen);
  struct sockaddr_storage self;
  socklen_t self_len = sizeof self;
  if (getsockname(3, (struct sockaddr *)&self, &self_len) != 0) {
    perror("fd 3 is not a socket");
    return 2;
  }
  if (self.ss_family == AF_INET6 && dst.ss_family == AF_INET) {
    struct sockaddr_in v4 = *(struct sockaddr_in *)&dst;
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = v4.sin_port};
    v6.sin6_addr.s6_addr[10] = v6.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&v6.sin6_addr.s6_addr[12], &v4.sin_addr, 4);
    memcpy(&dst, &v6, sizeof v6);
    dst_len = sizeof v6;
  }
  freeaddrinfo(to);
  static unsigned char buf[1 << 17];
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (;;) {
    unsigned char head[6];
    if (read_all(head, sizeof head) != 0) return 0;
    uint16_t seg = (uint16_t)(head[0] << 8 | head[1]);
    uint32_t len = (uint32_t)head[2] << 24 | (uint32_t)head[3] << 16 | (uint32_t)head[4] << 8 | head[5];
    if (len > sizeof buf) {
      fprintf(stderr, "a request of %u bytes: at most %zu\n", len, sizeof buf);
      return 2;
    }
    if (read_all(buf, len) != 0) return 0;
    struct iovec iov = {buf, len};
    union {
      char b[CMSG_SPACE(sizeof(uint16_t))];
      struct cmsghdr align;
    } control = {0};
    struct msghdr m = {.msg_name = &dst, .msg_namelen = dst_len, .msg_iov = &iov, .msg_iovlen = 1};
    if (seg) {
      m.msg_control = control.b;
      m.msg_controllen = sizeof control.b;
      struct cmsghdr *c = CMSG_FIRSTHDR(&m);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof seg);
      memcpy(CMSG_DATA(c), &seg, sizeof seg);
    }
    printf("%d\n", sendmsg(3, &m, 0) < 0 ? errno : 0);
  }
}
