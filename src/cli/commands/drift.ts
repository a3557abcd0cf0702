import type { Command } from 'commander';
import { registerCampaignCommand } from './run.js';

export function registerDrift(program: Command): void {
  registerCampaignCommand(program, 'drift', 'drift', "the campaign's drift points on a chip programmed earlier (--after <run>): wait or advance the device clock, read back, measure, compare");
}
