import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, probeToken } from "../api";
import { Notice } from "../components";

export interface SignedIn {
  readonly token: string;
  readonly admin: boolean;
  readonly read: boolean;
}

/** Asks for a token, checks it against the vault, and hands it to the app (memory only). */
export function SignIn({ onSignedIn, reason }: { onSignedIn: (session: SignedIn) => void; reason: string | undefined }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    const candidate = token.trim();
    if (candidate === "") {
      setError("Enter a token.");
      input.current?.focus();
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      const can = await probeToken(candidate);
      onSignedIn({ token: candidate, ...can });
    } catch (failure) {
      setError(failure instanceof ApiError ? failure.message : "Signing in failed.");
      setBusy(false);
      input.current?.select();
    }
  };

  return (
    <main id="main" class="sign-in">
      <h1>Sign in to artifact-vault</h1>
      {reason !== undefined && <Notice kind="info">{reason}</Notice>}
      <form onSubmit={(event) => void submit(event)} aria-describedby="token-help" noValidate>
        <label for="token">API token</label>
        <input
          ref={input}
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={token}
          aria-invalid={error === undefined ? undefined : "true"}
          aria-describedby={error === undefined ? "token-help" : "token-error token-help"}
          onInput={(event) => setToken(event.currentTarget.value)}
        />
        {error !== undefined && (
          <p id="token-error" class="field-error" role="alert">
            {error}
          </p>
        )}
        <p id="token-help" class="hint">
          A token from <code>artifact-vault tokens add NAME --scope read --scope admin</code>. It is kept in this tab&apos;s memory only: reloading the page
          or closing the tab signs you out.
        </p>
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
