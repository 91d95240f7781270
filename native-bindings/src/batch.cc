// batch.cc — moving a whole batch of frames between one fd and the caller's arena per JS call.
//
//   recvBatch(fd, kind, buffer, off, len, meta, slots, count) → n received
//   sendBatch(fd, kind, buffer, off, len, meta, slots, count) → n taken by the kernel
//   stats() → {rxTruncated, txInvalid}    (per thread, all fds together)
//
// buffer: the arena ArrayBuffer; off/len: Uint32Array per slot; meta: Uint16Array, 6 words per
// slot = virtio_net_hdr {flags, gso_type, hdr_len, gso_size, csum_start, csum_offset} in host
// order (zeros for kind 2); slots: Uint32Array naming the slots to fill or send, in order.
// At most MAX_BATCH (256) frames move per call; a larger count is clipped.
//
// Receive writes frame i at buffer[off[slots[i]]], up to SLOT_SIZE - HEADROOM bytes (and never
// past the buffer end), and sets len/meta of that slot; slots are filled densely from slots[0].
// Kind 0 uses ONE recvmmsg for the batch; kinds 1 and 2 loop readv/read until EAGAIN or count.
// Truncated frames are dropped and counted in stats().rxTruncated. Returns 0 when nothing is
// ready (EAGAIN/EINTR); other errors throw.
//
// Send: kind 0 is sendmmsg (one call unless the kernel stops early), kind 1 writev, kind 2
// write. It stops at EAGAIN/ENOBUFS and returns how many were taken (the caller drops the rest).
// A frame the kernel rejects on its own (EINVAL, EMSGSIZE: bad header, too big) is skipped and
// counted in stats().txInvalid. Any other error throws if nothing was sent yet, else ends the
// batch early (the next call then throws).
//
// No allocation per packet or per call: the mmsghdr/iovec/header scratch is thread_local.
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "uvs_io.h"
#include "batch_args.h"

namespace uvs {

namespace {

// struct virtio_net_hdr from <linux/virtio_net.h> (that header does not compile as C++: a field is
// named `class`). Little-endian fields: the legacy virtio layout both AF_PACKET and TAP use on
// little-endian hosts, so they are host order here.
struct virtio_net_hdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
static_assert(sizeof(struct virtio_net_hdr) == 10, "virtio_net_hdr must be 10 bytes");
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "vnet headers are host order only on little-endian hosts");

struct Scratch {
  struct mmsghdr msgs[kMaxBatch];
  struct iovec iov[kMaxBatch][2];
  struct virtio_net_hdr hdr[kMaxBatch];
};
thread_local Scratch scratch;
thread_local double rxTruncated = 0;
thread_local double txInvalid = 0;

BatchArgs ParseArgs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 8) throw Napi::TypeError::New(env, "expected (fd, kind, buffer, off, len, meta, slots, count)");
  BatchArgs a;
  a.fd = info[0].As<Napi::Number>().Int32Value();
  a.kind = info[1].As<Napi::Number>().Int32Value();
  if (a.kind < kPacketVnet || a.kind > kRaw) throw Napi::RangeError::New(env, "kind must be 0, 1 or 2");
  ParseBatchArrays(info, 2, a);
  return a;
}

inline void HdrToMeta(const struct virtio_net_hdr& h, uint16_t* m) {
  m[0] = h.flags;
  m[1] = h.gso_type;
  m[2] = h.hdr_len;
  m[3] = h.gso_size;
  m[4] = h.csum_start;
  m[5] = h.csum_offset;
}

inline void MetaToHdr(const uint16_t* m, struct virtio_net_hdr* h) {
  h->flags = static_cast<uint8_t>(m[0]);
  h->gso_type = static_cast<uint8_t>(m[1]);
  h->hdr_len = m[2];
  h->gso_size = m[3];
  h->csum_start = m[4];
  h->csum_offset = m[5];
}

inline bool Again(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

Napi::Error IoError(Napi::Env env, int err, const char* syscall, const BatchArgs& a) {
  return ErrnoErrorRaw(env, err, syscall, std::string(syscall) + " on fd " + std::to_string(a.fd));
}

// Kind 0: one recvmmsg, iovec {vnet header scratch, frame}.
uint32_t RecvPacket(Napi::Env env, const BatchArgs& a) {
  Scratch& s = scratch;
  for (uint32_t i = 0; i < a.count; i++) {
    uint32_t slot = a.slots[i];
    uint32_t room = Room(env, a, slot);
    s.iov[i][0] = {&s.hdr[i], sizeof(struct virtio_net_hdr)};
    s.iov[i][1] = {a.buf + a.off[slot], room};
    memset(&s.msgs[i], 0, sizeof(s.msgs[i]));
    s.msgs[i].msg_hdr.msg_iov = s.iov[i];
    s.msgs[i].msg_hdr.msg_iovlen = 2;
  }
  int r = recvmmsg(a.fd, s.msgs, a.count, MSG_DONTWAIT, nullptr);
  if (r < 0) {
    if (Again(errno)) return 0;
    throw IoError(env, errno, "recvmmsg", a);
  }
  uint32_t out = 0;
  for (uint32_t i = 0; i < static_cast<uint32_t>(r); i++) {
    uint32_t got = s.msgs[i].msg_len;
    if ((s.msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || got < sizeof(struct virtio_net_hdr)) {
      rxTruncated++;
      continue;
    }
    uint32_t frameLen = got - sizeof(struct virtio_net_hdr);
    uint32_t dst = a.slots[out];
    if (out != i) {  // an earlier frame was dropped: keep the filled slots dense (rare path)
      uint32_t room = Room(env, a, dst);
      if (frameLen > room) {
        rxTruncated++;
        continue;
      }
      memmove(a.buf + a.off[dst], a.buf + a.off[a.slots[i]], frameLen);
    }
    a.len[dst] = frameLen;
    HdrToMeta(s.hdr[i], a.meta + static_cast<size_t>(dst) * kMetaWords);
    out++;
  }
  return out;
}

// Kinds 1 and 2: readv/read until EAGAIN or count.
uint32_t RecvDevice(Napi::Env env, const BatchArgs& a) {
  struct virtio_net_hdr hdr;
  const bool vnet = a.kind == kTapVnet;
  uint32_t out = 0;
  for (uint32_t tries = 0; tries < a.count; tries++) {
    uint32_t slot = a.slots[out];
    uint32_t room = Room(env, a, slot);
    ssize_t r;
    if (vnet) {
      struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {a.buf + a.off[slot], room}};
      r = readv(a.fd, iov, 2);
    } else {
      r = read(a.fd, a.buf + a.off[slot], room);
    }
    if (r < 0) {
      if (Again(errno)) break;
      if (out > 0) break;  // report what we have; the error recurs on the next call
      throw IoError(env, errno, vnet ? "readv" : "read", a);
    }
    size_t hdrLen = vnet ? sizeof(hdr) : 0;
    if (static_cast<size_t>(r) < hdrLen || static_cast<size_t>(r) - hdrLen > room) {
      rxTruncated++;
      continue;
    }
    a.len[slot] = static_cast<uint32_t>(r - hdrLen);
    uint16_t* m = a.meta + static_cast<size_t>(slot) * kMetaWords;
    if (vnet) {
      HdrToMeta(hdr, m);
    } else {
      memset(m, 0, kMetaWords * sizeof(uint16_t));
    }
    out++;
  }
  return out;
}

inline bool Invalid(int err) { return err == EINVAL || err == EMSGSIZE; }
inline bool Full(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == EINTR; }

// Kind 0: sendmmsg, iovec {vnet header from meta, frame}.
uint32_t SendPacket(Napi::Env env, const BatchArgs& a) {
  Scratch& s = scratch;
  for (uint32_t i = 0; i < a.count; i++) {
    uint32_t slot = a.slots[i];
    uint32_t room = Room(env, a, slot);
    uint32_t l = a.len[slot];
    if (l > room) throw Napi::RangeError::New(env, "len[" + std::to_string(slot) + "] runs past the slot");
    MetaToHdr(a.meta + static_cast<size_t>(slot) * kMetaWords, &s.hdr[i]);
    s.iov[i][0] = {&s.hdr[i], sizeof(struct virtio_net_hdr)};
    s.iov[i][1] = {a.buf + a.off[slot], l};
    memset(&s.msgs[i], 0, sizeof(s.msgs[i]));
    s.msgs[i].msg_hdr.msg_iov = s.iov[i];
    s.msgs[i].msg_hdr.msg_iovlen = 2;
  }
  uint32_t pos = 0, sent = 0;
  while (pos < a.count) {
    int r = sendmmsg(a.fd, s.msgs + pos, a.count - pos, MSG_DONTWAIT);
    if (r > 0) {
      pos += r;
      sent += r;
      continue;
    }
    int err = r < 0 ? errno : EAGAIN;
    if (Full(err)) break;
    if (Invalid(err)) {  // frame `pos` itself was refused
      txInvalid++;
      pos++;
      continue;
    }
    if (sent > 0) break;
    throw IoError(env, err, "sendmmsg", a);
  }
  return sent;
}

// Kinds 1 and 2: writev/write per frame.
uint32_t SendDevice(Napi::Env env, const BatchArgs& a) {
  struct virtio_net_hdr hdr;
  const bool vnet = a.kind == kTapVnet;
  uint32_t sent = 0;
  for (uint32_t i = 0; i < a.count; i++) {
    uint32_t slot = a.slots[i];
    uint32_t room = Room(env, a, slot);
    uint32_t l = a.len[slot];
    if (l > room) throw Napi::RangeError::New(env, "len[" + std::to_string(slot) + "] runs past the slot");
    ssize_t r;
    if (vnet) {
      MetaToHdr(a.meta + static_cast<size_t>(slot) * kMetaWords, &hdr);
      struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {a.buf + a.off[slot], l}};
      r = writev(a.fd, iov, 2);
    } else {
      r = write(a.fd, a.buf + a.off[slot], l);
    }
    if (r >= 0) {
      sent++;
      continue;
    }
    int err = errno;
    if (Full(err)) break;
    if (Invalid(err)) {
      txInvalid++;
      continue;
    }
    if (sent > 0) break;
    throw IoError(env, err, vnet ? "writev" : "write", a);
  }
  return sent;
}

Napi::Value RecvBatch(const Napi::CallbackInfo& info) {
  BatchArgs a = ParseArgs(info);
  uint32_t n = a.count == 0 ? 0 : a.kind == kPacketVnet ? RecvPacket(info.Env(), a) : RecvDevice(info.Env(), a);
  return Napi::Number::New(info.Env(), n);
}

Napi::Value SendBatch(const Napi::CallbackInfo& info) {
  BatchArgs a = ParseArgs(info);
  uint32_t n = a.count == 0 ? 0 : a.kind == kPacketVnet ? SendPacket(info.Env(), a) : SendDevice(info.Env(), a);
  return Napi::Number::New(info.Env(), n);
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("rxTruncated", rxTruncated);
  out.Set("txInvalid", txInvalid);
  return out;
}

}  // namespace

void InitBatch(Napi::Env env, Napi::Object exports) {
  exports.Set("recvBatch", Napi::Function::New(env, RecvBatch, "recvBatch"));
  exports.Set("sendBatch", Napi::Function::New(env, SendBatch, "sendBatch"));
  exports.Set("stats", Napi::Function::New(env, Stats, "stats"));
}

}  // namespace uvs
