/**
 * A download's body that survives the upstream breaking off: when the body errors (or ends
 * short of the known length), the rest is asked for again through the backend's fetch with a
 * `resume` request, and its bytes follow on in the same stream — so the fill, its spool, its
 * hash and every client tailing it see one body. The rule: only a part that `checkResumedAnswer`
 * accepts is ever spliced on; any other answer, a download the first answer made unresumable,
 * and the `RESUME_LIMIT`-th break fail it exactly as they did before resumes (the fill still
 * checks the length and digest of the whole at the end).
 */
import type { Readable } from "node:stream";
import type { Logger } from "pino";
import { abortableSleep } from "../core/abortable-sleep.js";
import type { ArtifactRef } from "../core/cache/artifact-ref.js";
import type { UpstreamAnswer, UpstreamFetch } from "../core/cache/artifact-source.js";
import { checkResumedAnswer, RESUME_LIMIT, resumeDelayMs, resumeRequest, type ResumeDecision, type ResumePlan } from "../core/cache/resume-plan.js";
import { VaultError, isVaultError } from "../core/errors.js";

/** How often and when to resume; tests replace the waits. */
export interface ResumeSettings {
  /** Resumes per download at most (default `RESUME_LIMIT`). */
  readonly limit?: number | undefined;
  /** Waits between a break and its resume; default a timer the signal cancels. */
  readonly sleep?: ((ms: number, signal: AbortSignal) => Promise<void>) | undefined;
  /** In [0, 1), for jitter; default `Math.random`. */
  readonly random?: (() => number) | undefined;
}

export interface ResumeContext {
  /** The ref as its backend resolved it: the fetch is asked for it again. */
  readonly ref: ArtifactRef;
  readonly fetch: UpstreamFetch;
  /** The download's own signal (shutdown): it cancels a wait or a resume in progress. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly decision: ResumeDecision;
  readonly settings?: ResumeSettings | undefined;
}

/** The first answer's body, continued by resumed parts when it breaks off. */
export async function* resumingBody(first: Readable, context: ResumeContext): AsyncGenerator<Buffer, void, undefined> {
  const { decision, signal } = context;
  const limit = context.settings?.limit ?? RESUME_LIMIT;
  let body = first;
  let received = 0;
  let resumes = 0;
  try {
    for (;;) {
      let failure: unknown;
      try {
        for await (const chunk of body) {
          received += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      } catch (error) {
        failure = error;
      }
      if (failure === undefined) {
        // Ended: whole, or short (the fill tells it apart, unless a resume can fetch the rest).
        if (!decision.resumable || received >= decision.plan.total) return;
        failure = new VaultError("upstream_failed", `upstream ended the body after ${received} of ${decision.plan.total} bytes`);
      }
      if (!isBreakOff(failure, signal)) throw failure;
      if (!decision.resumable) throw withReason(failure, `not resumed: ${decision.reason}`);
      for (;;) {
        if (resumes >= limit) throw withReason(failure, `gave up after ${limit} resumes`);
        resumes++;
        const next = await resume(context, decision.plan, received, resumes, failure);
        if (next.body !== undefined) {
          body = next.body;
          break;
        }
        failure = next.failure;
      }
    }
  } finally {
    body.destroy();
  }
}

/**
 * One resume attempt after a wait: the body of the rest, or the failure when the upstream
 * could not be reached again (worth another attempt). An answer that is not the rest throws.
 */
async function resume(context: ResumeContext, plan: ResumePlan, offset: number, attempt: number, reason: unknown): Promise<{ body: Readable; failure?: undefined } | { body?: undefined; failure: unknown }> {
  const { ref, signal, settings } = context;
  context.logger.warn({ reqId: ref.requestId, key: ref.cacheKey, offset, total: plan.total, attempt, reason: describe(reason) }, "upstream broke off mid-body; resuming the download");
  await (settings?.sleep ?? abortableSleep)(resumeDelayMs(attempt, (settings?.random ?? Math.random)()), signal);
  let answer: UpstreamAnswer;
  try {
    answer = await context.fetch(ref, undefined, signal, resumeRequest(plan, offset));
  } catch (error) {
    if (isBreakOff(error, signal)) return { failure: error };
    throw error;
  }
  // Observed at once, as the upstream client asks; iterating it still sees the error.
  answer.body.on("error", () => undefined);
  const problem = checkResumedAnswer(plan, offset, answer.status, answer.headers);
  if (problem !== undefined) {
    answer.body.destroy();
    throw new VaultError("upstream_failed", `upstream broke off at byte ${offset} and the download cannot be resumed: ${problem}`, { cause: reason });
  }
  return { body: answer.body };
}

/** The upstream failed or stalled, and we are not shutting down: a resume may help. */
function isBreakOff(error: unknown, signal: AbortSignal): boolean {
  return !signal.aborted && isVaultError(error) && (error.kind === "upstream_failed" || error.kind === "upstream_timeout");
}

/** The same failure (same kind), saying why it was not resumed. */
function withReason(failure: unknown, reason: string): VaultError {
  const kind = isVaultError(failure) ? failure.kind : "upstream_failed";
  return new VaultError(kind, `${describe(failure)} (${reason})`, { cause: failure });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
