/**
 * The base URL of a deployed (or local) service as the scripts take it: the CDK `ApiUrl` output
 * (which already has `https://` and a trailing slash), a bare host, or the local server's URL.
 */
export class ApiUrlError extends Error {
  override readonly name = "ApiUrlError";
}

/**
 * `https://abc.execute-api.eu-west-1.amazonaws.com/` → `https://abc.execute-api.eu-west-1.amazonaws.com`.
 * A bare host gets `https://`; a doubled scheme (`https://https://…`, from pasting the output
 * after a typed `https://`) is refused rather than guessed at.
 */
export const normalizeApiUrl = (input: string): string => {
  const text = input.trim();
  if (!text)
    throw new ApiUrlError(
      "--url is required: the ApiUrl output of the stack, e.g. https://abc.execute-api.eu-west-1.amazonaws.com/",
    );
  const twice = () =>
    new ApiUrlError(
      `--url has its scheme twice ("${text}"): pass the ApiUrl output as it is, it already starts with https://.`,
    );
  if (/^[a-z][a-z0-9+.-]*:\/\/+[a-z][a-z0-9+.-]*:\/\//i.test(text)) throw twice();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ApiUrlError(`--url is not a URL: "${text}".`);
  }
  // `https://https//x` parses with the host "https".
  if (url.hostname === "https" || url.hostname === "http") throw twice();
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new ApiUrlError(`--url must be an http(s) URL, not "${text}".`);
  if (url.search || url.hash || url.username || url.password)
    throw new ApiUrlError(`--url must be a base URL without query, fragment or credentials, not "${text}".`);
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
};

/** A route path under the base URL: exactly one slash between them. */
export const routeUrl = (base: string, path: string): string => `${base}/${path.replace(/^\/+/, "")}`;
