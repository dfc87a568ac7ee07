// otel-twamp native test-socket datapath (native/datapath.cc).
#pragma once

#include <napi.h>

namespace twamp {

// Adds Datapath, realtimeNs and monotonicNs to the addon's exports (Linux;
// elsewhere nothing, and the TypeScript side falls back to node:dgram).
void InitDatapath(Napi::Env env, Napi::Object exports);

}  // namespace twamp
