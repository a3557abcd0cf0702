import { Command, CommanderError } from 'commander';
import { errorToJson, exitCodeFor, formatCliError } from './format.js';
import { registerCommands } from './commands/index.js';

/** Builds the program without running it, so tests can drive it in-process. */
export function buildProgram(): Command {
  const program = new Command('cimbench')
    .description('Hardware-in-the-loop validation bench for RRAM compute-in-memory chips')
    .option('--verbose', 'print stack traces and debug detail', false)
    .showHelpAfterError('(add --help for usage)')
    // Throw instead of exiting, so main() maps usage errors to status 2; set before the
    // subcommands are created because they copy this setting.
    .exitOverride();
  registerCommands(program);
  return program;
}

export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed help or the usage problem.
      return err.exitCode === 0 ? 0 : 2;
    }
    const verbose = argv.includes('--verbose');
    process.stderr.write(`${formatCliError(err, verbose)}\n`);
    if (argv.includes('--json')) process.stdout.write(`${JSON.stringify({ error: errorToJson(err) }, null, 2)}\n`);
    return exitCodeFor(err);
  }
}
