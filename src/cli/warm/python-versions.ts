/**
 * Which files of a PyPI project page belong to one version: PEP 440 versions compared in their
 * normal form (`1.0` == `1.0.0`, `1.0RC1` == `1.0rc1`, `v2` == `2`), and the version read back
 * from a distribution's file name (wheels: PEP 427; sdists: `<name>-<version>.tar.gz`, `.zip`, …,
 * whose name part may be spelt any way PEP 503 normalises to the project's name). Pure.
 */
import { normaliseProjectName } from "../../upstreams/pypi/project-name.js";

const PEP440 =
  /^v?(?:(\d+)!)?(\d+(?:\.\d+)*)(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?(\d+)?)?(?:-(\d+)|[-_.]?(post|rev|r)[-_.]?(\d+)?)?(?:[-_.]?(dev)[-_.]?(\d+)?)?(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$/;

const PRE_SPELLINGS: Readonly<Record<string, string>> = { a: "a", alpha: "a", b: "b", beta: "b", c: "rc", rc: "rc", pre: "rc", preview: "rc" };

/**
 * A version's comparable form: PEP 440's normal form with the release's trailing zeros dropped
 * (`1.0.0` and `1.0` are equal under `==`). A string that is not a PEP 440 version is compared as
 * it is, lower-cased.
 */
export function comparableVersion(version: string): string {
  const text = version.trim().toLowerCase();
  const match = PEP440.exec(text);
  if (match === null) return text;
  const [, epoch, release = "", pre, preNumber, postImplicit, post, postNumber, dev, devNumber, local] = match;
  const parts = release.split(".").map((part) => String(Number(part)));
  while (parts.length > 1 && parts.at(-1) === "0") parts.pop();
  let normal = `${epoch === undefined || Number(epoch) === 0 ? "" : `${Number(epoch)}!`}${parts.join(".")}`;
  if (pre !== undefined) normal += `${PRE_SPELLINGS[pre] ?? pre}${Number(preNumber ?? 0)}`;
  if (postImplicit !== undefined) normal += `.post${Number(postImplicit)}`;
  else if (post !== undefined) normal += `.post${Number(postNumber ?? 0)}`;
  if (dev !== undefined) normal += `.dev${Number(devNumber ?? 0)}`;
  if (local !== undefined) normal += `+${local.replace(/[-_]/g, ".")}`;
  return normal;
}

const SDIST_SUFFIXES = [".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tgz", ".tbz", ".tar", ".zip"];

/**
 * The version a distribution file of `project` (its normalised name) carries, or undefined when
 * the file name does not name that project (or is no distribution we know).
 */
export function distributionVersion(filename: string, project: string): string | undefined {
  if (filename.endsWith(".whl")) {
    // {distribution}-{version}(-{build})?-{python}-{abi}-{platform}.whl; the name part has no `-`.
    const parts = filename.slice(0, -".whl".length).split("-");
    if (parts.length < 5 || normaliseProjectName(parts[0] ?? "") !== project) return undefined;
    return parts[1];
  }
  const suffix = filename.endsWith(".egg") ? ".egg" : SDIST_SUFFIXES.find((candidate) => filename.toLowerCase().endsWith(candidate));
  if (suffix === undefined) return undefined;
  let stem = filename.slice(0, -suffix.length);
  // Eggs: {name}-{version}(-{python}(-{platform})?)?.egg
  if (suffix === ".egg") stem = stem.replace(/-py\d[^-]*(?:-.*)?$/, "");
  // The name part may itself contain `-`: try every split, the longest name first.
  for (let at = stem.lastIndexOf("-"); at > 0; at = stem.lastIndexOf("-", at - 1)) {
    if (normaliseProjectName(stem.slice(0, at)) === project) return stem.slice(at + 1);
  }
  return undefined;
}

/** Whether `filename` is a distribution of `project` at `version` (`exact`: `===`, compared as text). */
export function isDistributionOf(filename: string, project: string, version: string, exact = false): boolean {
  const found = distributionVersion(filename, project);
  if (found === undefined) return false;
  return exact ? found === version : comparableVersion(found) === comparableVersion(version);
}
