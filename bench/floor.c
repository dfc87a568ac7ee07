/*
 * The host's floor for the fidelity section's agent-CPU row (bench/fidelity.ts):
 * what N paced UDP senders cost on this machine when a program does nothing
 * but the work no sender can skip — one timed wake-up per departure (an
 * absolute CLOCK_MONOTONIC clock_nanosleep, timer slack 1 ns, the way the
 * native scheduler thread waits), a CLOCK_REALTIME read and a send per
 * packet, and reading the replies. No TWAMP, no statistics, no metrics.
 *
 * With a grid (argument 5, µs > 0) the senders' phases are rounded down to
 * multiples of it, so the packets of several senders leave on one wake-up:
 * what coalescing departures would save on this host.
 *
 * The replies come from an echo in a forked child (its CPU is not counted,
 * as the agent's reflector runs in a process of its own). On loopback the
 * peer's receive path runs inside our send, in both this floor and the agent.
 *
 *   floor SENDERS PPS WARMUP_S WINDOW_S [GRID_US]
 * prints one JSON line: {"sent","received","wakes","userMs","sysMs","wallMs"}
 * counted over the window only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SENDERS 1024
#define PACKET 172 /* g711: 200 octets at IP level */

static long long mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static double cpu_ms(const struct timeval *tv) { return tv->tv_sec * 1e3 + tv->tv_usec / 1e3; }

static void die(const char *what) {
  fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void echo(int fd) {
  char buf[2048];
  struct sockaddr_storage from;
  for (;;) {
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
    if (n > 0) sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
  }
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: floor SENDERS PPS WARMUP_S WINDOW_S [GRID_US]\n");
    return 2;
  }
  int n = atoi(argv[1]), pps = atoi(argv[2]), warmup = atoi(argv[3]), window = atoi(argv[4]);
  long long grid = argc > 5 ? atoll(argv[5]) * 1000LL : 0;
  if (n < 1 || n > MAX_SENDERS || pps < 1 || pps > 100000 || warmup < 0 || window < 1 || grid < 0) {
    fprintf(stderr, "floor: bad arguments\n");
    return 2;
  }

  int efd = socket(AF_INET, SOCK_DGRAM, 0);
  if (efd < 0) die("socket");
  struct sockaddr_in peer = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &peer.sin_addr);
  if (bind(efd, (struct sockaddr *)&peer, sizeof peer) != 0) die("bind echo");
  socklen_t plen = sizeof peer;
  if (getsockname(efd, (struct sockaddr *)&peer, &plen) != 0) die("getsockname");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    echo(efd);
  }
  close(efd);

  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  static int fd[MAX_SENDERS];
  static long long next[MAX_SENDERS];
  const long long period = 1000000000LL / pps;
  const long long t0 = mono_ns() + 100000000LL;
  for (int i = 0; i < n; i++) {
    fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd[i] < 0) die("socket");
    if (connect(fd[i], (struct sockaddr *)&peer, sizeof peer) != 0) die("connect");
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = (unsigned)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd[i], &e) != 0) die("epoll_ctl");
    /* Phases spread evenly over one period, as independent sessions are. */
    long long phase = period * i / n;
    if (grid > 0) phase -= phase % grid;
    next[i] = t0 + phase;
  }

  char buf[2048];
  memset(buf, 0, sizeof buf);
  const long long measure_from = t0 + warmup * 1000000000LL;
  const long long end = measure_from + window * 1000000000LL;
  long sent = 0, received = 0, wakes = 0;
  int measuring = 0;
  struct rusage r0;
  long long w0 = 0;
  for (;;) {
    long long due = next[0];
    for (int i = 1; i < n; i++)
      if (next[i] < due) due = next[i];
    if (!measuring && due >= measure_from) {
      measuring = 1;
      sent = received = wakes = 0;
      getrusage(RUSAGE_SELF, &r0);
      w0 = mono_ns();
    }
    if (due >= end) break;
    struct timespec ts = {.tv_sec = due / 1000000000LL, .tv_nsec = due % 1000000000LL};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
    wakes++;
    long long now = mono_ns();
    for (int i = 0; i < n; i++) {
      if (next[i] > now) continue;
      struct timespec rt;
      clock_gettime(CLOCK_REALTIME, &rt); /* the stamp a sender writes */
      memcpy(buf + 4, &rt, sizeof rt);
      if (send(fd[i], buf, PACKET, 0) > 0) sent++;
      next[i] += period;
    }
    struct epoll_event ev[64];
    int k = epoll_wait(ep, ev, 64, 0);
    for (int j = 0; j < k; j++)
      while (recv(fd[ev[j].data.u32], buf, sizeof buf, 0) > 0) received++;
  }
  struct rusage r1;
  getrusage(RUSAGE_SELF, &r1);
  long long wall = mono_ns() - w0;
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  printf("{\"sent\":%ld,\"received\":%ld,\"wakes\":%ld,\"userMs\":%.3f,\"sysMs\":%.3f,\"wallMs\":%.3f}\n", sent, received, wakes,
         cpu_ms(&r1.ru_utime) - cpu_ms(&r0.ru_utime), cpu_ms(&r1.ru_stime) - cpu_ms(&r0.ru_stime), wall / 1e6);
  return 0;
}
