import type { Command } from 'commander';
import { registerCampaignCommand } from './run.js';

export function registerMeasure(program: Command): void {
  registerCampaignCommand(program, 'measure', 'measure', 'read back and measure on-chip accuracy of a chip programmed earlier (--after <run>), with the prediction and the discrepancies');
}
