{
  "targets": [
    {
      "target_name": "twamp_sockopt",
      "sources": ["native/sockopt.cc", "native/datapath.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-Wall", "-Wextra", "-std=gnu++17"],
      "libraries": ["-lpthread"]
    }
  ]
}
