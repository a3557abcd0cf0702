/**
 * Where a network's tiles sit on the macro's arrays. A tile is one row block x one column chunk
 * (at most one array wide) of one weight matrix; every (slice, polarity) plane of those rows lies
 * side by side inside the chunk.
 *
 * Without sharing (ISAAC-like) every tile gets an array of its own, in matrix order. With sharing
 * (`mapping.shareArrays`), tiles of *different* layers may share an array in disjoint rectangles:
 * a layer's MVMs drive only its own rows and read only its own columns, and layers run one after
 * another, so in layer-by-layer mode they never compete for an array. Tiles of the same layer never
 * share one, which keeps the per-layer parallelism the cost model assumes (every tile of a layer
 * has its array's DACs and ADCs to itself). This is the network packing of RRAM NAS with edge
 * compilation (shared/seeds/rram-nas-edge-compilation.txt) in its simplest form: shelf packing of
 * tiles sorted by height.
 *
 * The simulator counts arrays with this function and the compiler places cells with it, so the
 * chip is programmed exactly as the simulator costed it.
 */

export interface TileShape {
  /** Spec layer index (tiles of one layer never share an array). */
  readonly layer: number;
  /** Index of the weight matrix in network order. */
  readonly matrix: number;
  readonly rowBlock: number;
  readonly colBlock: number;
  readonly rows: number;
  readonly cols: number;
}

export interface TilePlacement extends TileShape {
  readonly array: number;
  /** Top-left cell of the tile in its array. */
  readonly row: number;
  readonly col: number;
}

export interface Packing {
  /** In the order of the requested tiles. */
  readonly tiles: readonly TilePlacement[];
  readonly arrays: number;
  /** Distinct layers on each array, ascending. */
  readonly layersOnArray: readonly (readonly number[])[];
}

/** The tiles of one weight matrix: row blocks of `perBlock` rows times column chunks of `arrayCols`. */
export function matrixTiles(
  layer: number,
  matrix: number,
  rows: number,
  physicalCols: number,
  perBlock: number,
  arrayCols: number,
  out: TileShape[] = [],
): TileShape[] {
  let rowBlock = 0;
  for (let r0 = 0; r0 < rows; r0 += perBlock, rowBlock++) {
    let colBlock = 0;
    for (let q0 = 0; q0 < physicalCols; q0 += arrayCols, colBlock++) {
      out.push({ layer, matrix, rowBlock, colBlock, rows: Math.min(perBlock, rows - r0), cols: Math.min(arrayCols, physicalCols - q0) });
    }
  }
  return out;
}

/**
 * The tiles of a network as parallel typed arrays: the simulator packs thousands of candidate
 * networks a second, so the packer works on these rather than on objects.
 */
export interface TileTable {
  count: number;
  layer: Int32Array;
  rows: Int32Array;
  cols: Int32Array;
}

export function newTileTable(capacity = 64): TileTable {
  return { count: 0, layer: new Int32Array(capacity), rows: new Int32Array(capacity), cols: new Int32Array(capacity) };
}

export function addTile(t: TileTable, layer: number, rows: number, cols: number): void {
  if (t.count === t.layer.length) {
    const grow = (a: Int32Array): Int32Array => {
      const b = new Int32Array(a.length * 2);
      b.set(a);
      return b;
    };
    t.layer = grow(t.layer);
    t.rows = grow(t.rows);
    t.cols = grow(t.cols);
  }
  t.layer[t.count] = layer;
  t.rows[t.count] = rows;
  t.cols[t.count] = cols;
  t.count++;
}

export interface PackedTable {
  readonly arrays: number;
  /** Per tile, in table order. */
  readonly array: Int32Array;
  readonly row: Int32Array;
  readonly col: Int32Array;
  /** layerMask[array * layers + layer] is 1 when the layer has a tile on the array. */
  readonly layerMask: Uint8Array;
  readonly layers: number;
}

/**
 * Shelf packing. Without sharing, tile i goes to array i. With sharing, tiles are taken tallest
 * first; each goes on the lowest shelf (of the first array that holds no tile of its layer) with
 * room for it, else on a new shelf under that array's last one, else on a new array.
 */
export function packTable(t: TileTable, arrayRows: number, arrayCols: number, share: boolean): PackedTable {
  const n = t.count;
  const array = new Int32Array(n);
  const row = new Int32Array(n);
  const col = new Int32Array(n);
  if (!share) {
    let layers = 0;
    for (let i = 0; i < n; i++) if ((t.layer[i] as number) >= layers) layers = (t.layer[i] as number) + 1;
    const layerMask = new Uint8Array(n * layers);
    for (let i = 0; i < n; i++) {
      array[i] = i;
      layerMask[i * layers + (t.layer[i] as number)] = 1;
    }
    return { arrays: n, array, row, col, layerMask, layers };
  }
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => (t.rows[b] as number) - (t.rows[a] as number) || (t.cols[b] as number) - (t.cols[a] as number) || a - b);
  // Shelves in creation order: their array, top row, height and used width.
  const shelfArray = new Int32Array(n);
  const shelfY = new Int32Array(n);
  const shelfH = new Int32Array(n);
  const shelfW = new Int32Array(n);
  let shelves = 0;
  const height = new Int32Array(n);
  let maxLayer = 0;
  for (let i = 0; i < n; i++) if ((t.layer[i] as number) > maxLayer) maxLayer = t.layer[i] as number;
  const layers = maxLayer + 1;
  const hasLayer = new Uint8Array(n * layers);
  let arrays = 0;
  for (let k = 0; k < n; k++) {
    const i = order[k] as number;
    const h = t.rows[i] as number;
    const w = t.cols[i] as number;
    const layer = t.layer[i] as number;
    // The first array without this layer that has room, on its lowest fitting shelf if any.
    let target = -1;
    let best = -1;
    for (let s = 0; s < shelves; s++) {
      const a = shelfArray[s] as number;
      if (target >= 0 && a > target) continue;
      const sh = shelfH[s] as number;
      if (sh < h || arrayCols - (shelfW[s] as number) < w || hasLayer[a * layers + layer] === 1) continue;
      if (target < 0 || a < target || sh < (shelfH[best] as number)) {
        target = a;
        best = s;
      }
    }
    for (let a = 0; a < arrays && (target < 0 || a < target); a++) {
      if (hasLayer[a * layers + layer] === 0 && arrayRows - (height[a] as number) >= h) {
        target = a;
        best = -1;
      }
    }
    if (best >= 0) {
      row[i] = shelfY[best] as number;
      col[i] = shelfW[best] as number;
      shelfW[best] = (shelfW[best] as number) + w;
    } else if (target >= 0) {
      row[i] = height[target] as number;
      col[i] = 0;
      shelfArray[shelves] = target;
      shelfY[shelves] = height[target] as number;
      shelfH[shelves] = h;
      shelfW[shelves] = w;
      shelves++;
      height[target] = (height[target] as number) + h;
    }
    if (target < 0) {
      target = arrays++;
      row[i] = 0;
      col[i] = 0;
      shelfArray[shelves] = target;
      shelfY[shelves] = 0;
      shelfH[shelves] = h;
      shelfW[shelves] = w;
      shelves++;
      height[target] = h;
    }
    array[i] = target;
    hasLayer[target * layers + layer] = 1;
  }
  return { arrays, array, row, col, layerMask: hasLayer, layers };
}

/** Distinct layers on each array, ascending. */
export function layersOnArrays(packed: PackedTable): number[][] {
  const on: number[][] = [];
  for (let a = 0; a < packed.arrays; a++) {
    const list: number[] = [];
    for (let l = 0; l < packed.layers; l++) if (packed.layerMask[a * packed.layers + l] === 1) list.push(l);
    on.push(list);
  }
  return on;
}

export function packTiles(tiles: readonly TileShape[], arrayRows: number, arrayCols: number, share: boolean): Packing {
  const table = newTileTable(Math.max(1, tiles.length));
  for (const t of tiles) addTile(table, t.layer, t.rows, t.cols);
  const packed = packTable(table, arrayRows, arrayCols, share);
  return {
    tiles: tiles.map((t, i) => ({ ...t, array: packed.array[i] as number, row: packed.row[i] as number, col: packed.col[i] as number })),
    arrays: packed.arrays,
    layersOnArray: layersOnArrays(packed),
  };
}
