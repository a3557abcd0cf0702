import type { Command } from 'commander';
import { CimbenchError, InputError } from '../../common/errors.js';
import type { ExecuteResult, PlanMode } from '../../bench/index.js';
import { loadCampaignArg, renderSummary, runFromCli } from './campaign-common.js';

interface RunOptions {
  db: string;
  resume?: string;
  after?: string;
  json: boolean;
}

export function parseRunId(text: string, what: string): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1) throw new InputError('INVALID_INPUT', `not a run id: ${text}`, { where: what });
  return v;
}

/** Prints the outcome and turns a failed or aborted run into the CLI's error (non-zero exit). */
export function reportOutcome(result: ExecuteResult, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify(result.summary, null, 2)}\n`);
  else process.stdout.write(renderSummary(result.summary));
  const { outcome, runId } = result;
  if (outcome.exitStatus === 'fail') {
    const err = outcome.error instanceof CimbenchError ? outcome.error : new CimbenchError('INTERNAL', outcome.reason ?? 'run failed', { cause: outcome.error });
    err.context.unshift(`run ${runId} failed (recorded)`);
    throw err;
  }
  if (outcome.exitStatus === 'abort') throw new CimbenchError('ABORTED', `run ${runId} aborted: ${outcome.reason ?? ''}; what was collected is recorded`);
}

/** run / program / measure / drift: the same engine on different plans. */
export function registerCampaignCommand(program: Command, name: string, mode: PlanMode, description: string): void {
  const cmd = program
    .command(`${name} [campaign]`)
    .description(description)
    .option('--db <file>', 'SQLite store of the runs', './cimbench.db')
    .option('--resume <run>', 'continue an interrupted run (its recorded settings; programming is never replayed)')
    .option('--json', 'print the run summary as JSON', false);
  if (mode === 'measure' || mode === 'drift') cmd.option('--after <run>', 'the run that programmed this chip: time points count from its end of programming');
  cmd.addHelpText(
    'after',
    '\nCtrl-C (or SIGTERM) aborts: the operation in flight is cancelled and everything collected stays recorded.\nSIGUSR1 pauses at the next checkpoint, SIGUSR2 resumes.',
  );
  cmd.action(async (campaignPath: string | undefined, opts: RunOptions) => {
    if (opts.resume === undefined && campaignPath === undefined) throw new InputError('INVALID_INPUT', 'pass a campaign file (or --resume <run>)', { where: name });
    const resume = opts.resume !== undefined ? parseRunId(opts.resume, '--resume') : undefined;
    const after = opts.after !== undefined ? parseRunId(opts.after, '--after') : undefined;
    const loaded = resume === undefined && campaignPath !== undefined ? loadCampaignArg(campaignPath) : undefined;
    const result = await runFromCli({
      dbPath: opts.db,
      mode,
      ...(loaded ? { campaign: loaded.campaign, source: loaded.source } : {}),
      ...(resume !== undefined ? { resume } : {}),
      ...(after !== undefined ? { after } : {}),
    });
    reportOutcome(result, opts.json);
  });
}

export function registerRun(program: Command): void {
  registerCampaignCommand(
    program,
    'run',
    'full',
    'run a campaign: map, predict, program (write-verify), read back, measure on chip, drift points, compare; recorded in SQLite',
  );
}
