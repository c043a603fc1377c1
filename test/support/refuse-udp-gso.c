/*
 * Preloaded into a vnetd under test (LD_PRELOAD): every UDP send that asks
 * the kernel to segment it (a UDP_SEGMENT control message) fails with EIO,
 * as it does on kernels before 6.3 whose device cannot checksum, or over an
 * IPsec route; with REFUSE_UDP_GSO=EINVAL, with EINVAL, as when the socket
 * has no checksums. No device or route here can make this kernel refuse,
 * so the fast path's fallback to one datagram at a time is tested through
 * this.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

ssize_t sendmsg(int fd, const struct msghdr *m, int flags) {
  static ssize_t (*real)(int, const struct msghdr *, int);
  if (!real) real = (ssize_t(*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT, "sendmsg");
  for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
    if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_SEGMENT) {
      const char *as = getenv("REFUSE_UDP_GSO");
      errno = as && strcmp(as, "EINVAL") == 0 ? EINVAL : EIO;
      return -1;
    }
  }
  return real(fd, m, flags);
}
