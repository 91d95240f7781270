// xdp.cc — an AF_XDP socket on one queue of an interface, the fast alternative to AF_PACKET
// (src/port/xdp-port.ts). Everything the kernel needs is set up here without libbpf/libxdp:
//
//   xskOpen(ifname, {netns?, queue? = 0, mode? = 'auto'|'drv'|'skb', zeroCopy? = false})
//       → {fd, name, ifindex, mac, mtu, queue, attach: 'drv'|'skb', zeroCopy: bool, frames, frameSize}
//   xskRecv(fd, buffer, off, len, meta, slots, count) → n received   (same arena contract as recvBatch)
//   xskSend(fd, buffer, off, len, meta, slots, count) → n queued for transmit
//   xskStats(fd) → {rxDropped, rxInvalid, txInvalid, rxRingFull, fillRingEmpty, txRingEmpty,
//                   rxPartialCsum, txCsumDone, txTooBig, txNoFrame, kicks}
//   xskClose(fd)   detaches the program (closes the bpf link), unmaps rings and UMEM, closes fds
//
// Setup, in order: UMEM = one anonymous mmap of kFrames × kFrameSize (first half feeds the fill
// ring for receive, second half is the transmit pool), the four rings (XDP_MMAP_OFFSETS), bind to
// (ifindex, queue) with XDP_COPY (or zero-copy when asked and the driver can), an XSKMAP with the
// socket at index `queue`, a hash map of addresses (uvs_addrs) and a 42-instruction XDP program
// (LoadProgram) attached with BPF_LINK_CREATE (native/driver mode first, then generic skb mode,
// as `mode` allows). The link is owned by this process: it goes away on xskClose or when the
// process dies — no stale program.
//
//   xskSetAddrs(fd, addrs: Uint32Array, flags: Uint32Array) → entries   (1 owned, 2 NAT RS, 4 local)
//
// What the program redirects to the socket: only the flows uvs owns, the same split as the
// nftables guard of AF_PACKET ports — IPv4 to an owned address (VIP, FULLNAT local address), and
// IPv4 from a NAT real server to a non-local address (its replies). Everything else, ARP and the
// host's own traffic included, goes on to the host stack (XDP_PASS), so the host keeps working
// on that interface (ssh, health checks, its own ARP). uvs reads ARP through a second,
// ARP-only AF_PACKET socket (src/port/xdp-port.ts).
//
// Checksums: XDP frames carry no virtio-net header. On veth, a frame a local stack sent with
// CHECKSUM_PARTIAL reaches XDP with only the pseudo-header sum in the TCP/UDP checksum field
// (and no GSO: attaching XDP to a veth turns off the peer's software GSO). Receive therefore
// recognises IPv4 TCP/UDP frames whose checksum field equals the folded pseudo-header sum and
// that do not verify as complete, and reports them as NEEDS_CSUM (meta flags 1, csum_start/offset
// set) exactly as AF_PACKET would; all other frames get zero meta. Send completes NEEDS_CSUM
// frames in software in the UMEM copy (there is no offload on the AF_XDP transmit path); a GSO
// frame longer than the MTU cannot be sent and is counted (txTooBig).
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <unordered_map>
#include <vector>

#include "uvs_io.h"
#include "batch_args.h"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef AF_XDP
#define AF_XDP 44
#endif

namespace uvs {

namespace {

constexpr uint32_t kFrameSize = 4096;
constexpr uint32_t kFrames = 4096;          // UMEM = 16 MiB
constexpr uint32_t kRxFrames = kFrames / 2;  // fill ring side
constexpr uint32_t kRingSize = 2048;         // every ring
constexpr uint32_t kRxHeadroom = XDP_PACKET_HEADROOM;

struct Ring {
  uint32_t* producer = nullptr;
  uint32_t* consumer = nullptr;
  uint32_t* flags = nullptr;
  void* desc = nullptr;
  void* map = nullptr;
  size_t mapLen = 0;
  uint32_t mask = kRingSize - 1;
  uint32_t size = kRingSize;
};

inline uint32_t LoadAcquire(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline void StoreRelease(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

struct Xsk {
  int fd = -1;
  int mapFd = -1;
  int addrMapFd = -1;
  int progFd = -1;
  int linkFd = -1;
  uint8_t* umem = nullptr;
  size_t umemLen = 0;
  Ring fill, comp, rx, tx;
  std::vector<uint64_t> txFree;  // transmit frames not in flight
  std::string name;
  uint32_t mtu = 1500;
  // counters
  double rxPartialCsum = 0, txCsumDone = 0, txTooBig = 0, txNoFrame = 0, kicks = 0, rxTooBig = 0;
};

std::unordered_map<int, Xsk*> sockets;

long Bpf(int cmd, union bpf_attr* attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

void Cleanup(Xsk* x) {
  if (x->linkFd >= 0) close(x->linkFd);
  if (x->progFd >= 0) close(x->progFd);
  if (x->mapFd >= 0) close(x->mapFd);
  if (x->addrMapFd >= 0) close(x->addrMapFd);
  for (Ring* r : {&x->fill, &x->comp, &x->rx, &x->tx}) {
    if (r->map != nullptr && r->map != MAP_FAILED) munmap(r->map, r->mapLen);
  }
  if (x->fd >= 0) close(x->fd);
  if (x->umem != nullptr) munmap(x->umem, x->umemLen);
  delete x;
}

// Owns the half-built socket while xskOpen runs; throws clean up everything.
struct XskGuard {
  Xsk* x;
  ~XskGuard() {
    if (x != nullptr) Cleanup(x);
  }
};

void MapRing(Napi::Env env, Xsk* x, Ring* r, const struct xdp_ring_offset& o, size_t descSize, uint64_t pgoff, const char* what) {
  r->mapLen = o.desc + static_cast<size_t>(r->size) * descSize;
  r->map = mmap(nullptr, r->mapLen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, x->fd, static_cast<off_t>(pgoff));
  if (r->map == MAP_FAILED) {
    r->map = nullptr;
    throw ErrnoError(env, errno, what, x->name);
  }
  uint8_t* base = static_cast<uint8_t*>(r->map);
  r->producer = reinterpret_cast<uint32_t*>(base + o.producer);
  r->consumer = reinterpret_cast<uint32_t*>(base + o.consumer);
  r->flags = reinterpret_cast<uint32_t*>(base + o.flags);
  r->desc = base + o.desc;
}

// The XDP program: the same split as the nftables guard uvsd installs for AF_PACKET ports.
// Redirected to xsks_map[rx_queue_index] (uvs only): IPv4 frames whose destination is an address
// uvs owns (VIP, FULLNAT local address: flag ADDR_OWNED in addrs), and IPv4 frames from a NAT
// real server (ADDR_NATSRC) to an address that is not the host's own (ADDR_LOCAL). Everything
// else — ARP, traffic for the host's addresses, other protocols — goes on to the host stack
// (XDP_PASS); uvs reads ARP through a second, ARP-only AF_PACKET socket (src/port/xdp-port.ts).
constexpr uint32_t kAddrOwned = 1, kAddrNatSrc = 2, kAddrLocal = 4;
constexpr uint32_t kAddrMapSize = 16384;

#define INSN(code, dst, src, off, imm) {static_cast<__u8>(code), dst, src, static_cast<__s16>(off), static_cast<__s32>(imm)}
#define LD_MAP(reg, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, reg, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)

int LoadProgram(Napi::Env env, int xskMapFd, int addrMapFd, const std::string& name, std::string* log) {
  (void)env;
  (void)name;
  const int kPass = 40, kRedirect = 34;  // instruction indexes below
  struct bpf_insn prog[] = {
      /*  0 */ INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0),
      /*  1 */ INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_6, offsetof(struct xdp_md, data), 0),
      /*  2 */ INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_6, offsetof(struct xdp_md, data_end), 0),
      /*  3 */ INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0),
      /*  4 */ INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, 34),  // Ethernet + IPv4 header
      /*  5 */ INSN(BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, kPass - 6, 0),
      /*  6 */ INSN(BPF_LDX | BPF_MEM | BPF_H, BPF_REG_4, BPF_REG_2, 12, 0),
      /*  7 */ INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, kPass - 8, 0x0008),  // ETH_P_IP, read little-endian
      /*  8 */ INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_7, BPF_REG_2, 26, 0),  // saddr
      /*  9 */ INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_2, 30, 0),  // daddr
      /* 10 */ INSN(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_4, -4, 0),
      /* 11 */ LD_MAP(BPF_REG_1, addrMapFd),
      /* 13 */ INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),
      /* 14 */ INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4),
      /* 15 */ INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
      /* 16 */ INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_8, 0, 0, 0),  // r8 = flags of daddr
      /* 17 */ INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 1, 0),
      /* 18 */ INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_8, BPF_REG_0, 0, 0),
      /* 19 */ INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_8, 0, 0),
      /* 20 */ INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_4, 0, 0, kAddrOwned),
      /* 21 */ INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, kRedirect - 22, 0),
      /* 22 */ INSN(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_7, -4, 0),
      /* 23 */ LD_MAP(BPF_REG_1, addrMapFd),
      /* 25 */ INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),
      /* 26 */ INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4),
      /* 27 */ INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
      /* 28 */ INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, kPass - 29, 0),
      /* 29 */ INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_0, 0, 0),
      /* 30 */ INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_4, 0, 0, kAddrNatSrc),
      /* 31 */ INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_4, 0, kPass - 32, 0),
      /* 32 */ INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_8, 0, 0, kAddrLocal),
      /* 33 */ INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_8, 0, kPass - 34, 0),
      /* 34 redirect */ INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_6, offsetof(struct xdp_md, rx_queue_index), 0),
      /* 35 */ LD_MAP(BPF_REG_1, xskMapFd),
      /* 37 */ INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, XDP_PASS),
      /* 38 */ INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_redirect_map),
      /* 39 */ INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
      /* 40 pass */ INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS),
      /* 41 */ INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  static_assert(sizeof(prog) / sizeof(prog[0]) == 42, "jump offsets above assume 42 instructions");
  static char license[] = "GPL";
  static thread_local char logBuf[16384];
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.prog_type = BPF_PROG_TYPE_XDP;
  attr.expected_attach_type = BPF_XDP;
  attr.insns = reinterpret_cast<uint64_t>(prog);
  attr.insn_cnt = sizeof(prog) / sizeof(prog[0]);
  attr.license = reinterpret_cast<uint64_t>(license);
  logBuf[0] = 0;
  attr.log_buf = reinterpret_cast<uint64_t>(logBuf);
  attr.log_size = sizeof(logBuf);
  attr.log_level = 1;
  memcpy(attr.prog_name, "uvs_xsk_filter", 15);
  int fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
  if (fd < 0) {
    int err = errno;
    *log = logBuf;
    errno = err;
  }
  return fd;
}

int LinkCreate(int progFd, int ifindex, uint32_t flags) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.link_create.prog_fd = progFd;
  attr.link_create.target_ifindex = ifindex;
  attr.link_create.attach_type = BPF_XDP;
  attr.link_create.flags = flags;
  return static_cast<int>(Bpf(BPF_LINK_CREATE, &attr));
}

uint32_t OptU32(const Napi::CallbackInfo& info, size_t idx, const char* key, uint32_t def) {
  if (info.Length() <= idx || !info[idx].IsObject()) return def;
  Napi::Value v = info[idx].As<Napi::Object>().Get(key);
  if (!v.IsNumber()) return def;
  return v.As<Napi::Number>().Uint32Value();
}

Napi::Value XskOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "interface name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() >= IFNAMSIZ) throw Napi::RangeError::New(env, "bad interface name \"" + name + "\"");
  std::string netns = OptString(info, 1, "netns");
  std::string mode = OptString(info, 1, "mode");
  if (mode.empty()) mode = "auto";
  if (mode != "auto" && mode != "drv" && mode != "skb") throw Napi::RangeError::New(env, "mode must be auto, drv or skb");
  bool zeroCopy = OptBool(info, 1, "zeroCopy", false);
  uint32_t queue = OptU32(info, 1, "queue", 0);

  NetnsScope ns(env, netns, name);
  XskGuard g{new Xsk()};
  Xsk* x = g.x;
  x->name = name;

  // Interface facts.
  int ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ctl < 0) throw ErrnoError(env, errno, "socket", name);
  struct ifreq ifr;
  auto req = [&](unsigned long r, const char* rn) {
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, name.data(), name.size());
    if (ioctl(ctl, r, &ifr) < 0) {
      int err = errno;
      close(ctl);
      throw ErrnoError(env, err, rn, name);
    }
  };
  req(SIOCGIFINDEX, "SIOCGIFINDEX");
  int ifindex = ifr.ifr_ifindex;
  req(SIOCGIFHWADDR, "SIOCGIFHWADDR");
  unsigned char mac[6];
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  req(SIOCGIFMTU, "SIOCGIFMTU");
  x->mtu = ifr.ifr_mtu;
  close(ctl);
  if (x->mtu + 14 + 4 > kFrameSize - kRxHeadroom) {
    throw ErrnoErrorRaw(env, EMSGSIZE, "xsk", "AF_XDP on \"" + name + "\": MTU " + std::to_string(x->mtu) + " does not fit a " +
                        std::to_string(kFrameSize - kRxHeadroom) + "-byte UMEM frame");
  }

  x->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (x->fd < 0) throw ErrnoError(env, errno, "socket(AF_XDP)", name);

  x->umemLen = static_cast<size_t>(kFrames) * kFrameSize;
  void* um = mmap(nullptr, x->umemLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (um == MAP_FAILED) throw ErrnoError(env, errno, "mmap(UMEM)", name);
  x->umem = static_cast<uint8_t*>(um);

  struct xdp_umem_reg ur;
  memset(&ur, 0, sizeof(ur));
  ur.addr = reinterpret_cast<uint64_t>(x->umem);
  ur.len = x->umemLen;
  ur.chunk_size = kFrameSize;
  ur.headroom = 0;
  if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &ur, sizeof(ur)) < 0) throw ErrnoError(env, errno, "XDP_UMEM_REG", name);
  int rs = kRingSize;
  if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_FILL_RING, &rs, sizeof(rs)) < 0) throw ErrnoError(env, errno, "XDP_UMEM_FILL_RING", name);
  if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &rs, sizeof(rs)) < 0) throw ErrnoError(env, errno, "XDP_UMEM_COMPLETION_RING", name);
  if (setsockopt(x->fd, SOL_XDP, XDP_RX_RING, &rs, sizeof(rs)) < 0) throw ErrnoError(env, errno, "XDP_RX_RING", name);
  if (setsockopt(x->fd, SOL_XDP, XDP_TX_RING, &rs, sizeof(rs)) < 0) throw ErrnoError(env, errno, "XDP_TX_RING", name);

  struct xdp_mmap_offsets mo;
  socklen_t ol = sizeof(mo);
  if (getsockopt(x->fd, SOL_XDP, XDP_MMAP_OFFSETS, &mo, &ol) < 0) throw ErrnoError(env, errno, "XDP_MMAP_OFFSETS", name);
  MapRing(env, x, &x->rx, mo.rx, sizeof(struct xdp_desc), XDP_PGOFF_RX_RING, "mmap(rx ring)");
  MapRing(env, x, &x->tx, mo.tx, sizeof(struct xdp_desc), XDP_PGOFF_TX_RING, "mmap(tx ring)");
  MapRing(env, x, &x->fill, mo.fr, sizeof(uint64_t), XDP_UMEM_PGOFF_FILL_RING, "mmap(fill ring)");
  MapRing(env, x, &x->comp, mo.cr, sizeof(uint64_t), XDP_UMEM_PGOFF_COMPLETION_RING, "mmap(completion ring)");

  // Every receive frame goes to the fill ring; the transmit half starts free.
  uint64_t* fd = static_cast<uint64_t*>(x->fill.desc);
  uint32_t prod = *x->fill.producer;
  for (uint32_t i = 0; i < kRxFrames; i++) fd[(prod + i) & x->fill.mask] = static_cast<uint64_t>(i) * kFrameSize;
  StoreRelease(x->fill.producer, prod + kRxFrames);
  x->txFree.reserve(kFrames - kRxFrames);
  for (uint32_t i = kFrames; i > kRxFrames; i--) x->txFree.push_back(static_cast<uint64_t>(i - 1) * kFrameSize);

  // Bigger transmit budget per sendto where the kernel has it (XDP_MAX_TX_SKB_BUDGET, 6.17+); best effort.
  int budget = 256;
  setsockopt(x->fd, SOL_XDP, 9, &budget, sizeof(budget));

  struct sockaddr_xdp sa;
  memset(&sa, 0, sizeof(sa));
  sa.sxdp_family = AF_XDP;
  sa.sxdp_ifindex = ifindex;
  sa.sxdp_queue_id = queue;
  sa.sxdp_flags = zeroCopy ? XDP_ZEROCOPY : XDP_COPY;
  if (bind(x->fd, reinterpret_cast<struct sockaddr*>(&sa), sizeof(sa)) < 0) {
    if (!zeroCopy) throw ErrnoError(env, errno, "bind(AF_XDP)", name);
    sa.sxdp_flags = XDP_COPY;  // asked for zero-copy, driver cannot: copy mode
    if (bind(x->fd, reinterpret_cast<struct sockaddr*>(&sa), sizeof(sa)) < 0) throw ErrnoError(env, errno, "bind(AF_XDP)", name);
  }
  struct xdp_options xo;
  memset(&xo, 0, sizeof(xo));
  ol = sizeof(xo);
  bool zc = getsockopt(x->fd, SOL_XDP, XDP_OPTIONS, &xo, &ol) == 0 && (xo.flags & XDP_OPTIONS_ZEROCOPY) != 0;

  // XSKMAP with our socket at `queue`.
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_type = BPF_MAP_TYPE_XSKMAP;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = queue + 1 < 64 ? 64 : queue + 1;
  memcpy(attr.map_name, "uvs_xsks", 9);
  x->mapFd = static_cast<int>(Bpf(BPF_MAP_CREATE, &attr));
  if (x->mapFd < 0) throw ErrnoError(env, errno, "bpf(BPF_MAP_CREATE XSKMAP)", name);
  uint32_t key = queue;
  uint32_t val = static_cast<uint32_t>(x->fd);
  memset(&attr, 0, sizeof(attr));
  attr.map_fd = x->mapFd;
  attr.key = reinterpret_cast<uint64_t>(&key);
  attr.value = reinterpret_cast<uint64_t>(&val);
  attr.flags = BPF_ANY;
  if (Bpf(BPF_MAP_UPDATE_ELEM, &attr) < 0) throw ErrnoError(env, errno, "bpf(BPF_MAP_UPDATE_ELEM)", name);

  // The address map the program consults (filled by xskSetAddrs; empty = nothing redirected).
  memset(&attr, 0, sizeof(attr));
  attr.map_type = BPF_MAP_TYPE_HASH;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = kAddrMapSize;
  memcpy(attr.map_name, "uvs_addrs", 10);
  x->addrMapFd = static_cast<int>(Bpf(BPF_MAP_CREATE, &attr));
  if (x->addrMapFd < 0) throw ErrnoError(env, errno, "bpf(BPF_MAP_CREATE HASH)", name);

  std::string vlog;
  x->progFd = LoadProgram(env, x->mapFd, x->addrMapFd, name, &vlog);
  if (x->progFd < 0) {
    int err = errno;
    throw ErrnoErrorRaw(env, err, "bpf(BPF_PROG_LOAD)", "bpf(BPF_PROG_LOAD) XDP program for \"" + name + "\": " + strerror(err) + (vlog.empty() ? "" : " — verifier: " + vlog.substr(0, 400)));
  }

  const char* attached = nullptr;
  int err = 0;
  if (mode != "skb") {
    x->linkFd = LinkCreate(x->progFd, ifindex, XDP_FLAGS_DRV_MODE);
    if (x->linkFd >= 0) attached = "drv";
    else err = errno;
  }
  if (x->linkFd < 0 && mode != "drv") {
    x->linkFd = LinkCreate(x->progFd, ifindex, XDP_FLAGS_SKB_MODE);
    if (x->linkFd >= 0) attached = "skb";
    else err = errno;
  }
  if (x->linkFd < 0) throw ErrnoError(env, err, "bpf(BPF_LINK_CREATE XDP)", name);

  int flags = fcntl(x->fd, F_GETFL);
  if (flags >= 0) fcntl(x->fd, F_SETFL, flags | O_NONBLOCK);

  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", x->fd);
  out.Set("name", name);
  out.Set("ifindex", ifindex);
  out.Set("mac", Napi::Buffer<uint8_t>::Copy(env, mac, 6));
  out.Set("mtu", x->mtu);
  out.Set("queue", queue);
  out.Set("attach", attached);
  out.Set("zeroCopy", zc);
  out.Set("frames", kFrames);
  out.Set("frameSize", kFrameSize);
  sockets[x->fd] = x;
  g.x = nullptr;
  return out;
}

Xsk* Find(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto it = sockets.find(fd);
  if (it == sockets.end()) throw ErrnoErrorRaw(info.Env(), EBADF, "xsk", "fd " + std::to_string(fd) + " is not an open AF_XDP socket");
  return it->second;
}

BatchArgs Parse(const Napi::CallbackInfo& info) {
  if (info.Length() < 7) throw Napi::TypeError::New(info.Env(), "expected (fd, buffer, off, len, meta, slots, count)");
  BatchArgs a;
  ParseBatchArrays(info, 1, a);
  return a;
}

// Ones'-complement sum of big-endian 16-bit words (not folded, not complemented).
inline uint64_t Sum16(const uint8_t* p, size_t n, uint64_t s) {
  while (n >= 2) {
    s += (static_cast<uint32_t>(p[0]) << 8) | p[1];
    p += 2;
    n -= 2;
  }
  if (n) s += static_cast<uint32_t>(p[0]) << 8;
  return s;
}
inline uint16_t Fold(uint64_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

// IPv4 TCP/UDP frame whose checksum field holds only the pseudo-header sum (a CHECKSUM_PARTIAL
// frame of a local sender): fills meta as NEEDS_CSUM. Returns true when it did.
bool DetectPartial(const uint8_t* f, uint32_t len, uint16_t* m) {
  if (len < 14 + 20) return false;
  if (f[12] != 0x08 || f[13] != 0x00) return false;
  const uint8_t* ip = f + 14;
  if ((ip[0] >> 4) != 4) return false;
  uint32_t ihl = (ip[0] & 15) * 4u;
  if (ihl < 20 || 14 + ihl > len) return false;
  if (((ip[6] & 0x3f) | ip[7]) != 0) return false;  // fragment
  uint8_t proto = ip[9];
  uint32_t csumOff;
  if (proto == 6) csumOff = 16;
  else if (proto == 17) csumOff = 6;
  else return false;
  uint32_t tot = (static_cast<uint32_t>(ip[2]) << 8) | ip[3];
  if (tot < ihl + csumOff + 2 || 14 + tot > len) return false;
  uint32_t l4len = tot - ihl;
  const uint8_t* l4 = ip + ihl;
  uint16_t field = static_cast<uint16_t>((l4[csumOff] << 8) | l4[csumOff + 1]);
  if (proto == 17 && field == 0) return false;
  uint64_t ps = Sum16(ip + 12, 8, 0) + proto + l4len;
  if (field != Fold(ps)) return false;
  if (Fold(Sum16(l4, l4len, ps)) == 0xffff) return false;  // it is a complete, valid checksum
  m[0] = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
  m[1] = 0;
  m[2] = 0;
  m[3] = 0;
  m[4] = static_cast<uint16_t>(14 + ihl);
  m[5] = static_cast<uint16_t>(csumOff);
  return true;
}

void Kick(Xsk* x) {
  x->kicks++;
  sendto(x->fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0);
}

Napi::Value XskRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Xsk* x = Find(info);
  BatchArgs a = Parse(info);
  Ring& rx = x->rx;
  uint32_t cons = *rx.consumer;
  uint32_t avail = LoadAcquire(rx.producer) - cons;
  if (avail > a.count) avail = a.count;
  if (avail == 0) return Napi::Number::New(env, 0);
  const struct xdp_desc* descs = static_cast<const struct xdp_desc*>(rx.desc);
  uint64_t* fill = static_cast<uint64_t*>(x->fill.desc);
  uint32_t fprod = *x->fill.producer;
  uint32_t out = 0;
  for (uint32_t i = 0; i < avail; i++) {
    const struct xdp_desc& d = descs[(cons + i) & rx.mask];
    uint32_t slot = a.slots[out];
    uint32_t room = Room(env, a, slot);
    if (d.len <= room) {
      const uint8_t* src = x->umem + d.addr;
      uint8_t* dst = a.buf + a.off[slot];
      memcpy(dst, src, d.len);
      a.len[slot] = d.len;
      uint16_t* m = a.meta + static_cast<size_t>(slot) * kMetaWords;
      if (DetectPartial(dst, d.len, m)) x->rxPartialCsum++;
      else memset(m, 0, kMetaWords * sizeof(uint16_t));
      out++;
    } else {
      x->rxTooBig++;
    }
    // The frame is copied out: straight back to the fill ring (it always has room: it holds
    // at most kRxFrames = its size entries, and this one just left the kernel).
    fill[(fprod + i) & x->fill.mask] = d.addr & ~static_cast<uint64_t>(kFrameSize - 1);
  }
  StoreRelease(rx.consumer, cons + avail);
  StoreRelease(x->fill.producer, fprod + avail);
  return Napi::Number::New(env, out);
}

void Reap(Xsk* x) {
  Ring& c = x->comp;
  uint32_t cons = *c.consumer;
  uint32_t n = LoadAcquire(c.producer) - cons;
  if (n == 0) return;
  const uint64_t* addrs = static_cast<const uint64_t*>(c.desc);
  for (uint32_t i = 0; i < n; i++) x->txFree.push_back(addrs[(cons + i) & c.mask]);
  StoreRelease(c.consumer, cons + n);
}

Napi::Value XskSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Xsk* x = Find(info);
  BatchArgs a = Parse(info);
  if (a.count == 0) return Napi::Number::New(env, 0);
  Reap(x);
  Ring& tx = x->tx;
  uint32_t prod = *tx.producer;
  uint32_t space = tx.size - (prod - LoadAcquire(tx.consumer));
  struct xdp_desc* descs = static_cast<struct xdp_desc*>(tx.desc);
  const uint32_t maxLen = x->mtu + 14 + 4;
  uint32_t queued = 0, taken = 0;
  for (uint32_t i = 0; i < a.count; i++) {
    uint32_t slot = a.slots[i];
    uint32_t room = Room(env, a, slot);
    uint32_t l = a.len[slot];
    if (l > room) throw Napi::RangeError::New(env, "len[" + std::to_string(slot) + "] runs past the slot");
    if (l > maxLen || l > kFrameSize || l < 14) {  // a GSO super-frame, or junk: cannot go out here
      x->txTooBig++;  // skipped like a frame AF_PACKET refuses; counted by the caller as not sent
      continue;
    }
    if (queued >= space) break;
    if (x->txFree.empty()) {
      Reap(x);
      if (x->txFree.empty()) {
        x->txNoFrame++;
        break;
      }
    }
    uint64_t addr = x->txFree.back();
    x->txFree.pop_back();
    uint8_t* dst = x->umem + addr;
    memcpy(dst, a.buf + a.off[slot], l);
    const uint16_t* m = a.meta + static_cast<size_t>(slot) * kMetaWords;
    if (m[0] & 1) {  // NEEDS_CSUM: the field holds the pseudo-header sum; finish it here
      uint32_t start = m[4], at = start + m[5];
      if (at + 2 <= l) {
        uint16_t c = static_cast<uint16_t>(~Fold(Sum16(dst + start, l - start, 0)));
        if (c == 0 && dst[23] == 17 && m[5] == 6) c = 0xffff;  // UDP: 0 means "no checksum"
        dst[at] = static_cast<uint8_t>(c >> 8);
        dst[at + 1] = static_cast<uint8_t>(c);
        x->txCsumDone++;
      }
    }
    descs[(prod + queued) & tx.mask] = {addr, l, 0};
    queued++;
    taken++;
  }
  if (queued > 0) {
    StoreRelease(tx.producer, prod + queued);
    // Copy mode transmits inside sendto, a bounded batch per call: kick until the ring drains or
    // the kernel says it is busy (what is left goes out on the next kick).
    for (uint32_t k = 0; k < 16; k++) {
      Kick(x);
      if (LoadAcquire(tx.consumer) == prod + queued) break;
    }
  }
  return Napi::Number::New(env, taken);
}

Napi::Value XskStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Xsk* x = Find(info);
  struct xdp_statistics st;
  memset(&st, 0, sizeof(st));
  socklen_t l = sizeof(st);
  if (getsockopt(x->fd, SOL_XDP, XDP_STATISTICS, &st, &l) < 0) throw ErrnoError(env, errno, "XDP_STATISTICS", x->name);
  Napi::Object o = Napi::Object::New(env);
  o.Set("rxDropped", static_cast<double>(st.rx_dropped));
  o.Set("rxInvalid", static_cast<double>(st.rx_invalid_descs));
  o.Set("txInvalid", static_cast<double>(st.tx_invalid_descs));
  o.Set("rxRingFull", static_cast<double>(st.rx_ring_full));
  o.Set("fillRingEmpty", static_cast<double>(st.rx_fill_ring_empty_descs));
  o.Set("txRingEmpty", static_cast<double>(st.tx_ring_empty_descs));
  o.Set("rxPartialCsum", x->rxPartialCsum);
  o.Set("rxTooBig", x->rxTooBig);
  o.Set("txCsumDone", x->txCsumDone);
  o.Set("txTooBig", x->txTooBig);
  o.Set("txNoFrame", x->txNoFrame);
  o.Set("kicks", x->kicks);
  return o;
}

Napi::Value XskClose(const Napi::CallbackInfo& info) {
  Xsk* x = Find(info);
  sockets.erase(x->fd);
  Cleanup(x);
  return info.Env().Undefined();
}

}  // namespace

// xskSetAddrs(fd, addrs: Uint32Array (host order), flags: Uint32Array) — makes the program's
// address map exactly {addrs[i] → flags[i]} (flags: 1 owned, 2 NAT real server, 4 host-local).
// Returns the number of entries. Throws (errno) when the map is full or an update fails.
Napi::Value XskSetAddrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Xsk* x = Find(info);
  if (info.Length() < 3 || !info[1].IsTypedArray() || !info[2].IsTypedArray()) throw Napi::TypeError::New(env, "expected (fd, Uint32Array addrs, Uint32Array flags)");
  Napi::Uint32Array addrs = info[1].As<Napi::Uint32Array>();
  Napi::Uint32Array flags = info[2].As<Napi::Uint32Array>();
  if (addrs.TypedArrayType() != napi_uint32_array || flags.TypedArrayType() != napi_uint32_array || addrs.ElementLength() != flags.ElementLength()) {
    throw Napi::TypeError::New(env, "addrs and flags must be Uint32Arrays of the same length");
  }
  size_t n = addrs.ElementLength();
  if (n > kAddrMapSize) throw ErrnoErrorRaw(env, E2BIG, "xskSetAddrs", "too many addresses for the XDP filter (" + std::to_string(n) + " > " + std::to_string(kAddrMapSize) + ")");
  std::unordered_map<uint32_t, uint32_t> want;
  for (size_t i = 0; i < n; i++) want[htonl(addrs[i])] |= flags[i];
  union bpf_attr attr;
  // Delete the keys that are not wanted any more.
  std::vector<uint32_t> stale;
  uint32_t key = 0, next = 0;
  bool first = true;
  for (;;) {
    memset(&attr, 0, sizeof(attr));
    attr.map_fd = x->addrMapFd;
    attr.key = first ? 0 : reinterpret_cast<uint64_t>(&key);
    attr.next_key = reinterpret_cast<uint64_t>(&next);
    if (Bpf(BPF_MAP_GET_NEXT_KEY, &attr) < 0) break;
    if (want.find(next) == want.end()) stale.push_back(next);
    key = next;
    first = false;
  }
  for (uint32_t k : stale) {
    memset(&attr, 0, sizeof(attr));
    attr.map_fd = x->addrMapFd;
    attr.key = reinterpret_cast<uint64_t>(&k);
    Bpf(BPF_MAP_DELETE_ELEM, &attr);
  }
  for (auto& kv : want) {
    uint32_t k = kv.first, v = kv.second;
    memset(&attr, 0, sizeof(attr));
    attr.map_fd = x->addrMapFd;
    attr.key = reinterpret_cast<uint64_t>(&k);
    attr.value = reinterpret_cast<uint64_t>(&v);
    attr.flags = BPF_ANY;
    if (Bpf(BPF_MAP_UPDATE_ELEM, &attr) < 0) throw ErrnoError(env, errno, "bpf(BPF_MAP_UPDATE_ELEM uvs_addrs)", x->name);
  }
  return Napi::Number::New(env, static_cast<double>(want.size()));
}

void InitXdp(Napi::Env env, Napi::Object exports) {
  exports.Set("xskSetAddrs", Napi::Function::New(env, XskSetAddrs, "xskSetAddrs"));
  exports.Set("xskOpen", Napi::Function::New(env, XskOpen, "xskOpen"));
  exports.Set("xskRecv", Napi::Function::New(env, XskRecv, "xskRecv"));
  exports.Set("xskSend", Napi::Function::New(env, XskSend, "xskSend"));
  exports.Set("xskStats", Napi::Function::New(env, XskStats, "xskStats"));
  exports.Set("xskClose", Napi::Function::New(env, XskClose, "xskClose"));
}

}  // namespace uvs
