import type { Command } from 'commander';
import { registerSim } from './sim.js';
import { registerHello } from './hello.js';
import { registerPorts } from './ports.js';

/** Every subcommand registers itself here; each lives in its own file under commands/. */
export function registerCommands(program: Command): void {
  registerSim(program);
  registerHello(program);
  registerPorts(program);
}
