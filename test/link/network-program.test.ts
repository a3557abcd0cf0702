import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NetworkProgramSchema, checkPlacementsFit, type NetworkProgramInput } from '../../src/link/index.js';

/** A one-layer dense network whose 16x10 matrix is placed as two row tiles; `second` moves the second tile. */
function program(second: { array: number; row: number; col: number }): NetworkProgramInput {
  const tile = (srcRow: number, at: { array: number; row: number; col: number }) => ({ ...at, rows: 8, cols: 10, srcRow, srcCol: 0 });
  return {
    format: 'cimbench.network-program/1',
    name: 'two-tiles',
    input: [1, 1, 16],
    classes: 10,
    inputBits: 8,
    conductance: { minUs: 2, maxUs: 40 },
    layers: [
      {
        op: 'dense',
        input: [1, 1, 16],
        output: [1, 1, 10],
        activation: 'none',
        matrices: [
          {
            name: 'dense',
            rows: 16,
            cols: 10,
            weightBits: 4,
            bitsPerSlice: 4,
            slices: 1,
            differential: false,
            input: { scale: 1, qmin: 0, qmax: 255 },
            weightScale: 0.1,
            placements: [tile(0, { array: 0, row: 0, col: 0 }), tile(8, second)],
          },
        ],
      },
    ],
  };
}

const geometry = { arrays: 2, rows: 128, cols: 128 };

test('placements: side by side on one array is fine; a shared cell, a missing array or an edge overrun is named', () => {
  const parse = (p: NetworkProgramInput) => {
    const r = NetworkProgramSchema.safeParse(p);
    assert.ok(r.success, r.success ? '' : JSON.stringify(r.error.issues.slice(0, 3)));
    return r.data;
  };
  assert.equal(checkPlacementsFit(parse(program({ array: 0, row: 8, col: 0 })), geometry), undefined, 'stacked below');
  assert.equal(checkPlacementsFit(parse(program({ array: 0, row: 0, col: 10 })), geometry), undefined, 'beside');
  assert.equal(checkPlacementsFit(parse(program({ array: 1, row: 0, col: 0 })), geometry), undefined, 'other array');
  assert.match(
    checkPlacementsFit(parse(program({ array: 0, row: 7, col: 9 })), geometry) ?? '',
    /layers\[0\]\.matrices\[0\]\.placements\[1\]: tile 8x10 at \(7, 9\) of array 0 overlaps layers\[0\]\.matrices\[0\]\.placements\[0\]/,
  );
  assert.match(checkPlacementsFit(parse(program({ array: 2, row: 0, col: 0 })), geometry) ?? '', /placements\[1\]: array 2 but the chip has 2/);
  assert.match(checkPlacementsFit(parse(program({ array: 1, row: 121, col: 0 })), geometry) ?? '', /exceeds the 128x128 array/);
});
