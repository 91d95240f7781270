// mem.cc — large, long-lived tables (the conn table) in memory the kernel may back with 2 MiB
// pages: an anonymous mapping aligned to 2 MiB and marked MADV_HUGEPAGE before its first touch
// (transparent hugepages are "madvise" on most distributions, so plain ArrayBuffers never get
// them). At 1M conns the table is ~120 MiB read at random: with 4 KiB pages nearly every lookup
// also misses the TLB (and under a hypervisor a TLB miss walks two page tables).
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>

#include "uvs_io.h"

namespace uvs {

static constexpr size_t kHugeSize = 2u << 20;
#ifdef MADV_POPULATE_WRITE
static constexpr int kPopulateWrite = MADV_POPULATE_WRITE;
#else
static constexpr int kPopulateWrite = 23;  // linux/mman.h, 5.14+
#endif

struct Mapping {
  void* base;
  size_t len;
};

static void FreeMapping(Napi::Env /*env*/, void* /*data*/, Mapping* m) {
  munmap(m->base, m->len);
  delete m;
}

// allocHuge(bytes) → ArrayBuffer of `bytes` zeroed bytes, 2 MiB aligned, MADV_HUGEPAGE advised
// (advice the kernel may ignore: THP "never", no free huge pages — the memory is still good), and
// resident on return (the whole block is faulted in here).
static Napi::Value AllocHuge(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "allocHuge(bytes)");
  double want = info[0].As<Napi::Number>().DoubleValue();
  if (!(want >= 1) || want > double(1ull << 40)) throw Napi::RangeError::New(env, "allocHuge: bytes out of range");
  size_t len = (size_t(want) + kHugeSize - 1) & ~(kHugeSize - 1);
  size_t span = len + kHugeSize;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) throw ErrnoErrorRaw(env, errno, "mmap", "allocHuge");
  uintptr_t a = (uintptr_t(raw) + kHugeSize - 1) & ~uintptr_t(kHugeSize - 1);
  size_t head = a - uintptr_t(raw);
  if (head > 0) munmap(raw, head);
  size_t tail = span - head - len;
  if (tail > 0) munmap(reinterpret_cast<void*>(a + len), tail);
  void* base = reinterpret_cast<void*>(a);
  madvise(base, len, MADV_HUGEPAGE);  // advice only
  // Fault it all in now, not on the data path: with THP defrag "madvise" (the usual default) a
  // first touch of an MADV_HUGEPAGE range may compact memory synchronously, which stalled uvsd's
  // event loop for 0.5–0.9 s when traffic first spread over the conn table (0.1–0.26 s max after).
  // MADV_POPULATE_WRITE (5.14+), else one write per 4 KiB page (the pages are zero either way).
  if (madvise(base, len, kPopulateWrite) != 0) {
    int err = errno;
    if (err != EINVAL) {  // ENOMEM and the like: say so rather than fault into the OOM killer later
      munmap(base, len);
      throw ErrnoErrorRaw(env, err, "madvise(MADV_POPULATE_WRITE)", "allocHuge");
    }
    volatile uint8_t* p = static_cast<uint8_t*>(base);
    for (size_t off = 0; off < len; off += 4096) p[off] = 0;
  }
  auto* m = new Mapping{base, len};
  return Napi::ArrayBuffer::New(env, base, size_t(want), FreeMapping, m);
}

void InitMem(Napi::Env env, Napi::Object exports) {
  exports.Set("allocHuge", Napi::Function::New(env, AllocHuge, "allocHuge"));
}

}  // namespace uvs
