/**
 * A minimal SVG line chart, written by hand so the benchmark needs no plotting library: axes with
 * round ticks and labels, one polyline per series, and vertical marker lines (e.g. a lower bound).
 */

export interface Series {
  label: string;
  /** [x, y] points in data units, x increasing. */
  points: readonly (readonly [number, number])[];
}

export interface Marker {
  x: number;
  label: string;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  markers?: readonly Marker[];
  /** The axes start at 0 and reach at least these (defaults: the data's maxima). */
  xMax?: number;
  yMax?: number;
  /** The y axis ends exactly at yMax (e.g. a file's size), not at the next round tick. */
  yExact?: boolean;
  width?: number;
  height?: number;
}

const MARGIN = { left: 70, right: 130, top: 40, bottom: 50 };

/** A step of 1, 2 or 5 times a power of ten that cuts [0, max] into about `count` parts. */
export function niceStep(max: number, count = 6): number {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return step ?? 10 * power;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Distinct colours for up to a few dozen lines: hues spread by the golden angle. */
function colour(i: number): string {
  return `hsl(${Math.round((i * 137.508) % 360)}, 65%, 42%)`;
}

/** Ticks of a step, without floating-point residue in their labels; `exact`: the axis ends at max. */
function ticks(max: number, exact = false): { values: number[]; top: number } {
  const step = niceStep(max);
  const top = exact ? max : Math.ceil(max / step - 1e-9) * step;
  const values: number[] = [];
  for (let i = 0; i * step <= top + step / 1e6; i++) values.push(Number((i * step).toPrecision(12)));
  return { values, top };
}

export function lineChartSvg(options: ChartOptions): string {
  const width = options.width ?? 900;
  const height = options.height ?? 520;
  const markers = options.markers ?? [];
  const allPoints = options.series.flatMap((s) => s.points);
  const dataX = Math.max(0, ...allPoints.map((p) => p[0]), ...markers.map((m) => m.x));
  const dataY = Math.max(0, ...allPoints.map((p) => p[1]));
  const xAxis = ticks(Math.max(options.xMax ?? 0, dataX) || 1);
  const yAxis = ticks(Math.max(options.yMax ?? 0, dataY) || 1, options.yExact === true);
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const px = (x: number): number => MARGIN.left + (x / xAxis.top) * plotW;
  const py = (y: number): number => MARGIN.top + plotH - (y / yAxis.top) * plotH;
  const r = (v: number): string => v.toFixed(1);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      'font-family="sans-serif" font-size="12">',
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(options.title)}</text>`,
  ];
  for (const v of xAxis.values) {
    out.push(
      `<line x1="${r(px(v))}" y1="${MARGIN.top}" x2="${r(px(v))}" y2="${MARGIN.top + plotH}" stroke="#e4e4e4"/>`,
      `<text x="${r(px(v))}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${v}</text>`,
    );
  }
  for (const v of yAxis.values) {
    out.push(
      `<line x1="${MARGIN.left}" y1="${r(py(v))}" x2="${MARGIN.left + plotW}" y2="${r(py(v))}" stroke="#e4e4e4"/>`,
      `<text x="${MARGIN.left - 8}" y="${r(py(v) + 4)}" text-anchor="end">${v}</text>`,
    );
  }
  out.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${height - 10}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`,
    `<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">` +
      `${escapeXml(options.yLabel)}</text>`,
  );
  options.series.forEach((s, i) => {
    const points = s.points.map(([x, y]) => `${r(px(x))},${r(py(y))}`).join(' ');
    out.push(
      `<polyline points="${points}" fill="none" stroke="${colour(i)}" stroke-width="1.5">` +
        `<title>${escapeXml(s.label)}</title></polyline>`,
    );
    // The legend: one line per series, beside the plot.
    const ly = MARGIN.top + 8 + i * 16;
    if (ly < MARGIN.top + plotH) {
      const lx = MARGIN.left + plotW + 12;
      out.push(
        `<line x1="${lx}" y1="${ly}" x2="${lx + 18}" y2="${ly}" stroke="${colour(i)}" stroke-width="2"/>`,
        `<text x="${lx + 24}" y="${ly + 4}">${escapeXml(s.label)}</text>`,
      );
    }
  });
  for (const m of markers) {
    const x = r(px(m.x));
    out.push(
      `<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${MARGIN.top + plotH}" stroke="#c00" ` +
        'stroke-width="1.5" stroke-dasharray="6 4"/>',
      `<text x="${x}" y="${MARGIN.top - 6}" text-anchor="middle" fill="#c00">${escapeXml(m.label)}</text>`,
    );
  }
  out.push('</svg>', '');
  return out.join('\n');
}
