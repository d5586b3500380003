/**
 * The vault's web UI: a dashboard, downloads in progress, the cache, the object store and each
 * backend's client setup, over the vault's own JSON API with a token kept in memory.
 */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { onTokenRejected, setToken } from "./api";
import { CacheBrowser } from "./pages/cache";
import { Backends } from "./pages/backends";
import { Dashboard } from "./pages/dashboard";
import { Downloads } from "./pages/downloads";
import { Objects } from "./pages/objects";
import { SignIn, type SignedIn } from "./pages/sign-in";

const PAGES = [
  { path: "dashboard", title: "Dashboard", view: Dashboard, needs: "admin" },
  { path: "downloads", title: "Downloads", view: Downloads, needs: "admin" },
  { path: "cache", title: "Cache", view: CacheBrowser, needs: "admin" },
  { path: "objects", title: "Objects", view: Objects, needs: "read" },
  { path: "backends", title: "Backends", view: Backends, needs: "read" },
] as const;

type PagePath = (typeof PAGES)[number]["path"];

function currentPath(): PagePath | undefined {
  const wanted = location.hash.replace(/^#\/?/, "");
  return PAGES.find((page) => page.path === wanted)?.path;
}

function App() {
  const [session, setSession] = useState<SignedIn | undefined>(undefined);
  const [path, setPath] = useState<PagePath | undefined>(currentPath());
  const [signedOutReason, setSignedOutReason] = useState<string | undefined>(undefined);

  useEffect(() => {
    const onHash = (): void => setPath(currentPath());
    window.addEventListener("hashchange", onHash);
    onTokenRejected((message) => {
      setToken(undefined);
      setSession(undefined);
      setSignedOutReason(message);
    });
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  useEffect(() => {
    const page = PAGES.find((candidate) => candidate.path === path);
    document.title = session === undefined ? "Sign in · artifact-vault" : `${page?.title ?? "Dashboard"} · artifact-vault`;
  }, [path, session]);

  if (session === undefined) {
    return (
      <SignIn
        reason={signedOutReason}
        onSignedIn={(signedIn) => {
          setToken(signedIn.token);
          setSignedOutReason(undefined);
          setSession(signedIn);
          // An admin token starts on the dashboard; one without the admin scope where it can do something.
          if (path === undefined || (!signedIn.admin && PAGES.find((page) => page.path === path)?.needs === "admin")) {
            const start: PagePath = signedIn.admin ? "dashboard" : "objects";
            location.hash = `#/${start}`;
            setPath(start);
          }
        }}
      />
    );
  }

  const page = PAGES.find((candidate) => candidate.path === path) ?? PAGES[0];
  const View = page.view;
  return (
    <>
      <a class="skip-link" href="#main" onClick={(event) => {
        event.preventDefault();
        document.getElementById("main")?.focus();
      }}>
        Skip to content
      </a>
      <header class="top">
        <p class="brand">artifact-vault</p>
        <nav aria-label="Pages">
          <ul>
            {PAGES.map((candidate) => (
              <li key={candidate.path}>
                <a href={`#/${candidate.path}`} aria-current={candidate.path === page.path ? "page" : undefined}>
                  {candidate.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <p class="session">
          <span class="muted">{session.admin ? "Signed in (admin)" : "Signed in"}</span>
          <button
            type="button"
            class="small"
            onClick={() => {
              setToken(undefined);
              setSession(undefined);
              setSignedOutReason("Signed out.");
            }}
          >
            Sign out
          </button>
        </p>
      </header>
      <main id="main" tabIndex={-1}>
        <View key={page.path} />
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root !== null) render(<App />, root);
