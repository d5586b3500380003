/**
 * V8's young generation grows to 3 × 16 MiB under a streaming load and stays there: most of what
 * a vault process's resident memory gains after its first large downloads (and the 64 KiB socket
 * buffers its scavenges free, which wait for them). A vault allocates short-lived objects only (per
 * request, per chunk), which a 4 MiB semi-space collects as cheaply (4 KiB hits side by side: no
 * difference beyond the noise; 1 MiB costs some 8%), so the vault runs with that cap: -25 to
 * -40 MB per process, measured. V8 sizes its heap as the process starts, so the cap is a node flag:
 * the `artifact-vault` command's own line passes it, as do `npm start`, the systemd unit, the
 * image and, for its workers, the cluster primary.
 */
export const SEMI_SPACE_FLAG = "--max-semi-space-size";
export const SEMI_SPACE_MIB = 4;
export const SEMI_SPACE_CAP = `${SEMI_SPACE_FLAG}=${SEMI_SPACE_MIB}`;

/** Whether node's flags or `NODE_OPTIONS` set a semi-space size (ours or the operator's). */
export function semiSpaceGiven(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...(nodeOptions ?? "").split(/\s+/)].some((flag) => flag.replace(/_/g, "-").startsWith(SEMI_SPACE_FLAG));
}

/** `execArgv` with the semi-space cap added, unless a size is already given. */
export function withSemiSpaceCap(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  return semiSpaceGiven(execArgv, nodeOptions) ? [...execArgv] : [...execArgv, SEMI_SPACE_CAP];
}
