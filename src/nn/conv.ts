import * as tf from '@tensorflow/tfjs';
import type { Padding } from '../spec/schema.js';

/**
 * conv2d with a hand-written gradient so that conv layers train on the wasm backend, which has no
 * Conv2DBackpropFilter kernel (and whose Conv2DBackpropInput is ~7x slower than its forward conv).
 * Every part of the gradient runs on XNNPACK's forward conv (or a matMul for 1x1 kernels).
 *
 * Derivation, per spatial axis, input length H, kernel k, stride s, output length Ho, explicit
 * padding (pt before, taken from tfjs' own 'same' rule so shapes agree with tf.conv2d):
 *   y[o] = sum_i xp[o*s + i] * w[i]              (xp = x padded by pt before)
 * dx: scatter dy back. With dyDil = dy with s-1 zeros between entries (length (Ho-1)*s + 1),
 *   dx[j] = sum_i dyDil[j + pt - i] * w[i], a stride-1 'valid' conv of dyDil padded by
 *   (k-1-pt) before and (H + pt - (Ho-1)*s - 1) after, with the kernel flipped and its in/out
 *   channels swapped. For s = 1, 'same', odd k this is platform-facts.md's recipe (pads (k-1)/2).
 *   For s > 1 the zero-dilated dy wastes (1 - 1/s^2) of the MACs, yet it stays on XNNPACK's fast
 *   forward conv; bench/train.bench.ts times it against tf.conv2dTranspose (train.conv_dx_ms).
 * dw: dw[i, c, o] = sum_{n, o'} xp[n, o'*s + i, c] * dy[n, o', o]: a conv whose "image" is x
 *   transposed to [C, Hp, Wp, N] (batch as channels) and whose "filter" is dy transposed to
 *   [Ho, Wo, N, O], with dilation s (the filter taps sit s apart in xp), stride 1, 'valid'; xp is
 *   cropped/padded to exactly (Ho-1)*s + k rows so the result is [C, k, k, O].
 * 1x1 kernels use matMuls instead (x subsampled by the stride).
 */

export interface ConvGeometry {
  readonly padTop: number;
  readonly padLeft: number;
  readonly outHeight: number;
  readonly outWidth: number;
}

/** Output size and leading padding exactly as tfjs computes them for 'same' / 'valid'. */
export function convGeometry(
  inHeight: number,
  inWidth: number,
  kernel: number,
  stride: number,
  padding: Padding,
): ConvGeometry {
  if (padding === 'valid') {
    return {
      padTop: 0,
      padLeft: 0,
      outHeight: Math.floor((inHeight - kernel) / stride) + 1,
      outWidth: Math.floor((inWidth - kernel) / stride) + 1,
    };
  }
  const outHeight = Math.ceil(inHeight / stride);
  const outWidth = Math.ceil(inWidth / stride);
  const padH = Math.max(0, (outHeight - 1) * stride + kernel - inHeight);
  const padW = Math.max(0, (outWidth - 1) * stride + kernel - inWidth);
  return { padTop: Math.floor(padH / 2), padLeft: Math.floor(padW / 2), outHeight, outWidth };
}

/** Inserts s-1 zeros between rows and columns: [N,H,W,C] -> [N,(H-1)s+1,(W-1)s+1,C]. */
function dilateSpatial(t: tf.Tensor4D, s: number): tf.Tensor4D {
  if (s === 1) return t;
  const [n, h, w, c] = t.shape;
  const spread = tf.pad(t.reshape([n, h, 1, w, 1, c]), [
    [0, 0],
    [0, 0],
    [0, s - 1],
    [0, 0],
    [0, s - 1],
    [0, 0],
  ]);
  return spread.reshape([n, h * s, w * s, c]).slice([0, 0, 0, 0], [n, (h - 1) * s + 1, (w - 1) * s + 1, c]) as tf.Tensor4D;
}

/** Pads (positive) or crops (negative) the two spatial axes of an NHWC tensor. */
function padOrCrop(t: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  let out = t;
  const cropT = Math.max(0, -top);
  const cropB = Math.max(0, -bottom);
  const cropL = Math.max(0, -left);
  const cropR = Math.max(0, -right);
  if (cropT + cropB + cropL + cropR > 0) {
    const [n, h, w, c] = out.shape;
    out = out.slice([0, cropT, cropL, 0], [n, h - cropT - cropB, w - cropL - cropR, c]);
  }
  const pT = Math.max(0, top);
  const pB = Math.max(0, bottom);
  const pL = Math.max(0, left);
  const pR = Math.max(0, right);
  if (pT + pB + pL + pR > 0) {
    out = tf.pad(out, [
      [0, 0],
      [pT, pB],
      [pL, pR],
      [0, 0],
    ]);
  }
  return out;
}

/** dx of conv2d(x, w, s, padding) for x of shape xShape (see the derivation above). */
export function convInputGrad(
  dy: tf.Tensor4D,
  w: tf.Tensor4D,
  xShape: readonly [number, number, number, number],
  stride: number,
  padding: Padding,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, wd, c] = xShape;
    const [k, kw, , o] = w.shape;
    const g = convGeometry(h, wd, k, stride, padding);
    if (k === 1 && kw === 1) {
      // dx at the sampled positions is dy @ w^T; zeros elsewhere.
      const d = tf.matMul(dy.reshape([-1, o]), w.reshape([c, o]), false, true).reshape([n, g.outHeight, g.outWidth, c]) as tf.Tensor4D;
      const spread = dilateSpatial(d, stride);
      const covH = (g.outHeight - 1) * stride + 1;
      const covW = (g.outWidth - 1) * stride + 1;
      // A 1x1 kernel never pads (tfjs' 'same' rule gives zero padding), so the samples start at 0.
      return padOrCrop(spread, 0, h - covH, 0, wd - covW);
    }
    const wFlip = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]);
    const dyDil = dilateSpatial(dy, stride);
    const padded = padOrCrop(
      dyDil,
      k - 1 - g.padTop,
      h + g.padTop - (g.outHeight - 1) * stride - 1,
      kw - 1 - g.padLeft,
      wd + g.padLeft - (g.outWidth - 1) * stride - 1,
    );
    return tf.conv2d(padded, wFlip as tf.Tensor4D, 1, 'valid');
  });
}

/** dw of conv2d(x, w, s, padding) for a kernel of shape wShape (see the derivation above). */
export function convFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  wShape: readonly [number, number, number, number],
  stride: number,
  padding: Padding,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, wd, c] = x.shape;
    const [k, kw, , o] = wShape;
    const g = convGeometry(h, wd, k, stride, padding);
    if (k === 1 && kw === 1) {
      let xs: tf.Tensor4D = x;
      if (stride > 1) {
        xs = tf.stridedSlice(x, [0, 0, 0, 0], [n, (g.outHeight - 1) * stride + 1, (g.outWidth - 1) * stride + 1, c], [1, stride, stride, 1]) as tf.Tensor4D;
      }
      return tf.matMul(xs.reshape([-1, c]), dy.reshape([-1, o]), true, false).reshape([1, 1, c, o]);
    }
    const rowsNeeded = (g.outHeight - 1) * stride + k;
    const colsNeeded = (g.outWidth - 1) * stride + kw;
    const xp = padOrCrop(x, g.padTop, rowsNeeded - h - g.padTop, g.padLeft, colsNeeded - wd - g.padLeft);
    const image = tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D; // [C, Hp, Wp, N]
    const filter = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [Ho, Wo, N, O]
    const r = tf.conv2d(image, filter, 1, 'valid', 'NHWC', stride); // [C, k, k, O]
    return tf.transpose(r, [1, 2, 0, 3]);
  });
}

/**
 * conv2d(x, w, stride, padding) whose gradient avoids Conv2DBackpropFilter/Input. Use it for every
 * trainable conv; on backends with the built-in kernels it is equally correct. When `w` is a
 * tf.Variable marked non-trainable (a frozen network that only passes gradients through, as the
 * teacher in the NAS4CIM warm-up), its filter gradient is not computed (zeros are returned).
 * `inputGrad: false` likewise skips dx, for an input that is a constant (data, frozen features).
 */
export function conv2dTrainable(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, padding: Padding, options: { inputGrad?: boolean } = {}): tf.Tensor4D {
  const inputGrad = options.inputGrad ?? true;
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xt, wt, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
    const frozen = wt instanceof tf.Variable && !wt.trainable;
    save([xt, wt]);
    return {
      value: tf.conv2d(xt, wt, stride, padding),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
        const d = dy as tf.Tensor4D;
        return [inputGrad ? convInputGrad(d, ws, xs.shape, stride, padding) : tf.zerosLike(xs), frozen ? tf.zerosLike(ws) : convFilterGrad(xs, d, ws.shape, stride, padding)];
      },
    };
  });
  return f(x, w) as tf.Tensor4D;
}
