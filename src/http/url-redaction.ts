/**
 * URLs as they may be logged: without the credentials clients put in them. Query parameters whose
 * name looks like a credential (`api_key`, `token`, `access_token`, `X-Amz-Signature`, `sig`,
 * `password`, ...) keep their name with the value redacted, and userinfo (`http://user:pass@host/`,
 * as an absolute-form request line may carry) is dropped.
 */
const SECRET_PARAMETER = /(?:^|[_.-])(?:token|key|secret|password|passwd|pass|pwd|auth|authorization|credential|credentials|signature|sig|session|apikey)$|^(?:x-amz-|x-goog-)(?:signature|credential|security-token)$/i;

export const REDACTED = "[redacted]";

/** `url` (origin-form `/path?query` or absolute-form) with credential-looking query values and userinfo redacted. */
export function redactUrl(url: string): string {
  let result = url;
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#@]*@)/.exec(result);
  if (scheme?.[1] !== undefined) result = result.replace(scheme[1], "");
  const queryStart = result.indexOf("?");
  if (queryStart === -1) return result;
  const fragmentStart = result.indexOf("#", queryStart);
  const query = result.slice(queryStart + 1, fragmentStart === -1 ? undefined : fragmentStart);
  const redacted = query
    .split("&")
    .map((pair) => {
      const equals = pair.indexOf("=");
      const rawName = equals === -1 ? pair : pair.slice(0, equals);
      let name = rawName;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, " "));
      } catch {
        // keep the raw name
      }
      return equals !== -1 && SECRET_PARAMETER.test(name) ? `${rawName}=${REDACTED}` : pair;
    })
    .join("&");
  return `${result.slice(0, queryStart + 1)}${redacted}${fragmentStart === -1 ? "" : result.slice(fragmentStart)}`;
}
