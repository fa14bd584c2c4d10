/// <reference lib="dom" />
// The browser runtime: finds island markers rendered by the server and hydrates each with
// its component and serialized props. Nothing outside a marker is touched.
import { h, hydrate } from "preact";

const markers = document.querySelectorAll<HTMLElement>("[data-island]");
for (const el of markers) {
  const name = el.dataset.island ?? "";
  if (!/^[a-z0-9_]+$/.test(name)) continue;
  const props = JSON.parse(el.dataset.props ?? "{}");
  const url = new URL(`../../islands/${name}.js`, import.meta.url).href;
  import(url)
    .then((mod) => {
      hydrate(h(mod.default, props), el);
      el.dataset.hydrated = "true";
    })
    .catch((err) => {
      el.dataset.hydrated = "error";
      console.error(`island ${name} failed to hydrate`, err);
    });
}
