import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const hasSocat = spawnSync('socat', ['-V'], { encoding: 'utf8' }).status === 0;

export interface PtyPair {
  readonly a: string;
  readonly b: string;
  stop(): Promise<void>;
}

/** A linked pseudo-terminal pair from `socat -d -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B`. */
export async function ptyPair(): Promise<PtyPair> {
  const dir = mkdtempSync(join(tmpdir(), 'cimbench-pty-'));
  const a = join(dir, 'A');
  const b = join(dir, 'B');
  const proc: ChildProcess = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + 5000;
  while (!(existsSync(a) && existsSync(b) && /starting data transfer loop/.test(log))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill();
      throw new Error(`socat did not create the pty pair: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    a,
    b,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
