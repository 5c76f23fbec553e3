/**
 * Connection quality 0-5 from the media job's stats row of a participant (`media.stats`):
 * 5 excellent, 4 good, 3 fair, 2 poor, 1 very poor, 0 no media (or nothing measured yet).
 * The job's own word (good / fair / poor / none) caps the score; loss, round-trip time and
 * jitter refine it, so a page can show bars the way RTC SDKs do.
 */

export type Quality = 0 | 1 | 2 | 3 | 4 | 5;

/** One participant's row of `media.stats`. */
export interface StatsRow {
  participant_id?: number;
  role: string;
  in_kbps?: number | null;
  out_kbps?: number | null;
  loss_pct?: number | null;
  jitter_ms?: number | null;
  rtt_ms?: number | null;
  width?: number | null;
  height?: number | null;
  fps?: number | null;
  /** The job's word: good | fair | poor | none. */
  quality?: string;
  frame_encryption?: string | null;
  frames_sealed?: number;
  frames_opened?: number;
  frames_dropped?: number;
}

const CAP: Record<string, Quality> = { good: 5, fair: 3, poor: 2, none: 0 };

function num(v: number | null | undefined): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** The score a measurement allows: the first step whose limit it exceeds, else 5. */
function scoreFor(value: number | null, steps: [number, number][]): number {
  if (value === null) return 5;
  for (const [limit, score] of steps) if (value > limit) return score;
  return 5;
}

const LOSS_STEPS: [number, number][] = [[15, 1], [8, 2], [3, 3], [1, 4]]; // percent
const RTT_STEPS: [number, number][] = [[600, 2], [300, 3], [150, 4]]; // ms
const JITTER_STEPS: [number, number][] = [[60, 3], [30, 4]]; // ms

export function qualityOf(row: StatsRow | null | undefined): Quality {
  if (!row) return 0;
  const cap = row.quality !== undefined && row.quality in CAP ? CAP[row.quality]! : 5;
  if (cap === 0) return 0;
  const score = Math.min(
    cap,
    scoreFor(num(row.loss_pct), LOSS_STEPS),
    scoreFor(num(row.rtt_ms), RTT_STEPS),
    scoreFor(num(row.jitter_ms), JITTER_STEPS),
  );
  return Math.max(1, score) as Quality;
}
