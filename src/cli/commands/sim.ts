import type { Command } from 'commander';
import { InputError } from '../../common/errors.js';
import { readJsonFile } from '../../common/validate.js';
import {
  ENERGY_COMPONENTS,
  hardwareProfilePath,
  loadHardwareProfile,
  simulate,
  type HardwareProfile,
  type SimulationResult,
} from '../../hardware/index.js';
import { parseNetworkSpec, type NetworkAnalysis } from '../../spec/index.js';
import { renderTable } from '../format.js';

interface SimOptions {
  network: string;
  hardware: string;
  duplicate: boolean;
  allowOverflow: boolean;
  json: boolean;
}

export function registerSim(program: Command): void {
  program
    .command('sim')
    .description('simulate a network on a CIM macro: mapping, latency, energy and EDP per layer and in total')
    .requiredOption('-n, --network <spec.json>', 'network spec (JSON)')
    .option('-w, --hardware <name|profile.json>', 'hardware profile: a preset in calibration/hardware or a file', 'nas4cim-macro')
    .option('--duplicate', 'duplicate the slowest layers into free arrays', false)
    .option('--allow-overflow', 'report figures for a network that does not fit, assuming extra arrays of the same kind', false)
    .option('--json', 'machine-readable output', false)
    .action((opts: SimOptions) => {
      const net = parseNetworkSpec(readJsonFile(opts.network), opts.network);
      const hwPath = hardwareProfilePath(opts.hardware);
      const hw = loadHardwareProfile(hwPath);
      const result = simulate(net, hw, { duplicate: opts.duplicate });
      if (!result.fit.fits && !opts.allowOverflow) {
        const { arraysRequired, arraysAvailable, shortfall } = result.fit;
        throw new InputError(
          'DOES_NOT_FIT',
          `${net.spec.name} needs ${arraysRequired} arrays but ${hw.name} has ${arraysAvailable} ` +
            `(short by ${shortfall}, ${((100 * shortfall) / arraysAvailable).toFixed(0)}% more than the macro has); ` +
            'use a larger hardware profile, or --allow-overflow for figures that assume the missing arrays exist',
          { where: opts.network, details: { ...result.fit } },
        );
      }
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ ...result, hardwareProfile: hw, hardwareProfilePath: hwPath }, null, 2)}\n`);
      } else {
        process.stdout.write(renderSimulation(net, hw, result));
      }
    });
}

const fmt = (x: number, digits: number): string => x.toFixed(digits);

function shapeText(s: readonly number[]): string {
  return s.join('x');
}

export function renderSimulation(net: NetworkAnalysis, hw: HardwareProfile, r: SimulationResult): string {
  const rows = r.layers.map((l) => {
    const layer = net.layers[l.index];
    return [
      l.index,
      l.op,
      layer ? `${shapeText(layer.inShape)} -> ${shapeText(layer.outShape)}` : '',
      l.rows,
      l.cols,
      l.duplicates > 1 ? `${l.arrays} (x${l.duplicates})` : String(l.arrays),
      l.arrays > 0 ? `${fmt(100 * l.utilisation, 1)}%` : '-',
      l.adcConversions,
      fmt(l.latencyNs / 1000, 2),
      fmt(l.energyPj / 1000, 2),
    ];
  });
  const lines: string[] = [];
  lines.push(
    `network ${net.spec.name}: ${net.params} params (${net.weights} weights in arrays), ${fmt(net.mops, 2)} MOPs`,
    `hardware ${hw.name}: ${r.fit.arraysAvailable} arrays of ${hw.array.rows}x${hw.array.cols}, ` +
      `${hw.weights.bits}-bit weights on ${hw.weights.bitsPerCell}-bit cells${hw.weights.differential ? ' (differential pairs)' : ''}, ` +
      `${hw.inputs.bits}-bit inputs via ${hw.dac.bits}-bit DACs, ${hw.adc.perArray} x ${hw.adc.bits}-bit ADCs per array`,
    '',
    renderTable(['layer', 'op', 'shape', 'rows', 'cols', 'arrays', 'util', 'ADC conv', 'latency us', 'energy nJ'], rows),
    '',
  );
  const fit = r.fit;
  lines.push(
    fit.fits
      ? `fits: ${fit.arraysRequired} of ${fit.arraysAvailable} arrays, ${fmt(100 * fit.utilisation, 1)}% of their cells used`
      : `DOES NOT FIT: needs ${fit.arraysRequired} arrays, the macro has ${fit.arraysAvailable} (short by ${fit.shortfall}); figures assume the missing arrays exist`,
  );
  const lbl = r.totals.layerByLayer;
  const pip = r.totals.pipelined;
  lines.push(
    `layer by layer: latency ${fmt(lbl.latencyMs, 4)} ms, energy ${fmt(lbl.energyMj, 6)} mJ, EDP ${fmt(lbl.edpMsMj, 6)} ms*mJ`,
    `pipelined:      latency ${fmt(pip.latencyMs, 4)} ms/image (${pip.bottleneckLayers.length > 1 ? `layers ${pip.bottleneckLayers.join('+')} share an array` : `slowest layer ${pip.bottleneckLayer}`}), energy ${fmt(pip.energyMj, 6)} mJ, ` +
      `EDP ${fmt(pip.edpMsMj, 6)} ms*mJ; first image ${fmt(pip.fillLatencyMs, 4)} ms, ${fmt(pip.throughputImagesPerS, 0)} images/s`,
  );
  const total = ENERGY_COMPONENTS.reduce((sum, k) => sum + r.energyBreakdownPj[k], 0);
  const parts = ENERGY_COMPONENTS.map((k) => `${k} ${fmt((100 * r.energyBreakdownPj[k]) / total, 1)}%`);
  lines.push(`energy by component (layer by layer): ${parts.join(', ')}`, '');
  return lines.join('\n');
}
