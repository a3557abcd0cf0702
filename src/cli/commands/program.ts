import type { Command } from 'commander';
import { registerCampaignCommand } from './run.js';

export function registerProgram(program: Command): void {
  registerCampaignCommand(program, 'program', 'program', "program a campaign's network onto the chip (write-verify) and read every cell back; recorded in SQLite");
}
