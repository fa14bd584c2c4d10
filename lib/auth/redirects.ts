// Origin used only to resolve a path the way a browser would; its host never leaves this module.
const PROBE_ORIGIN = "http://vox.invalid";

/**
 * A same-origin path to go to after signing in, or the fallback (no open redirects). The
 * browser resolves a Location header with the WHATWG URL parser, which drops tabs and newlines,
 * treats `\` as `/` and reads `//host` as another host; so `next` is resolved the same way
 * against a placeholder origin and accepted only if it stays there. What comes back is the
 * parsed path, query and fragment, so the header holds exactly what was checked.
 */
export function safeNext(next: string | undefined | null, fallback: string): string {
  if (!next || next.length > 2000) return fallback;
  // Only a path: a scheme, a host or anything the parser would strip first is refused outright.
  if (!next.startsWith("/") || next.startsWith("//") || hasStrippedCharacter(next)) return fallback;
  let url: URL;
  try {
    url = new URL(next, PROBE_ORIGIN);
  } catch {
    return fallback;
  }
  if (url.origin !== PROBE_ORIGIN) return fallback;
  const path = url.pathname + url.search + url.hash;
  // A path that itself begins with `//` would be read as a host when served back.
  return path.startsWith("//") ? fallback : path;
}

/** Whether `text` holds a backslash, a space, or an ASCII control character (which URL parsers drop or rewrite). */
function hasStrippedCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code <= 0x20 || code === 0x7f || code === 0x5c) return true;
  }
  return false;
}
