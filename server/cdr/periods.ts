/** Reporting periods of call records: UTC days and months, named YYYY-MM-DD and YYYY-MM. */

export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function utcMonth(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}

/** First instant after the UTC month that contains `ms`. */
export function monthEnd(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** First instant after the UTC day that contains `ms`. */
export function dayEnd(ms: number): number {
  return (Math.floor(ms / 86_400_000) + 1) * 86_400_000;
}

/** A period name given on a command line: YYYY-MM-DD or YYYY-MM. */
export function parsePeriod(text: string): { kind: 'day' | 'month'; name: string; month: string } | null {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text) && !Number.isNaN(Date.parse(`${text}T00:00:00Z`))) return { kind: 'day', name: text, month: text.slice(0, 7) };
  if (/^\d{4}-\d{2}$/.test(text) && !Number.isNaN(Date.parse(`${text}-01T00:00:00Z`))) return { kind: 'month', name: text, month: text };
  return null;
}
