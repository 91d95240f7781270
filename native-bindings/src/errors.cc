// errors.cc — errno → JS Error with .code (errno name), .errno (-errno, as Node does),
// .syscall and a message naming the interface. Also the small option readers.
#include <cstring>

#include "uvs_io.h"

namespace uvs {

static const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);  // glibc >= 2.32
  return name ? name : "EUNKNOWN";
}

Napi::Error ErrnoErrorRaw(Napi::Env env, int err, const char* syscall, const std::string& msg) {
  std::string text = msg + ": " + ErrnoName(err) + " (" + strerror(err) + ")";
  Napi::Error e = Napi::Error::New(env, text);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& what) {
  Napi::Error e = ErrnoErrorRaw(env, err, syscall, std::string(syscall) + " on \"" + what + "\"");
  e.Set("interface", Napi::String::New(env, what));
  return e;
}

static Napi::Value OptValue(const Napi::CallbackInfo& info, size_t idx, const char* key) {
  if (info.Length() <= idx || !info[idx].IsObject()) return info.Env().Undefined();
  return info[idx].As<Napi::Object>().Get(key);
}

std::string OptString(const Napi::CallbackInfo& info, size_t idx, const char* key) {
  Napi::Value v = OptValue(info, idx, key);
  if (v.IsUndefined() || v.IsNull()) return "";
  if (!v.IsString()) throw Napi::TypeError::New(info.Env(), std::string("option ") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

bool OptBool(const Napi::CallbackInfo& info, size_t idx, const char* key, bool def) {
  Napi::Value v = OptValue(info, idx, key);
  if (v.IsUndefined() || v.IsNull()) return def;
  return v.ToBoolean().Value();
}

}  // namespace uvs
