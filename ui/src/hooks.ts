import { useEffect, useRef, useState } from "preact/hooks";

export interface Polled<T> {
  readonly data: T | undefined;
  readonly error: Error | undefined;
  /** When the last answer (or error) arrived, ms since the epoch. */
  readonly at: number | undefined;
}

/**
 * Calls `load` now and every `intervalMs` after each answer, while the page is visible (a hidden
 * tab asks nothing; it asks at once when shown again). A new `key` starts over.
 */
export function usePoll<T>(load: () => Promise<T>, intervalMs: number, key = ""): Polled<T> {
  const [state, setState] = useState<Polled<T>>({ data: undefined, error: undefined, at: undefined });
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let running = false;
    const tick = async (): Promise<void> => {
      timer = undefined;
      if (stopped || running || document.visibilityState !== "visible") return;
      running = true;
      try {
        const data = await loadRef.current();
        if (!stopped) setState({ data, error: undefined, at: Date.now() });
      } catch (error) {
        if (!stopped) setState((previous) => ({ data: previous.data, error: error instanceof Error ? error : new Error(String(error)), at: Date.now() }));
      } finally {
        running = false;
      }
      if (!stopped && document.visibilityState === "visible") timer = setTimeout(() => void tick(), intervalMs);
    };
    const onVisibility = (): void => {
      if (document.visibilityState === "visible" && timer === undefined) void tick();
    };
    setState({ data: undefined, error: undefined, at: undefined });
    void tick();
    document.addEventListener("visibilitychange", onVisibility);
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisibility);
    };
  }, [intervalMs, key]);
  return state;
}
