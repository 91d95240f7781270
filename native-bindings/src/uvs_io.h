// uvs_io.h — what the pieces of the uvs_io addon promise each other.
//
// The addon only does OS plumbing for src/port/: open AF_PACKET sockets, TAP and TUN devices
// (optionally inside a named network namespace), move whole batches of frames between the
// kernel and an ArrayBuffer the caller owns (src/packet/arena.ts layout), and report fd
// readiness through libuv. It never parses a frame. Every error is a JS Error with
// .code = errno name ("ENODEV"), .errno = -errno (as Node does), .syscall, and a message that
// names the interface: `SIOCGIFINDEX on "veth1": ENODEV (No such device)`.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace uvs {

// Arena layout constants; must equal src/packet/arena.ts (src/port/native.ts checks at load).
constexpr uint32_t kSlotSize = 65536 + 256;
constexpr uint32_t kHeadroom = 128;
constexpr uint32_t kMaxFrame = kSlotSize - kHeadroom;  // bytes a receive may write at off[slot]
constexpr uint32_t kMetaWords = 6;                     // virtio_net_hdr fields per slot
constexpr uint32_t kMaxBatch = 256;                    // frames per recvBatch/sendBatch call

// recvBatch/sendBatch "kind": which framing the fd uses.
enum IoKind : int32_t {
  kPacketVnet = 0,  // AF_PACKET socket with PACKET_VNET_HDR (recvmmsg/sendmmsg)
  kTapVnet = 1,     // TAP fd with IFF_VNET_HDR (readv/writev, 10-byte header)
  kRaw = 2,         // no header: TUN, or TAP opened with vnetHdr:false (read/write)
};

// errors.cc
// Builds the JS error described above. `what` is the interface (or path) the call was about.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& what);
// Same, with the message prefix given in full (for errors not about one interface).
Napi::Error ErrnoErrorRaw(Napi::Env env, int err, const char* syscall, const std::string& msg);

// netns.cc
// While alive, the calling thread is in the network namespace `netns` (a name under
// /var/run/netns, or a path if it contains '/'); an empty name means "stay where we are".
// Sockets and devices created meanwhile stay in that namespace after it is left.
class NetnsScope {
 public:
  NetnsScope(Napi::Env env, const std::string& netns, const std::string& what);
  ~NetnsScope();
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;

 private:
  int orig_ = -1;
};

// Reads opts.<key> as a string ("" when opts or the key is absent).
std::string OptString(const Napi::CallbackInfo& info, size_t idx, const char* key);
// Reads opts.<key> as a boolean (def when absent).
bool OptBool(const Napi::CallbackInfo& info, size_t idx, const char* key, bool def);

// Registration of each file's exports on the module object.
void InitDevices(Napi::Env env, Napi::Object exports);
void InitBatch(Napi::Env env, Napi::Object exports);
void InitWatch(Napi::Env env, Napi::Object exports);
void InitXdp(Napi::Env env, Napi::Object exports);  // xdp.cc: AF_XDP sockets (src/port/xdp-port.ts)
void InitMem(Napi::Env env, Napi::Object exports);  // mem.cc: huge-page backed tables (src/conn/table-memory.ts)

}  // namespace uvs
