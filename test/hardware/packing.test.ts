import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../../src/common/rng.js';
import { matrixTiles, packTiles, type TilePlacement, type TileShape } from '../../src/hardware/index.js';

function randomTiles(rng: Rng): TileShape[] {
  const tiles: TileShape[] = [];
  const layers = 2 + rng.int(6);
  let matrix = 0;
  for (let layer = 0; layer < layers; layer++) {
    const kk = rng.pick([1, 9, 25]);
    const rows = kk * (1 + rng.int(64));
    const perBlock = rows <= 128 ? rows : kk > 1 ? Math.floor(128 / kk) * kk : 128;
    matrixTiles(layer, matrix++, rows, 2 * (1 + rng.int(96)), perBlock, 128, tiles);
  }
  return tiles;
}

describe('tile packing', () => {
  it('cuts a matrix into row blocks times column chunks', () => {
    const tiles = matrixTiles(3, 7, 300, 200, 126, 128);
    assert.deepEqual(
      tiles.map((t) => [t.rowBlock, t.colBlock, t.rows, t.cols]),
      [
        [0, 0, 126, 128],
        [0, 1, 126, 72],
        [1, 0, 126, 128],
        [1, 1, 126, 72],
        [2, 0, 48, 128],
        [2, 1, 48, 72],
      ],
    );
    assert.ok(tiles.every((t) => t.layer === 3 && t.matrix === 7));
  });

  it('without sharing gives every tile its own array, in order', () => {
    const tiles = randomTiles(new Rng(1));
    const p = packTiles(tiles, 128, 128, false);
    assert.equal(p.arrays, tiles.length);
    p.tiles.forEach((t, i) => assert.deepEqual([t.array, t.row, t.col], [i, 0, 0]));
  });

  it('with sharing never overlaps tiles, never puts two tiles of one layer on an array, and never uses more arrays', () => {
    const rng = new Rng(2);
    let saved = 0;
    for (let trial = 0; trial < 300; trial++) {
      const tiles = randomTiles(rng);
      const p = packTiles(tiles, 128, 128, true);
      const layersOn = new Map<number, Set<number>>();
      p.tiles.forEach((t, i) => {
        assert.deepEqual({ ...tiles[i], array: t.array, row: t.row, col: t.col }, t, 'placements keep the request order');
        assert.ok(t.row + t.rows <= 128 && t.col + t.cols <= 128, 'inside the array');
        const on = layersOn.get(t.array) ?? new Set<number>();
        assert.ok(!on.has(t.layer), `layer ${t.layer} twice on array ${t.array}`);
        on.add(t.layer);
        layersOn.set(t.array, on);
      });
      for (let i = 0; i < p.tiles.length; i++) {
        for (let j = i + 1; j < p.tiles.length; j++) {
          const a = p.tiles[i] as TilePlacement;
          const b = p.tiles[j] as TilePlacement;
          const overlap = a.array === b.array && a.row < b.row + b.rows && b.row < a.row + a.rows && a.col < b.col + b.cols && b.col < a.col + a.cols;
          assert.ok(!overlap, `tiles ${i} and ${j} overlap on array ${a.array}`);
        }
      }
      assert.ok(p.arrays <= tiles.length);
      assert.deepEqual(p.layersOnArray.map((l) => [...l]), [...layersOn.keys()].sort((a, b) => a - b).map((a) => [...(layersOn.get(a) as Set<number>)].sort((x, y) => x - y)));
      saved += tiles.length - p.arrays;
    }
    assert.ok(saved > 300, `sharing saved only ${saved} arrays over 300 networks`);
  });
});
