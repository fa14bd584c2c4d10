// /pricing: the prices and discount tiers from the database (GET /api/pricing) and a live
// quote for N seats (islands/pricing_quote.tsx over GET /api/pricing/quote). Public.
import { Hono } from "hono";
import PricingQuote, { money, type QuoteView } from "../islands/pricing_quote.tsx";
import type { AppDeps, AppEnv } from "../lib/context.ts";
import { Island } from "../lib/islands/marker.tsx";
import type { Pricing } from "../lib/pricing.ts";
import { ApiFailure, type ApiGet } from "./console/_api.ts";
import { renderPage } from "./_render.tsx";

/** `/pricing`. */
export function pricingPageRoutes(deps: AppDeps, get: ApiGet) {
  const app = new Hono<AppEnv>();
  app.get("/pricing", async (c) => {
    const pricing = await get<Pricing>(c, "/api/pricing");
    const kind: "solo" | "org" = c.req.query("kind") === "solo" ? "solo" : "org";
    const seats = (c.req.query("seats") ?? "6").slice(0, 12);
    let quote: QuoteView | null = null;
    let error: string | null = null;
    try {
      quote = await get<QuoteView>(c, `/api/pricing/quote?kind=${kind}&seats=${encodeURIComponent(seats)}`);
    } catch (err) {
      if (!(err instanceof ApiFailure) || err.status !== 400) throw err;
      error = err.message;
    }
    const unit = (k: "solo" | "org") => pricing.plans.find((p) => p.kind === k);
    const solo = unit("solo");
    const org = unit("org");
    return renderPage(c, deps, {
      title: "Pricing",
      body: (
        <>
          <h1>Pricing</h1>
          <p class="lead">
            Measuring and publishing is free. Premium lets you keep workflows and eval sets private and gives
            larger limits. Prices are per seat and month, in {pricing.currency.toUpperCase()}.
          </p>
          <div class="grid2">
            {solo && (
              <section class="card" data-testid="plan-solo">
                <h2>Solo Premium</h2>
                <p class="price">
                  <strong>{money(solo.unitCents, solo.currency)}</strong> per month
                </p>
                <p class="muted">One user: private items, 20 projects of 20 workflows.</p>
              </section>
            )}
            {org && (
              <section class="card" data-testid="plan-org">
                <h2>Organization seats</h2>
                <p class="price">
                  <strong>{money(org.unitCents, org.currency)}</strong> per seat per month
                </p>
                <p class="muted">
                  Every member and open invite takes a seat; members with a paid seat get Premium powers. The
                  organization has 100 projects of 20 workflows, each member 20 personal ones.
                </p>
              </section>
            )}
          </div>
          <section class="card">
            <h2>Discounts</h2>
            <p>
              The discount depends on the seats bought in one purchase, not on the seats you already have.
            </p>
            <table class="table" data-testid="discount-tiers">
              <caption class="visually-hidden">Discount by seats bought at once</caption>
              <thead>
                <tr>
                  <th scope="col">Seats bought at once</th>
                  <th scope="col">Discount</th>
                </tr>
              </thead>
              <tbody>
                {pricing.discounts.map((t) => (
                  <tr key={t.minSeats}>
                    <td>
                      {t.maxSeats === null
                        ? `${t.minSeats} or more`
                        : t.maxSeats === t.minSeats
                        ? `${t.minSeats}`
                        : `${t.minSeats}–${t.maxSeats}`}
                    </td>
                    <td>{t.discountPercent} %</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
          <Island name="pricing_quote" component={PricingQuote} props={{ kind, seats, quote, error }} />
          <p class="muted">
            Organizations buy seats from <a href="/console/organization">the organization console</a>.
          </p>
        </>
      ),
    });
  });
  return app;
}
