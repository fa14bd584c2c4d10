/// <reference lib="dom" />
// The live quote on /pricing: seats and plan in, the API's quote out (GET /api/pricing/quote,
// so the page never prices anything itself). Without JavaScript it is a GET form that the
// server answers with the same quote.
import { useEffect, useState } from "preact/hooks";

export interface QuoteView {
  kind: "solo" | "org";
  seats: number;
  unitCents: number;
  discountPercent: number;
  totalCents: number;
  currency: string;
}

export interface PricingQuoteProps {
  [key: string]: unknown;
  kind: "solo" | "org";
  seats: string;
  quote: QuoteView | null;
  error: string | null;
}

/** "$30.60" for 3060 cents. */
export function money(cents: number, currency: string): string {
  return new Intl.NumberFormat("en-US", { style: "currency", currency: currency.toUpperCase() }).format(
    cents / 100,
  );
}

export default function PricingQuote(props: PricingQuoteProps) {
  const [kind, setKind] = useState(props.kind);
  const [seats, setSeats] = useState(props.seats);
  const [quote, setQuote] = useState(props.quote);
  const [error, setError] = useState(props.error);

  useEffect(() => {
    const ctl = new AbortController();
    const timer = setTimeout(async () => {
      try {
        const res = await fetch(`/api/pricing/quote?kind=${kind}&seats=${encodeURIComponent(seats)}`, {
          signal: ctl.signal,
        });
        const body = await res.json();
        if (res.ok) {
          setQuote(body);
          setError(null);
        } else {
          setQuote(null);
          setError(body?.error?.message ?? "Could not price that");
        }
      } catch (err) {
        if ((err as Error).name !== "AbortError") setError("The server could not be reached");
      }
    }, 150);
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
  }, [kind, seats]);

  return (
    <form class="card quote-form" method="get" action="/pricing" data-testid="quote-form">
      <h2 id="quote-title">Your price</h2>
      <div class="quote-inputs">
        <label>
          Plan{" "}
          <select
            name="kind"
            value={kind}
            onChange={(e) => setKind((e.target as HTMLSelectElement).value as "solo")}
          >
            <option value="org">Organization seats</option>
            <option value="solo">Solo Premium</option>
          </select>
        </label>
        <label>
          Seats{" "}
          <input
            id="quote-seats"
            name="seats"
            type="number"
            min={1}
            step={1}
            inputMode="numeric"
            value={seats}
            onInput={(e) => setSeats((e.target as HTMLInputElement).value)}
          />
        </label>
        <noscript>
          <button class="button" type="submit">Price it</button>
        </noscript>
      </div>
      <p class="quote-result" aria-live="polite" data-testid="quote-result">
        {quote
          ? (
            <>
              <strong data-testid="quote-total">{money(quote.totalCents, quote.currency)}</strong> per month
              {" "}
              <span class="muted">
                ({quote.seats} × {money(quote.unitCents, quote.currency)}
                {quote.discountPercent > 0 ? ` − ${quote.discountPercent} %` : ""};{" "}
                <span data-testid="quote-cents">{quote.totalCents}</span> cents)
              </span>
            </>
          )
          : <span class="error-text">{error ?? "Enter a number of seats"}</span>}
      </p>
    </form>
  );
}
