// `deno task build`: bundles the islands ahead of time (the Dockerfile runs it).
import { join } from "node:path";
import { buildIslands } from "../lib/islands/bundle.ts";
import { loadConfig } from "../lib/config.ts";
import { log } from "../lib/log.ts";

const config = loadConfig();
const assets = await buildIslands({ outRoot: join(config.VOX_DATA_DIR, "build", "islands"), log });
console.log(`islands built: ${assets.islands.join(", ")} (build ${assets.buildId})`);
