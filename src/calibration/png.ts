import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The report's plots as files beside the HTML: each inline `<svg id=...>` as <id>.svg and,
 * rendered by resvg (a native module loaded only here, so a platform without its binary still
 * gets the HTML and the SVG files), as <id>.png at twice the plot's size for slides and lab notes.
 */

export interface PlotFiles {
  readonly svg: readonly string[];
  readonly png: readonly string[];
  /** Why no PNG was written, when none was. */
  readonly pngUnavailable?: string;
}

/** The standalone plots of a report, by id, in document order. */
export function reportPlots(html: string): Array<{ id: string; svg: string }> {
  const out: Array<{ id: string; svg: string }> = [];
  for (const m of html.matchAll(/<svg\b[^>]*\bid="([^"]+)"[\s\S]*?<\/svg>/g)) out.push({ id: m[1] as string, svg: m[0] });
  return out;
}

/** The file name of a plot id: ids come from the report's own code, but never leave `dir` regardless. */
const fileStem = (id: string): string => id.replace(/[^A-Za-z0-9_-]/g, '_');

export async function writeReportPlots(html: string, dir: string): Promise<PlotFiles> {
  const plots = reportPlots(html);
  const svg: string[] = [];
  for (const p of plots) {
    const file = join(dir, `${fileStem(p.id)}.svg`);
    writeFileSync(file, `<?xml version="1.0" encoding="UTF-8"?>\n${p.svg}\n`);
    svg.push(file);
  }
  let Resvg: typeof import('@resvg/resvg-js').Resvg;
  try {
    ({ Resvg } = await import('@resvg/resvg-js'));
  } catch (err) {
    return { svg, png: [], pngUnavailable: `@resvg/resvg-js did not load (${(err as Error).message.split('\n')[0]})` };
  }
  const png: string[] = [];
  for (const p of plots) {
    const rendered = new Resvg(p.svg, { fitTo: { mode: 'zoom', value: 2 }, background: '#ffffff', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render();
    const file = join(dir, `${fileStem(p.id)}.png`);
    writeFileSync(file, rendered.asPng());
    png.push(file);
  }
  return { svg, png };
}
