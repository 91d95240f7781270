// addon.cc — module entry of uvs_io: registers the device, batch and readiness functions and
// exports the arena constants the batch functions assume (SLOT_SIZE, HEADROOM, MAX_BATCH).
#include "uvs_io.h"

namespace uvs {

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("SLOT_SIZE", Napi::Number::New(env, kSlotSize));
  exports.Set("HEADROOM", Napi::Number::New(env, kHeadroom));
  exports.Set("MAX_BATCH", Napi::Number::New(env, kMaxBatch));
  exports.Set("VNET_HDR_LEN", Napi::Number::New(env, 10));
  InitDevices(env, exports);
  InitBatch(env, exports);
  InitWatch(env, exports);
  InitXdp(env, exports);
  InitMem(env, exports);
  return exports;
}

}  // namespace uvs

static Napi::Object InitUvsIo(Napi::Env env, Napi::Object exports) { return uvs::Init(env, exports); }

NODE_API_MODULE(uvs_io, InitUvsIo)
