// The strict egress policy against a canary on loopback: every way a config or a page could
// reach it (direct URL, a redirect, a name that resolves to it, fetch, WebSocket, WebRTC) is
// refused, the canary sees nothing, and the job fails naming the host. The same jobs with the
// open policy reach the canary, so the canary can tell.
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { join } from "node:path";
import { launchChromium } from "../agent/browser.ts";
import { loadConfig } from "../agent/config.ts";
import { checkDestination, type EgressPolicy, nonPublic, parseAllowList } from "../agent/egress.ts";
import { runJob } from "../agent/job.ts";

/** A server on 127.0.0.1 that counts every HTTP request, WebSocket upgrade and UDP datagram. */
const canary = { http: 0, udp: 0 };
const canaryServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
  canary.http++;
  if (req.headers.get("upgrade") === "websocket") return Deno.upgradeWebSocket(req).response;
  return new Response("<!doctype html><title>canary</title>secret", {
    headers: { "content-type": "text/html", "access-control-allow-origin": "*" },
  });
});
const CANARY = canaryServer.addr.port;
const udp = createSocket("udp4");
udp.on("message", () => canary.udp++);
await new Promise<void>((r) => udp.bind(0, "127.0.0.1", () => r()));
const UDP = udp.address().port;

// A "public" site the operator allowed by name that redirects to the canary.
const redirector = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
  const to = new URL(req.url).searchParams.get("to")!;
  return new Response(null, { status: 302, headers: { location: to } });
});
const REDIRECT = redirector.addr.port;

// Names a test resolver answers: one public-looking host allowed by name, one that resolves to
// loopback (a rebinding or a hostile DNS record), like any DNS answer the proxy gets.
const names: Record<string, string[]> = {
  "public.example": ["127.0.0.1"],
  "canary.localtest": ["127.0.0.1"],
};
const strict: EgressPolicy = {
  allow: parseAllowList(`public.example:${REDIRECT}`),
  resolve: (host) => names[host] ? Promise.resolve(names[host]) : Promise.reject(new Error("NXDOMAIN")),
};

const browser = await launchChromium({ strictEgress: true });
const open = await launchChromium();
const dir = await Deno.makeTempDir({ prefix: "vox-egress-" });
Deno.test.afterAll(async () => {
  await browser.close();
  await open.close();
  await canaryServer.shutdown();
  await redirector.shutdown();
  udp.close();
  await Deno.remove(dir, { recursive: true });
});

await Deno.writeTextFile(join(dir, "wait.yaml"), "steps:\n  - action: sleep\n    time: 1500\n");
const suite = await loadConfig(join(dir, "wait.yaml"), "scenario");

async function app(name: string, body: string) {
  const path = join(dir, `${name}.yaml`);
  await Deno.writeTextFile(path, body);
  return await loadConfig(path, "application");
}

const urlApp = (name: string, url: string) => app(name, `url: "${url}"\nsteps: []\n`);
const htmlApp = (name: string, script: string) =>
  app(name, `html: |\n  <!doctype html><body>page</body><script>\n  ${script}\n  </script>\nsteps: []\n`);

/** Runs the job under the strict policy: zero canary hits, and a failure naming `host`. */
async function assertBlocked(
  config: Awaited<ReturnType<typeof app>>,
  host: string,
  counter: "http" | "udp" = "http",
) {
  const before = canary[counter];
  const { report } = await runJob(config, suite, { browser: browser.browser, outDir: dir, egress: strict });
  assert.equal(report.ok, false, "the job fails");
  const message = report.errors.map((e) => e.message).join("; ");
  assert.match(message, new RegExp(`blocked destination ${host.replaceAll(".", "\\.")}\\b`));
  assert.equal(canary[counter], before, `the canary logged no ${counter} traffic`);
}

/** The same job with the open policy reaches the canary (so the canary can tell). */
async function assertOpenReaches(config: Awaited<ReturnType<typeof app>>, counter: "http" | "udp" = "http") {
  const before = canary[counter];
  await runJob(config, suite, { browser: open.browser, outDir: dir });
  assert.ok(canary[counter] > before, `without the policy the canary sees ${counter} traffic`);
}

Deno.test("strict egress: a workflow URL on loopback is refused and the canary sees nothing", async () => {
  const config = await urlApp("direct", `http://127.0.0.1:${CANARY}/`);
  await assertBlocked(config, "127.0.0.1");
  await assertOpenReaches(config);
});

Deno.test("strict egress: localhost is resolved by the proxy (getaddrinfo) and refused", async () => {
  const config = await urlApp("localhost", `http://localhost:${CANARY}/`);
  const before = canary.http;
  const { report } = await runJob(config, suite, {
    browser: browser.browser,
    outDir: dir,
    egress: { allow: [] },
  });
  assert.equal(report.ok, false);
  assert.match(
    report.errors[0].message,
    /blocked destination localhost \(resolves to (127\.0\.0\.1|::1), loopback\)/,
  );
  assert.equal(canary.http, before);
});

Deno.test("strict egress: a name that resolves to loopback is refused after resolution", async () => {
  const config = await urlApp("dns", `http://canary.localtest:${CANARY}/`);
  await assertBlocked(config, "canary.localtest");
});

Deno.test("strict egress: an allowed public-looking URL that redirects to loopback is refused at the redirect", async () => {
  const config = await urlApp(
    "redirect",
    `http://public.example:${REDIRECT}/?to=${encodeURIComponent(`http://127.0.0.1:${CANARY}/`)}`,
  );
  await assertBlocked(config, "127.0.0.1");
});

Deno.test("strict egress: an html page's fetch to loopback is refused; the page itself still loads", async () => {
  const config = await htmlApp("fetch", `fetch("http://127.0.0.1:${CANARY}/steal").catch(() => {});`);
  await assertBlocked(config, "127.0.0.1");
  await assertOpenReaches(config);
});

Deno.test("strict egress: an html page's WebSocket to a name resolving to loopback is refused", async () => {
  const config = await htmlApp("ws", `new WebSocket("ws://canary.localtest:${CANARY}/");`);
  await assertBlocked(config, "canary.localtest");
});

Deno.test("strict egress: an html page's RTCPeerConnection toward loopback sends no UDP and fails the job", async () => {
  const config = await htmlApp(
    "rtc",
    `(async () => {
      const pc = new RTCPeerConnection({ iceServers: [{ urls: "stun:127.0.0.1:${UDP}" }] });
      pc.createDataChannel("x");
      await pc.setLocalDescription(await pc.createOffer());
      await pc.addIceCandidate({ candidate: "candidate:1 1 udp 2122260223 127.0.0.1 ${UDP} typ host", sdpMid: "0", sdpMLineIndex: 0 }).catch(() => {});
    })();`,
  );
  await assertBlocked(config, "127.0.0.1", "udp");
  await assertOpenReaches(config, "udp");
});

Deno.test("nonPublic() knows the ranges a daemon refuses, mapped IPv6 forms included", () => {
  for (
    const ip of [
      "127.0.0.1",
      "10.1.2.3",
      "172.20.0.1",
      "192.168.1.1",
      "100.64.0.1",
      "169.254.169.254",
      "0.0.0.0",
      "::1",
      "fe80::1",
      "fd00:ec2::254",
      "fc00::1",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "64:ff9b::a9fe:a9fe",
      "2002:7f00:1::1",
    ]
  ) assert.ok(nonPublic(ip), `${ip} is not public`);
  for (const ip of ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "100.128.0.1", "172.32.0.1"]) {
    assert.equal(nonPublic(ip), null, `${ip} is public`);
  }
});

Deno.test("checkDestination(): every address of a name must pass; allowances by CIDR, host:port and URL prefix", async () => {
  const resolve = (h: string) =>
    Promise.resolve(
      ({ "mixed.example": ["93.184.215.14", "10.0.0.5"], "pub.example": ["93.184.215.14"] } as Record<
        string,
        string[]
      >)[h] ?? [],
    );
  await assert.rejects(
    checkDestination({ allow: [], resolve }, "mixed.example", 443),
    /resolves to 10\.0\.0\.5/,
  );
  assert.equal(await checkDestination({ allow: [], resolve }, "pub.example", 443), "93.184.215.14");
  const allow = parseAllowList("10.0.0.0/8, 127.0.0.1:8000, http://127.0.0.1:9000/demo/");
  assert.equal(await checkDestination({ allow, resolve }, "mixed.example", 443), "93.184.215.14");
  assert.equal(await checkDestination({ allow }, "127.0.0.1", 8000), "127.0.0.1");
  await assert.rejects(checkDestination({ allow }, "127.0.0.1", 8001), /blocked destination 127\.0\.0\.1/);
  assert.equal(await checkDestination({ allow }, "127.0.0.1", 9000, "/demo/agent/x.js"), "127.0.0.1");
  await assert.rejects(checkDestination({ allow }, "127.0.0.1", 9000, "/api/keys"), /only \/demo\//);
  assert.throws(() => parseAllowList("not a host!"), /not a host/);
});
