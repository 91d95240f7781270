// batch_args.h — the argument block every batch call takes (arena buffer, per-slot off/len/meta,
// the slot list and a count), checked once per call so the per-frame checks are plain comparisons.
// Shared by the AF_PACKET/TAP/TUN batch functions (batch.cc) and the AF_XDP ones (xdp.cc).
#pragma once

#include <cstdint>
#include <string>

#include "uvs_io.h"

namespace uvs {

struct BatchArgs {
  int fd = -1;
  int kind = 0;
  uint8_t* buf = nullptr;
  size_t bufLen = 0;
  uint32_t* off = nullptr;
  uint32_t* len = nullptr;
  uint16_t* meta = nullptr;
  size_t slotCount = 0;  // slots the arena has (min over off/len/meta)
  uint32_t* slots = nullptr;
  uint32_t count = 0;
};

template <typename T>
inline T* TypedData(Napi::Env env, const Napi::Value& v, napi_typedarray_type type, const char* what, size_t* length) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw Napi::TypeError::New(env, std::string(what) + " has the wrong typed-array type");
  }
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  *length = ta.ElementLength();
  return reinterpret_cast<T*>(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
}

// Reads (buffer, off, len, meta, slots, count) starting at info[first] into a.
inline void ParseBatchArrays(const Napi::CallbackInfo& info, size_t first, BatchArgs& a) {
  Napi::Env env = info.Env();
  if (!info[first].IsArrayBuffer()) throw Napi::TypeError::New(env, "buffer must be an ArrayBuffer");
  Napi::ArrayBuffer ab = info[first].As<Napi::ArrayBuffer>();
  a.buf = static_cast<uint8_t*>(ab.Data());
  a.bufLen = ab.ByteLength();
  size_t nOff, nLen, nMeta, nSlots;
  a.off = TypedData<uint32_t>(env, info[first + 1], napi_uint32_array, "off", &nOff);
  a.len = TypedData<uint32_t>(env, info[first + 2], napi_uint32_array, "len", &nLen);
  a.meta = TypedData<uint16_t>(env, info[first + 3], napi_uint16_array, "meta", &nMeta);
  a.slots = TypedData<uint32_t>(env, info[first + 4], napi_uint32_array, "slots", &nSlots);
  a.slotCount = nOff < nLen ? nOff : nLen;
  if (nMeta / kMetaWords < a.slotCount) a.slotCount = nMeta / kMetaWords;
  int64_t count = info[first + 5].As<Napi::Number>().Int64Value();
  if (count < 0) count = 0;
  if (static_cast<uint64_t>(count) > nSlots) throw Napi::RangeError::New(env, "count exceeds slots.length");
  a.count = count > kMaxBatch ? kMaxBatch : static_cast<uint32_t>(count);
}

// Validates slots[i] and returns the writable/readable room at its frame offset.
inline uint32_t Room(Napi::Env env, const BatchArgs& a, uint32_t slot) {
  if (slot >= a.slotCount) throw Napi::RangeError::New(env, "slot " + std::to_string(slot) + " outside the arena");
  uint32_t o = a.off[slot];
  if (o >= a.bufLen) throw Napi::RangeError::New(env, "off[" + std::to_string(slot) + "] outside the buffer");
  size_t room = a.bufLen - o;
  return room < kMaxFrame ? static_cast<uint32_t>(room) : kMaxFrame;
}

}  // namespace uvs
