import * as tf from '@tensorflow/tfjs';

/**
 * Learned step size quantisation (LSQ; Esser et al., "Learned Step Size Quantization", ICLR 2020).
 *   q(v; s) = round(clip(v / s, -Qn, Qp)) * s
 * Gradients (straight-through estimator for round):
 *   dq/dv = 1 inside [-Qn, Qp] (after division by s), 0 outside;
 *   dq/ds = round(v/s) - v/s inside, -Qn or Qp outside; scaled by g = 1 / sqrt(N * Qp), N = the
 *   number of elements that share one step (per image for activations), so steps learn at a rate
 *   comparable to weights. tfjs has no stopGradient, so both live in one tf.customGrad.
 *
 * Weights are signed and symmetric: levels -(2^(b-1)-1) .. 2^(b-1)-1 (no -2^(b-1), so a
 * differential pair or sign-magnitude encoding holds every level). Activations after ReLU are
 * unsigned: 0 .. 2^a - 1; a signed activation (a layer with activation 'none' feeding a matrix)
 * uses the symmetric signed range.
 */

export interface QuantRange {
  /** Most negative level, as a non-negative magnitude (0 for unsigned). */
  readonly qn: number;
  readonly qp: number;
}

export function weightRange(bits: number): QuantRange {
  if (!Number.isInteger(bits) || bits < 2 || bits > 16) throw new RangeError(`weight bits must be an integer in 2..16, got ${bits}`);
  const m = 2 ** (bits - 1) - 1;
  return { qn: m, qp: m };
}

export function activationRange(bits: number, signed: boolean): QuantRange {
  if (!Number.isInteger(bits) || bits < 1 || bits > 16) throw new RangeError(`activation bits must be an integer in 1..16, got ${bits}`);
  if (signed) {
    if (bits < 2) throw new RangeError('a signed activation needs at least 2 bits');
    const m = 2 ** (bits - 1) - 1;
    return { qn: m, qp: m };
  }
  return { qn: 0, qp: 2 ** bits - 1 };
}

/** LSQ's initial step: 2 * mean(|v|) / sqrt(Qp). */
export function lsqInitialStep(meanAbs: number, range: QuantRange): number {
  const s = (2 * meanAbs) / Math.sqrt(range.qp);
  return s > 1e-8 ? s : 1e-3;
}

/**
 * Fake-quantises v with step s (a scalar [1] or one step per last-axis channel [C]). gradScale is
 * LSQ's g. Returns dequantised values (integers times s), differentiable in v and s.
 */
export function lsqQuantize(v: tf.Tensor, step: tf.Tensor, range: QuantRange, gradScale: number): tf.Tensor {
  const stepShape = step.shape;
  const perChannel = step.size > 1;
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [vIn, sIn, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const scaled = tf.div(vIn, sIn);
    const q = tf.round(tf.clipByValue(scaled, -range.qn, range.qp));
    save([scaled, q]);
    return {
      value: tf.mul(q, sIn),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sc, qq] = saved as [tf.Tensor, tf.Tensor];
        const inside = tf.logicalAnd(tf.greaterEqual(sc, -range.qn), tf.lessEqual(sc, range.qp));
        const mask = tf.cast(inside, 'float32');
        const dv = tf.mul(dy, mask);
        // inside: q - v/s; clipped: q (which is -Qn or Qp).
        const perElem = tf.mul(dy, tf.sub(qq, tf.mul(sc, mask)));
        let ds: tf.Tensor;
        if (perChannel) {
          const axes = [];
          for (let i = 0; i < perElem.rank - 1; i++) axes.push(i);
          ds = tf.sum(perElem, axes);
        } else {
          ds = tf.sum(perElem);
        }
        return [dv, tf.mul(ds, gradScale).reshape(stepShape)];
      },
    };
  });
  return f(v, step);
}

/** Integer levels round(clip(v/s)) as the chip stores them; same ops as lsqQuantize's forward. */
export function quantizeToLevels(v: tf.Tensor, step: tf.Tensor, range: QuantRange): tf.Tensor {
  return tf.tidy(() => tf.round(tf.clipByValue(tf.div(v, step), -range.qn, range.qp)));
}
