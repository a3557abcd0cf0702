import type { Command } from 'commander';
import { registerSim } from './sim.js';
import { registerHello } from './hello.js';
import { registerPorts } from './ports.js';
import { registerEmulate } from './emulate.js';
import { registerSearch } from './search.js';
import { registerRun } from './run.js';
import { registerProgram } from './program.js';
import { registerMeasure } from './measure.js';
import { registerDrift } from './drift.js';
import { registerRuns } from './runs.js';
import { registerShow } from './show.js';
import { registerExport } from './export.js';
import { registerDemo } from './demo.js';
import { registerServe } from './serve.js';
import { registerCalibrate } from './calibrate.js';
import { registerCompare } from './compare.js';

/** Every subcommand registers itself here; each lives in its own file under commands/. */
export function registerCommands(program: Command): void {
  registerSim(program);
  registerHello(program);
  registerPorts(program);
  registerEmulate(program);
  registerSearch(program);
  registerRun(program);
  registerProgram(program);
  registerMeasure(program);
  registerDrift(program);
  registerRuns(program);
  registerShow(program);
  registerExport(program);
  registerDemo(program);
  registerServe(program);
  registerCalibrate(program);
  registerCompare(program);
}
