/**
 * Resuming a download whose upstream broke off mid-body, decided without I/O. The rule: a part
 * is spliced onto the bytes already received only when it provably continues the same file —
 * a `206` whose `Content-Range` runs from exactly the offset to the end of the known length,
 * asked for with `If-Range` (the first answer's strong ETag, else its Last-Modified when that is
 * a strong validator), and whose validators, if it sends any, are the first answer's. Without a
 * validator, only an artifact whose digest is known is resumed (the digest, checked at the end
 * as always, tells a changed file). Anything else fails the download as if there were no resume.
 */
import type { ResumeRequest } from "./artifact-source.js";

/** Resumes per download at most. */
export const RESUME_LIMIT = 3;
/** The wait before the first resume; it doubles for each next one (±20% jitter). */
export const RESUME_BASE_DELAY_MS = 200;

/** A Last-Modified at least this long before the answer's Date is a strong validator (RFC 9110 §8.8.2.2). */
const STRONG_DATE_MARGIN_MS = 60_000;

/** How a download may be resumed, fixed by its first answer. */
export interface ResumePlan {
  /** The artifact's length: a resumed part must run to its end. */
  readonly total: number;
  /** Sent as `If-Range`; undefined when the known digest alone guards the splice. */
  readonly ifRange: string | undefined;
  /** The first answer's validators, which a part must not contradict. */
  readonly etag: string | undefined;
  readonly lastModified: string | undefined;
}

export type ResumeDecision = { readonly resumable: true; readonly plan: ResumePlan } | { readonly resumable: false; readonly reason: string };

export interface FirstAnswer {
  /** The length the download must have (the ref's, else the announced Content-Length). */
  readonly total: number | undefined;
  /** Lowercase names. */
  readonly headers: Readonly<Record<string, string>>;
  /** Whether the bytes will be checked against a known digest at the end. */
  readonly hasDigest: boolean;
  /** `UpstreamAnswer.resumable`: false when the backend cannot continue this body. */
  readonly resumable: boolean | undefined;
}

/** Whether, and how, a download that starts with this answer may be resumed if it breaks off. */
export function decideResume(first: FirstAnswer): ResumeDecision {
  const refuse = (reason: string): ResumeDecision => ({ resumable: false, reason });
  if (first.resumable === false) return refuse("the backend cannot resume this answer");
  const { total, headers } = first;
  if (total === undefined) return refuse("its length is unknown");
  if (/\bnone\b/i.test(headers["accept-ranges"] ?? "")) return refuse("the upstream accepts no ranges");
  if (!isIdentity(headers["content-encoding"])) return refuse("it is content-encoded");
  const etag = headers["etag"];
  const lastModified = headers["last-modified"];
  let ifRange: string | undefined;
  if (etag !== undefined && isStrongEtag(etag)) ifRange = etag;
  // An HTTP-date may go in If-Range only when there is no entity tag at all and the date is strong.
  else if (etag === undefined && lastModified !== undefined && isStrongDate(lastModified, headers["date"])) ifRange = lastModified;
  if (ifRange !== undefined || first.hasDigest) return { resumable: true, plan: { total, ifRange, etag, lastModified } };
  return refuse("the upstream sent no strong validator (ETag or Last-Modified) and the digest is not known");
}

/** The request for the rest once `offset` bytes have arrived. */
export function resumeRequest(plan: ResumePlan, offset: number): ResumeRequest {
  return { offset, ifRange: plan.ifRange };
}

/**
 * Why the answer to a resume request cannot continue the download at `offset`; undefined when
 * it can (its body is then the bytes from `offset` to the end).
 */
export function checkResumedAnswer(plan: ResumePlan, offset: number, status: number, headers: Readonly<Record<string, string>>): string | undefined {
  if (status === 200) return "the upstream answered 200 with the whole file (it ignored the range, or the file changed)";
  if (status !== 206) return `the upstream answered ${status}`;
  if (!isIdentity(headers["content-encoding"])) return "the part is content-encoded";
  const range = parseContentRange(headers["content-range"]);
  if (range === undefined) return `the 206 has no valid single Content-Range (${headers["content-range"] ?? "none"})`;
  if (range.complete !== undefined && range.complete !== plan.total) return `the file is now ${range.complete} bytes long, not ${plan.total}`;
  if (range.first !== offset) return `the part starts at byte ${range.first}, not ${offset}`;
  if (range.last !== plan.total - 1) return `the part ends at byte ${range.last}, not at the end (${plan.total - 1})`;
  const length = headers["content-length"];
  if (length !== undefined && Number(length) !== plan.total - offset) return `the part announces ${length} bytes, not ${plan.total - offset}`;
  const etag = headers["etag"];
  if (plan.etag !== undefined && etag !== undefined && etag !== plan.etag) return `the ETag changed from ${plan.etag} to ${etag}`;
  const lastModified = headers["last-modified"];
  if (plan.lastModified !== undefined && lastModified !== undefined && !sameDate(lastModified, plan.lastModified)) {
    return `Last-Modified changed from ${plan.lastModified} to ${lastModified}`;
  }
  return undefined;
}

/** `Content-Range: bytes <first>-<last>/<complete or *>` (RFC 9110 §14.4); undefined when malformed or unsatisfied. */
export function parseContentRange(value: string | undefined): { first: number; last: number; complete: number | undefined } | undefined {
  const match = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value ?? "");
  if (match === null) return undefined;
  const first = Number(match[1]);
  const last = Number(match[2]);
  const complete = match[3] === "*" ? undefined : Number(match[3]);
  if (![first, last, complete ?? 0].every(Number.isSafeInteger) || first > last) return undefined;
  if (complete !== undefined && last >= complete) return undefined;
  return { first, last, complete };
}

/** The wait before the `attempt`-th resume (1-based): 200 ms, 400 ms, 800 ms, ... each ±20% (`random` 0.5 gives the nominal). */
export function resumeDelayMs(attempt: number, random: number): number {
  return Math.round(RESUME_BASE_DELAY_MS * 2 ** (attempt - 1) * (0.8 + 0.4 * random));
}

function isStrongEtag(etag: string): boolean {
  return /^"[^"]*"$/.test(etag.trim());
}

function isIdentity(encoding: string | undefined): boolean {
  return encoding === undefined || encoding.trim() === "" || encoding.trim().toLowerCase() === "identity";
}

function isStrongDate(lastModified: string, date: string | undefined): boolean {
  const modified = Date.parse(lastModified);
  const answered = date === undefined ? Number.NaN : Date.parse(date);
  return !Number.isNaN(modified) && !Number.isNaN(answered) && answered - modified >= STRONG_DATE_MARGIN_MS;
}

function sameDate(a: string, b: string): boolean {
  if (a === b) return true;
  const [left, right] = [Date.parse(a), Date.parse(b)];
  return !Number.isNaN(left) && left === right;
}
