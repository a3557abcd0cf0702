import { InputError } from '../common/errors.js';
import { readJsonFile } from '../common/validate.js';
import { parseSearchSpace, type SearchSpace } from './space.js';

const TABLE1 = 'NAS4CIM (Li et al., JEIT 2025) Table 1';

/**
 * The paper's three search spaces (Table 1). Table 1 gives kernels, operators, channels and the
 * number of searchable layers; the downsampling schedule, stem and head are ours (the paper does
 * not list them) and are stated in each space's provenance.
 */
const BUILTIN_SPACES: Record<string, unknown> = {
  'fashion-mnist': {
    name: 'fashion-mnist',
    dataset: 'fashion-mnist',
    input: [28, 28, 1],
    classes: 10,
    kernels: [3, 5],
    ops: ['identity', 'conv', 'residual'],
    channels: [16, 32, 64],
    strides: [1, 2, 2],
    head: [{ op: 'pool', kind: 'max', size: 7 }, { op: 'dense', out: 10 }],
    provenance: `${TABLE1}: kernels 3/5; null op, standard conv, residual conv; channels 16/32/64; 3 layers. Strides 1-2-2 and the head are cimbench's choice: a 7x7 global max-pool + dense head (same parameters and arrays as global average pooling) because it trained better on this batch-norm-free engine (a 32-64-64 CNN: 88.3% after 2 epochs against 82-84.7% with average pooling).`,
  },
  'cifar10': {
    name: 'cifar10',
    dataset: 'cifar10',
    input: [32, 32, 3],
    classes: 10,
    kernels: [1, 3],
    ops: ['identity', 'conv', 'resblock'],
    channels: [16, 32, 48, 64],
    strides: [1, 1, 1, 2, 1, 1, 2, 1, 1],
    head: [{ op: 'gap' }, { op: 'dense', out: 10 }],
    provenance: `${TABLE1}: kernels 1/3; null op, standard conv, standard residual block; channels 16/32/48/64; 9 layers. Three stages of three layers with stride 2 at layers 4 and 7 (ResNet-20 style) and the global-average-pool + dense head are cimbench's choice.`,
  },
  'imagenet': {
    name: 'imagenet',
    dataset: 'imagenet',
    input: [224, 224, 3],
    classes: 1000,
    kernels: [1, 3, 5],
    ops: ['identity', 'resblock', 'bottleneck'],
    channels: [16, 32, 48, 64, 80, 96],
    strides: [1, 2, 1, 2, 1, 2, 1, 1],
    stem: [
      { op: 'conv', kernel: 7, out: 32, stride: 2 },
      { op: 'pool', kind: 'max', size: 2 },
    ],
    head: [{ op: 'gap' }, { op: 'dense', out: 1000 }],
    provenance: `${TABLE1}: kernels 1/3/5; null op, standard residual block, bottleneck residual block; channels 16-96; 8 layers. The ResNet-style 7x7/2 conv + 2x2 max-pool stem, strides and head are cimbench's choice.`,
  },
};

export const BUILTIN_SPACE_NAMES = Object.keys(BUILTIN_SPACES);

/** A built-in space by name, or a user-defined space from a JSON file path. */
export function loadSearchSpace(nameOrPath: string): SearchSpace {
  const builtin = BUILTIN_SPACES[nameOrPath];
  if (builtin) return parseSearchSpace(builtin, `search space ${nameOrPath}`);
  if (nameOrPath.endsWith('.json')) return parseSearchSpace(readJsonFile(nameOrPath), nameOrPath);
  throw new InputError('NOT_FOUND', `unknown search space (built-in: ${BUILTIN_SPACE_NAMES.join(', ')}; or a .json file)`, {
    where: nameOrPath,
  });
}
