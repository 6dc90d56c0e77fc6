/**
 * Per-process accounting from Linux `/proc`: CPU seconds and memory of a process together
 * with all of its descendants (Dante forks a tree of workers; dualgate and microsocks are one
 * process each).
 *
 * @module
 */

const CLOCK_TICKS_PER_SECOND = 100;

interface StatLine {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
}

function readStat(pid: number): StatLine | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name may contain spaces and parentheses: fields start after the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const field = (n: number) => Number(fields[n - 3] ?? 0);
  return { pid, ppid: field(4), ticks: field(14) + field(15) + field(16) + field(17) };
}

/** `pid` and every live descendant of it. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = readStat(Number(entry.name));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(stat.pid);
    children.set(stat.ppid, list);
  }
  const tree: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const next = stack.pop()!;
    tree.push(next);
    stack.push(...(children.get(next) ?? []));
  }
  return tree;
}

/** CPU seconds (user + system, reaped children included) used so far by `pid`'s tree. */
export function treeCpuSeconds(pid: number): number {
  let ticks = 0;
  for (const member of processTree(pid)) ticks += readStat(member)?.ticks ?? 0;
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** CPU seconds (user + system) used so far by `pid` alone, without descendants. */
export function processCpuSeconds(pid: number): number {
  const stat = readStat(pid);
  if (!stat) return 0;
  return stat.ticks / CLOCK_TICKS_PER_SECOND;
}

/** Memory of a process tree, in bytes. */
export interface TreeMemory {
  /** Sum of proportional set sizes: shared pages split among the processes sharing them. */
  pss: number;
  /** Sum of resident set sizes: shared pages counted once per process. */
  rss: number;
  /** Number of processes in the tree. */
  processes: number;
}

/** Memory of `pid`'s tree from `/proc/PID/smaps_rollup`. */
export function treeMemory(pid: number): TreeMemory {
  const result: TreeMemory = { pss: 0, rss: 0, processes: 0 };
  for (const member of processTree(pid)) {
    let text: string;
    try {
      text = Deno.readTextFileSync(`/proc/${member}/smaps_rollup`);
    } catch {
      continue;
    }
    result.processes++;
    result.pss += Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0) * 1024;
    result.rss += Number(/^Rss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0) * 1024;
  }
  return result;
}

/**
 * CPU seconds (user + system) of each thread of `pid`, summed by thread name (`deno` for the
 * main isolate, `worker-N` for `workers` isolates, `V8 DefaultWorke` for V8's garbage collector
 * helpers, `tokio-runtime-w` for the runtime's blocking pool).
 */
export function threadCpuSeconds(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  let tasks: Iterable<Deno.DirEntry>;
  try {
    tasks = Deno.readDirSync(`/proc/${pid}/task`);
  } catch {
    return byName;
  }
  for (const task of tasks) {
    try {
      const name = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/comm`).trim();
      const text = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/stat`);
      const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
      const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
      byName.set(name, (byName.get(name) ?? 0) + ticks / CLOCK_TICKS_PER_SECOND);
    } catch { /* the thread ended */ }
  }
  return byName;
}
