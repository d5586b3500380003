/**
 * The worker's end of its IPC channel to the primary (node:cluster's `process.send`). Everything
 * queued during one event-loop turn leaves as one message, in order, so that posting a count per
 * request costs a small part of a message under load; answers come back the same way.
 */
import { VaultError } from "../core/errors.js";
import type { EventLink } from "./store-link.js";

/** A message between a worker and the primary (JSON over the cluster's channel). */
export interface LinkMessage {
  /** Marks our messages among node:cluster's own. */
  readonly av: 1;
  /** Worker → primary: operations; `id` when an answer is wanted. */
  readonly ops?: ReadonlyArray<{ readonly id?: number; readonly op: string; readonly args: unknown[] }>;
  /** Primary → worker: answers to operations. */
  readonly replies?: ReadonlyArray<{ readonly id: number; readonly value?: unknown; readonly error?: string }>;
  /** Primary → worker: events. */
  readonly events?: ReadonlyArray<{ readonly name: string; readonly data: unknown }>;
}

export function isLinkMessage(message: unknown): message is LinkMessage {
  return typeof message === "object" && message !== null && (message as { av?: unknown }).av === 1;
}

/** What the link needs of its process: `process` in a worker. */
export interface ParentPort {
  send?: ((message: unknown, handle?: undefined, options?: object, callback?: (error: Error | null) => void) => boolean) | undefined;
  on(event: "message", listener: (message: unknown) => void): unknown;
  on(event: "disconnect", listener: () => void): unknown;
}

export class WorkerLink implements EventLink {
  #queue: Array<{ id?: number; op: string; args: unknown[] }> = [];
  #flushing = false;
  #nextId = 1;
  #closed = false;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  readonly #events = new Map<string, (data: unknown) => void>();

  constructor(private readonly port: ParentPort = process) {
    port.on("message", (message) => {
      if (isLinkMessage(message)) this.#receive(message);
    });
    port.on("disconnect", () => this.#close());
  }

  call(op: string, ...args: unknown[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(lost());
    const id = this.#nextId++;
    const answer = new Promise<unknown>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    this.#enqueue({ id, op, args });
    return answer;
  }

  post(op: string, ...args: unknown[]): void {
    if (!this.#closed) this.#enqueue({ op, args });
  }

  onEvent(name: string, handler: (data: unknown) => void): void {
    this.#events.set(name, handler);
  }

  /** Sends a message of its own (start-up reports) after what is queued; resolves once it is out. */
  sendNow(message: object): Promise<void> {
    this.#flush();
    return new Promise<void>((resolve) => {
      try {
        if (this.port.send?.(message, undefined, {}, () => resolve()) === undefined) resolve();
      } catch {
        resolve(); // the primary is gone: nobody to tell
      }
    });
  }

  #enqueue(op: { id?: number; op: string; args: unknown[] }): void {
    this.#queue.push(op);
    if (this.#flushing) return;
    this.#flushing = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushing = false;
    if (this.#queue.length === 0) return;
    const ops = this.#queue;
    this.#queue = [];
    try {
      this.port.send?.({ av: 1, ops } satisfies LinkMessage);
    } catch {
      this.#close(); // the channel is gone: the primary died
    }
  }

  #receive(message: LinkMessage): void {
    for (const reply of message.replies ?? []) {
      const pending = this.#pending.get(reply.id);
      if (pending === undefined) continue;
      this.#pending.delete(reply.id);
      if (reply.error === undefined) pending.resolve(reply.value);
      else pending.reject(new VaultError("internal", `the vault's primary process: ${reply.error}`));
    }
    for (const event of message.events ?? []) this.#events.get(event.name)?.(event.data);
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const pending of this.#pending.values()) pending.reject(lost());
    this.#pending.clear();
    this.#queue = [];
  }
}

function lost(): VaultError {
  return new VaultError("unavailable", "the vault's primary process is gone");
}
