// uvsbench.c — the traffic tools of `uvs bench modes`, compiled by the suite with gcc into a temp dir.
//
//   uvsbench gen IF DSTMAC SRCIP DSTIP DPORT FLOWS RATE SECONDS
//       Sends 64-byte UDP frames (60 bytes + FCS) out of IF through an AF_PACKET socket
//       (PACKET_QDISC_BYPASS), FLOWS different source ports (1024 + i), full IP and UDP checksums.
//       RATE 0: as fast as possible, sendmmsg batches of 64. RATE > 0: paced to RATE frames/s in
//       small bursts, one per 20 µs slice (sleep when the next burst is far off, spin on the clock
//       when it is close), each frame stamped with CLOCK_REALTIME for the sink.
//       Prints {"sent":N,"seconds":S,"dropped":D,"skipped":K} on stdout: frames the kernel took,
//       the run time, frames it refused (ENOBUFS: receiver backlog full) and, paced, frames
//       skipped because the sender fell more than 200 µs behind its schedule.
//   uvsbench sink IF SECONDS
//       Reads every incoming frame of IF (AF_PACKET, kernel receive timestamps, SO_TIMESTAMPNS),
//       finds the generator's stamp in UDP payloads (also inside IPIP), and prints one-way latency
//       percentiles in µs: {"n":N,"p50":…,"p99":…,"p999":…,"min":…,"max":…}.
//
// Frames carry the payload magic "UVSB", a sequence number and the send time (ns).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_QDISC_BYPASS
#define PACKET_QDISC_BYPASS 20
#endif

#define FRAME 60
#define MAGIC 0x55565342u
#define BATCH 64
#define SLICE_NS 20000ull     // paced mode: one burst per 20 µs (16 frames at 800k pps, 1 at 50k)
#define SPIN_NS 60000ull      // paced mode: sleep only when the next burst is further off than this
#define MAX_LAG_NS 200000.0   // paced mode: catch up by at most 200 µs of frames

static uint64_t now_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int parse_mac(const char *s, uint8_t *m) {
  return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) == 6 ? 0 : -1;
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s) {
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1) s += (uint32_t)(p[n - 1] << 8);
  return s;
}
static uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

static int open_packet(const char *ifname, int *ifindex, uint8_t *mac) {
  int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  if (fd < 0) { perror("socket"); exit(1); }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) { perror("SIOCGIFINDEX"); exit(1); }
  *ifindex = ifr.ifr_ifindex;
  if (mac) {
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) { perror("SIOCGIFHWADDR"); exit(1); }
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = *ifindex;
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) { perror("bind"); exit(1); }
  int big = 16 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
  return fd;
}

// Builds frame i of the flow set; stamps (seq, t) when t != 0. Checksums are complete.
static void build(uint8_t *f, const uint8_t *dmac, const uint8_t *smac, uint32_t sip, uint32_t dip, uint16_t sport,
                  uint16_t dport, uint64_t seq, uint64_t t) {
  memset(f, 0, FRAME);
  memcpy(f, dmac, 6);
  memcpy(f + 6, smac, 6);
  f[12] = 0x08; f[13] = 0x00;
  uint8_t *ip = f + 14;
  ip[0] = 0x45; ip[2] = 0; ip[3] = 46;  // 20 + 8 + 18
  ip[6] = 0x40; ip[8] = 64; ip[9] = 17;
  memcpy(ip + 12, &sip, 4);
  memcpy(ip + 16, &dip, 4);
  uint16_t c = fold(sum16(ip, 20, 0));
  ip[10] = c >> 8; ip[11] = c & 0xff;
  uint8_t *u = ip + 20;
  u[0] = sport >> 8; u[1] = sport & 0xff;
  u[2] = dport >> 8; u[3] = dport & 0xff;
  u[4] = 0; u[5] = 26;
  uint8_t *pl = u + 8;
  uint32_t m = htonl(MAGIC);
  memcpy(pl, &m, 4);
  memcpy(pl + 4, &seq, 8);  // host order; read back by the same binary
  memcpy(pl + 12, &t, 6);   // 48 bits of ns are enough for ~3 days of CLOCK_REALTIME low bits
  uint32_t s = sum16(ip + 12, 8, 0) + 17 + 26;
  uint16_t uc = fold(sum16(u, 26, s));
  if (uc == 0) uc = 0xffff;
  u[6] = uc >> 8; u[7] = uc & 0xff;
}

// Writes sequence and stamp into a frame built with zeros there and fixes the UDP checksum.
static void stamp_frame(uint8_t *f, uint64_t seq, uint64_t t) {
  uint8_t *u = f + 14 + 20;
  uint8_t *pl = u + 8;
  memcpy(pl + 4, &seq, 8);
  memcpy(pl + 12, &t, 6);
  uint16_t old = (uint16_t)(u[6] << 8 | u[7]);
  // The zeroed bytes contributed nothing: the new sum is the old one plus the 14 new bytes (at an
  // even offset of the UDP header, so they line up with its 16-bit words).
  uint32_t sum = (uint16_t)~old;
  sum = sum16(pl + 4, 14, sum);
  uint16_t c = fold(sum);
  if (c == 0) c = 0xffff;
  u[6] = c >> 8; u[7] = c & 0xff;
}

static int gen(int argc, char **argv) {
  if (argc < 10) { fprintf(stderr, "gen IF DSTMAC SRCIP DSTIP DPORT FLOWS RATE SECONDS\n"); return 2; }
  uint8_t dmac[6], smac[6];
  if (parse_mac(argv[3], dmac) < 0) { fprintf(stderr, "bad mac\n"); return 2; }
  uint32_t sip, dip;
  if (inet_pton(AF_INET, argv[4], &sip) != 1 || inet_pton(AF_INET, argv[5], &dip) != 1) { fprintf(stderr, "bad ip\n"); return 2; }
  int dport = atoi(argv[6]), flows = atoi(argv[7]);
  double rate = atof(argv[8]), secs = atof(argv[9]);
  if (flows < 1) flows = 1;
  if (flows > 60000) flows = 60000;
  int ifindex;
  int fd = open_packet(argv[2], &ifindex, smac);
  int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
  uint64_t start = now_ns(CLOCK_MONOTONIC), end = start + (uint64_t)(secs * 1e9);
  uint64_t sent = 0, dropped = 0, skipped = 0;
  if (rate <= 0) {
    uint8_t *frames = malloc((size_t)flows * FRAME);
    for (int i = 0; i < flows; i++) build(frames + (size_t)i * FRAME, dmac, smac, sip, dip, (uint16_t)(1024 + i), (uint16_t)dport, 0, 0);
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    int next = 0;
    while (now_ns(CLOCK_MONOTONIC) < end) {
      for (int k = 0; k < BATCH; k++) {
        iov[k].iov_base = frames + (size_t)next * FRAME;
        iov[k].iov_len = FRAME;
        memset(&msgs[k], 0, sizeof msgs[k]);
        msgs[k].msg_hdr.msg_iov = &iov[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
        if (++next == flows) next = 0;
      }
      int r = sendmmsg(fd, msgs, BATCH, 0);
      if (r > 0) sent += (uint64_t)r;
      if (r < BATCH) dropped++;  // the frame the kernel refused (ENOBUFS); the rest of the batch is not retried
    }
  } else {
    // Paced: the schedule says frame k is due at start + k/RATE. Every time slice (SLICE_NS, or
    // one frame period when that is longer) the frames that have become due go out as one small
    // burst through sendmmsg; between bursts the thread sleeps (absolute clock_nanosleep, 1 µs
    // timer slack) when the next burst is far off and spins on the clock when it is close.
    // A sender that falls behind (preempted, or slower than RATE) catches up by at most MAX_LAG_NS
    // of frames in one burst; frames older than that are skipped (counted), so the achieved rate
    // is what it is and the offered load never arrives as one huge burst.
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    // One prebuilt frame per flow (sequence and stamp zero); per frame only the 14 bytes of
    // sequence + stamp are written and the UDP checksum adjusted for them (RFC 1624).
    uint8_t *tmpl = malloc((size_t)flows * FRAME);
    for (int i = 0; i < flows; i++) build(tmpl + (size_t)i * FRAME, dmac, smac, sip, dip, (uint16_t)(1024 + i), (uint16_t)dport, 0, 0);
    static uint8_t fb[BATCH][FRAME];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int k = 0; k < BATCH; k++) {
      iov[k].iov_base = fb[k];
      iov[k].iov_len = FRAME;
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    double per_ns = rate / 1e9;
    uint64_t period = (uint64_t)(1e9 / rate);
    uint64_t slice = period > SLICE_NS ? period : SLICE_NS;
    uint64_t burst = (uint64_t)(rate * (double)slice / 1e9);
    if (burst < 1) burst = 1;
    if (burst > BATCH) burst = BATCH;
    uint64_t max_lag = (uint64_t)(rate * MAX_LAG_NS / 1e9);
    if (max_lag < 2 * BATCH) max_lag = 2 * BATCH;
    uint64_t done = 0;  // frames scheduled so far (sent + dropped + skipped)
    for (;;) {
      uint64_t t = now_ns(CLOCK_MONOTONIC);
      if (t >= end) break;
      uint64_t due = (uint64_t)((double)(t - start) * per_ns);
      if (due > done + max_lag) {
        skipped += due - max_lag - done;
        done = due - max_lag;
      }
      uint64_t n = due > done ? due - done : 0;
      if (n < burst) {
        // Wait for the burst's last frame to become due.
        uint64_t at = start + (uint64_t)((double)(done + burst) / per_ns);
        if (at > end) at = end;
        if (at > t + SPIN_NS) {
          uint64_t wake = at - SPIN_NS / 2;
          struct timespec ts = {(time_t)(wake / 1000000000ull), (long)(wake % 1000000000ull)};
          while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
        }
        continue;
      }
      if (n > BATCH) n = BATCH;
      uint64_t stamp = now_ns(CLOCK_REALTIME);
      for (uint64_t k = 0; k < n; k++) {
        uint64_t seq = done + k;
        uint8_t *f = fb[k];
        memcpy(f, tmpl + (size_t)(seq % (uint64_t)flows) * FRAME, FRAME);
        stamp_frame(f, seq, stamp);
      }
      // A frame the kernel refuses (ENOBUFS: the receiver's backlog is full) counts as offered
      // and dropped; the rest of the burst still goes out.
      uint64_t off = 0;
      while (off < n) {
        int r = sendmmsg(fd, msgs + off, (unsigned)(n - off), 0);
        if (r > 0) { sent += (uint64_t)r; off += (uint64_t)r; }
        else if (r < 0 && errno == EINTR) continue;
        else { dropped++; off++; }
      }
      done += n;
    }
  }
  double took = (double)(now_ns(CLOCK_MONOTONIC) - start) / 1e9;
  printf("{\"sent\":%llu,\"seconds\":%.3f,\"dropped\":%llu,\"skipped\":%llu}\n", (unsigned long long)sent, took,
         (unsigned long long)dropped, (unsigned long long)skipped);
  return 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int sink(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "sink IF SECONDS\n"); return 2; }
  int ifindex;
  int fd = open_packet(argv[2], &ifindex, NULL);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  double secs = atof(argv[3]);
  uint64_t end = now_ns(CLOCK_MONOTONIC) + (uint64_t)(secs * 1e9);
  size_t cap = 4 << 20, n = 0;
  uint64_t *lat = malloc(cap * sizeof *lat);
  uint8_t buf[2048];
  char cbuf[256];
  fprintf(stderr, "sink ready\n");
  for (;;) {
    uint64_t t = now_ns(CLOCK_MONOTONIC);
    if (t >= end) break;
    struct pollfd p = {fd, POLLIN, 0};
    int left = (int)((end - t) / 1000000ull) + 1;
    if (poll(&p, 1, left) <= 0) continue;
    for (;;) {
      struct sockaddr_ll from;
      struct iovec iov = {buf, sizeof buf};
      struct msghdr mh = {&from, sizeof from, &iov, 1, cbuf, sizeof cbuf, 0};
      ssize_t r = recvmsg(fd, &mh, MSG_DONTWAIT);
      if (r < 0) break;
      if (from.sll_pkttype == PACKET_OUTGOING || r < 14 + 20 + 8 + 18) continue;
      if (buf[12] != 0x08 || buf[13] != 0x00) continue;
      uint8_t *ip = buf + 14;
      size_t rest = (size_t)r - 14;
      if (ip[9] == 4) {  // IPIP: the inner packet
        size_t ihl = (size_t)(ip[0] & 15) * 4;
        if (rest < ihl + 20 + 8 + 18) continue;
        ip += ihl;
        rest -= ihl;
      }
      if (ip[9] != 17) continue;
      size_t ihl = (size_t)(ip[0] & 15) * 4;
      if (rest < ihl + 8 + 18) continue;
      uint8_t *pl = ip + ihl + 8;
      uint32_t m;
      memcpy(&m, pl, 4);
      if (ntohl(m) != MAGIC) continue;
      uint64_t sentAt = 0;
      memcpy(&sentAt, pl + 12, 6);
      if (sentAt == 0) continue;
      uint64_t rx = 0;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
          struct timespec ts;
          memcpy(&ts, CMSG_DATA(c), sizeof ts);
          rx = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        }
      }
      if (rx == 0) rx = now_ns(CLOCK_REALTIME);
      rx &= 0xffffffffffffull;
      if (rx < sentAt) continue;
      if (n < cap) lat[n++] = rx - sentAt;
    }
  }
  if (n == 0) { printf("{\"n\":0}\n"); return 0; }
  qsort(lat, n, sizeof *lat, cmp_u64);
#define PCT(q) ((double)lat[(size_t)((double)(n - 1) * (q))] / 1000.0)
  printf("{\"n\":%zu,\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"min\":%.1f,\"max\":%.1f}\n", n, PCT(0.5), PCT(0.99), PCT(0.999),
         (double)lat[0] / 1000.0, (double)lat[n - 1] / 1000.0);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "gen") == 0) return gen(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "sink") == 0) return sink(argc, argv);
  fprintf(stderr, "usage: uvsbench gen|sink …\n");
  return 2;
}
