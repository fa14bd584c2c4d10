// /console/providers: the public provider entries. Principals and the admin create curated
// entries and keep their name, website, product type, description and verified flag; everyone
// else sees the list and who to ask. Loaded from the API as the caller (./_api.ts); changes go
// through the console form island calling the same API.
import { Hono } from "hono";
import { Badge, Empty, PageHead, Section, Table } from "../../components/console/ui.tsx";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { PRODUCT_TYPE_LABELS, PRODUCT_TYPES, type ProductType } from "../../lib/providers.ts";
import { canCurateProviders } from "../../lib/roles.ts";
import type { ApiGet } from "./_api.ts";
import { consolePage, Form, guarded } from "./_page.tsx";

interface ProviderEntry {
  id: string;
  name: string;
  productType: ProductType;
  website: string | null;
  description: string;
  curated: boolean;
  verified: boolean;
  verifiedOrganization: string | null;
}

const TYPE_OPTIONS = PRODUCT_TYPES.map((t) => ({ value: t, label: PRODUCT_TYPE_LABELS[t] }));

/** The fields of a curated entry, filled with `p`'s values when editing. */
function entryFields(p?: ProviderEntry) {
  return [
    { name: "name", label: "Name", value: p?.name ?? "", required: true },
    {
      name: "productType",
      label: "Product type (its board)",
      type: "select" as const,
      value: p?.productType ?? "convoai",
      options: TYPE_OPTIONS,
    },
    { name: "website", label: "Website", value: p?.website ?? "", hint: "https://…; empty for none" },
    {
      name: "description",
      label: "Description",
      type: "textarea" as const,
      rows: 2,
      value: p?.description ?? "",
    },
    {
      name: "verified",
      label: "Verified: the entry is the vendor it names",
      type: "checkbox" as const,
      value: p?.verified ?? false,
    },
  ];
}

/** The console's providers page. */
export function consoleProviderRoutes(deps: AppDeps, get: ApiGet) {
  const app = new Hono<AppEnv>();
  app.get(
    "/console/providers",
    guarded(deps, {}, async (c) => {
      const { providers } = await get<{ providers: ProviderEntry[] }>(c, "/api/v1/providers");
      const curator = canCurateProviders(c.var.user!);
      return consolePage(c, deps, {
        title: "Providers",
        body: (
          <>
            <PageHead
              title="Providers"
              lead={curator
                ? "Curated entries are public at once and ranked on their product type's board. Names are unique among curated entries; a user's private product of the same name stays theirs."
                : "The public provider entries. Principals and the admin curate them: ask one to add an entry or correct one."}
            />
            {providers.length === 0 ? <Empty title="No providers yet" /> : (
              <Table
                stack
                caption="Providers"
                head={["Provider", "Board", "Website", "Status", ...(curator ? ["Edit"] : [])]}
              >
                {providers.map((p) => (
                  <tr key={p.id} data-provider={p.id}>
                    <td data-label="Provider">
                      <strong>{p.name}</strong>
                      {p.description && <div class="muted small">{p.description}</div>}
                    </td>
                    <td data-label="Board">{PRODUCT_TYPE_LABELS[p.productType]}</td>
                    <td data-label="Website">
                      {p.website
                        ? <a href={p.website} rel="noopener noreferrer nofollow">{p.website}</a>
                        : "—"}
                    </td>
                    <td data-label="Status">
                      {/* One grid item on a phone (stacked rows), so the badges keep their size. */}
                      <span>
                        <Badge value={p.curated ? "curated" : "user-named"} />
                        {p.verifiedOrganization && (
                          <>
                            {" "}
                            <Badge value="verified" />
                          </>
                        )}
                      </span>
                    </td>
                    {curator && (
                      <td class="c-row-actions" data-label="Edit">
                        {p.curated
                          ? (
                            <details class="c-inline-edit">
                              <summary class="button small">Edit</summary>
                              <Form
                                {...{
                                  id: `provider-${p.id}`,
                                  method: "PATCH",
                                  action: `/api/v1/providers/${p.id}`,
                                  submit: "Save",
                                  fields: entryFields(p),
                                  then: { reload: true },
                                }}
                              />
                            </details>
                          )
                          : (
                            <span class="muted small">
                              A user's own product: theirs to name until it is public.
                            </span>
                          )}
                      </td>
                    )}
                  </tr>
                ))}
              </Table>
            )}
            {curator && (
              <Section title="New curated provider">
                <Form
                  {...{
                    id: "new-provider",
                    method: "POST",
                    action: "/api/v1/providers",
                    submit: "Create provider",
                    fields: entryFields(),
                    then: { reload: true },
                  }}
                />
              </Section>
            )}
          </>
        ),
      });
    }),
  );
  return app;
}
