// devices.cc — opening the endpoints uvs moves frames through, all non-blocking and close-on-exec:
//
//   openPacketSocket(ifname, {netns?, qdiscBypass?, arpOnly?, tunnelIcmp?}) → {fd, name, ifindex, mac, mtu}
//       AF_PACKET/SOCK_RAW bound to one interface for ETH_P_ALL (ETH_P_ARP with arpOnly; with arpOnly + tunnelIcmp,
//       ETH_P_ALL through a classic BPF filter that keeps ARP, the IPv4 ICMP errors — unreachable, source
//       quench, time exceeded — that quote an IPIP, UDP or GRE packet (routers' errors about the director's
//       own tunnel packets) and TCP/UDP to ports 61000-61255 (answers to its health-check probes): what an
//       AF_XDP port leaves to the host but uvs needs to see), PACKET_VNET_HDR on (frames come
//       and go with a virtio_net_hdr: partial checksum and GSO info), PACKET_IGNORE_OUTGOING on
//       (never sees its own transmissions), large socket buffers (SO_*BUFFORCE when allowed).
//   openTap(name, {netns?, vnetHdr? = true}) → {fd, name, ifindex, mac, mtu}
//       IFF_TAP|IFF_NO_PI, with IFF_VNET_HDR + TUNSETVNETHDRSZ 10 + TUNSETOFFLOAD CSUM|TSO4|TSO6
//       unless vnetHdr is false; brought up. mac is the kernel side's MAC.
//   openTun(name, {netns?}) → {fd, name, ifindex, mtu}     IFF_TUN|IFF_NO_PI, brought up.
//   getIfInfo(name, {netns?}) → {ifindex, mac, mtu, flags}
//   setLinkUp(name, {netns?})
//   close(fd)
//
// With netns, the socket/device is created inside that namespace and stays there.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "uvs_io.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

namespace uvs {

namespace {

constexpr int kRcvBuf = 8 << 20;
constexpr int kSndBuf = 4 << 20;

// Closes the fd on scope exit unless released (error paths throw).
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

std::string ArgName(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "interface name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() >= IFNAMSIZ) {
    throw Napi::RangeError::New(info.Env(), "interface name \"" + name + "\" must be 1.." + std::to_string(IFNAMSIZ - 1) + " bytes");
  }
  return name;
}

void IfReq(struct ifreq* ifr, const std::string& name) {
  memset(ifr, 0, sizeof(*ifr));
  memcpy(ifr->ifr_name, name.data(), name.size());
}

void Ioctl(Napi::Env env, int fd, unsigned long req, const char* reqName, struct ifreq* ifr, const std::string& name) {
  if (ioctl(fd, req, ifr) < 0) throw ErrnoError(env, errno, reqName, name);
}

// A datagram socket in the current namespace, for interface ioctls.
int CtlSocket(Napi::Env env, const std::string& name) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, errno, "socket", name);
  return fd;
}

struct IfInfo {
  int ifindex = 0;
  unsigned char mac[6] = {0, 0, 0, 0, 0, 0};
  int mtu = 0;
  int flags = 0;
};

// Reads index, hardware address, MTU and flags through ctl (a socket in the right namespace).
IfInfo ReadIfInfo(Napi::Env env, int ctl, const std::string& name) {
  IfInfo out;
  struct ifreq ifr;
  IfReq(&ifr, name);
  Ioctl(env, ctl, SIOCGIFINDEX, "SIOCGIFINDEX", &ifr, name);
  out.ifindex = ifr.ifr_ifindex;
  IfReq(&ifr, name);
  Ioctl(env, ctl, SIOCGIFHWADDR, "SIOCGIFHWADDR", &ifr, name);
  memcpy(out.mac, ifr.ifr_hwaddr.sa_data, 6);
  IfReq(&ifr, name);
  Ioctl(env, ctl, SIOCGIFMTU, "SIOCGIFMTU", &ifr, name);
  out.mtu = ifr.ifr_mtu;
  IfReq(&ifr, name);
  Ioctl(env, ctl, SIOCGIFFLAGS, "SIOCGIFFLAGS", &ifr, name);
  out.flags = ifr.ifr_flags & 0xffff;
  return out;
}

void LinkUp(Napi::Env env, int ctl, const std::string& name) {
  struct ifreq ifr;
  IfReq(&ifr, name);
  Ioctl(env, ctl, SIOCGIFFLAGS, "SIOCGIFFLAGS", &ifr, name);
  if (ifr.ifr_flags & IFF_UP) return;
  ifr.ifr_flags |= IFF_UP;
  Ioctl(env, ctl, SIOCSIFFLAGS, "SIOCSIFFLAGS", &ifr, name);
}

void SetInt(Napi::Env env, int fd, int level, int opt, const char* optName, int value, const std::string& name) {
  if (setsockopt(fd, level, opt, &value, sizeof(value)) < 0) throw ErrnoError(env, errno, optName, name);
}

// Big buffers absorb bursts between two event-loop turns; FORCE needs CAP_NET_ADMIN.
void SetBuf(int fd, int forceOpt, int opt, int value) {
  if (setsockopt(fd, SOL_SOCKET, forceOpt, &value, sizeof(value)) == 0) return;
  setsockopt(fd, SOL_SOCKET, opt, &value, sizeof(value));  // best effort, capped by rmem_max
}

Napi::Buffer<uint8_t> MacBuffer(Napi::Env env, const unsigned char* mac) {
  return Napi::Buffer<uint8_t>::Copy(env, mac, 6);
}

// ARP; or IPv4 (not a later fragment) that is ICMP type 3/4/11 whose quoted packet is protocol 4,
// 17 or 47 (a router's error about a tunnel packet), or TCP/UDP to ports 61000-61255 (answers to the
// director's health-check probes, src/pipeline/probe.ts). Offsets from the Ethernet header;
// X = the IPv4 header length.
static struct sock_filter kArpTunnelIcmp[] = {
    /*  0 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
    /*  1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_ARP, 20, 0),            // → accept
    /*  2 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 18),             // → reject
    /*  3 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 20),                           // fragment offset
    /*  4 */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 16, 0),              // → reject
    /*  5 */ BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 14),
    /*  6 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 23),                           // protocol
    /*  7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 5, 0),                     // ICMP → 13
    /*  8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 1, 0),                     // TCP → 10
    /*  9 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 17, 0, 11),                   // not UDP → reject
    /* 10 */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, 14 + 2),                       // TCP/UDP destination port
    /* 11 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 61000, 0, 9),                 // below → reject
    /* 12 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 61256, 8, 9),                 // above → reject, else accept
    /* 13 */ BPF_STMT(BPF_LD | BPF_B | BPF_IND, 14),                           // ICMP type
    /* 14 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 3, 2, 0),
    /* 15 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 4, 1, 0),
    /* 16 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 11, 0, 4),                    // other type → reject
    /* 17 */ BPF_STMT(BPF_LD | BPF_B | BPF_IND, 14 + 8 + 9),                   // quoted packet's protocol
    /* 18 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 4, 3, 0),
    /* 19 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 17, 2, 0),
    /* 20 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 47, 1, 0),
    /* 21 reject */ BPF_STMT(BPF_RET | BPF_K, 0),
    /* 22 accept */ BPF_STMT(BPF_RET | BPF_K, 0x40000),
};

Napi::Value OpenPacketSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgName(info);
  std::string netns = OptString(info, 1, "netns");
  bool qdiscBypass = OptBool(info, 1, "qdiscBypass", false);
  bool arpOnly = OptBool(info, 1, "arpOnly", false);
  bool tunnelIcmp = arpOnly && OptBool(info, 1, "tunnelIcmp", false);

  NetnsScope ns(env, netns, name);
  // Protocol 0 until bind: the socket sees no traffic from other interfaces meanwhile.
  FdGuard fd(socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw ErrnoError(env, errno, "socket", name);
  IfInfo ifi = ReadIfInfo(env, fd.get(), name);

  SetInt(env, fd.get(), SOL_PACKET, PACKET_VNET_HDR, "PACKET_VNET_HDR", 1, name);
  SetInt(env, fd.get(), SOL_PACKET, PACKET_IGNORE_OUTGOING, "PACKET_IGNORE_OUTGOING", 1, name);
  if (qdiscBypass) SetInt(env, fd.get(), SOL_PACKET, PACKET_QDISC_BYPASS, "PACKET_QDISC_BYPASS", 1, name);
  SetBuf(fd.get(), SO_RCVBUFFORCE, SO_RCVBUF, kRcvBuf);
  SetBuf(fd.get(), SO_SNDBUFFORCE, SO_SNDBUF, kSndBuf);
  if (tunnelIcmp) {
    struct sock_fprog prog;
    prog.len = sizeof(kArpTunnelIcmp) / sizeof(kArpTunnelIcmp[0]);
    prog.filter = kArpTunnelIcmp;
    if (setsockopt(fd.get(), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) throw ErrnoError(env, errno, "setsockopt(SO_ATTACH_FILTER)", name);
  }

  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof(sll));
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(arpOnly && !tunnelIcmp ? ETH_P_ARP : ETH_P_ALL);
  sll.sll_ifindex = ifi.ifindex;
  if (bind(fd.get(), reinterpret_cast<struct sockaddr*>(&sll), sizeof(sll)) < 0) throw ErrnoError(env, errno, "bind", name);

  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", fd.release());
  out.Set("name", name);
  out.Set("ifindex", ifi.ifindex);
  out.Set("mac", MacBuffer(env, ifi.mac));
  out.Set("mtu", ifi.mtu);
  return out;
}

// Opens /dev/net/tun as `flags`; returns the fd and writes the kernel-chosen name back.
int OpenTunTap(Napi::Env env, std::string* name, short flags) {
  FdGuard fd(open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) throw ErrnoError(env, errno, "open /dev/net/tun", *name);
  struct ifreq ifr;
  IfReq(&ifr, *name);
  ifr.ifr_flags = flags;
  Ioctl(env, fd.get(), TUNSETIFF, "TUNSETIFF", &ifr, *name);
  *name = std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  return fd.release();
}

Napi::Value OpenTap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgName(info);
  std::string netns = OptString(info, 1, "netns");
  bool vnetHdr = OptBool(info, 1, "vnetHdr", true);

  NetnsScope ns(env, netns, name);
  FdGuard fd(OpenTunTap(env, &name, IFF_TAP | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0)));
  if (vnetHdr) {
    int hdrSize = 10;  // struct virtio_net_hdr, no num_buffers
    if (ioctl(fd.get(), TUNSETVNETHDRSZ, &hdrSize) < 0) throw ErrnoError(env, errno, "TUNSETVNETHDRSZ", name);
    // We accept partial checksums and TCP super-frames, so the kernel need not finish them.
    unsigned long offload = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    if (ioctl(fd.get(), TUNSETOFFLOAD, offload) < 0) throw ErrnoError(env, errno, "TUNSETOFFLOAD", name);
  }
  FdGuard ctl(CtlSocket(env, name));
  LinkUp(env, ctl.get(), name);
  IfInfo ifi = ReadIfInfo(env, ctl.get(), name);

  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", fd.release());
  out.Set("name", name);
  out.Set("ifindex", ifi.ifindex);
  out.Set("mac", MacBuffer(env, ifi.mac));
  out.Set("mtu", ifi.mtu);
  return out;
}

Napi::Value OpenTun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgName(info);
  std::string netns = OptString(info, 1, "netns");

  NetnsScope ns(env, netns, name);
  FdGuard fd(OpenTunTap(env, &name, IFF_TUN | IFF_NO_PI));
  FdGuard ctl(CtlSocket(env, name));
  LinkUp(env, ctl.get(), name);
  IfInfo ifi = ReadIfInfo(env, ctl.get(), name);

  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", fd.release());
  out.Set("name", name);
  out.Set("ifindex", ifi.ifindex);
  out.Set("mtu", ifi.mtu);
  return out;
}

Napi::Value GetIfInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgName(info);
  std::string netns = OptString(info, 1, "netns");
  NetnsScope ns(env, netns, name);
  FdGuard ctl(CtlSocket(env, name));
  IfInfo ifi = ReadIfInfo(env, ctl.get(), name);
  Napi::Object out = Napi::Object::New(env);
  out.Set("ifindex", ifi.ifindex);
  out.Set("mac", MacBuffer(env, ifi.mac));
  out.Set("mtu", ifi.mtu);
  out.Set("flags", ifi.flags);
  return out;
}

Napi::Value SetLinkUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgName(info);
  std::string netns = OptString(info, 1, "netns");
  NetnsScope ns(env, netns, name);
  FdGuard ctl(CtlSocket(env, name));
  LinkUp(env, ctl.get(), name);
  return env.Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "close(fd): fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  // Linux releases the fd even when close reports EINTR, so never retry.
  if (::close(fd) < 0 && errno != EINTR) throw ErrnoErrorRaw(env, errno, "close", "close fd " + std::to_string(fd));
  return env.Undefined();
}

}  // namespace

void InitDevices(Napi::Env env, Napi::Object exports) {
  exports.Set("openPacketSocket", Napi::Function::New(env, OpenPacketSocket, "openPacketSocket"));
  exports.Set("openTap", Napi::Function::New(env, OpenTap, "openTap"));
  exports.Set("openTun", Napi::Function::New(env, OpenTun, "openTun"));
  exports.Set("getIfInfo", Napi::Function::New(env, GetIfInfo, "getIfInfo"));
  exports.Set("setLinkUp", Napi::Function::New(env, SetLinkUp, "setLinkUp"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
}

}  // namespace uvs
