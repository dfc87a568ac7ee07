// otel-twamp native test-socket datapath (Linux): a UDP socket owned by
// native code that
//   - receives in batches (recvmmsg) with the kernel's metadata per datagram:
//     receive time (SO_TIMESTAMPING software, or hardware when asked for and
//     the NIC stamps), TTL / hop limit and TOS / traffic class — RFC 5357
//     §4.2.1 wants T2 taken "as close as possible" to the wire and the
//     sender's TTL echoed;
//   - sends with a 64-bit NTP timestamp (RFC 5905 §6, RFC 4656 §4.1.2:
//     seconds since 1900, 32-bit fraction, big-endian) written at a given
//     offset right before sendmsg, singly or in sendmmsg batches;
//   - reports kernel TX software timestamps (SOF_TIMESTAMPING_TX_SOFTWARE |
//     OPT_ID | OPT_TSONLY, read from the error queue) by id: the real
//     departure time;
//   - sends scheduled packets from a native thread at absolute
//     CLOCK_MONOTONIC deadlines (an absolute futex wait, timer slack 1 ns;
//     optionally SCHED_FIFO and a short final spin), without a busy event loop.
// It knows nothing of TWAMP layouts: it stamps times at offsets it is given
// and reports what the kernel says. Typed API: src/session/native.ts.
//
// Every failing syscall throws (or reports) an Error with .code (errno
// name), .errno and .syscall. Nothing a peer sends can overrun a buffer:
// receive slots and control buffers are fixed-size, copies are bounded by
// the returned lengths, MSG_TRUNC / MSG_CTRUNC are reported, not trusted.
//
// The socket lives in the event loop like libuv's uv_udp: a uv_poll_t
// watches a private epoll descriptor that holds the socket (EPOLLIN |
// EPOLLERR). The indirection is needed because uv_poll stops a handle whose
// fd reports POLLERR — which is exactly how the kernel signals a queued TX
// timestamp.

#include "datapath.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#ifdef __linux__
#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <queue>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#endif

namespace twamp {

namespace {

std::string ErrnoCode(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* n = strerrorname_np(err);
  if (n != nullptr) return n;
#endif
  return "E" + std::to_string(err);
}

Napi::Error ErrnoError(Napi::Env env, const char* syscall, const std::string& what, int err) {
  std::string msg = std::string(syscall) + (what.empty() ? "" : "(" + what + ")") + " failed: " +
                    std::strerror(err) + " (" + ErrnoCode(err) + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoCode(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

Napi::Value ThrowErrno(Napi::Env env, const char* syscall, const std::string& what, int err) {
  ErrnoError(env, syscall, what, err).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const std::string& msg) {
  Napi::TypeError e = Napi::TypeError::New(env, msg);
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG"));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

#ifdef __linux__

int64_t NowNs(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

constexpr uint64_t kNtpUnixOffset = 2208988800ULL;  // 1900-01-01 to 1970-01-01, s

// RFC 5905 §6 / RFC 4656 §4.1.2: 32-bit seconds since 1900, 32-bit fraction.
void WriteNtp(uint8_t* p, int64_t unix_ns) {
  uint64_t sec = static_cast<uint64_t>(unix_ns / 1000000000LL) + kNtpUnixOffset;
  uint64_t nsec = static_cast<uint64_t>(unix_ns % 1000000000LL);
  // Rounded to the nearest fraction unit, as ntpFromUnixNs (src/protocol/timestamp.ts) does.
  uint32_t frac = static_cast<uint32_t>(((nsec << 32) + 500000000ULL) / 1000000000ULL);
  uint32_t s32 = static_cast<uint32_t>(sec);
  p[0] = s32 >> 24; p[1] = s32 >> 16; p[2] = s32 >> 8; p[3] = s32;
  p[4] = frac >> 24; p[5] = frac >> 16; p[6] = frac >> 8; p[7] = frac;
}

bool NumArg(const Napi::Value& v, const char* name, double lo, double hi, double* out) {
  if (!v.IsNumber()) {
    ThrowType(v.Env(), std::string(name) + " must be a number");
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<long long>(d))) {
    ThrowType(v.Env(), std::string(name) + " must be an integer in [" + std::to_string(static_cast<long long>(lo)) +
                           ", " + std::to_string(static_cast<long long>(hi)) + "], got " + std::to_string(d));
    return false;
  }
  *out = d;
  return true;
}

// An optional integer argument: undefined (or null when `null_ok`) leaves *out
// as it is; otherwise NumArg's checks, then *out = value × scale. False with a
// TypeError pending when invalid. One helper for every optional option.
template <typename T>
bool OptInt(const Napi::Value& v, const char* name, double lo, double hi, T* out, int64_t scale = 1,
            bool null_ok = false) {
  if (v.IsUndefined() || (null_ok && v.IsNull())) return true;
  double d;
  if (!NumArg(v, name, lo, hi, &d)) return false;
  *out = static_cast<T>(static_cast<int64_t>(d) * scale);
  return true;
}
template <typename T>
bool OptInt(const Napi::Object& o, const char* name, double lo, double hi, T* out, int64_t scale = 1) {
  return OptInt(o.Get(name), name, lo, hi, out, scale);
}

// Parses a numeric address (IPv6 may carry %scope, a name or a number) for a
// socket of `family`; an IPv4 literal on an IPv6 socket becomes v4-mapped.
bool ParseAddr(int family, const std::string& host, int port, sockaddr_storage* ss, socklen_t* len,
               std::string* why) {
  std::memset(ss, 0, sizeof *ss);
  if (family == 4) {
    auto* a = reinterpret_cast<sockaddr_in*>(ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) {
      *why = "not an IPv4 address: '" + host + "'";
      return false;
    }
    *len = sizeof *a;
    return true;
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(ss);
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(static_cast<uint16_t>(port));
  std::string addr = host;
  size_t pct = host.find('%');
  if (pct != std::string::npos) {
    addr = host.substr(0, pct);
    std::string scope = host.substr(pct + 1);
    if (scope.empty() || scope.size() >= IF_NAMESIZE) {
      *why = "bad IPv6 scope in '" + host + "'";
      return false;
    }
    char* end = nullptr;
    unsigned long idx = std::strtoul(scope.c_str(), &end, 10);
    if (end == nullptr || *end != '\0') idx = if_nametoindex(scope.c_str());
    if (idx == 0 || idx > 0xffffffffUL) {
      *why = "unknown IPv6 scope '" + scope + "'";
      return false;
    }
    a->sin6_scope_id = static_cast<uint32_t>(idx);
  }
  if (inet_pton(AF_INET6, addr.c_str(), &a->sin6_addr) == 1) {
    *len = sizeof *a;
    return true;
  }
  struct in_addr v4;
  if (pct == std::string::npos && inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    a->sin6_addr.s6_addr[10] = 0xff;
    a->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&a->sin6_addr.s6_addr[12], &v4, 4);
    *len = sizeof *a;
    return true;
  }
  *why = "not an IP address: '" + host + "'";
  return false;
}

// Address (with %scope when the peer's scope id is set) and port.
void FormatAddr(const sockaddr_storage& ss, socklen_t len, std::string* host, int* port) {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  *port = 0;
  *host = "";
  if (ss.ss_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    if (inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf) != nullptr) *host = buf;
    *port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (inet_ntop(AF_INET6, &a->sin6_addr, buf, INET6_ADDRSTRLEN) != nullptr) {
      *host = buf;
      if (a->sin6_scope_id != 0) {
        char name[IF_NAMESIZE];
        *host += "%";
        *host += if_indextoname(a->sin6_scope_id, name) != nullptr ? std::string(name)
                                                                   : std::to_string(a->sin6_scope_id);
      }
    }
    *port = ntohs(a->sin6_port);
  }
}

// Per-packet TOS / traffic class as a control message (no setsockopt per
// packet): IP_TOS for IPv4 destinations (also v4-mapped ones of an AF_INET6
// socket, which the kernel sends through its IPv4 path), IPV6_TCLASS
// otherwise. `ctrl` must hold CMSG_SPACE(sizeof(int)); returns its used length.
constexpr size_t kTosCtrl = CMSG_SPACE(sizeof(int));
size_t TosCmsg(uint8_t* ctrl, const sockaddr_storage& dst, int tos) {
  std::memset(ctrl, 0, kTosCtrl);
  auto* c = reinterpret_cast<cmsghdr*>(ctrl);
  bool v4 = dst.ss_family == AF_INET;
  if (!v4 && dst.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&dst);
    v4 = IN6_IS_ADDR_V4MAPPED(&a->sin6_addr);
  }
  c->cmsg_level = v4 ? IPPROTO_IP : IPPROTO_IPV6;
  c->cmsg_type = v4 ? IP_TOS : IPV6_TCLASS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &tos, sizeof(int));
  return kTosCtrl;
}

// Timestamp sources as reported to JS (kept in sync with native.ts).
constexpr int kTsUserspace = 0;
constexpr int kTsKernel = 1;
constexpr int kTsHardware = 2;

constexpr int kBatch = 32;                // datagrams per recvmmsg
constexpr int kMaxBatchesPerWake = 8;     // fairness towards other handles
constexpr size_t kSlot = 65536;           // receive slot: any UDP payload
constexpr size_t kCtrl = 512;             // control buffer per datagram
constexpr int kMaxErrqueuePerWake = 1024;
constexpr size_t kMaxPendingTx = 65536;   // bound of the scheduled-TX-stamp bookkeeping per socket

// Receive arena shared by all sockets of one thread (callbacks of one event
// loop never overlap); per-thread so worker threads each get their own.
struct RxArena {
  uint8_t data[kBatch][kSlot];
  alignas(cmsghdr) uint8_t ctrl[kBatch][kCtrl];
  sockaddr_storage addr[kBatch];
  iovec iov[kBatch];
  mmsghdr msgs[kBatch];
};
thread_local std::unique_ptr<RxArena> t_arena;

class Datapath;

struct Scheduled {
  double id;
  int64_t deadline;
  uint64_t seq;
  std::vector<uint8_t> data;
  sockaddr_storage dst;
  socklen_t dstlen;
  int32_t stamp_off;
  int tos;  // per-packet TOS / traffic class, -1: the socket's
  Datapath* owner;
  int64_t spin;  // the owner's schedulerSpinUs, ns
};
struct Later {
  bool operator()(const Scheduled* a, const Scheduled* b) const {
    return a->deadline != b->deadline ? a->deadline > b->deadline : a->seq > b->seq;
  }
};
struct Departure {
  double id;
  int64_t deadline;
  int64_t sent_mono;
  int64_t stamped_real;
  int64_t key;  // TX timestamp id, -1 when none will come
  int err;
  int64_t tx;   // kernel TX timestamp read by the scheduler thread, -1 when none yet
  int tx_src;
};
struct TxStamp {
  int64_t key;
  int64_t ts;
  int src;
};
// A datagram read by the receive thread, waiting for delivery (payload in a shared byte vector at `off`).
struct RxRec {
  size_t off;
  size_t len;
  int64_t ts;
  int ttl, tos, src;
  bool trunc, ctrunc;
  sockaddr_storage addr;
  socklen_t addrlen;
};
// Datagrams held per socket between two deliveries; beyond it the receive
// thread delivers at once (the kernel's receive buffer is the next bound).
constexpr size_t kMaxPendingRx = 4096;

// One scheduler thread for every socket of the process: a min-heap of
// (deadline, FIFO) departures, an absolute CLOCK_MONOTONIC wait for the
// earliest (futex hrtimer, timer slack 1 ns), an optional final spin. It
// sends, reads the kernel TX timestamp of what it sent itself, and hands
// results to each socket's JS side in batches (at most every
// departureReportMs per socket, or as soon as the socket has nothing more
// queued), so departures cost no event-loop wake-up of their own. One thread
// instead of one per socket: 40 g711 senders are 2,000 wake-ups a second of
// one thread, not 40 threads.
class SharedScheduler {
 public:
  static SharedScheduler& Get() {
    static SharedScheduler* s = new SharedScheduler();  // lives as long as the process (its thread is detached)
    return *s;
  }
  void Push(Scheduled* s, int prio);
  // Starts the thread if needed and makes it recompute its next wake-up.
  void Kick();
  // Drops `owner`'s queued departures and waits until the thread is done with it.
  void Purge(Datapath* owner);
  // 0 normal priority, -1 SCHED_FIFO in effect, > 0 errno of the refusal.
  int SchedErr() const { return sched_err_.load(); }
  struct Stats {
    uint64_t departures, spins;
    int64_t spun_ns, late_p95_ns, budget_us;
  };
  Stats GetStats() {
    std::lock_guard<std::mutex> g(mu_);
    return {departures_, spins_, spun_ns_, late_p95_, budgets_.empty() ? 0 : *budgets_.rbegin()};
  }

 private:
  void Loop();
  int64_t SpinAllowance(int64_t now);
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::priority_queue<Scheduled*, std::vector<Scheduled*>, Later> heap_;
  std::vector<Datapath*> reporting_;  // owners with results waiting for their report time
  bool started_ = false;
  bool kicked_ = false;
  uint64_t seq_ = 0;
  // Wake-up latency of the scheduler thread's timed waits (p95 estimate, ns).
  static constexpr int64_t kEarlyMarginNs = 5000;
  static constexpr int64_t kLateStepNs = 2000;
  static constexpr int64_t kLateMaxNs = 1000000;
  int64_t late_p95_ = 80000;
  // Spin budget (schedulerSpinBudgetUs): a token bucket of spin time, refilled
  // at the largest budget of the sockets that schedule (µs per second of wall
  // time), holding at most 100 ms worth. The early wake-up never exceeds what
  // is in it, so the spin of all sockets together stays within the budget
  // however many depart (40 g711 senders are 2,000 departures a second).
  std::multiset<int64_t> budgets_;
  int64_t spin_tokens_ = 0;     // ns
  int64_t spin_refill_at_ = 0;  // CLOCK_MONOTONIC ns of the last refill, 0: never
  int64_t spin_rem_ = 0;        // refill remainder, ns × 1e6
  uint64_t departures_ = 0, spins_ = 0;
  int64_t spun_ns_ = 0;
  int want_prio_ = 0;
  int applied_prio_ = 0;
  std::atomic<int> sched_err_{0};
};

// Coalesced receive for the sockets that ask for it (receiveReportMs > 0,
// the sender's sockets): an epoll over all of them that nobody waits on — the
// scheduler thread looks at it (no waiting) each time it wakes for departures
// anyway, and at least once per receiveReportMs — reads datagrams with their
// kernel metadata (recvmmsg) and TX timestamps (the error queue), and hands
// each socket's records to JS in batches on a grid of receiveReportMs shared
// by every socket. So neither a reply nor a TX timestamp wakes the event loop
// or any thread: on a virtual machine a thread wake-up costs tens of µs. The
// kernel's receive timestamp is taken on arrival, so the delivery delay
// changes no measurement; a reflector's sockets keep immediate delivery (its
// T3 − T2 would include any delay).
class SharedReceiver {
 public:
  static SharedReceiver& Get() {
    static SharedReceiver* r = new SharedReceiver();  // lives as long as the process (its thread is detached)
    return *r;
  }
  // 0 or the errno of epoll_create1 / epoll_ctl.
  int Add(Datapath* d, int fd);
  // Stops watching `d` and waits until the thread is done with it.
  void Remove(Datapath* d, int fd);
  void Due(Datapath* d, int64_t due);  // mu_ held
  // Scheduler thread: reads whatever is ready on the watched sockets (no
  // waiting) unless that would run past `until` (the next departure's wake)
  // or the last look was too recent, and hands out batches that are due.
  // `departures`: the scheduler's running count of departures. True when
  // something was read.
  bool Poll(int64_t until, uint64_t departures);
  // When the scheduler thread must look next (INT64_MAX: no socket watched).
  int64_t NextWake();

 private:
  std::mutex mu_;
  std::condition_variable idle_cv_;
  int epfd_ = -1;
  int64_t last_poll_ = 0;
  uint64_t last_poll_departures_ = 0;
  int64_t min_ns_ = INT64_MAX;  // smallest receiveReportMs of the watched sockets, ns
  std::unordered_set<Datapath*> live_;
  std::vector<Datapath*> reporting_;
};

class Datapath : public Napi::ObjectWrap<Datapath> {
 public:
  static Napi::Function Class(Napi::Env env) {
    return DefineClass(env, "Datapath",
                       {
                           InstanceMethod("bind", &Datapath::Bind),
                           InstanceMethod("send", &Datapath::Send),
                           InstanceMethod("sendBatch", &Datapath::SendBatch),
                           InstanceMethod("schedule", &Datapath::Schedule),
                           InstanceMethod("setTtl", &Datapath::SetTtl),
                           InstanceMethod("setTos", &Datapath::SetTos),
                           InstanceMethod("ref", &Datapath::RefLoop),
                           InstanceMethod("unref", &Datapath::UnrefLoop),
                           InstanceMethod("close", &Datapath::Close),
                           InstanceAccessor("fd", &Datapath::Fd, nullptr),
                           InstanceAccessor("timestamping", &Datapath::Timestamping, nullptr),
                       });
  }

  // new Datapath({ family, onRecv, onTx, onDeparture, rcvbuf?, ipv6Only?,
  //   hardwareTimestamps?, txTimestamps?, maxDatagram?, ttl?, tos? })
  explicit Datapath(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Datapath>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      ThrowType(env, "Datapath options must be an object");
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    double d;
    if (!NumArg(o.Get("family"), "family", 4, 6, &d) || (d != 4 && d != 6)) {
      if (!env.IsExceptionPending()) ThrowType(env, "family must be 4 or 6");
      return;
    }
    family_ = static_cast<int>(d);
    for (const char* name : {"onRecv", "onTx", "onDeparture"}) {
      if (!o.Get(name).IsFunction()) {
        ThrowType(env, std::string(name) + " must be a function");
        return;
      }
    }
    on_recv_ = Napi::Persistent(o.Get("onRecv").As<Napi::Function>());
    on_tx_ = Napi::Persistent(o.Get("onTx").As<Napi::Function>());
    on_departure_fn_ = Napi::Persistent(o.Get("onDeparture").As<Napi::Function>());
    hw_ = o.Get("hardwareTimestamps").ToBoolean();
    tx_ts_ = !o.Has("txTimestamps") || o.Get("txTimestamps").IsUndefined() || o.Get("txTimestamps").ToBoolean();
    int rcvbuf = 0, ttl = 255, tos = 0;
    const bool v6only = o.Get("ipv6Only").ToBoolean();
    if (!OptInt(o, "maxDatagram", 1, kSlot, &max_dgram_) || !OptInt(o, "rcvbuf", 1, 0x7fffffff, &rcvbuf) ||
        !OptInt(o, "ttl", 1, 255, &ttl) || !OptInt(o, "tos", 0, 255, &tos) ||
        !OptInt(o, "schedulerSpinUs", 0, 1000, &spin_ns_, 1000) ||
        !OptInt(o, "schedulerSpinBudgetUs", 0, 1000000, &spin_budget_us_) ||
        !OptInt(o, "departureReportMs", 0, 10000, &report_ns_, 1000000) ||
        !OptInt(o, "receiveReportMs", 0, 10000, &rx_report_ns_, 1000000) ||
        !OptInt(o, "schedulerPriority", 0, 99, &sched_prio_)) {
      return;
    }

    fd_ = socket(family_ == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      ThrowErrno(env, "socket", family_ == 4 ? "AF_INET" : "AF_INET6", errno);
      return;
    }
    int one = 1;
    if (family_ == 6) {
      int v = v6only ? 1 : 0;
      if (!Opt(env, IPPROTO_IPV6, IPV6_V6ONLY, v, "IPV6_V6ONLY")) return;
      if (!Opt(env, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, one, "IPV6_RECVHOPLIMIT")) return;
      if (!Opt(env, IPPROTO_IPV6, IPV6_RECVTCLASS, one, "IPV6_RECVTCLASS")) return;
      // v4-mapped peers of a dual-stack socket: their TTL/TOS come as IPv4
      // control messages; Linux accepts these on AF_INET6 sockets.
      if (!v6only) {
        setsockopt(fd_, IPPROTO_IP, IP_RECVTTL, &one, sizeof one);
        setsockopt(fd_, IPPROTO_IP, IP_RECVTOS, &one, sizeof one);
      }
    } else {
      if (!Opt(env, IPPROTO_IP, IP_RECVTTL, one, "IP_RECVTTL")) return;
      if (!Opt(env, IPPROTO_IP, IP_RECVTOS, one, "IP_RECVTOS")) return;
    }
    if (rcvbuf > 0 && !Opt(env, SOL_SOCKET, SO_RCVBUF, rcvbuf, "SO_RCVBUF")) return;
    int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    if (hw_) flags |= SOF_TIMESTAMPING_RX_HARDWARE | SOF_TIMESTAMPING_RAW_HARDWARE | SOF_TIMESTAMPING_TX_HARDWARE;
    if (tx_ts_) flags |= SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY;
    if (setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) == 0) {
      timestamping_ = true;
    } else {
      // Older kernels: nanosecond software receive stamps only.
      tx_ts_ = false;
      if (!Opt(env, SOL_SOCKET, SO_TIMESTAMPNS, one, "SO_TIMESTAMPNS")) return;
    }
    if (!ApplyTtl(env, ttl) || !ApplyTos(env, tos)) return;
  }

  // Only reached when nothing holds us (never bound, or closed) or at
  // environment teardown: no JS-visible side effects here.
  ~Datapath() override { Shutdown(true); }

 private:
  bool Opt(Napi::Env env, int level, int name, int value, const char* what) {
    if (setsockopt(fd_, level, name, &value, sizeof value) != 0) {
      int err = errno;
      ThrowErrno(env, "setsockopt", what, err);
      return false;
    }
    return true;
  }

  bool ApplyTtl(Napi::Env env, int ttl) {
    if (family_ == 4) return Opt(env, IPPROTO_IP, IP_TTL, ttl, "IP_TTL");
    if (!Opt(env, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl, "IPV6_UNICAST_HOPS")) return false;
    setsockopt(fd_, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);  // v4-mapped peers; refusal only matters for them
    return true;
  }

  bool ApplyTos(Napi::Env env, int tos) {
    if (family_ == 4) return Opt(env, IPPROTO_IP, IP_TOS, tos, "IP_TOS");
    if (!Opt(env, IPPROTO_IPV6, IPV6_TCLASS, tos, "IPV6_TCLASS")) return false;
    setsockopt(fd_, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
    return true;
  }

  bool Open(Napi::Env env) {
    if (fd_ < 0) {
      Napi::Error e = ErrnoError(env, "datapath", "socket is closed", EBADF);
      e.Set("code", Napi::String::New(env, "ERR_SOCKET_CLOSED"));
      e.ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  Napi::Value Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }
  Napi::Value Timestamping(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("soTimestamping", Napi::Boolean::New(info.Env(), timestamping_));
    o.Set("tx", Napi::Boolean::New(info.Env(), tx_ts_));
    o.Set("hardware", Napi::Boolean::New(info.Env(), hw_));
    // Scheduler thread: 0 not started or normal priority, -1 SCHED_FIFO in
    // effect, > 0 the errno pthread_setschedparam failed with.
    o.Set("schedulerRealtime", Napi::Number::New(info.Env(), sched_prio_ > 0 ? SharedScheduler::Get().SchedErr() : 0));
    return o;
  }

  // bind(address, port) -> { address, port }; starts receiving.
  Napi::Value Bind(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    if (info.Length() < 2 || !info[0].IsString()) return ThrowType(env, "bind(address: string, port: number)");
    double port;
    if (!NumArg(info[1], "port", 0, 65535, &port)) return env.Undefined();
    if (poll_ != nullptr || rx_thread_) return ThrowType(env, "datapath socket is already bound");
    sockaddr_storage ss;
    socklen_t len;
    std::string why, host = info[0].As<Napi::String>().Utf8Value();
    if (!ParseAddr(family_, host, static_cast<int>(port), &ss, &len, &why)) return ThrowType(env, "bind: " + why);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      return ThrowErrno(env, "bind", host + " port " + std::to_string(static_cast<int>(port)), errno);
    }
    len = sizeof ss;
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return ThrowErrno(env, "getsockname", "", errno);
    if (rx_report_ns_ > 0) {
      // Coalesced delivery: the shared receive thread watches the socket; the
      // event loop only sees the batches (through the threadsafe function,
      // which also keeps the loop alive while the socket is ref()'d).
      StartScheduler(env);
      async_ = std::make_unique<Napi::AsyncContext>(env, "TwampDatapath");
      {
        std::lock_guard<std::mutex> g(res_mu_);
        rx_thread_ = true;
      }
      int err = SharedReceiver::Get().Add(this, fd_);
      if (err == 0) SharedScheduler::Get().Kick();
      if (err != 0) {
        std::lock_guard<std::mutex> g(res_mu_);
        rx_thread_ = false;
        return ThrowErrno(env, "epoll_ctl", "receive thread", err);
      }
      UpdateRef(env);
      std::string h;
      int p;
      FormatAddr(ss, len, &h, &p);
      Napi::Object r = Napi::Object::New(env);
      r.Set("address", h);
      r.Set("port", p);
      return r;
    }
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) return ThrowErrno(env, "epoll_create1", "", errno);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLERR;
    ev.data.fd = fd_;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd_, &ev) != 0) return ThrowErrno(env, "epoll_ctl", "EPOLL_CTL_ADD", errno);
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      Napi::Error::New(env, "napi_get_uv_event_loop failed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, epfd_);
    if (rc == 0) {
      poll_->data = this;
      rc = uv_poll_start(poll_, UV_READABLE, &Datapath::OnPoll);
    }
    if (rc != 0) {
      delete poll_;
      poll_ = nullptr;
      return ThrowErrno(env, "uv_poll_start", "", -rc);
    }
    Ref();  // alive while the poll handle points at us; dropped in the close callback
    async_ = std::make_unique<Napi::AsyncContext>(env, "TwampDatapath");
    std::string h;
    int p;
    FormatAddr(ss, len, &h, &p);
    Napi::Object r = Napi::Object::New(env);
    r.Set("address", h);
    r.Set("port", p);
    return r;
  }

  Napi::Value SetTtl(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    double v;
    if (!Open(env) || info.Length() < 1 || !NumArg(info[0], "ttl", 1, 255, &v)) return env.Undefined();
    ApplyTtl(env, static_cast<int>(v));
    return env.Undefined();
  }

  Napi::Value SetTos(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    double v;
    if (!Open(env) || info.Length() < 1 || !NumArg(info[0], "tos", 0, 255, &v)) return env.Undefined();
    ApplyTos(env, static_cast<int>(v));
    return env.Undefined();
  }

  Napi::Value RefLoop(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    loop_ref_ = true;
    UpdateRef(info.Env());
    return info.Env().Undefined();
  }
  Napi::Value UnrefLoop(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    loop_ref_ = false;
    UpdateRef(info.Env());
    return info.Env().Undefined();
  }

  // Main thread: the threadsafe function holds the event loop while departures
  // are outstanding, or while a socket on the receive thread is ref()'d.
  void UpdateRef(Napi::Env env) {
    if (!tsfn_started_ || closed_) return;
    if (outstanding_ > 0 || (rx_thread_ && loop_ref_)) {
      tsfn_.Ref(env);
    } else {
      tsfn_.Unref(env);
    }
  }

  // Reads CLOCK_REALTIME, stamps it (NTP) at `off` unless off < 0, then sends;
  // returns the errno (0 on success). Serialised with the scheduler thread so
  // the TX timestamp ids (OPT_ID: the kernel counts the socket's sends) match.
  int StampAndSend(uint8_t* data, size_t len, const sockaddr_storage& dst, socklen_t dstlen, int32_t off, int tos,
                   int64_t* stamped, int64_t* sent_mono, int64_t* key) {
    alignas(cmsghdr) uint8_t ctrl[kTosCtrl];
    iovec iov{data, len};
    msghdr m{};
    m.msg_name = const_cast<sockaddr_storage*>(&dst);
    m.msg_namelen = dstlen;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (tos >= 0) {
      m.msg_control = ctrl;
      m.msg_controllen = TosCmsg(ctrl, dst, tos);
    }
    std::lock_guard<std::mutex> g(send_mu_);
    if (fd_ < 0) return EBADF;
    *stamped = NowNs(CLOCK_REALTIME);
    if (sent_mono != nullptr) *sent_mono = NowNs(CLOCK_MONOTONIC);
    if (off >= 0) WriteNtp(data + off, *stamped);
    ssize_t n = sendmsg(fd_, &m, 0);
    if (n < 0) {
      *key = -1;
      return errno;
    }
    *key = tx_ts_ ? static_cast<int64_t>(next_key_++) : -1;
    return 0;
  }

  // Validates (buffer, address, port, stampOffset) at info[i..i+3].
  bool PacketArgs(Napi::Env env, const Napi::Value& b, const Napi::Value& a, const Napi::Value& p,
                  const Napi::Value& s, const Napi::Value& t, uint8_t** data, size_t* len, sockaddr_storage* dst,
                  socklen_t* dstlen, int32_t* off, int* tos) {
    if (!b.IsBuffer()) {
      ThrowType(env, "data must be a Buffer");
      return false;
    }
    auto buf = b.As<Napi::Buffer<uint8_t>>();
    *data = buf.Data();
    *len = buf.Length();
    if (!a.IsString()) {
      ThrowType(env, "address must be a string");
      return false;
    }
    double port;
    if (!NumArg(p, "port", 0, 65535, &port)) return false;
    std::string why;
    if (!ParseAddr(family_, a.As<Napi::String>().Utf8Value(), static_cast<int>(port), dst, dstlen, &why)) {
      ThrowType(env, "send: " + why);
      return false;
    }
    *off = -1;
    *tos = -1;
    if (!OptInt(s, "stampOffset", 0, 0x7fffffff, off, 1, true) || !OptInt(t, "tos", 0, 255, tos, 1, true)) return false;
    if (*off >= 0 && static_cast<size_t>(*off) + 8 > *len) {
      ThrowType(env, "stampOffset " + std::to_string(*off) + " + 8 exceeds the packet (" + std::to_string(*len) +
                         " bytes)");
      return false;
    }
    return true;
  }

  // send(buf, address, port, stampOffset?, tos?) -> [stampedRealtimeNs: bigint, txKey: number]
  // The stamp is written into `buf` itself; tos (0..255) goes as a control
  // message for this packet only.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    uint8_t* data;
    size_t len;
    sockaddr_storage dst;
    socklen_t dstlen;
    int32_t off;
    int tos;
    if (!PacketArgs(env, info[0], info[1], info[2], info[3], info[4], &data, &len, &dst, &dstlen, &off, &tos)) {
      return env.Undefined();
    }
    int64_t stamped, key;
    int err = StampAndSend(data, len, dst, dstlen, off, tos, &stamped, nullptr, &key);
    if (err != 0) {
      return ThrowErrno(env, "sendmsg", info[1].As<Napi::String>().Utf8Value() + " port " +
                                          std::to_string(info[2].As<Napi::Number>().Int32Value()), err);
    }
    Napi::Array r = Napi::Array::New(env, 2);
    r.Set(0u, Napi::BigInt::New(env, stamped));
    r.Set(1u, Napi::Number::New(env, static_cast<double>(key)));
    return r;
  }

  // sendBatch([[buf, address, port, stampOffset?, tos?], ...]) ->
  //   [sent: number, stampedRealtimeNs: bigint, firstTxKey: number]
  // One clock read stamps every packet of the batch; one sendmmsg sends them.
  // A partial send returns the count sent; a failure of the first throws.
  Napi::Value SendBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsArray()) return ThrowType(env, "sendBatch(items: array)");
    Napi::Array items = info[0].As<Napi::Array>();
    const uint32_t n = items.Length();
    if (n == 0 || n > 1024) return ThrowType(env, "sendBatch: 1..1024 items");
    std::vector<mmsghdr> msgs(n);
    std::vector<iovec> iov(n);
    std::vector<sockaddr_storage> dst(n);
    std::vector<int32_t> offs(n);
    std::vector<uint8_t> ctrl;  // per-item TOS control messages, allocated on the first item that has one
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value it = items.Get(i);
      if (!it.IsArray()) return ThrowType(env, "sendBatch: item " + std::to_string(i) + " must be an array");
      Napi::Array a = it.As<Napi::Array>();
      uint8_t* data;
      size_t len;
      socklen_t dl;
      int tos;
      if (!PacketArgs(env, a.Get(0u), a.Get(1u), a.Get(2u), a.Get(3u), a.Get(4u), &data, &len, &dst[i], &dl, &offs[i],
                      &tos)) {
        return env.Undefined();
      }
      iov[i].iov_base = data;
      iov[i].iov_len = len;
      std::memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_name = &dst[i];
      msgs[i].msg_hdr.msg_namelen = dl;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      if (tos >= 0) {
        // kTosCtrl is a multiple of the cmsghdr alignment, so every slot stays aligned.
        if (ctrl.empty()) ctrl.resize(static_cast<size_t>(n) * kTosCtrl + alignof(cmsghdr));
        uintptr_t base = reinterpret_cast<uintptr_t>(ctrl.data());
        base = (base + alignof(cmsghdr) - 1) & ~(static_cast<uintptr_t>(alignof(cmsghdr)) - 1);
        uint8_t* c = reinterpret_cast<uint8_t*>(base) + static_cast<size_t>(i) * kTosCtrl;
        msgs[i].msg_hdr.msg_control = c;
        msgs[i].msg_hdr.msg_controllen = TosCmsg(c, dst[i], tos);
      }
    }
    int sent;
    int64_t stamped, first_key = -1;
    int err = 0;
    {
      std::lock_guard<std::mutex> g(send_mu_);
      stamped = NowNs(CLOCK_REALTIME);
      for (uint32_t i = 0; i < n; i++) {
        if (offs[i] >= 0) WriteNtp(static_cast<uint8_t*>(iov[i].iov_base) + offs[i], stamped);
      }
      sent = sendmmsg(fd_, msgs.data(), n, 0);
      if (sent < 0) {
        err = errno;
      } else if (tx_ts_) {
        first_key = next_key_;
        next_key_ += static_cast<uint32_t>(sent);
      }
    }
    if (sent < 0) return ThrowErrno(env, "sendmmsg", std::to_string(n) + " datagrams", err);
    Napi::Array r = Napi::Array::New(env, 3);
    r.Set(0u, Napi::Number::New(env, sent));
    r.Set(1u, Napi::BigInt::New(env, stamped));
    r.Set(2u, Napi::Number::New(env, static_cast<double>(first_key)));
    return r;
  }

  // schedule(id: number, deadlineMonoNs: bigint, buf, address, port, stampOffset?, tos?)
  // Copies buf; the scheduler thread sends it at the CLOCK_MONOTONIC deadline
  // (process.hrtime.bigint() reads the same clock), stamping CLOCK_REALTIME at
  // stampOffset unless it is undefined (pre-stamped packets). Results come to
  // onDeparture in batches.
  Napi::Value Schedule(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsBigInt()) {
      return ThrowType(env, "schedule(id: number, deadlineMonoNs: bigint, buf, address, port, stampOffset?, tos?)");
    }
    bool lossless;
    int64_t deadline = info[1].As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless || deadline < 0) return ThrowType(env, "deadlineMonoNs out of range");
    auto s = std::make_unique<Scheduled>();
    uint8_t* data;
    size_t len;
    if (!PacketArgs(env, info[2], info[3], info[4], info[5], info[6], &data, &len, &s->dst, &s->dstlen, &s->stamp_off,
                    &s->tos)) {
      return env.Undefined();
    }
    s->id = info[0].As<Napi::Number>().DoubleValue();
    s->deadline = deadline;
    s->data.assign(data, data + len);
    s->owner = this;
    s->spin = spin_ns_;
    if (!StartScheduler(env)) return env.Undefined();
    if (outstanding_++ == 0) UpdateRef(env);
    SharedScheduler::Get().Push(s.release(), sched_prio_);
    return env.Undefined();
  }

  bool StartScheduler(Napi::Env env) {
    if (tsfn_started_) return true;
    tsfn_ = Napi::ThreadSafeFunction::New(env, on_departure_fn_.Value(), "TwampDatapathSchedule", 0, 1, this,
                                          [](Napi::Env, Datapath* self) { self->Unref(); });
    Ref();  // until the threadsafe function is finalised (its queued calls use `this`)
    tsfn_.Unref(env);
    tsfn_started_ = true;
    return true;
  }

 public:
  // Scheduler thread: stamps and sends one departure, then reads the TX
  // timestamp the kernel queued for it (software stamps are taken inside
  // sendmsg on most drivers and on loopback), so the report carries it.
  void SendScheduled(Scheduled* s) {
    Departure d{s->id, s->deadline, 0, 0, -1, 0, -1, 0};
    d.err = StampAndSend(s->data.data(), s->data.size(), s->dst, s->dstlen, s->stamp_off, s->tos, &d.stamped_real,
                         &d.sent_mono, &d.key);
    // Up to this send's own stamp only: stopping there saves the read that
    // would return EAGAIN (one syscall per departure); a stamp queued later
    // raises EPOLLERR and is read by the receive poll.
    thread_local std::vector<TxStamp> got;
    got.clear();
    if (d.err == 0 && d.key >= 0) ReadErrqueue(&got, 64, d.key);
    std::lock_guard<std::mutex> g(res_mu_);
    for (const TxStamp& t : got) {
      if (t.key == d.key) {
        d.tx = t.ts;
        d.tx_src = t.src;
      } else {
        RouteTx(t);  // another send's stamp
      }
    }
    if (d.tx < 0 && d.key >= 0) TakeOrphan(&d);  // the event loop read it first
    if (d.tx >= 0) {
      std::lock_guard<std::mutex> g2(send_mu_);
      sched_keys_.erase(d.key);
    }
    results_.push_back(d);
  }

  // Scheduler thread: one threadsafe call carries every result queued so far.
  void FlushReports() {
    std::lock_guard<std::mutex> g(res_mu_);
    if (closed_ || notify_pending_ || (results_.empty() && extra_tx_.empty() && rx_recs_.empty() && rx_err_ == 0)) return;
    notify_pending_ = true;
    tsfn_.NonBlockingCall(this, [](Napi::Env env, Napi::Function fn, Datapath* self) {
      self->DeliverDepartures(env, fn);
    });
  }

  // Guarded by the SharedScheduler's mutex (spin_budget_us_ is set by the constructor only).
  int64_t spin_budget_us_ = 10000;  // schedulerSpinBudgetUs: 1 % of a core
  bool budget_reg_ = false;         // spin_budget_us_ is in the scheduler's budgets_
  int in_thread_ = 0;
  int queued_ = 0;
  bool report_pending_ = false;
  int64_t report_due_ = 0;
  int64_t report_ns_ = 20000000;  // departureReportMs
  // Guarded by the SharedReceiver's mutex.
  int in_rx_ = 0;
  bool rx_pending_ = false;
  int64_t rx_due_ = 0;
  int64_t rx_report_ns_ = 0;  // receiveReportMs; 0: immediate delivery on the event loop

  // Receive thread: reads what is queued on the socket (the error queue only
  // when epoll reported EPOLLERR); true when something waits for delivery.
  bool ReceiveOnThread(uint32_t events) {
    std::vector<TxStamp> got;
    if ((events & EPOLLERR) != 0) ReadErrqueue(&got, kMaxErrqueuePerWake);
    std::vector<RxRec> recs;
    std::vector<uint8_t> data;
    int err = DrainReceive(Env(), &recs, &data);
    std::lock_guard<std::mutex> g(res_mu_);
    for (const TxStamp& t : got) RouteTx(t);
    if (err != 0) rx_err_ = err;
    if (!recs.empty()) {
      size_t base = rx_data_.size();
      for (RxRec& r : recs) r.off += base;
      rx_data_.insert(rx_data_.end(), data.begin(), data.end());
      rx_recs_.insert(rx_recs_.end(), recs.begin(), recs.end());
    }
    return !rx_recs_.empty() || !extra_tx_.empty() || rx_err_ != 0;
  }
  bool RxBacklog() {
    std::lock_guard<std::mutex> g(res_mu_);
    return rx_recs_.size() >= kMaxPendingRx;
  }

 private:
  // res_mu_ held. A TX stamp of a scheduled departure waits for (or joins)
  // its departure record natively; any other goes to JS's onTx.
  void RouteTx(const TxStamp& t) {
    bool sched;
    {
      std::lock_guard<std::mutex> g(send_mu_);
      sched = sched_keys_.erase(t.key) > 0;
    }
    if (!sched) {
      extra_tx_.push_back(t);
      return;
    }
    for (Departure& d : results_) {
      if (d.key == t.key && d.tx < 0) {
        d.tx = t.ts;
        d.tx_src = t.src;
        return;
      }
    }
    if (orphan_tx_.size() >= kMaxPendingTx) orphan_tx_.clear();
    orphan_tx_[t.key] = t;
  }

  // res_mu_ held: attaches a TX stamp the event loop read before the record existed.
  void TakeOrphan(Departure* d) {
    auto it = orphan_tx_.find(d->key);
    if (it != orphan_tx_.end()) {
      d->tx = it->second.ts;
      d->tx_src = it->second.src;
      orphan_tx_.erase(it);
      return;
    }
  }

  // Reads up to `max` TX timestamps from the error queue (any thread), and
  // stops after the one with key `stop` if given.
  void ReadErrqueue(std::vector<TxStamp>* out, int max, int64_t stop = -1) {
    for (int i = 0; i < max; i++) {
      alignas(cmsghdr) uint8_t ctrl[kCtrl];
      uint8_t data[64];
      iovec iov{data, sizeof data};
      msghdr m{};
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = ctrl;
      m.msg_controllen = sizeof ctrl;
      ssize_t n;
      {
        std::lock_guard<std::mutex> g(send_mu_);
        if (fd_ < 0) return;
        n = recvmsg(fd_, &m, MSG_ERRQUEUE | MSG_DONTWAIT);
      }
      if (n < 0) return;
      TxStamp t{-1, -1, kTsKernel};
      if (ParseTxStamp(m, &t)) {
        out->push_back(t);
        if (t.key == stop) return;
      }
    }
  }

  // A TX timestamp record of the error queue, or false for other entries (e.g. ICMP).
  bool ParseTxStamp(msghdr& m, TxStamp* t) {
    bool is_ts = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING &&
          c->cmsg_len >= CMSG_LEN(sizeof(scm_timestamping))) {
        scm_timestamping ts;
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        if (hw_ && (ts.ts[2].tv_sec != 0 || ts.ts[2].tv_nsec != 0)) {
          t->ts = static_cast<int64_t>(ts.ts[2].tv_sec) * 1000000000LL + ts.ts[2].tv_nsec;
          t->src = kTsHardware;
        } else if (ts.ts[0].tv_sec != 0 || ts.ts[0].tv_nsec != 0) {
          t->ts = static_cast<int64_t>(ts.ts[0].tv_sec) * 1000000000LL + ts.ts[0].tv_nsec;
          t->src = kTsKernel;
        }
      } else if (((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                  (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) &&
                 c->cmsg_len >= CMSG_LEN(sizeof(sock_extended_err))) {
        sock_extended_err ee;
        std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
        if (ee.ee_errno == ENOMSG && ee.ee_origin == SO_EE_ORIGIN_TIMESTAMPING && ee.ee_info == SCM_TSTAMP_SND) {
          is_ts = true;
          t->key = ee.ee_data;
        }
      }
    }
    return is_ts && t->ts >= 0;
  }

  // Main thread: TX stamps the scheduler thread read for other sends go to
  // onTx; then onDeparture(records: Array<[id, deadlineMonoNs, sentMonoNs,
  //   stampedRealtimeNs, txKey, errno, syscallError, txRealtimeNs | null, txSource]>)
  void DeliverDepartures(Napi::Env env, Napi::Function fn) {
    std::vector<Departure> batch;
    std::vector<TxStamp> extra;
    std::vector<RxRec> rx;
    std::vector<uint8_t> rx_data;
    int rx_err;
    {
      std::lock_guard<std::mutex> g(res_mu_);
      batch.swap(results_);
      extra.swap(extra_tx_);
      rx.swap(rx_recs_);
      rx_data.swap(rx_data_);
      rx_err = rx_err_;
      rx_err_ = 0;
      notify_pending_ = false;
      for (Departure& d : batch) {
        if (d.tx >= 0 || d.key < 0) continue;
        TakeOrphan(&d);
        if (d.tx < 0) {
          // Not stamped yet: a later stamp goes to onTx, where the JS side matches it (datapath.ts).
          std::lock_guard<std::mutex> g2(send_mu_);
          sched_keys_.erase(d.key);
        }
      }
    }
    if (env == nullptr) return;
    Napi::HandleScope scope(env);
    if (!extra.empty() && fd_ >= 0) {
      Napi::Array arr = Napi::Array::New(env, extra.size());
      for (size_t i = 0; i < extra.size(); i++) {
        Napi::Array r = Napi::Array::New(env, 3);
        r.Set(0u, Napi::Number::New(env, static_cast<double>(extra[i].key)));
        r.Set(1u, Napi::BigInt::New(env, extra[i].ts));
        r.Set(2u, Napi::Number::New(env, extra[i].src));
        arr.Set(static_cast<uint32_t>(i), r);
      }
      Call(on_tx_, {arr});
    }
    if (!batch.empty()) DeliverBatch(env, fn, batch);
    if (fd_ < 0) return;
    if (rx_err != 0) Call(on_recv_, {ErrnoError(env, "recvmmsg", "receive thread", rx_err).Value(), env.Null()});
    if (!rx.empty() && fd_ >= 0) {
      Napi::Array arr = Napi::Array::New(env, rx.size());
      for (size_t i = 0; i < rx.size(); i++) arr.Set(static_cast<uint32_t>(i), RxRecord(env, rx[i], rx_data.data() + rx[i].off));
      Call(on_recv_, {env.Null(), arr});
    }
  }

  void DeliverBatch(Napi::Env env, Napi::Function fn, const std::vector<Departure>& batch) {
    Napi::Array arr = Napi::Array::New(env, batch.size());
    for (size_t i = 0; i < batch.size(); i++) {
      const Departure& d = batch[i];
      Napi::Array r = Napi::Array::New(env, 9);
      r.Set(0u, Napi::Number::New(env, d.id));
      r.Set(1u, Napi::BigInt::New(env, d.deadline));
      r.Set(2u, Napi::BigInt::New(env, d.sent_mono));
      r.Set(3u, Napi::BigInt::New(env, d.stamped_real));
      r.Set(4u, Napi::Number::New(env, static_cast<double>(d.key)));
      r.Set(5u, Napi::Number::New(env, d.err));
      r.Set(6u, d.err != 0 ? ErrnoError(env, "sendmsg", "scheduled departure", d.err).Value() : env.Null());
      r.Set(7u, d.tx >= 0 ? Napi::BigInt::New(env, d.tx).As<Napi::Value>() : env.Null());
      r.Set(8u, Napi::Number::New(env, d.tx_src));
      arr.Set(static_cast<uint32_t>(i), r);
    }
    outstanding_ -= static_cast<int64_t>(batch.size());
    if (outstanding_ <= 0) {
      outstanding_ = 0;
      UpdateRef(env);
    }
    fn.Call({arr});
    if (env.IsExceptionPending()) napi_fatal_exception(env, env.GetAndClearPendingException().Value());
  }

  static void OnPoll(uv_poll_t* h, int status, int /*events*/) {
    auto* self = static_cast<Datapath*>(h->data);
    if (self == nullptr || self->fd_ < 0) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    if (status < 0) {
      self->Call(self->on_recv_, {ErrnoError(env, "uv_poll", "", -status).Value(), env.Null()});
      return;
    }
    self->DrainErrqueue(env);
    if (self->fd_ >= 0) self->DrainReceive(env);
  }

  void Call(Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
    Napi::Env env = Env();
    fn.MakeCallback(Value(), args, *async_);
    if (env.IsExceptionPending()) napi_fatal_exception(env, env.GetAndClearPendingException().Value());
  }

  // TX timestamps: onTx(records: Array<[txKey, realtimeNs: bigint, source]>)
  void DrainErrqueue(Napi::Env env) {
    Napi::Array arr;
    uint32_t count = 0;
    for (int i = 0; i < kMaxErrqueuePerWake && fd_ >= 0; i++) {
      alignas(cmsghdr) uint8_t ctrl[kCtrl];
      uint8_t data[64];
      iovec iov{data, sizeof data};
      msghdr m{};
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = ctrl;
      m.msg_controllen = sizeof ctrl;
      ssize_t n;
      int err = 0;
      bool sched = false;
      TxStamp t{-1, -1, kTsKernel};
      {
        // Under send_mu_: a scheduled send has registered its key before we can read its stamp.
        std::lock_guard<std::mutex> g(send_mu_);
        n = recvmsg(fd_, &m, MSG_ERRQUEUE | MSG_DONTWAIT);
        if (n < 0) err = errno;
        if (n >= 0 && ParseTxStamp(m, &t)) sched = sched_keys_.count(t.key) > 0;
      }
      if (n < 0) {
        if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
          Call(on_recv_, {ErrnoError(env, "recvmsg", "MSG_ERRQUEUE", err).Value(), env.Null()});
        }
        break;
      }
      if (t.ts < 0) continue;  // other error-queue entries (e.g. ICMP) are not ours to report
      if (sched) {
        // A scheduled departure's stamp: joins its record natively, no JS call.
        std::lock_guard<std::mutex> g(res_mu_);
        RouteTx(t);
        continue;
      }
      int64_t key = t.key, ts = t.ts;
      int src = t.src;
      if (count == 0) arr = Napi::Array::New(env);
      Napi::Array r = Napi::Array::New(env, 3);
      r.Set(0u, Napi::Number::New(env, static_cast<double>(key)));
      r.Set(1u, Napi::BigInt::New(env, ts));
      r.Set(2u, Napi::Number::New(env, src));
      arr.Set(count++, r);
    }
    if (count > 0) Call(on_tx_, {arr});
  }

  // onRecv(null, records: Array<[data: Buffer, address, port, rxRealtimeNs: bigint,
  //   ttl, tos, tsSource, truncated]>) — ttl/tos -1 when the kernel gave none.
  // With `sink` (the receive thread), records are appended there instead and
  // the errno of a failing recvmmsg is returned.
  int DrainReceive(Napi::Env env, std::vector<RxRec>* sink = nullptr, std::vector<uint8_t>* sink_data = nullptr) {
    if (!t_arena) t_arena = std::make_unique<RxArena>();
    RxArena& A = *t_arena;
    for (int b = 0; b < kMaxBatchesPerWake && fd_ >= 0 && (sink == nullptr || sink->size() < kMaxPendingRx); b++) {
      for (int i = 0; i < kBatch; i++) {
        A.iov[i].iov_base = A.data[i];
        A.iov[i].iov_len = max_dgram_;
        std::memset(&A.msgs[i], 0, sizeof A.msgs[i]);
        msghdr& m = A.msgs[i].msg_hdr;
        m.msg_name = &A.addr[i];
        m.msg_namelen = sizeof A.addr[i];
        m.msg_iov = &A.iov[i];
        m.msg_iovlen = 1;
        m.msg_control = A.ctrl[i];
        m.msg_controllen = kCtrl;
      }
      int n = recvmmsg(fd_, A.msgs, kBatch, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        int err = errno;
        if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
          if (sink != nullptr) return err;
          Call(on_recv_, {ErrnoError(env, "recvmmsg", "", err).Value(), env.Null()});
        }
        return 0;
      }
      if (n == 0) return 0;
      int64_t user_now = -1;
      Napi::Array arr;
      if (sink == nullptr) arr = Napi::Array::New(env, n);
      for (int i = 0; i < n; i++) {
        msghdr& m = A.msgs[i].msg_hdr;
        size_t len = A.msgs[i].msg_len;
        if (len > max_dgram_) len = max_dgram_;
        int ttl = -1, tos = -1, src = kTsUserspace;
        int64_t ts = -1;
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
          const size_t dlen = c->cmsg_len >= CMSG_LEN(0) ? c->cmsg_len - CMSG_LEN(0) : 0;
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING && dlen >= sizeof(scm_timestamping)) {
            scm_timestamping t;
            std::memcpy(&t, CMSG_DATA(c), sizeof t);
            if (hw_ && (t.ts[2].tv_sec != 0 || t.ts[2].tv_nsec != 0)) {
              ts = static_cast<int64_t>(t.ts[2].tv_sec) * 1000000000LL + t.ts[2].tv_nsec;
              src = kTsHardware;
            } else if (t.ts[0].tv_sec != 0 || t.ts[0].tv_nsec != 0) {
              ts = static_cast<int64_t>(t.ts[0].tv_sec) * 1000000000LL + t.ts[0].tv_nsec;
              src = kTsKernel;
            }
          } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS && dlen >= sizeof(timespec)) {
            timespec t;
            std::memcpy(&t, CMSG_DATA(c), sizeof t);
            ts = static_cast<int64_t>(t.tv_sec) * 1000000000LL + t.tv_nsec;
            src = kTsKernel;
          } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL && dlen >= sizeof(int)) {
            std::memcpy(&ttl, CMSG_DATA(c), sizeof(int));
          } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS && dlen >= 1) {
            tos = *CMSG_DATA(c);
          } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT && dlen >= sizeof(int)) {
            std::memcpy(&ttl, CMSG_DATA(c), sizeof(int));
          } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS && dlen >= sizeof(int)) {
            std::memcpy(&tos, CMSG_DATA(c), sizeof(int));
          }
        }
        if (ttl < 0 || ttl > 255) ttl = -1;
        if (tos < 0 || tos > 255) tos = -1;
        if (ts < 0) {
          if (user_now < 0) user_now = NowNs(CLOCK_REALTIME);
          ts = user_now;
          src = kTsUserspace;
        }
        RxRec rec{};
        rec.len = len;
        rec.ts = ts;
        rec.ttl = ttl;
        rec.tos = tos;
        rec.src = src;
        rec.trunc = (m.msg_flags & MSG_TRUNC) != 0;
        rec.ctrunc = (m.msg_flags & MSG_CTRUNC) != 0;
        rec.addr = A.addr[i];
        rec.addrlen = m.msg_namelen;
        if (sink != nullptr) {
          rec.off = sink_data->size();
          sink_data->insert(sink_data->end(), A.data[i], A.data[i] + len);
          sink->push_back(rec);
        } else {
          arr.Set(static_cast<uint32_t>(i), RxRecord(env, rec, A.data[i]));
        }
      }
      if (sink == nullptr) Call(on_recv_, {env.Null(), arr});
      if (n < kBatch) return 0;
    }
    return 0;
  }

  // [data, address, port, rxRealtimeNs, ttl, tos, tsSource, truncated, ctruncated]
  Napi::Value RxRecord(Napi::Env env, const RxRec& rec, const uint8_t* data) {
    std::string host;
    int port;
    FormatAddr(rec.addr, rec.addrlen, &host, &port);
    Napi::Array r = Napi::Array::New(env, 9);
    r.Set(0u, Napi::Buffer<uint8_t>::Copy(env, data, rec.len));
    r.Set(1u, Napi::String::New(env, host));
    r.Set(2u, Napi::Number::New(env, port));
    r.Set(3u, Napi::BigInt::New(env, rec.ts));
    r.Set(4u, Napi::Number::New(env, rec.ttl));
    r.Set(5u, Napi::Number::New(env, rec.tos));
    r.Set(6u, Napi::Number::New(env, rec.src));
    r.Set(7u, Napi::Boolean::New(env, rec.trunc));
    r.Set(8u, Napi::Boolean::New(env, rec.ctrunc));
    return r;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown(false);
    return info.Env().Undefined();
  }

  // Idempotent: stops the scheduler (pending departures are dropped), the
  // poll handle, the threadsafe function, then closes the descriptors.
  void Shutdown(bool teardown) {
    bool on_rx;
    {
      std::lock_guard<std::mutex> g(res_mu_);
      closed_ = true;
      on_rx = rx_thread_;
      rx_thread_ = false;
    }
    if (on_rx) SharedReceiver::Get().Remove(this, fd_);
    if (tsfn_started_) {
      SharedScheduler::Get().Purge(this);
      tsfn_started_ = false;
      if (!teardown) tsfn_.Release();
    }
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      poll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
      if (!teardown) Unref();
    }
    {
      std::lock_guard<std::mutex> g(send_mu_);
      if (epfd_ >= 0) close(epfd_);
      if (fd_ >= 0) close(fd_);
      epfd_ = -1;
      fd_ = -1;
    }
  }

  int family_ = 4;
  int fd_ = -1;
  int epfd_ = -1;
  bool hw_ = false;
  bool tx_ts_ = true;
  bool timestamping_ = false;
  bool closed_ = false;
  int sched_prio_ = 0;
  int64_t spin_ns_ = 0;
  size_t max_dgram_ = kSlot;
  uv_poll_t* poll_ = nullptr;
  std::unique_ptr<Napi::AsyncContext> async_;
  Napi::FunctionReference on_recv_, on_tx_, on_departure_fn_;

  std::mutex send_mu_;
  uint32_t next_key_ = 0;  // mirrors the kernel's OPT_ID counter of this socket
  std::unordered_set<int64_t> sched_keys_;  // send_mu_: TX ids of scheduled sends whose stamp is not matched yet

  bool tsfn_started_ = false;
  Napi::ThreadSafeFunction tsfn_;
  std::mutex res_mu_;
  std::vector<Departure> results_;
  std::vector<TxStamp> extra_tx_;
  std::vector<RxRec> rx_recs_;      // res_mu_: received, not yet delivered (receive thread)
  std::vector<uint8_t> rx_data_;    // res_mu_: their payloads
  int rx_err_ = 0;                  // res_mu_: a receive error to deliver
  bool rx_thread_ = false;          // watched by the receive thread (receiveReportMs > 0)
  bool loop_ref_ = true;            // main thread: ref() / unref()
  std::unordered_map<int64_t, TxStamp> orphan_tx_;  // res_mu_: stamps read before their departure record
  bool notify_pending_ = false;
  int64_t outstanding_ = 0;  // main thread only
};

void SharedScheduler::Push(Scheduled* s, int prio) {
  bool notify;
  {
    std::lock_guard<std::mutex> g(mu_);
    s->seq = seq_++;
    s->owner->queued_++;
    if (!s->owner->budget_reg_) {
      s->owner->budget_reg_ = true;
      budgets_.insert(s->owner->spin_budget_us_);
    }
    // Wake the thread only when its wait must change: a new earliest
    // departure or a priority to apply (a window of later departures costs
    // no wake-up).
    notify = heap_.empty() || Later()(heap_.top(), s) || prio > want_prio_ || !started_;
    heap_.push(s);
    if (prio > want_prio_) want_prio_ = prio;
    if (!started_) {
      started_ = true;
      std::thread([this] { Loop(); }).detach();
    }
  }
  if (notify) cv_.notify_one();
}

void SharedScheduler::Kick() {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!started_) {
      started_ = true;
      std::thread([this] { Loop(); }).detach();
    }
    kicked_ = true;
  }
  cv_.notify_one();
}

void SharedScheduler::Purge(Datapath* owner) {
  std::unique_lock<std::mutex> lk(mu_);
  std::vector<Scheduled*> keep;
  keep.reserve(heap_.size());
  while (!heap_.empty()) {
    Scheduled* s = heap_.top();
    heap_.pop();
    if (s->owner == owner) {
      delete s;
    } else {
      keep.push_back(s);
    }
  }
  for (Scheduled* s : keep) heap_.push(s);
  owner->queued_ = 0;
  owner->report_pending_ = false;
  if (owner->budget_reg_) {
    owner->budget_reg_ = false;
    budgets_.erase(budgets_.find(owner->spin_budget_us_));
  }
  for (size_t i = 0; i < reporting_.size(); i++) {
    if (reporting_[i] == owner) {
      reporting_[i] = reporting_.back();
      reporting_.pop_back();
      break;
    }
  }
  idle_cv_.wait(lk, [owner] { return owner->in_thread_ == 0; });
  cv_.notify_one();
}

int64_t SharedScheduler::SpinAllowance(int64_t now) {
  const int64_t rate = budgets_.empty() ? 0 : *budgets_.rbegin();  // µs per s
  const int64_t cap = rate * 100;                                    // 100 ms of it, ns
  if (spin_refill_at_ == 0) {
    spin_tokens_ = cap;
    spin_refill_at_ = now;
  }
  const int64_t dt = std::min<int64_t>(now - spin_refill_at_, 1000000000LL);
  if (dt > 0) {
    const int64_t num = dt * rate + spin_rem_;
    spin_tokens_ = std::min(cap, spin_tokens_ + num / 1000000);
    spin_rem_ = spin_tokens_ == cap ? 0 : num % 1000000;
    spin_refill_at_ = now;
  }
  return std::max<int64_t>(0, spin_tokens_);
}

void SharedScheduler::Loop() {
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  pthread_setname_np(pthread_self(), "twamp-sched");  // visible in top -H, /proc/<pid>/task, perf
  std::unique_lock<std::mutex> lk(mu_);
  std::vector<Scheduled*> due;
  std::vector<Datapath*> flush;
  bool polled = false;
  // Receiving stops this long before the next departure's wake-up.
  constexpr int64_t kPollMarginNs = 30000;
  for (;;) {
    if (want_prio_ > applied_prio_) {
      // Opt-in SCHED_FIFO (schedulerPriority): on a busy host the wake-up
      // otherwise waits for the CFS scheduler. Needs CAP_SYS_NICE (or an
      // RLIMIT_RTPRIO); the outcome is reported through `timestamping`.
      applied_prio_ = want_prio_;
      sched_param sp{};
      sp.sched_priority = applied_prio_;
      int rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
      sched_err_.store(rc == 0 ? -1 : rc);
    }
    int64_t now = NowNs(CLOCK_MONOTONIC);
    int64_t wake = INT64_MAX;
    // Adaptive early wake: the host's wake-up latency as measured (p95
    // estimate) plus a small margin, never more than the socket's
    // schedulerSpinUs nor than the spin budget holds; the rest of the way is
    // spun. So the spin costs only the latency's spread, not a fixed amount
    // per departure, and all departures together at most the budget.
    const int64_t early =
        heap_.empty() ? 0 : std::min({heap_.top()->spin, late_p95_ + kEarlyMarginNs, SpinAllowance(now)});
    if (!heap_.empty()) wake = heap_.top()->deadline - early;
    const int64_t dep_wake = wake;
    for (Datapath* o : reporting_) wake = std::min(wake, o->report_due_);
    if (!polled) {
      // Before waiting: what arrived on the coalesced-receive sockets since
      // the last look (no wake-up of our own for it), if there is time
      // before the next departure.
      polled = true;
      const uint64_t departures = departures_;
      lk.unlock();
      SharedReceiver::Get().Poll(wake == INT64_MAX ? INT64_MAX : wake - kPollMarginNs, departures);
      lk.lock();
      continue;
    }
    wake = std::min(wake, SharedReceiver::Get().NextWake());
    if (wake == INT64_MAX) {
      if (!kicked_) cv_.wait(lk);
      kicked_ = false;
      polled = false;
      continue;
    }
    if (wake > now) {
      polled = false;
      kicked_ = false;
      // An absolute CLOCK_MONOTONIC wait (futex hrtimer, timer slack 1 ns: as
      // precise as clock_nanosleep TIMER_ABSTIME) that an earlier schedule()
      // cuts short; steady_clock is CLOCK_MONOTONIC.
      bool timed_out = cv_.wait_until(lk, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(wake))) ==
                       std::cv_status::timeout;
      if (timed_out && wake == dep_wake) {
        // Stochastic p95 of how late the timer wakes us: each late wake-up
        // steps the estimate up 19× more than an early one steps it down, so
        // it settles where 5 % of wake-ups are later; fixed steps shrug off
        // single stalls (which spinning could not hide anyway).
        int64_t late = NowNs(CLOCK_MONOTONIC) - wake;
        late_p95_ += late > late_p95_ ? kLateStepNs * 19 / 20 : -kLateStepNs / 20;
        late_p95_ = std::max<int64_t>(0, std::min<int64_t>(late_p95_, kLateMaxNs));
      }
      continue;
    }
    if (!heap_.empty() && heap_.top()->deadline - early <= now) {
      due.clear();
      Scheduled* first = heap_.top();
      heap_.pop();
      first->owner->in_thread_++;
      due.push_back(first);
      if (first->deadline > now) {
        // Optional final spin (schedulerSpinUs): trades CPU for the host's
        // timer wake-up latency.
        lk.unlock();
        int64_t t;
        while ((t = NowNs(CLOCK_MONOTONIC)) < first->deadline) {
        }
        lk.lock();
        spin_tokens_ -= t - now;
        spun_ns_ += t - now;
        spins_++;
        now = NowNs(CLOCK_MONOTONIC);
      }
      while (!heap_.empty() && heap_.top()->deadline <= now) {
        heap_.top()->owner->in_thread_++;
        due.push_back(heap_.top());
        heap_.pop();
      }
      departures_ += due.size();
      lk.unlock();
      for (Scheduled* s : due) s->owner->SendScheduled(s);
      lk.lock();
      now = NowNs(CLOCK_MONOTONIC);
      for (Scheduled* s : due) {
        Datapath* o = s->owner;
        if (o->queued_ > 0) o->queued_--;
        if (!o->report_pending_) {
          // On a grid shared by every socket (multiples of the interval), so
          // the reports of many sockets reach the event loop in one wake-up.
          o->report_pending_ = true;
          o->report_due_ = o->report_ns_ > 0 ? (now / o->report_ns_ + 1) * o->report_ns_ : now;
          reporting_.push_back(o);
        }
        if (o->queued_ == 0) o->report_due_ = now;  // nothing more queued: report now
      }
      for (Scheduled* s : due) {
        s->owner->in_thread_--;
        delete s;
      }
      idle_cv_.notify_all();
      polled = false;  // the replies to earlier packets may be in (Poll decides whether to look)
      continue;
    }
    flush.clear();
    for (size_t i = 0; i < reporting_.size();) {
      Datapath* o = reporting_[i];
      if (o->report_due_ <= now) {
        o->report_pending_ = false;
        o->in_thread_++;
        flush.push_back(o);
        reporting_[i] = reporting_.back();
        reporting_.pop_back();
      } else {
        i++;
      }
    }
    lk.unlock();
    for (Datapath* o : flush) o->FlushReports();
    lk.lock();
    for (Datapath* o : flush) o->in_thread_--;
    if (!flush.empty()) idle_cv_.notify_all();
    polled = false;
  }
}

int SharedReceiver::Add(Datapath* d, int fd) {
  std::lock_guard<std::mutex> g(mu_);
  if (epfd_ < 0) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) return errno;
  }
  live_.insert(d);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLERR;
  ev.data.ptr = d;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    live_.erase(d);
    return err;
  }
  min_ns_ = std::min(min_ns_, d->rx_report_ns_);
  return 0;
}

void SharedReceiver::Remove(Datapath* d, int fd) {
  std::unique_lock<std::mutex> lk(mu_);
  live_.erase(d);
  min_ns_ = INT64_MAX;
  for (Datapath* x : live_) min_ns_ = std::min(min_ns_, x->rx_report_ns_);
  if (fd >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  for (size_t i = 0; i < reporting_.size(); i++) {
    if (reporting_[i] == d) {
      reporting_[i] = reporting_.back();
      reporting_.pop_back();
      break;
    }
  }
  d->rx_pending_ = false;
  idle_cv_.wait(lk, [d] { return d->in_rx_ == 0; });
}

void SharedReceiver::Due(Datapath* d, int64_t due) {
  if (!d->rx_pending_) {
    d->rx_pending_ = true;
    d->rx_due_ = due;
    reporting_.push_back(d);
  } else if (due < d->rx_due_) {
    d->rx_due_ = due;
  }
}

int64_t SharedReceiver::NextWake() {
  std::lock_guard<std::mutex> g(mu_);
  int64_t wake = INT64_MAX;
  const int64_t grid = min_ns_;  // kept by Add / Remove: walking live_ here, at every loop turn, cost cache misses
  for (Datapath* d : reporting_) wake = std::min(wake, d->rx_due_);
  if (grid != INT64_MAX && grid > 0) {
    // Sockets are watched: look at them at least once per grid step even when
    // nothing departs (e.g. replies still coming after the last departure).
    int64_t now = NowNs(CLOCK_MONOTONIC);
    wake = std::min(wake, (now / grid + 1) * grid);
  }
  return wake;
}

bool SharedReceiver::Poll(int64_t until, uint64_t departures) {
  // Looking costs an epoll_wait, and per ready socket a recvmmsg (and an
  // error-queue read on EPOLLERR): at most every kMinGapNs (or the
  // receiveReportMs grid, if finer), sooner once kMaxDepartures packets have
  // left since (their replies must not overrun a receive buffer). Delivery
  // is on the grid anyway, and T4 is the kernel's receive time, so reading
  // later changes no figure; 40 g711 senders look ~100 times a second
  // instead of after each of their 2,000 departures.
  constexpr int64_t kMinGapNs = 10000000;
  constexpr uint64_t kMaxDepartures = 64;
  constexpr int kEvents = 64;
  epoll_event evs[kEvents];
  std::vector<std::pair<Datapath*, uint32_t>> ready;
  std::vector<Datapath*> flush;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (epfd_ < 0 || live_.empty()) return false;
    int64_t now = NowNs(CLOCK_MONOTONIC);
    // No time before the next departure: read later, unless that has been
    // going on for a grid step (a dense schedule leaves no gap).
    const bool due = now - last_poll_ >= std::min(kMinGapNs, min_ns_) ||
                     departures - last_poll_departures_ >= kMaxDepartures;
    bool read = (due && now <= until) || now - last_poll_ >= min_ns_;
    if (read) {
      last_poll_ = now;
      last_poll_departures_ = departures;
    }
    int n = read ? epoll_wait(epfd_, evs, kEvents, 0) : 0;
    for (int i = 0; i < n; i++) {
      auto* d = static_cast<Datapath*>(evs[i].data.ptr);
      if (live_.count(d) == 0) continue;
      d->in_rx_++;
      ready.emplace_back(d, static_cast<uint32_t>(evs[i].events));
    }
  }
  std::vector<std::pair<Datapath*, bool>> got;
  got.reserve(ready.size());
  for (auto& [d, events] : ready) got.emplace_back(d, d->ReceiveOnThread(events));
  std::lock_guard<std::mutex> g(mu_);
  int64_t now = NowNs(CLOCK_MONOTONIC);
  for (auto& [d, pending] : got) {
    d->in_rx_--;
    if (!pending || live_.count(d) == 0) continue;
    // On a grid shared by every socket (and by the departure reports), so
    // many sockets' batches reach the event loop in one wake-up; a full
    // backlog goes at once.
    // Read within kMinGapNs after a grid point (the poll at a grid wake-up
    // when nothing departs, or one deferred past it): that point, so now.
    // Delivery then follows arrival by at most one grid step + kMinGapNs.
    Due(d, d->RxBacklog() ? now : ((now - kMinGapNs) / d->rx_report_ns_ + 1) * d->rx_report_ns_);
  }
  for (size_t i = 0; i < reporting_.size();) {
    Datapath* d = reporting_[i];
    if (d->rx_due_ <= now) {
      d->rx_pending_ = false;
      flush.push_back(d);
      reporting_[i] = reporting_.back();
      reporting_.pop_back();
    } else {
      i++;
    }
  }
  // FlushReports under mu_: Remove() cannot finish (nor the socket go) meanwhile.
  for (Datapath* d : flush) d->FlushReports();
  idle_cv_.notify_all();
  return !ready.empty();
}

Napi::Value RealtimeNs(const Napi::CallbackInfo& info) {
  return Napi::BigInt::New(info.Env(), NowNs(CLOCK_REALTIME));
}

Napi::Value MonotonicNs(const Napi::CallbackInfo& info) {
  return Napi::BigInt::New(info.Env(), NowNs(CLOCK_MONOTONIC));
}

// schedulerStats() -> { departures, spins, spunNs, wakeLatencyP95Ns, spinBudgetUs }: the
// process-wide scheduler thread's counters since the process started, its
// wake-up latency estimate and the spin budget in effect (µs per second; 0
// while no socket has scheduled).
Napi::Value SchedulerStatsFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SharedScheduler::Stats st = SharedScheduler::Get().GetStats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("departures", Napi::Number::New(env, static_cast<double>(st.departures)));
  o.Set("spins", Napi::Number::New(env, static_cast<double>(st.spins)));
  o.Set("spunNs", Napi::Number::New(env, static_cast<double>(st.spun_ns)));
  o.Set("wakeLatencyP95Ns", Napi::Number::New(env, static_cast<double>(st.late_p95_ns)));
  o.Set("spinBudgetUs", Napi::Number::New(env, static_cast<double>(st.budget_us)));
  return o;
}

#endif  // __linux__

}  // namespace

void InitDatapath(Napi::Env env, Napi::Object exports) {
#ifdef __linux__
  exports.Set("Datapath", Datapath::Class(env));
  exports.Set("realtimeNs", Napi::Function::New(env, RealtimeNs, "realtimeNs"));
  exports.Set("monotonicNs", Napi::Function::New(env, MonotonicNs, "monotonicNs"));
  exports.Set("schedulerStats", Napi::Function::New(env, SchedulerStatsFn, "schedulerStats"));
#else
  (void)env;
  (void)exports;
#endif
}

}  // namespace twamp
