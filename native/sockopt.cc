// otel-twamp native helper: set/get the IP TOS byte (IPv4) and the IPv6
// Traffic Class on an existing socket descriptor. Node 20's dgram has no
// setter for either; TWAMP test packets must
// carry the session's DSCP (RFC 5357 §3.5 Type-P, RFC 2474 DSCP).
//
// Exports:
//   setTos(fd: number, family: 4 | 6, tos: number): void
//   getTos(fd: number, family: 4 | 6): number
//   clockStatus(): { synchronized: boolean, estErrorUs: number, maxErrorUs: number, status: number }
//     (Linux: adjtimex(2) read-only query of the kernel NTP state, which NTP
//     daemons — chrony, ntpd, systemd-timesyncd — and ptp4l/phc2sys keep;
//     elsewhere undefined)
//   Datapath, realtimeNs(), monotonicNs(): the test-socket datapath and the
//     clocks behind every timestamp (Linux only; native/datapath.cc)
// Failures throw an Error with .code (errno name), .errno and .syscall.

#include <napi.h>

#include "datapath.h"

#include <cerrno>
#include <cstring>
#include <string>

#ifndef _WIN32
#include <netinet/in.h>
#include <netinet/ip.h>
#include <sys/socket.h>
#include <sys/types.h>
#endif
#ifdef __linux__
#include <sys/timex.h>
#endif

namespace {

const char* ErrnoName(int err) {
  switch (err) {
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
#ifdef ENOTSOCK
    case ENOTSOCK: return "ENOTSOCK";
#endif
#ifdef ENOPROTOOPT
    case ENOPROTOOPT: return "ENOPROTOOPT";
#endif
#ifdef EOPNOTSUPP
    case EOPNOTSUPP: return "EOPNOTSUPP";
#endif
#ifdef EAFNOSUPPORT
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
#endif
    default: return "UNKNOWN";
  }
}

// Throws a JS Error shaped like Node's system errors; always returns undefined.
Napi::Value ThrowErrno(Napi::Env env, const char* syscall, const char* option, int fd, int err) {
  std::string msg = std::string(syscall) + "(" + option + ") on fd " + std::to_string(fd) +
                    " failed: " + std::strerror(err) + " (" + ErrnoName(err) + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.Set("option", Napi::String::New(env, option));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

// Reads an integer argument in [lo, hi]; on failure a TypeError is pending.
bool IntArg(const Napi::CallbackInfo& info, size_t i, const char* name, int lo, int hi, int* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowType(info.Env(), std::string(name) + " must be a number");
    return false;
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<long long>(d))) {
    ThrowType(info.Env(), std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " +
                              std::to_string(hi) + "], got " + std::to_string(d));
    return false;
  }
  *out = static_cast<int>(d);
  return true;
}

bool FamilyArg(const Napi::CallbackInfo& info, int* out) {
  if (!IntArg(info, 1, "family", 4, 6, out)) return false;
  if (*out != 4 && *out != 6) {
    ThrowType(info.Env(), "family must be 4 or 6");
    return false;
  }
  return true;
}

#ifdef _WIN32

Napi::Value SetTos(const Napi::CallbackInfo& info) {
  Napi::Error::New(info.Env(), "setTos is not supported on Windows").ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

Napi::Value GetTos(const Napi::CallbackInfo& info) {
  Napi::Error::New(info.Env(), "getTos is not supported on Windows").ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

#else

Napi::Value SetTos(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd, family, tos;
  if (!IntArg(info, 0, "fd", 0, 0x7fffffff, &fd) || !FamilyArg(info, &family) ||
      !IntArg(info, 2, "tos", 0, 255, &tos)) {
    return env.Undefined();
  }
  if (family == 4) {
    if (setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos) != 0) {
      return ThrowErrno(env, "setsockopt", "IP_TOS", fd, errno);
    }
    return env.Undefined();
  }
  if (setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof tos) != 0) {
    return ThrowErrno(env, "setsockopt", "IPV6_TCLASS", fd, errno);
  }
  // A dual-stack AF_INET6 socket sends to v4-mapped peers as IPv4, whose TOS
  // comes from IP_TOS. Linux accepts IP_TOS on AF_INET6 sockets; some stacks
  // refuse it (EINVAL / ENOPROTOOPT), which only matters for v4-mapped
  // traffic, so those refusals are ignored.
  if (setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos) != 0) {
    int err = errno;
    bool refused = err == EINVAL
#ifdef ENOPROTOOPT
                   || err == ENOPROTOOPT
#endif
#ifdef EOPNOTSUPP
                   || err == EOPNOTSUPP
#endif
        ;
    if (!refused) return ThrowErrno(env, "setsockopt", "IP_TOS", fd, err);
  }
  return env.Undefined();
}

Napi::Value GetTos(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd, family;
  if (!IntArg(info, 0, "fd", 0, 0x7fffffff, &fd) || !FamilyArg(info, &family)) {
    return env.Undefined();
  }
  int value = 0;
  socklen_t len = sizeof value;
  const bool v4 = family == 4;
  if (getsockopt(fd, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_TOS : IPV6_TCLASS, &value, &len) != 0) {
    return ThrowErrno(env, "getsockopt", v4 ? "IP_TOS" : "IPV6_TCLASS", fd, errno);
  }
  // Some stacks return a single octet for IP_TOS.
  if (len == 1) value = *reinterpret_cast<unsigned char*>(&value);
  return Napi::Number::New(env, value & 0xff);
}

#endif

// The kernel's view of clock synchronisation: STA_UNSYNC clear and adjtimex
// not returning TIME_ERROR means a discipline (NTP/PTP) keeps the clock in
// sync; esterror is its estimated error (µs). modes = 0: query only.
Napi::Value ClockStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#ifdef __linux__
  struct timex tx;
  std::memset(&tx, 0, sizeof tx);
  int state = adjtimex(&tx);
  if (state < 0) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("synchronized", Napi::Boolean::New(env, state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0));
  o.Set("estErrorUs", Napi::Number::New(env, static_cast<double>(tx.esterror)));
  o.Set("maxErrorUs", Napi::Number::New(env, static_cast<double>(tx.maxerror)));
  o.Set("status", Napi::Number::New(env, tx.status));
  return o;
#else
  return env.Undefined();
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("clockStatus", Napi::Function::New(env, ClockStatus, "clockStatus"));
  exports.Set("setTos", Napi::Function::New(env, SetTos, "setTos"));
  exports.Set("getTos", Napi::Function::New(env, GetTos, "getTos"));
  twamp::InitDatapath(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(twamp_sockopt, Init)
