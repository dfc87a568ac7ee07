/**
 * The fidelity bench's host figures (bench/hostProfile.ts) read tool output:
 * cyclictest's histogram into nearest-rank quantiles, and perf call chains
 * into the loopback peer's share vs our own. Fixed inputs, no tools run.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { attributePerfScript, parseCyclictest } from '../../bench/hostProfile.js';

it('cyclictest histogram: nearest-rank p50 / p99, max from its summary, overflows counted at the bound', () => {
  const lines = ['# /dev/cpu_dma_latency set to 0us', '# Histogram'];
  for (let us = 0; us < 200; us++) lines.push(`${String(us).padStart(6, '0')} ${String(us >= 100 && us < 198 ? 1 : 0).padStart(6, '0')}`);
  lines.push('# Total: 000000100', '# Min Latencies: 00100', '# Max Latencies: 12345', '# Histogram Overflows: 00002');
  const r = parseCyclictest(lines.join('\n'), 200);
  // 98 samples at 100..197 µs plus 2 overflows (> 200 µs, counted at 200): rank 50 is 149, rank 99 is 200.
  assert.deepEqual(r, { samples: 100, p50Us: 149, p99Us: 200, maxUs: 12345 });
  assert.equal(parseCyclictest('# Histogram\n# Total: 0\n', 200), undefined);
});

it('perf call chains: the softirq receive under our send is the peer\'s, the rest is ours by thread and syscall', () => {
  const k = (sym: string): string => `\tffffffff81000000 ${sym} ([kernel.kallsyms])`;
  const u = (sym: string, dso = '/usr/lib/x86_64-linux-gnu/libc.so.6'): string => `\t          10ac4d ${sym} (${dso})`;
  const sample = (comm: string, tid: number, frames: string[]): string => [`${comm}  ${tid}     1000000 `, ...frames].join('\n');
  const text = [
    // Loopback: the peer's receive path runs in the softirq of our sendmsg.
    sample('twamp-sched', 11, [k('udp_queue_rcv_skb'), k('udp_rcv'), k('ip_rcv'), k('__netif_receive_skb_one_core'), k('process_backlog'),
      k('net_rx_action'), k('handle_softirqs'), k('__dev_queue_xmit'), k('ip_output'), k('udp_sendmsg'), k('__sys_sendmsg'), u('__libc_sendmsg')]),
    // Our own send path, one sample with the TX timestamp in it.
    sample('twamp-sched', 11, [k('__skb_tstamp_tx'), k('loopback_xmit'), k('__dev_queue_xmit'), k('udp_sendmsg'), k('__sys_sendmsg'), u('__libc_sendmsg')]),
    sample('twamp-sched', 11, [k('_copy_from_iter'), k('udp_sendmsg'), k('__sys_sendmsg'), u('__libc_sendmsg')]),
    // Switched out on return from the send (the woken peer ran here).
    sample('twamp-sched', 11, [k('pvm_irq_enable'), k('finish_task_switch.isra.0'), k('__schedule'), k('schedule'), k('exit_to_user_mode_loop'),
      k('do_syscall_64'), u('__libc_sendmsg')]),
    sample('twamp-sched', 11, [k('udp_recvmsg'), k('do_syscall_64'), u('__libc_recvmsg')]),
    sample('twamp-sched', 11, [k('futex_wait'), k('do_futex'), u('__futex_abstimed_wait_common')]),
    sample('twamp-sched', 11, [u('clock_gettime@@GLIBC_2.17')]),
    sample('node', 10, [u('Builtins_LoadIC', '/usr/bin/node')]),
    sample('node', 12, [u('v8::internal::Scavenger::ScavengeObject', '/usr/bin/node')]),
    sample('node', 10, [k('do_epoll_wait'), u('epoll_pwait')]),
  ].join('\n\n');
  const r = attributePerfScript(text, new Set([10]));
  assert.equal(r.samples, 10);
  assert.equal(r.periodNs, 10_000_000);
  assert.equal(r.tstamp, 1);
  assert.deepEqual(Object.fromEntries(Object.entries(r.byCat).map(([c, ns]) => [c, ns / 1_000_000])), {
    peerRx: 1, sendPreempt: 1, send: 2, recv: 2, sleep: 1, kernelOther: 0, userSched: 1, userMain: 1, userOther: 1,
  });
});
