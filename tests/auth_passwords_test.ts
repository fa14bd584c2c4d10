import assert from "node:assert/strict";
import {
  hashPassword,
  PASSWORD_MAX,
  PASSWORD_MIN,
  passwordProblem,
  verifyPassword,
} from "../lib/auth/passwords.ts";
import { constantTimeEqualText, hashToken, randomToken } from "../lib/auth/tokens.ts";

Deno.test("hashPassword() makes Argon2id hashes with OWASP parameters and a fresh salt", async () => {
  const a = await hashPassword("the same passphrase");
  const b = await hashPassword("the same passphrase");
  assert.match(a, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.notEqual(a, b, "salted");
  assert.ok(!a.includes("the same passphrase"));
});

Deno.test("verifyPassword() accepts the password and nothing else", async () => {
  const hash = await hashPassword("open sesame, please");
  assert.equal(await verifyPassword(hash, "open sesame, please"), true);
  assert.equal(await verifyPassword(hash, "open sesame, please "), false);
  assert.equal(await verifyPassword(hash, ""), false);
  assert.equal(await verifyPassword("not a phc string", "open sesame, please"), false);
});

Deno.test("verifyPassword() with no hash still answers false (after a dummy verification)", async () => {
  assert.equal(await verifyPassword(null, "anything at all"), false);
  assert.equal(await verifyPassword(null, ""), false);
});

Deno.test("passwordProblem() enforces length only, counting characters not bytes", () => {
  assert.match(passwordProblem("short")!, new RegExp(`at least ${PASSWORD_MIN}`));
  assert.equal(passwordProblem("x".repeat(PASSWORD_MIN)), null);
  assert.equal(passwordProblem("ääääääääääää"), null, "12 characters, 24 bytes");
  assert.match(passwordProblem("x".repeat(PASSWORD_MAX + 1))!, /at most/);
  assert.match(passwordProblem(" ".repeat(20))!, /only spaces/);
  assert.equal(passwordProblem("alllowercaseletters"), null, "no composition rules");
  assert.match(passwordProblem("Me@Example.test", { email: "me@example.test" })!, /same as the email/);
});

Deno.test("tokens: 160 random bits, stored as a 64-hex SHA-256, compared in constant time", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const t = randomToken();
    assert.match(t, /^[a-z2-7]{32}$/);
    seen.add(t);
  }
  assert.equal(seen.size, 1000);
  assert.equal(hashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(constantTimeEqualText("same", "same"), true);
  assert.equal(constantTimeEqualText("same", "sama"), false);
  assert.equal(constantTimeEqualText("same", "same!"), false);
});
