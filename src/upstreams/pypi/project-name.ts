/**
 * PEP 503 project names: `Vault_Probe.Gamma`, `vault-probe.gamma` and `VAULT--PROBE_gamma` are
 * one project, whose normalised name is `vault-probe-gamma`.
 */

/** PEP 508's valid names (before normalisation), case-insensitive. */
const VALID_NAME = /^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$/i;

export function isValidProjectName(name: string): boolean {
  return VALID_NAME.test(name);
}

/** PEP 503: runs of `-`, `_` and `.` become one `-`, and the name is lower-cased. */
export function normaliseProjectName(name: string): string {
  return name.replace(/[-_.]+/g, "-").toLowerCase();
}
