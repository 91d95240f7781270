// watch.cc — fd readiness on the Node event loop.
//
//   watch(fd, callback) → handle     uv_poll_t (UV_READABLE, level-triggered) on Node's loop;
//                                    callback() runs with no arguments on each loop turn in which
//                                    the fd is readable, until stopped.
//   handle.stop()                    idempotent; safe inside the callback. Stop before close(fd).
//   handle.unref() / handle.ref()    whether the watcher keeps the process alive (default: yes).
//   unwatch(handle)                  same as handle.stop().
//
// While active the handle keeps itself and the callback alive, so a dropped handle keeps
// watching (as a socket would); stop() releases both. An exception thrown by the callback goes
// to process 'uncaughtException' like any other event-loop callback.
#include <uv.h>

#include <vector>

#include "uvs_io.h"

namespace uvs {

namespace {

struct AddonData {
  Napi::FunctionReference watcherCtor;
};

class Watcher : public Napi::ObjectWrap<Watcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Watcher",
                       {InstanceMethod<&Watcher::Stop>("stop"), InstanceMethod<&Watcher::UnrefLoop>("unref"),
                        InstanceMethod<&Watcher::RefLoop>("ref"), InstanceAccessor<&Watcher::Active>("active")});
  }

  // new Watcher(fd, callback): starts polling at once.
  explicit Watcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Watcher>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(env, "watch(fd, callback): fd must be a number and callback a function");
    }
    fd_ = info[0].As<Napi::Number>().Int32Value();
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      throw Napi::Error::New(env, "watch: no libuv loop");
    }
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, fd_);
    if (rc < 0) {
      delete poll_;
      poll_ = nullptr;
      throw ErrnoErrorRaw(env, -rc, "uv_poll_init", "watch fd " + std::to_string(fd_));
    }
    poll_->data = this;
    rc = uv_poll_start(poll_, UV_READABLE, OnPoll);
    if (rc < 0) {
      Close();
      throw ErrnoErrorRaw(env, -rc, "uv_poll_start", "watch fd " + std::to_string(fd_));
    }
    cb_ = Napi::Persistent(info[1].As<Napi::Function>());
    Ref();  // keep this object (and so the callback) alive while polling
  }

  ~Watcher() override { Close(); }

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events) {
    Watcher* self = static_cast<Watcher*>(handle->data);
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Object keep = self->Value();  // keeps `self` alive even if the callback stops it
    if (status < 0) self->StopPolling();  // the fd is broken; one last call lets JS see the error
    try {
      self->cb_.MakeCallback(keep, {});
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  void Close() {
    if (poll_ == nullptr) return;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }

  void StopPolling() {
    if (poll_ == nullptr) return;
    Close();
    Unref();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    StopPolling();
    return info.Env().Undefined();
  }

  Napi::Value UnrefLoop(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.This();
  }

  Napi::Value RefLoop(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.This();
  }

  Napi::Value Active(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), poll_ != nullptr); }

  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference cb_;
};

Napi::Value Watch(const Napi::CallbackInfo& info) {
  AddonData* data = info.Env().GetInstanceData<AddonData>();
  std::vector<napi_value> args;
  for (size_t i = 0; i < info.Length(); i++) args.push_back(info[i]);
  return data->watcherCtor.New(args);
}

Napi::Value Unwatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "unwatch(handle): handle expected");
  Napi::Object h = info[0].As<Napi::Object>();
  h.Get("stop").As<Napi::Function>().Call(h, {});
  return env.Undefined();
}

}  // namespace

void InitWatch(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = Watcher::Define(env);
  AddonData* data = new AddonData();
  data->watcherCtor = Napi::Persistent(ctor);
  env.SetInstanceData<AddonData>(data);
  exports.Set("watch", Napi::Function::New(env, Watch, "watch"));
  exports.Set("unwatch", Napi::Function::New(env, Unwatch, "unwatch"));
}

}  // namespace uvs
