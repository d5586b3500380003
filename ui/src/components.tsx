import type { ComponentChildren, RefObject } from "preact";
import { useEffect, useId, useRef, useState } from "preact/hooks";

/** A page's heading: it takes the focus when the page opens, so screen readers announce it. */
export function PageHeading({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <h1 ref={ref} tabIndex={-1} class="page-heading">
      {children}
    </h1>
  );
}

/** An error or a success, said to screen readers as it appears. */
export function Notice({ kind, children }: { kind: "error" | "info" | "success"; children: ComponentChildren }) {
  return (
    <p class={`notice notice-${kind}`} role={kind === "error" ? "alert" : "status"}>
      {children}
    </p>
  );
}

/** A polite live region that is always in the page (so what is put in it later is announced). */
export function LiveStatus({ message }: { message: string }) {
  return (
    <p class="live-status" role="status" aria-live="polite">
      {message}
    </p>
  );
}

export interface Confirmation {
  readonly title: string;
  readonly message: ComponentChildren;
  readonly confirmLabel: string;
  readonly onConfirm: () => void;
}

/**
 * Asks before something that cannot be undone, in a modal `<dialog>`: the focus moves into it
 * (to Cancel, the safe choice), stays inside while it is open, Escape cancels, and the focus
 * returns to where it was when it closes.
 */
export function ConfirmDialog({ confirmation, onClose }: { confirmation: Confirmation | undefined; onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const cancel = useRef<HTMLButtonElement>(null);
  const returnTo = useRef<HTMLElement | null>(null);
  const titleId = useId();
  const messageId = useId();
  useEffect(() => {
    const element = dialog.current;
    if (element === null) return;
    if (confirmation !== undefined && !element.open) {
      returnTo.current = document.activeElement instanceof HTMLElement ? document.activeElement : null;
      element.showModal();
      cancel.current?.focus();
    } else if (confirmation === undefined && element.open) {
      element.close();
    }
  }, [confirmation]);
  const close = (): void => {
    onClose();
    const target = returnTo.current;
    returnTo.current = null;
    if (target !== null && target.isConnected) setTimeout(() => target.focus(), 0);
  };
  return (
    <dialog
      ref={dialog}
      class="confirm-dialog"
      aria-labelledby={titleId}
      aria-describedby={messageId}
      onCancel={(event) => {
        event.preventDefault();
        close();
      }}
    >
      {confirmation !== undefined && (
        <>
          <h2 id={titleId}>{confirmation.title}</h2>
          <div id={messageId}>{confirmation.message}</div>
          <div class="dialog-actions">
            <button ref={cancel} type="button" onClick={close}>
              Cancel
            </button>
            <button
              type="button"
              class="danger"
              onClick={() => {
                const confirmed = confirmation.onConfirm;
                close();
                confirmed();
              }}
            >
              {confirmation.confirmLabel}
            </button>
          </div>
        </>
      )}
    </dialog>
  );
}

/** Copies `text` to the clipboard (or, where the page may not, selects it for Ctrl+C). */
export function CopyButton({ text, label, target }: { text: string; label: string; target: RefObject<HTMLElement> }) {
  const [said, setSaid] = useState("");
  const copy = async (): Promise<void> => {
    try {
      if (navigator.clipboard === undefined) throw new Error("no clipboard");
      await navigator.clipboard.writeText(text);
      setSaid("Copied");
    } catch {
      const element = target.current;
      if (element !== null) {
        const range = document.createRange();
        range.selectNodeContents(element);
        const selection = window.getSelection();
        selection?.removeAllRanges();
        selection?.addRange(range);
      }
      setSaid("Selected: press Ctrl+C to copy");
    }
    setTimeout(() => setSaid(""), 4000);
  };
  return (
    <span class="copy">
      <button type="button" class="small" aria-label={label} onClick={() => void copy()}>
        Copy
      </button>
      <span role="status" class="copy-status">
        {said}
      </span>
    </span>
  );
}

/** A snippet of text to copy, wrapped (never scrolled sideways) so all of it is readable. */
export function Snippet({ text, label, caption }: { text: string; label: string; caption?: ComponentChildren }) {
  const pre = useRef<HTMLPreElement>(null);
  return (
    <figure class="snippet">
      <div class="snippet-bar">
        {caption !== undefined && <figcaption>{caption}</figcaption>}
        <CopyButton text={text} label={label} target={pre} />
      </div>
      <pre ref={pre}>
        <code>{text}</code>
      </pre>
    </figure>
  );
}
