/**
 * Claims: which process is training a run, so several processes can share one grid. A claim
 * is a file `claim-<pid>` in the run's directory holding the owner's identity (pid, start
 * time, boot id). Claims of dead owners are ignored and deleted, so a run whose process was
 * killed is taken over by the next process that reaches it.
 *
 * Taking a claim: if a live claim is there, the run is busy; else write our own claim file,
 * then look again, and keep ours only if no other live claim exists. Of two processes
 * racing, the one that looks last sees the other's file (written before the other looked),
 * so at most one keeps its claim; both may back off, and then a later pass tries again.
 *
 * "Live": on Linux the pid's /proc entry exists, is not a zombie and started when the claim
 * says (a pid reused after the owner died is not the owner), and the boot is the same (a
 * claim left by a machine restart is dead). Elsewhere `kill(pid, 0)` decides.
 */
import { existsSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Owner {
  pid: number;
  /** Clock ticks after boot when the process started (Linux), else null. */
  startTicks: number | null;
  bootId: string | null;
}

const CLAIM_PREFIX = "claim-";

function readOr<T>(path: string, fallback: T, parse: (text: string) => T): T {
  try {
    return parse(readFileSync(path, "utf8"));
  } catch {
    return fallback;
  }
}

/** The state letter and start time of a process from /proc/<pid>/stat, or null when it has none. */
function procStat(pid: number): { state: string; startTicks: number } | null {
  return readOr(`/proc/${pid}/stat`, null, (text) => {
    // "pid (comm) S ppid …": comm may hold spaces and parentheses, so split after the last ")".
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0], startTicks: Number(fields[19]) }; // fields 3 and 22 of proc(5)
  });
}

const hasProc = procStat(process.pid) !== null;
const bootId = readOr("/proc/sys/kernel/random/boot_id", null, (text) => text.trim());

export function me(): Owner {
  return { pid: process.pid, startTicks: procStat(process.pid)?.startTicks ?? null, bootId };
}

export function isAlive(owner: Owner): boolean {
  if (owner.bootId !== null && bootId !== null && owner.bootId !== bootId) return false;
  if (hasProc) {
    const stat = procStat(owner.pid);
    return stat !== null && stat.state !== "Z" && stat.state !== "X" && (owner.startTicks === null || stat.startTicks === owner.startTicks);
  }
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"; // it exists, but is not ours to signal
  }
}

/** Every claim in `dir` with its file name (claims are renamed into place whole; one that cannot be read is dead). */
export function claimsIn(dir: string): { file: string; owner: Owner | null }[] {
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith(CLAIM_PREFIX)) : [];
  return files.map((file) => ({ file, owner: readOr(join(dir, file), null, (text) => JSON.parse(text) as Owner) }));
}

/** The live owner of the run in `dir` other than this process, if any. */
export function liveOwner(dir: string): Owner | null {
  const self = me();
  return claimsIn(dir).map((c) => c.owner).find((o) => o !== null && o.pid !== self.pid && isAlive(o)) ?? null;
}

/**
 * Claim the run in `dir` (which must exist) for this process. Returns a release function, or
 * null when another live process holds it or claimed it at the same moment. Claims of dead
 * owners are deleted on the way.
 */
export function tryClaim(dir: string): (() => void) | null {
  if (liveOwner(dir)) return null;
  const self = me();
  const mine = join(dir, `${CLAIM_PREFIX}${self.pid}`);
  const partial = join(dir, `.${CLAIM_PREFIX}${self.pid}.tmp`); // the pattern the clean-up below knows
  writeFileSync(partial, JSON.stringify(self));
  renameSync(partial, mine);
  if (liveOwner(dir)) {
    unlinkQuietly(mine);
    return null;
  }
  clearDeadClaims(dir);
  return () => unlinkQuietly(mine);
}

/**
 * Delete the claims in `dir` whose owners are dead, and the partial claims of writers killed
 * before renaming them into place. tryClaim does it on the way in; the grid does it again for
 * finished runs, since a process killed between writing a run's result and releasing its
 * claim leaves a dead claim in a run that nobody will claim again.
 */
export function clearDeadClaims(dir: string): void {
  for (const { file, owner } of claimsIn(dir)) {
    if (!(owner && isAlive(owner))) unlinkQuietly(join(dir, file));
  }
  for (const file of existsSync(dir) ? readdirSync(dir) : []) {
    const writer = /^\.claim-(\d+)\.tmp$/.exec(file);
    if (writer && !isAlive({ pid: Number(writer[1]), startTicks: null, bootId: null })) unlinkQuietly(join(dir, file));
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone: another process cleared a dead claim at the same moment
  }
}
