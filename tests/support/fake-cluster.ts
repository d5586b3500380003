/**
 * A primary's hub and its workers' links in one process, for the unit tests of what crosses the
 * workers' link (`src/cluster/*-link.test.ts`): the link carries JSON asynchronously, as the IPC
 * channel does. The real channel (node:cluster, batching) is `tests/integration/workers.test.ts`.
 */
import { ClusterHub } from "../../src/cluster/hub.js";
import type { EventLink } from "../../src/cluster/store-link.js";

export class FakeCluster {
  readonly hub: ClusterHub;
  readonly links = new Map<number, FakeLink>();

  /** `serve` puts the primary's side of what is tested on the hub (`serveClusterMetrics`, …). */
  constructor(serve: (hub: ClusterHub) => void) {
    this.hub = new ClusterHub({
      emit: (worker, name, data) => this.links.get(worker)?.deliver(name, data),
      workers: () => this.links.keys(),
    });
    serve(this.hub);
  }

  /** A worker that has just started: its link. */
  worker(id: number): FakeLink {
    const link = new FakeLink(this.hub, id);
    this.links.set(id, link);
    this.hub.workerStarted(id);
    return link;
  }

  /** A worker that exits. */
  kill(id: number): void {
    this.links.delete(id);
    this.hub.workerGone(id);
  }
}

export class FakeLink implements EventLink {
  readonly events = new Map<string, (data: unknown) => void>();
  /** Called instead of the handler when set: a worker that is slow to answer. */
  intercept: ((name: string, data: unknown) => void) | undefined;

  constructor(
    private readonly hub: ClusterHub,
    private readonly id: number,
  ) {}

  async call(op: string, ...args: unknown[]): Promise<unknown> {
    await new Promise((resolve) => setImmediate(resolve));
    const answer = await this.hub.handle(this.id, op, JSON.parse(JSON.stringify(args)) as unknown[]);
    return answer === undefined ? undefined : (JSON.parse(JSON.stringify(answer)) as unknown);
  }

  post(op: string, ...args: unknown[]): void {
    void this.call(op, ...args);
  }

  onEvent(name: string, handler: (data: unknown) => void): void {
    this.events.set(name, handler);
  }

  deliver(name: string, data: unknown): void {
    const wire = JSON.parse(JSON.stringify(data)) as unknown;
    setImmediate(() => (this.intercept === undefined ? this.events.get(name)?.(wire) : this.intercept(name, wire)));
  }
}
