import type { ComponentType } from "preact";

/**
 * Server side of an island: renders the component inside a marker that carries its name
 * and JSON props, so the client runtime can hydrate exactly this subtree. Props must be
 * plain JSON; anything else would not survive the trip to the browser.
 */
export function Island<P extends Record<string, unknown>>(
  { name, component: Component, props }: { name: string; component: ComponentType<P>; props: P },
) {
  return (
    <div data-island={name} data-props={JSON.stringify(props)} style="display:contents">
      <Component {...props} />
    </div>
  );
}
