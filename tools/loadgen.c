// Load generator for bench/overhead.ts, run inside the benchmark's namespaces
// with `ip netns exec`. C, so that the generator's own cost is small next to
// what it measures (a 2-core VM has no room for a Node.js sender). Every mode
// is bounded in time; servers run until SIGTERM.
//
//   udp-sink PORT                              prints "ready"; on SIGTERM prints "received N"
//   udp-blast DST PORT SECONDS PAYLOAD [PPS]   sendmmsg of PAYLOAD-byte datagrams (PPS: paced, 0 = as fast as it can)
//                                              prints "sent N seconds S"
//   tcp-echo PORT                              prints "ready"; echoes on every connection until EOF (epoll, one thread)
//   tcp-rr DST PORT SECONDS SIZE               one connection, TCP_NODELAY: write SIZE, read SIZE back, repeat;
//                                              prints "transactions N seconds S p50_us X p99_us Y mean_us Z"
//   tcp-churn DST PORT SECONDS PARALLEL MAX [RATE]
//                                              PARALLEL connections at a time, each connect, 1 byte out, 1 back, close;
//                                              stops after SECONDS or MAX connections; prints "connections N failed F ports P seconds S"
//                                              (P: distinct local ports, i.e. distinct 5-tuples). RATE: start at most RATE
//                                              connections a second, evenly (0 or absent: as fast as it can)
//   flood IFNAME DSTMAC SRCMAC DSTIP FIRST COUNT SECONDS
//                                              raw UDP frames (64 B) out of IFNAME, each with its own 5-tuple
//                                              (tuple FIRST, FIRST+1, ...: source address in 10/8 and ports from a
//                                              bijective hash of the index, so no two repeat); stops after COUNT
//                                              frames or SECONDS; prints "sent N seconds S"
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(void) {
  fprintf(stderr, "loadgen: bad arguments (see the comment at the top of tools/loadgen.c)\n");
  exit(2);
}

static struct sockaddr_in addr_of(const char *ip, int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
    fprintf(stderr, "loadgen: not an IPv4 address: %s\n", ip);
    exit(2);
  }
  return a;
}

static void ready(void) {
  printf("ready\n");
  fflush(stdout);
}

static void catch_term(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; // no SA_RESTART: a blocked receive returns EINTR
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

// ---- UDP ----------------------------------------------------------------------

#define BATCH 64

static int udp_sink(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  int buf = 8 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  struct sockaddr_in a = addr_of("0.0.0.0", port);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  catch_term();
  ready();
  static char bufs[BATCH][2048];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = bufs[i];
    iov[i].iov_len = sizeof bufs[i];
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  unsigned long long received = 0;
  while (!stop_flag) {
    int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
    if (n > 0) received += (unsigned)n;
    else if (n < 0 && errno != EINTR) die("recvmmsg");
  }
  printf("received %llu\n", received);
  return 0;
}

static int udp_blast(const char *dst, int port, double seconds, int payload, double pps) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  struct sockaddr_in a = addr_of(dst, port);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
  static char data[65536];
  memset(data, 0x61, sizeof data);
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = data;
    iov[i].iov_len = (size_t)payload;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  unsigned long long sent = 0;
  double t0 = now_s(), end = t0 + seconds, t = t0;
  // Paced: small batches, so the rate is even within a millisecond.
  int batch = pps > 0 ? 16 : BATCH;
  while (t < end) {
    if (pps > 0) {
      double due = t0 + (double)sent / pps;
      if (due > t) {
        struct timespec ts = {0, (long)((due - t) * 1e9)};
        if (ts.tv_nsec > 20000) nanosleep(&ts, NULL);
        t = now_s();
        continue;
      }
    }
    int n = sendmmsg(fd, msgs, (unsigned)batch, 0);
    if (n > 0) sent += (unsigned)n;
    else if (n < 0 && errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED && errno != EINTR) die("sendmmsg");
    t = now_s();
  }
  printf("sent %llu seconds %.6f\n", sent, t - t0);
  return 0;
}

// ---- TCP ----------------------------------------------------------------------

static void nonblock(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static int tcp_echo(int port) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = addr_of("0.0.0.0", port);
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(lfd, 4096) < 0) die("listen");
  nonblock(lfd);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  catch_term();
  ready();
  struct epoll_event evs[256];
  static char buf[65536];
  while (!stop_flag) {
    int n = epoll_wait(ep, evs, 256, 1000);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) break;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
          ssize_t off = 0;
          while (off < r) {
            ssize_t w = write(fd, buf + off, (size_t)(r - off));
            if (w > 0) off += w;
            else if (w < 0 && errno == EAGAIN) {
              struct timespec ts = {0, 50000};
              nanosleep(&ts, NULL);
            } else break;
          }
          continue;
        }
        if (r < 0 && errno == EAGAIN) break;
        close(fd); // EOF or error; close() also leaves the epoll set
        break;
      }
    }
  }
  return 0;
}

static int cmp_u64(const void *x, const void *y) {
  uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
  return a < b ? -1 : a > b;
}

static int tcp_rr(const char *dst, int port, double seconds, int size) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = addr_of(dst, port);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
  char *buf = calloc(1, (size_t)size);
  size_t cap = 1 << 20, n = 0;
  uint64_t *lat = malloc(cap * sizeof *lat);
  uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9), t = t0;
  while (t < end) {
    uint64_t s = now_ns();
    if (write(fd, buf, (size_t)size) != size) die("write");
    int got = 0;
    while (got < size) {
      ssize_t r = read(fd, buf + got, (size_t)(size - got));
      if (r <= 0) die("read");
      got += (int)r;
    }
    t = now_ns();
    if (n == cap) lat = realloc(lat, (cap *= 2) * sizeof *lat);
    lat[n++] = t - s;
  }
  close(fd);
  if (n == 0) {
    fprintf(stderr, "loadgen: no transactions\n");
    return 1;
  }
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)lat[i];
  qsort(lat, n, sizeof *lat, cmp_u64);
  printf("transactions %zu seconds %.6f p50_us %.3f p99_us %.3f mean_us %.3f\n", n, (double)(t - t0) / 1e9, (double)lat[n / 2] / 1e3,
         (double)lat[(size_t)((double)n * 0.99)] / 1e3, sum / (double)n / 1e3);
  return 0;
}

enum { C_FREE, C_CONNECTING, C_WAITING };

static int tcp_churn(const char *dst, int port, double seconds, int parallel, long max, double rate) {
  struct sockaddr_in a = addr_of(dst, port);
  int ep = epoll_create1(0);
  int *state = calloc((size_t)parallel, sizeof *state);
  int *fds = calloc((size_t)parallel, sizeof *fds);
  long started = 0, done = 0, failed = 0, ports = 0;
  // Which local ports were used: a port used twice (TIME_WAIT reused) is one 5-tuple, so one flow.
  static uint8_t used[65536];
  double t0 = now_s(), end = t0 + seconds;
  int one = 1;
  // Start a connection in slot i; returns 0 when no more should start.
  #define START(i)                                                                        \
    do {                                                                                  \
      state[i] = C_FREE;                                                                  \
      double now_ = now_s();                                                              \
      if (started >= max || now_ >= end) break;                                           \
      /* Paced: the next start is due at t0 + started / rate. */                          \
      if (rate > 0 && (double)started >= (now_ - t0) * rate) break;                       \
      int fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);                          \
      if (fd_ < 0) die("socket");                                                         \
      setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);                        \
      started++;                                                                          \
      if (connect(fd_, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {    \
        failed++;                                                                         \
        close(fd_);                                                                       \
        break;                                                                            \
      }                                                                                   \
      fds[i] = fd_;                                                                       \
      state[i] = C_CONNECTING;                                                            \
      struct epoll_event ev_ = {.events = EPOLLOUT, .data.u32 = (uint32_t)(i)};          \
      epoll_ctl(ep, EPOLL_CTL_ADD, fd_, &ev_);                                            \
    } while (0)
  struct epoll_event evs[256];
  for (;;) {
    // Free slots take the connections that are due (all of them, unpaced).
    int active = 0;
    for (int i = 0; i < parallel; i++) {
      if (state[i] == C_FREE) START(i);
      active += state[i] != C_FREE;
    }
    if (!active && (started >= max || now_s() >= end)) break;
    // Paced, wake every millisecond for the starts that fall due (on an empty set this just waits).
    int n = epoll_wait(ep, evs, 256, rate > 0 ? 1 : 1000);
    for (int k = 0; k < n; k++) {
      int i = (int)evs[k].data.u32;
      int fd = fds[i];
      if (state[i] == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err || (evs[k].events & (EPOLLERR | EPOLLHUP))) {
          failed++;
          close(fd);
          START(i);
          continue;
        }
        struct sockaddr_in local;
        socklen_t llen = sizeof local;
        if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0 && !used[ntohs(local.sin_port)]++) ports++;
        char b = 'c';
        if (write(fd, &b, 1) != 1) {
          failed++;
          close(fd);
          START(i);
          continue;
        }
        state[i] = C_WAITING;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
      } else if (state[i] == C_WAITING) {
        char b;
        ssize_t r = read(fd, &b, 1);
        if (r < 0 && errno == EAGAIN) continue;
        if (r == 1) done++;
        else failed++;
        close(fd);
        START(i);
      }
    }
  }
  printf("connections %ld failed %ld ports %ld seconds %.6f\n", done, failed, ports, now_s() - t0);
  return 0;
}

// ---- Raw frames ---------------------------------------------------------------

static int parse_mac(const char *s, uint8_t *out) {
  unsigned v[6];
  if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return -1;
  for (int i = 0; i < 6; i++) out[i] = (uint8_t)v[i];
  return 0;
}

static uint16_t ip_checksum(const uint8_t *h, int len) {
  uint32_t sum = 0;
  for (int i = 0; i < len; i += 2) sum += (uint32_t)(h[i] << 8 | h[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/** A bijection on 32 bits (an odd multiplier, xorshifts): distinct indexes give distinct outputs. */
static uint32_t mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

static int flood(const char *ifname, const char *dmac, const char *smac, const char *dstip, unsigned long first, unsigned long count, double seconds) {
  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) die("socket(AF_PACKET)");
  int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = (int)if_nametoindex(ifname);
  sll.sll_halen = 6;
  if (!sll.sll_ifindex) die("if_nametoindex");
  uint8_t frame[BATCH][64];
  struct in_addr dst;
  if (inet_pton(AF_INET, dstip, &dst) != 1) usage();
  for (int b = 0; b < BATCH; b++) {
    uint8_t *f = frame[b];
    memset(f, 0, 64);
    if (parse_mac(dmac, f) || parse_mac(smac, f + 6)) usage();
    memcpy(sll.sll_addr, f, 6);
    f[12] = 0x08;
    f[13] = 0x00;
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    ip[2] = 0;
    ip[3] = 50; // 20 + 8 + 22
    ip[8] = 64;
    ip[9] = 17;
    memcpy(ip + 16, &dst, 4);
    ip[20 + 4] = 0;
    ip[20 + 5] = 30; // UDP length 8 + 22; checksum 0 (none, allowed for IPv4)
  }
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  for (int b = 0; b < BATCH; b++) {
    iov[b].iov_base = frame[b];
    iov[b].iov_len = 64;
    memset(&msgs[b], 0, sizeof msgs[b]);
    msgs[b].msg_hdr.msg_iov = &iov[b];
    msgs[b].msg_hdr.msg_iovlen = 1;
    msgs[b].msg_hdr.msg_name = &sll;
    msgs[b].msg_hdr.msg_namelen = sizeof sll;
  }
  unsigned long sent = 0;
  double t0 = now_s(), end = t0 + seconds;
  while (sent < count) {
    int nb = count - sent < BATCH ? (int)(count - sent) : BATCH;
    for (int b = 0; b < nb; b++) {
      // The index's hash (a bijection) gives the source address its low 24 bits (10.x.y.z) and
      // the source port its high 8, so no two indexes share a tuple; the destination port
      // only looks random.
      uint32_t h = mix((uint32_t)(first + sent + (unsigned long)b));
      uint8_t *ip = frame[b] + 14;
      ip[12] = 10;
      ip[13] = (uint8_t)(h >> 16);
      ip[14] = (uint8_t)(h >> 8);
      ip[15] = (uint8_t)h;
      ip[10] = ip[11] = 0;
      uint16_t c = ip_checksum(ip, 20);
      ip[10] = (uint8_t)(c >> 8);
      ip[11] = (uint8_t)c;
      uint16_t sport = (uint16_t)(1024 + (h >> 24));
      uint16_t dport = (uint16_t)(1024 + (mix(h) & 0x7fff));
      ip[20] = (uint8_t)(sport >> 8);
      ip[21] = (uint8_t)sport;
      ip[22] = (uint8_t)(dport >> 8);
      ip[23] = (uint8_t)dport;
    }
    int n = sendmmsg(fd, msgs, (unsigned)nb, 0);
    if (n > 0) sent += (unsigned long)n;
    else if (n < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR) die("sendmmsg");
    if (now_s() >= end) break;
  }
  printf("sent %lu seconds %.6f\n", sent, now_s() - t0);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) usage();
  const char *m = argv[1];
  if (!strcmp(m, "udp-sink") && argc == 3) return udp_sink(atoi(argv[2]));
  if (!strcmp(m, "udp-blast") && (argc == 6 || argc == 7)) return udp_blast(argv[2], atoi(argv[3]), atof(argv[4]), atoi(argv[5]), argc == 7 ? atof(argv[6]) : 0);
  if (!strcmp(m, "tcp-echo") && argc == 3) return tcp_echo(atoi(argv[2]));
  if (!strcmp(m, "tcp-rr") && argc == 6) return tcp_rr(argv[2], atoi(argv[3]), atof(argv[4]), atoi(argv[5]));
  if (!strcmp(m, "tcp-churn") && (argc == 7 || argc == 8)) return tcp_churn(argv[2], atoi(argv[3]), atof(argv[4]), atoi(argv[5]), atol(argv[6]), argc == 8 ? atof(argv[7]) : 0);
  if (!strcmp(m, "flood") && argc == 9)
    return flood(argv[2], argv[3], argv[4], argv[5], strtoul(argv[6], NULL, 10), strtoul(argv[7], NULL, 10), atof(argv[8]));
  usage();
  return 2;
}
