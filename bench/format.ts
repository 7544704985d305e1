/**
 * Formatting shared by the benchmark's reports: numbers, and tables for BENCHMARKS.md and for the
 * terminal.
 */

/** `value` with `digits` decimals, or "n/a" for an unknown or infinite one. */
export const fixed = (value: number | null, digits = 0): string =>
  value !== null && Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
export const percent = (ratio: number): string => `${fixed(ratio * 100)} %`;

/** A Markdown table: the first row is the header; the first `leftColumns` columns are text, the rest numbers. */
export function mdTable(rows: readonly (readonly string[])[], leftColumns = 1): string[] {
  const [head, ...body] = rows;
  return [
    `| ${head!.join(' | ')} |`,
    `|${head!.map((_, i) => (i < leftColumns ? '---' : '---:')).join('|')}|`,
    ...body.map((row) => `| ${row.join(' | ')} |`),
  ];
}

/** The same as aligned plain lines: the first `leftColumns` columns padded right, the rest left. */
export function textTable(rows: readonly (readonly string[])[], leftColumns = 1): string[] {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => (row[col] ?? '').length)));
  return rows.map((row) =>
    row
      .map((cell, col) => (col < leftColumns ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!)))
      .join('  ')
      .trimEnd(),
  );
}
