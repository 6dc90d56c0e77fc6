/**
 * Figures, summary statistics and the printed tables (Markdown, so a run pastes straight into
 * RESULTS.md).
 *
 * @module
 */

import type { PeerName } from "./_peers.ts";

/** One row of the results: samples per peer. */
export interface Figure {
  /** Short label. */
  readonly label: string;
  /** Unit of the samples. */
  readonly unit: string;
  /** Which way is better. */
  readonly better: "higher" | "lower";
  /** Decimal places to print. */
  readonly digits: number;
  /** Samples by peer (one per repetition). */
  readonly samples: Map<PeerName, number[]>;
}

/** Creates an empty figure. */
export function figure(
  label: string,
  unit: string,
  better: "higher" | "lower",
  digits = 0,
): Figure {
  return { label, unit, better, digits, samples: new Map() };
}

/** Adds a sample for `peer`. */
export function addSample(target: Figure, peer: PeerName, value: number): void {
  if (!Number.isFinite(value)) return;
  const list = target.samples.get(peer) ?? [];
  list.push(value);
  target.samples.set(peer, list);
}

/** The `p`-th percentile (0..100) of sorted `values`, nearest rank. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** The median of `values` (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Median of `peer`'s samples of `target`, `NaN` when there are none. */
export function medianOf(target: Figure, peer: PeerName): number {
  return median(target.samples.get(peer) ?? []);
}

function number(value: number, digits: number): string {
  if (!Number.isFinite(value)) return "n/a";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function cell(target: Figure, peer: PeerName): string {
  const values = target.samples.get(peer);
  if (!values || values.length === 0) return "—";
  const m = number(median(values), target.digits);
  if (values.length === 1) return m;
  const lo = number(Math.min(...values), target.digits);
  const hi = number(Math.max(...values), target.digits);
  return `${m} (${lo}–${hi})`;
}

/** `a / b` as "1.23×", or "—" when either is missing. */
export function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : "—";
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** The medians table: one row per figure, one column per peer, "median (min–max)". */
export function mediansTable(figures: readonly Figure[], peers: readonly PeerName[]): string {
  return table(
    ["figure", "unit", ...peers],
    figures.map((f) => [f.label, f.unit, ...peers.map((p) => cell(f, p))]),
  );
}

/** The ratios table: each proxy's median against direct and against Dante. */
export function ratiosTable(figures: readonly Figure[], peers: readonly PeerName[]): string {
  const proxies = peers.filter((p) => p !== "direct");
  const columns: [PeerName, PeerName][] = [];
  for (const p of proxies) {
    if (peers.includes("direct")) columns.push([p, "direct"]);
    if (p !== "dante" && peers.includes("dante")) columns.push([p, "dante"]);
  }
  if (peers.includes("dualgate") && peers.includes("microsocks")) {
    columns.push(["dualgate", "microsocks"]);
  }
  return table(
    ["figure", "better", ...columns.map(([a, b]) => `${a} / ${b}`)],
    figures.map((f) => [
      f.label,
      f.better,
      ...columns.map(([a, b]) => ratio(medianOf(f, a), medianOf(f, b))),
    ]),
  );
}

/** One target of issue 7: a measured ratio or value against a bound. */
export interface Target {
  /** What is compared. */
  readonly label: string;
  /** The measured value (a ratio or an absolute figure). */
  readonly value: number;
  /** The bound. */
  readonly bound: number;
  /** `value >= bound` (`"min"`) or `value <= bound` (`"max"`). */
  readonly kind: "min" | "max";
  /** Printed unit for value and bound ("×" for ratios). */
  readonly unit: string;
}

/** The targets table with a verdict per row. */
export function targetsTable(targets: readonly Target[]): string {
  return table(
    ["target", "measured", "bound", "verdict"],
    targets.map((t) => {
      const ok = t.kind === "min" ? t.value >= t.bound : t.value <= t.bound;
      const verdict = Number.isFinite(t.value) ? (ok ? "met" : "**not met**") : "n/a";
      const digits = t.unit === "×" ? 2 : 1;
      return [
        t.label,
        `${number(t.value, digits)}${t.unit}`,
        `${t.kind === "min" ? "≥" : "≤"} ${number(t.bound, digits)}${t.unit}`,
        verdict,
      ];
    }),
  );
}
