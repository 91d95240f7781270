// netns.cc — NetnsScope: run a block of socket/device creation inside a named network namespace
// on the calling thread, then return to the original one (saved from /proc/self/ns/net).
// Failing to return would leave the JS thread in a foreign namespace with no sign of it, so
// that case aborts the process instead of continuing silently.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "uvs_io.h"

namespace uvs {

NetnsScope::NetnsScope(Napi::Env env, const std::string& netns, const std::string& what) {
  if (netns.empty()) return;
  std::string path = netns.find('/') == std::string::npos ? "/var/run/netns/" + netns : netns;
  int orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig < 0) throw ErrnoErrorRaw(env, errno, "open", "open /proc/self/ns/net for \"" + what + "\"");
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int err = errno;
    close(orig);
    throw ErrnoErrorRaw(env, err, "open", "netns \"" + netns + "\" (" + path + ") for \"" + what + "\"");
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    int err = errno;
    close(target);
    close(orig);
    throw ErrnoErrorRaw(env, err, "setns", "setns into \"" + netns + "\" for \"" + what + "\"");
  }
  close(target);
  orig_ = orig;
}

NetnsScope::~NetnsScope() {
  if (orig_ < 0) return;
  if (setns(orig_, CLONE_NEWNET) < 0) {
    perror("uvs_io: cannot return to the original network namespace");
    abort();
  }
  close(orig_);
}

}  // namespace uvs
