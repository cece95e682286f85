import type { Box, Detection, EventMessage } from '../types';
import type { Match } from './filter';

export const DEFAULT_HOLD_OFF_MS = 2000;
export const DEFAULT_UPDATE_INTERVAL_MS = 1000;

/** One thing in view: a label (in a zone) that keeps being detected. */
export interface Occurrence {
  readonly eventId: string;
  readonly key: string;
  readonly label: string;
  readonly zone?: string;
  readonly startedAt: number;
  lastSeen: number;
  lastEmitted: number;
  bestScore: number;
  lastScore: number;
  box?: Box;
  frame?: { width: number; height: number };
  /** Frames/windows it was seen in. */
  seen: number;
  /** Detections of it in the latest frame (several people in one zone are one occurrence). */
  instances: number;
  snapshot?: string;
}

export interface Transition {
  readonly phase: 'start' | 'update' | 'end';
  readonly occurrence: Occurrence;
  readonly ts: number;
}

export interface TrackerOptions {
  readonly holdOffMs?: number;
  readonly updateIntervalMs?: number;
  readonly newId: () => string;
}

/**
 * Hold-off: an occurrence starts the first time its label (and zone) passes the rules, is updated at most
 * every `updateIntervalMs` while it keeps being seen, and ends once it has not been seen for `holdOffMs`.
 * So a person standing in view for a minute is one start, a few updates and one end, not 30 events a second.
 */
export class EventTracker {
  private readonly open = new Map<string, Occurrence>();
  private readonly holdOffMs: number;
  private readonly updateIntervalMs: number;

  constructor(private readonly opts: TrackerOptions) {
    this.holdOffMs = opts.holdOffMs ?? DEFAULT_HOLD_OFF_MS;
    this.updateIntervalMs = opts.updateIntervalMs ?? DEFAULT_UPDATE_INTERVAL_MS;
  }

  /** Feed the matches of one frame seen at `now`; returns starts and updates, then ends of those gone. */
  observe(matches: readonly Match[], now: number, frame?: { width: number; height: number }): Transition[] {
    const best = new Map<string, { m: Match; n: number }>();
    for (const m of matches) {
      const key = `${m.detection.label}\u0000${m.zone ?? ''}`;
      const cur = best.get(key);
      if (!cur) best.set(key, { m, n: 1 });
      else best.set(key, { m: m.detection.score > cur.m.detection.score ? m : cur.m, n: cur.n + 1 });
    }
    const out: Transition[] = [];
    for (const [key, { m, n }] of best) {
      const d: Detection = m.detection;
      let occ = this.open.get(key);
      if (!occ) {
        occ = {
          eventId: this.opts.newId(),
          key,
          label: d.label,
          ...(m.zone !== undefined ? { zone: m.zone } : {}),
          startedAt: now,
          lastSeen: now,
          lastEmitted: now,
          bestScore: d.score,
          lastScore: d.score,
          seen: 1,
          instances: n,
          ...(d.box ? { box: d.box } : {}),
          ...(frame ? { frame } : {}),
        };
        this.open.set(key, occ);
        out.push({ phase: 'start', occurrence: occ, ts: now });
        continue;
      }
      occ.lastSeen = now;
      occ.seen++;
      occ.instances = n;
      occ.lastScore = d.score;
      occ.bestScore = Math.max(occ.bestScore, d.score);
      if (d.box) occ.box = d.box;
      if (frame) occ.frame = frame;
      if (now - occ.lastEmitted >= this.updateIntervalMs) {
        occ.lastEmitted = now;
        out.push({ phase: 'update', occurrence: occ, ts: now });
      }
    }
    out.push(...this.tick(now));
    return out;
  }

  /** End occurrences not seen for the hold-off; call it also when no frames arrive. */
  tick(now: number): Transition[] {
    const out: Transition[] = [];
    for (const [key, occ] of this.open) {
      if (now - occ.lastSeen > this.holdOffMs) {
        this.open.delete(key);
        out.push({ phase: 'end', occurrence: occ, ts: now });
      }
    }
    return out;
  }

  /** End everything (pipeline stopping). */
  endAll(now: number): Transition[] {
    const out = [...this.open.values()].map((occurrence) => ({ phase: 'end' as const, occurrence, ts: now }));
    this.open.clear();
    return out;
  }

  get openCount(): number {
    return this.open.size;
  }
}

export interface EventContext {
  readonly pipelineId: string;
  readonly model?: { readonly name: string; readonly version: string };
  readonly newId: () => string;
}

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

/** The shared wire message for a transition: box normalised to the frame, best score so far. */
export function toEventMessage(t: Transition, ctx: EventContext): EventMessage {
  const o = t.occurrence;
  const box =
    o.box && o.frame
      ? {
          x: clamp01(o.box.x1 / o.frame.width),
          y: clamp01(o.box.y1 / o.frame.height),
          w: clamp01((o.box.x2 - o.box.x1) / o.frame.width),
          h: clamp01((o.box.y2 - o.box.y1) / o.frame.height),
        }
      : undefined;
  return {
    v: 1,
    id: ctx.newId(),
    ts: Math.round(t.ts),
    eventId: o.eventId,
    phase: t.phase,
    pipeline: ctx.pipelineId,
    label: o.label,
    score: clamp01(t.phase === 'start' ? o.lastScore : o.bestScore),
    ...(box ? { box } : {}),
    ...(o.zone !== undefined ? { zone: o.zone } : {}),
    ...(o.snapshot !== undefined ? { snapshot: o.snapshot } : {}),
    ...(ctx.model ? { model: { name: ctx.model.name, version: ctx.model.version } } : {}),
    startedAt: Math.round(o.startedAt),
    data: { seen: o.seen, instances: o.instances, lastScore: Number(o.lastScore.toFixed(4)) },
  };
}
