# uvs_io: the OS plumbing under src/port/ (AF_PACKET sockets, TAP/TUN devices, batched
# recv/send into caller-owned memory, libuv readiness). No protocol logic lives here.
# Build: cd native-bindings && npx node-gyp rebuild   (npm run build:native)
{
  "targets": [
    {
      "target_name": "uvs_io",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/netns.cc",
        "src/devices.cc",
        "src/batch.cc",
        "src/watch.cc",
        "src/xdp.cc",
        "src/mem.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    }
  ]
}
