import type { Detection, InferenceResult, RulesConfig } from '../types';
import { zoneOf } from './zones';

/** A detection that passed the rules, with the zone it is in (when zones are configured). */
export interface Match {
  readonly detection: Detection;
  readonly zone?: string;
}

/**
 * Labels of interest, minimum score, minimum box area (fraction of the frame) and zones. Detections without a
 * box (classification, voice activity) are not subject to the area and zone rules.
 */
export function applyRules(result: InferenceResult, rules: RulesConfig): Match[] {
  const labels = rules.labels && rules.labels.length > 0 ? new Set(rules.labels) : undefined;
  const frame = result.frame;
  const out: Match[] = [];
  for (const d of result.detections) {
    if (labels && !labels.has(d.label)) continue;
    if (rules.minScore !== undefined && d.score < rules.minScore) continue;
    if (!d.box || !frame) {
      out.push({ detection: d });
      continue;
    }
    const area = ((d.box.x2 - d.box.x1) * (d.box.y2 - d.box.y1)) / (frame.width * frame.height);
    if (rules.minBoxArea !== undefined && area < rules.minBoxArea) continue;
    if (rules.zones && rules.zones.length > 0) {
      const zone = zoneOf(d.box, frame, rules.zones);
      if (!zone) continue;
      out.push({ detection: d, zone: zone.id });
    } else {
      out.push({ detection: d });
    }
  }
  return out;
}
