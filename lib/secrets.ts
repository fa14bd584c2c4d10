import { decodeBase64, decodeHex, encodeBase64 } from "@oslojs/encoding";
import { join } from "node:path";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";

/**
 * The AES-256-GCM key for secrets Vox must read back (SPEC §5). It comes from VOX_SECRET_KEY;
 * only a local install on the embedded database may fall back to a key generated once and
 * kept in VOX_DATA_DIR (outside the database, so a database leak alone reveals nothing).
 */
export async function loadSecretKey(config: Config, log: Logger): Promise<CryptoKey> {
  let raw: Uint8Array;
  if (config.VOX_SECRET_KEY) {
    raw = parseKey(config.VOX_SECRET_KEY);
  } else {
    const file = join(config.VOX_DATA_DIR, "secret.key");
    try {
      raw = parseKey((await Deno.readTextFile(file)).trim());
    } catch {
      raw = crypto.getRandomValues(new Uint8Array(32));
      await Deno.mkdir(config.VOX_DATA_DIR, { recursive: true });
      await Deno.writeTextFile(file, encodeBase64(raw), { mode: 0o600 });
      log.warn("VOX_SECRET_KEY is not set; generated a local key", { file });
    }
  }
  return await importKey(raw);
}

/** Imports 32 raw bytes as an AES-GCM key. */
export function importKey(raw: Uint8Array): Promise<CryptoKey> {
  if (raw.length !== 32) throw new Error("secret key must be 32 bytes");
  return crypto.subtle.importKey("raw", raw as BufferSource, "AES-GCM", false, ["encrypt", "decrypt"]);
}

/** Encrypts text; the result is `v1.<base64 iv>.<base64 ciphertext+tag>`. */
export async function seal(key: CryptoKey, plaintext: string, context = ""): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: new TextEncoder().encode(context) },
      key,
      new TextEncoder().encode(plaintext),
    ),
  );
  return `v1.${encodeBase64(iv)}.${encodeBase64(ct)}`;
}

/** Decrypts what seal() produced with the same key and context; throws if tampered with. */
export async function open(key: CryptoKey, sealed: string, context = ""): Promise<string> {
  const [version, iv, ct] = sealed.split(".");
  if (version !== "v1" || !iv || !ct) throw new Error("not a sealed value");
  const pt = await crypto.subtle.decrypt(
    {
      name: "AES-GCM",
      iv: decodeBase64(iv) as BufferSource,
      additionalData: new TextEncoder().encode(context),
    },
    key,
    decodeBase64(ct) as BufferSource,
  );
  return new TextDecoder().decode(pt);
}

function parseKey(text: string): Uint8Array {
  return /^[0-9a-fA-F]{64}$/.test(text)
    ? decodeHex(text.toLowerCase())
    : decodeBase64(text.replace(/-/g, "+").replace(/_/g, "/"));
}
