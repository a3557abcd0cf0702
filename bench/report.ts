/** Benchmarks print one JSON line per figure: {"metric": ..., "value": ..., "unit": ...}. */
export function report(metric: string, value: number, unit: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ metric, value, unit, ...extra })}\n`);
}
