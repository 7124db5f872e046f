export interface Summary {
  passed: number;
  failed: number;
  skipped: number;
  line: string;
}

export function summarize(report: unknown, status: number | null): Summary;
