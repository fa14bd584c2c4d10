import { sha256 } from "@oslojs/crypto/sha2";
import { constantTimeEqual } from "@oslojs/crypto/subtle";
import { encodeBase32LowerCaseNoPadding, encodeHexLowerCase } from "@oslojs/encoding";

/** A random token of `bytes` bytes (default 20 = 160 bits), base32 lower case without padding. */
export function randomToken(bytes = 20): string {
  return encodeBase32LowerCaseNoPadding(crypto.getRandomValues(new Uint8Array(bytes)));
}

/**
 * hex(sha256(text)): what the database keeps instead of a raw token (SPEC §5). Sessions, API
 * keys, activation tokens and eval agent tokens are all stored in this form.
 */
export function hashToken(text: string): string {
  return encodeHexLowerCase(sha256(new TextEncoder().encode(text)));
}

/** Compares two strings without an early exit on the first differing byte. */
export function constantTimeEqualText(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  return x.length === y.length && constantTimeEqual(x, y);
}
